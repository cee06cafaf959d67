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

/* Byte-at-a-time validation with an 8-byte ASCII fast path. */
static bool utf8_valid_scalar(const unsigned char *p, size_t len)
{
    const unsigned char *end = p + len;

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

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SSSE3_PATH 1

/* 16 bytes at a time with SSSE3 table lookups: the "lookup" algorithm of
 * Keiser & Lemire, "Validating UTF-8 In Less Than One Instruction Per Byte"
 * (Software: Practice and Experience, 2021). Each byte pair (previous,
 * current) is classified through three 16-entry tables whose AND is
 * non-zero exactly for an invalid pair; a second check requires
 * continuation bytes where a 3- or 4-byte lead two or three bytes back
 * demands them. NUL bytes are refused as well. */
enum {
    TOO_SHORT = 1 << 0,  /* lead byte followed by a lead or ASCII byte */
    TOO_LONG = 1 << 1,   /* ASCII followed by a continuation */
    OVERLONG_3 = 1 << 2, /* E0 80..9F */
    TOO_LARGE = 1 << 3,  /* F4 90..BF, F5..FF */
    SURROGATE = 1 << 4,  /* ED A0..BF */
    OVERLONG_2 = 1 << 5, /* C0, C1 */
    TOO_LARGE_1000 = 1 << 6,
    OVERLONG_4 = 1 << 6, /* F0 80..8F */
    TWO_CONTS = 1 << 7,  /* two continuations in a row */
    CARRY = TOO_SHORT | TOO_LONG | TWO_CONTS,
};

__attribute__((target("ssse3"))) static inline __m128i block_errors(__m128i in, __m128i prev_in)
{
    static const uint8_t b1h_bytes[16] = {TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TOO_LONG,
                                          TWO_CONTS,
                                          TWO_CONTS,
                                          TWO_CONTS,
                                          TWO_CONTS,
                                          TOO_SHORT | OVERLONG_2,
                                          TOO_SHORT,
                                          TOO_SHORT | OVERLONG_3 | SURROGATE,
                                          TOO_SHORT | TOO_LARGE | TOO_LARGE_1000 | OVERLONG_4};
    static const uint8_t b1l_bytes[16] = {CARRY | OVERLONG_3 | OVERLONG_2 | OVERLONG_4,
                                          CARRY | OVERLONG_2,
                                          CARRY,
                                          CARRY,
                                          CARRY | TOO_LARGE,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000 | SURROGATE,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000,
                                          CARRY | TOO_LARGE | TOO_LARGE_1000};
    static const uint8_t b2h_bytes[16] = {
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE_1000 | OVERLONG_4,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | OVERLONG_3 | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_LONG | OVERLONG_2 | TWO_CONTS | SURROGATE | TOO_LARGE,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT,
        TOO_SHORT};
    const __m128i b1h_tbl = _mm_loadu_si128((const __m128i *)(const void *)b1h_bytes);
    const __m128i b1l_tbl = _mm_loadu_si128((const __m128i *)(const void *)b1l_bytes);
    const __m128i b2h_tbl = _mm_loadu_si128((const __m128i *)(const void *)b2h_bytes);
    const __m128i nib = _mm_set1_epi8(0x0f);

    __m128i prev1 = _mm_alignr_epi8(in, prev_in, 15);
    __m128i b1h = _mm_shuffle_epi8(b1h_tbl, _mm_and_si128(_mm_srli_epi16(prev1, 4), nib));
    __m128i b1l = _mm_shuffle_epi8(b1l_tbl, _mm_and_si128(prev1, nib));
    __m128i b2h = _mm_shuffle_epi8(b2h_tbl, _mm_and_si128(_mm_srli_epi16(in, 4), nib));
    __m128i sc = _mm_and_si128(_mm_and_si128(b1h, b1l), b2h);

    __m128i prev2 = _mm_alignr_epi8(in, prev_in, 14);
    __m128i prev3 = _mm_alignr_epi8(in, prev_in, 13);
    __m128i third = _mm_subs_epu8(prev2, _mm_set1_epi8(0xe0 - 0x80));
    __m128i fourth = _mm_subs_epu8(prev3, _mm_set1_epi8(0xf0 - 0x80));
    __m128i must23 = _mm_and_si128(_mm_or_si128(third, fourth), _mm_set1_epi8(-128));
    __m128i err = _mm_xor_si128(must23, sc);
    return _mm_or_si128(err, _mm_cmpeq_epi8(in, _mm_setzero_si128()));
}

__attribute__((target("ssse3"))) static bool utf8_valid_ssse3(const unsigned char *p, size_t len)
{
    __m128i prev = _mm_setzero_si128(), err = _mm_setzero_si128(), in;
    size_t i = 0;

    for (; i + 16 <= len; i += 16) {
        in = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        err = _mm_or_si128(err, block_errors(in, prev));
        prev = in;
    }
    /* The tail, padded with spaces, then one block of spaces: a sequence
     * left open at the end meets ASCII and is reported as too short. */
    unsigned char tail[16];
    memset(tail, ' ', sizeof(tail));
    if (i < len) {
        memcpy(tail, p + i, len - i);
        in = _mm_loadu_si128((const __m128i *)(const void *)tail);
        err = _mm_or_si128(err, block_errors(in, prev));
        prev = in;
        memset(tail, ' ', sizeof(tail));
    }
    in = _mm_loadu_si128((const __m128i *)(const void *)tail);
    err = _mm_or_si128(err, block_errors(in, prev));
    return _mm_movemask_epi8(_mm_cmpeq_epi8(err, _mm_setzero_si128())) == 0xffff;
}
#endif

bool gd_utf8_valid(struct gd_str s)
{
    if (s.len == 0)
        return true;
#ifdef HAVE_SSSE3_PATH
    if (s.len >= 32 && __builtin_cpu_supports("ssse3"))
        return utf8_valid_ssse3((const unsigned char *)s.ptr, s.len);
#endif
    return utf8_valid_scalar((const unsigned char *)s.ptr, s.len);
}
