/* isotime.c - ISO 8601 date-times with a zone <-> milliseconds since the Unix epoch. */
#include "isotime.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned days_in_month(int64_t y, unsigned m)
{
    static const unsigned dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Reads exactly `n` digits at s[*i]; advances *i. */
static bool digits(const char *s, size_t len, size_t *i, int n, unsigned *ret)
{
    unsigned v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (unsigned)(s[*i] - '0');
        (*i)++;
    }
    *ret = v;
    return true;
}

static bool expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || s[*i] != c)
        return false;
    (*i)++;
    return true;
}

int isotime_parse(const char *s, size_t len, int64_t *ret_ms)
{
    size_t i = 0;
    unsigned y, mo, d, h, mi, sec = 0, ms = 0;
    if (!digits(s, len, &i, 4, &y) || !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &mo) ||
        !expect(s, len, &i, '-') || !digits(s, len, &i, 2, &d))
        return -EINVAL;
    if (i >= len || (s[i] != 'T' && s[i] != 't' && s[i] != ' '))
        return -EINVAL;
    i++;
    if (!digits(s, len, &i, 2, &h) || !expect(s, len, &i, ':') || !digits(s, len, &i, 2, &mi))
        return -EINVAL;
    if (i < len && s[i] == ':') {
        i++;
        if (!digits(s, len, &i, 2, &sec))
            return -EINVAL;
        if (i < len && (s[i] == '.' || s[i] == ',')) {
            i++;
            int n = 0;
            unsigned scale = 100;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (n < 3) {
                    ms += (unsigned)(s[i] - '0') * scale;
                    scale /= 10;
                }
                n++;
                i++;
            }
            if (n < 1 || n > 9)
                return -EINVAL;
        }
    }
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return -EINVAL;
    int offset_min;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
        offset_min = 0;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i] == '-' ? -1 : 1;
        i++;
        unsigned oh, om = 0;
        if (!digits(s, len, &i, 2, &oh))
            return -EINVAL;
        if (i < len && s[i] == ':') {
            i++;
            if (!digits(s, len, &i, 2, &om))
                return -EINVAL;
        } else if (i < len && !digits(s, len, &i, 2, &om)) {
            return -EINVAL;
        }
        if (oh > 23 || om > 59)
            return -EINVAL;
        offset_min = sign * (int)(oh * 60 + om);
    } else {
        return -EINVAL; /* no zone */
    }
    if (i != len)
        return -EINVAL;
    int64_t t = days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 + sec -
                (int64_t)offset_min * 60;
    if (t < 0)
        return -EINVAL;
    *ret_ms = t * 1000 + ms;
    return 0;
}

char *isotime_format(int64_t ms, int offset_min, char out[ISOTIME_MAX])
{
    if (ms < 0)
        ms = 0;
    int64_t t = ms / 1000 + (int64_t)offset_min * 60;
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char zone[8] = "Z";
    if (offset_min != 0) {
        int a = offset_min < 0 ? -offset_min : offset_min;
        snprintf(zone, sizeof(zone), "%c%02d:%02d", offset_min < 0 ? '-' : '+', (a / 60) % 100,
                 a % 60);
    }
    snprintf(out, ISOTIME_MAX, "%04lld-%02u-%02uT%02d:%02d:%02d%s", (long long)y, m, d,
             (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60), zone);
    return out;
}
