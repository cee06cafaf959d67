/* low.c - half of the layering check's own test: a low file that calls up into high.c. */
int high_answer(void);
int low_answer(void);

int low_answer(void)
{
    return high_answer() + 1;
}
