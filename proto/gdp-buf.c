/* gdp-buf.c - the growable byte buffer that encoded bodies are written into. */
#include <stdlib.h>
#include <string.h>

#include "gdp-internal.h"

void gd_buf_reset(struct gd_buf *b)
{
    b->len = 0;
}

void gd_buf_fini(struct gd_buf *b)
{
    if (b == NULL)
        return;
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

int gd__buf_reserve(struct gd_buf *b, size_t extra, size_t limit)
{
    size_t need;

    if (extra > limit || b->len > limit - extra)
        return -GD_E_TOO_LARGE;
    need = b->len + extra;
    if (need <= b->cap)
        return 0;

    /* Double, but never beyond the limit the caller can use: a body buffer
     * never holds more than its prefix plus one GD_MAX_BODY. */
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > limit / 2 ? limit : cap * 2;
    if (cap < need)
        cap = need;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return -GD_E_INTERNAL;
    b->data = p;
    b->cap = cap;
    return 0;
}

int gd_buf_append(struct gd_buf *b, const void *p, size_t len)
{
    int r = gd__buf_reserve(b, len, SIZE_MAX - b->len);
    if (r < 0)
        return r;
    if (len)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}
