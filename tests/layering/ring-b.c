/* ring-b.c - the layering check's own test: the other file of the circle. */
int ring_a(int n);
int ring_b(int n);

int ring_b(int n)
{
    return n > 0 ? ring_a(n - 1) : 1;
}
