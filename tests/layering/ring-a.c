/* ring-a.c - the layering check's own test: two files of one layer that call each other. */
int ring_a(int n);
int ring_b(int n);

int ring_a(int n)
{
    return n > 0 ? ring_b(n - 1) : 0;
}
