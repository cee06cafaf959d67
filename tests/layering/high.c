/* high.c - half of the layering check's own test: the file that low.c calls. */
int high_answer(void);

int high_answer(void)
{
    return 41;
}
