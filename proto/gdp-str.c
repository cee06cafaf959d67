/* gdp-str.c - string views: construction, comparison and UTF-8 validation. */
#include <string.h>

#include "gdp-internal.h"

struct gd_str gd_str_c(const char *s)
{
    if (s == NULL)
        return GD_STR_NULL;
    return gd_str_make(s, strlen(s));
}

bool gd_str_eq(struct gd_str a, struct gd_str b)
{
    if (a.len != b.len)
        return false;
    return a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0;
}

bool gd_str_eq_c(struct gd_str a, const char *s)
{
    return gd_str_eq(a, gd_str_c(s));
}

/* True when none of the 8 bytes in w has its top bit set or is zero. */
static inline bool word_is_ascii_no_nul(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    /* (w - ones) & ~w & highs is non-zero iff some byte is 0 (for bytes < 0x80). */
    return ((w | ((w - ones) & ~w)) & highs) == 0;
}

bool gd_utf8_valid(struct gd_str s)
{
    const unsigned char *p = (const unsigned char *)s.ptr;
    const unsigned char *end = p + s.len;

    if (s.len == 0)
        return true;
    while (p < end) {
        /* ASCII fast path, 8 bytes at a time. */
        while (end - p >= 8) {
            uint64_t w;
            memcpy(&w, p, sizeof(w));
            if (!word_is_ascii_no_nul(w))
                break;
            p += 8;
        }
        if (p >= end)
            break;
        unsigned c = *p;
        if (c < 0x80) {
            if (c == 0)
                return false;
            p++;
            continue;
        }
        if (c < 0xC2)
            return false; /* continuation byte or overlong 2-byte lead */
        if (c < 0xE0) {
            if (end - p < 2 || (p[1] & 0xC0) != 0x80)
                return false;
            p += 2;
            continue;
        }
        if (c < 0xF0) {
            if (end - p < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
                return false;
            if (c == 0xE0 && p[1] < 0xA0)
                return false; /* overlong */
            if (c == 0xED && p[1] >= 0xA0)
                return false; /* UTF-16 surrogate */
            p += 3;
            continue;
        }
        if (c < 0xF5) {
            if (end - p < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 ||
                (p[3] & 0xC0) != 0x80)
                return false;
            if (c == 0xF0 && p[1] < 0x90)
                return false; /* overlong */
            if (c == 0xF4 && p[1] >= 0x90)
                return false; /* beyond U+10FFFF */
            p += 4;
            continue;
        }
        return false;
    }
    return true;
}
