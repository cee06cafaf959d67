/* outcome.c - cleaning handler output into protocol text (trim, UTF-8, 1024-byte cap). */
#include "outcome.h"

#include <string.h>

static bool space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

/* Length of the UTF-8 sequence a lead byte announces; 0 for a byte that
 * cannot start one. */
static size_t seq_len(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if (b >= 0xc2 && b <= 0xdf)
        return 2;
    if (b >= 0xe0 && b <= 0xef)
        return 3;
    if (b >= 0xf0 && b <= 0xf4)
        return 4;
    return 0;
}

void outcome_text(const char *in, size_t len, char out[GD_MAX_TEXT + 1])
{
    while (len && space(*in)) {
        in++;
        len--;
    }
    while (len && space(in[len - 1]))
        len--;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = seq_len((unsigned char)in[i]);
        bool ok = n && i + n <= len && in[i] != '\0' && gd_utf8_valid(gd_str_make(in + i, n));
        if (!ok)
            n = 1;
        if (o + n > GD_MAX_TEXT)
            break;
        if (ok)
            memcpy(out + o, in + i, n);
        else
            out[o] = '?';
        o += n;
        i += n;
    }
    while (o && space(out[o - 1]))
        o--;
    out[o] = '\0';
}

const char *outcome_name(enum outcome_action a)
{
    switch (a) {
    case OUTCOME_RESOLVE:
        return "resolve";
    case OUTCOME_RETURN:
        return "return";
    case OUTCOME_PROGRESS:
        return "progress";
    default:
        return "leave";
    }
}
