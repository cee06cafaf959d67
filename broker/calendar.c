/* calendar.c - working-time calendar: working days, holidays, 调休 and working hours. */
#include "calendar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Days are numbered from 1970-01-01 (day 0, a Thursday) in local time.
 * Overrides live in an array sorted by day. Between two overrides every day
 * follows the Monday-Friday rule, so the number of working days in such a
 * stretch, and the day on which the n-th of them falls, are closed formulas
 * (weekday_rank() and weekday_by_rank()); the walks below only visit the
 * overrides themselves.
 */

#define DAY_MS    INT64_C(86400000)
#define MINUTE_MS 60000
/* 0001-01-01 and 9999-12-31 as day numbers. */
#define MIN_DAY INT64_C(-719162)
#define MAX_DAY INT64_C(2932896)

struct cal_day {
    int32_t day; /* local day number */
    bool working;
};

struct period {
    int32_t start_ms; /* after local midnight */
    int32_t end_ms;
};

struct calendar {
    int64_t offset_ms;    /* local = UTC + offset_ms */
    struct cal_day *days; /* overrides, sorted by day, days unique */
    size_t n_days;
    size_t cap_days;
    struct period periods[CALENDAR_MAX_PERIODS]; /* sorted, disjoint */
    int n_periods;
    bool custom_periods; /* false: periods are still the defaults */
    int64_t day_ms;      /* working ms in one working day, > 0 */
};

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Day number of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool is_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : n[m - 1];
}

/* How many Monday-Friday days lie in [R, day) for a fixed Monday R far in
 * the past (negative before R: only differences are used). */
static int64_t weekday_rank(int64_t day)
{
    int64_t x = day + 3; /* x mod 7: 0 = Monday */
    int64_t weeks = floor_div(x, 7);
    int64_t r = x - 7 * weeks;
    return 5 * weeks + (r < 5 ? r : 5);
}

/* The Monday-Friday day whose weekday_rank() is rank. */
static int64_t weekday_by_rank(int64_t rank)
{
    int64_t weeks = floor_div(rank, 5);
    return 7 * weeks + (rank - 5 * weeks) - 3;
}

static bool weekday_default(int64_t day)
{
    return day + 3 - 7 * floor_div(day + 3, 7) < 5;
}

/* Index of the first override on or after day. */
static size_t lower_bound(const struct calendar *c, int64_t day)
{
    size_t lo = 0, hi = c->n_days;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->days[mid].day < day)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool day_working(const struct calendar *c, int64_t day)
{
    size_t i = lower_bound(c, day);
    if (i < c->n_days && c->days[i].day == day)
        return c->days[i].working;
    return weekday_default(day);
}

/* The day on which the k-th (k >= 1) working day on or after day falls. */
static int64_t nth_working_day(const struct calendar *c, int64_t day, int64_t k)
{
    size_t i = lower_bound(c, day);
    for (;;) {
        if (i == c->n_days)
            return weekday_by_rank(weekday_rank(day) + k - 1);
        int64_t next = c->days[i].day;
        if (day < next) {
            int64_t plain = weekday_rank(next) - weekday_rank(day);
            if (k <= plain)
                return weekday_by_rank(weekday_rank(day) + k - 1);
            k -= plain;
            day = next;
        }
        if (c->days[i].working) {
            if (k == 1)
                return day;
            k--;
        }
        day++;
        i++;
    }
}

/* Working days in [from, to), from <= to. */
static int64_t working_days_between(const struct calendar *c, int64_t from, int64_t to)
{
    int64_t n = weekday_rank(to) - weekday_rank(from);
    for (size_t i = lower_bound(c, from); i < c->n_days && c->days[i].day < to; i++)
        n += (int)c->days[i].working - (int)weekday_default(c->days[i].day);
    return n;
}

/* Working ms of one working day in [from_ms, to_ms) after local midnight. */
static int64_t working_ms_within_day(const struct calendar *c, int64_t from_ms, int64_t to_ms)
{
    int64_t n = 0;
    for (int i = 0; i < c->n_periods; i++) {
        int64_t s = c->periods[i].start_ms > from_ms ? c->periods[i].start_ms : from_ms;
        int64_t e = c->periods[i].end_ms < to_ms ? c->periods[i].end_ms : to_ms;
        if (e > s)
            n += e - s;
    }
    return n;
}

/* The ms after local midnight at which rem ms (0 <= rem <= day_ms) of a
 * working day's working time have passed; rem == 0 is the first period's
 * start, rem equal to what the periods up to one hold is that period's end. */
static int64_t instant_within_day(const struct calendar *c, int64_t rem)
{
    for (int i = 0; i < c->n_periods; i++) {
        int64_t len = c->periods[i].end_ms - c->periods[i].start_ms;
        if (rem <= len)
            return c->periods[i].start_ms + rem;
        rem -= len;
    }
    return c->periods[c->n_periods - 1].end_ms; /* not reached: rem <= day_ms */
}

/* Splits an instant into its local day number and ms after local midnight;
 * -ERANGE outside years 1-9999. */
static int split(const struct calendar *c, int64_t at_ms, int64_t *ret_day, int64_t *ret_tod)
{
    const int64_t slack = (int64_t)CALENDAR_MAX_OFFSET_MIN * MINUTE_MS;
    if (at_ms < MIN_DAY * DAY_MS - slack || at_ms > (MAX_DAY + 1) * DAY_MS + slack)
        return -ERANGE;
    int64_t local = at_ms + c->offset_ms;
    int64_t day = floor_div(local, DAY_MS);
    if (day < MIN_DAY || day > MAX_DAY)
        return -ERANGE;
    *ret_day = day;
    *ret_tod = local - day * DAY_MS;
    return 0;
}

static void set_default_periods(struct calendar *c)
{
    c->periods[0] = (struct period){(8 * 60 + 30) * MINUTE_MS, 12 * 60 * MINUTE_MS};
    c->periods[1] = (struct period){(13 * 60 + 30) * MINUTE_MS, 18 * 60 * MINUTE_MS};
    c->n_periods = 2;
    c->custom_periods = false;
    c->day_ms = 8 * 60 * MINUTE_MS;
}

struct calendar *calendar_new(int32_t utc_offset_min)
{
    if (utc_offset_min < -CALENDAR_MAX_OFFSET_MIN || utc_offset_min > CALENDAR_MAX_OFFSET_MIN)
        return NULL;
    struct calendar *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->offset_ms = (int64_t)utc_offset_min * MINUTE_MS;
    set_default_periods(c);
    return c;
}

void calendar_free(struct calendar *c)
{
    if (c == NULL)
        return;
    free(c->days);
    free(c);
}

/* Sets day (a valid day number) to working or not; 0 or -ENOMEM. */
static int put_day(struct calendar *c, int64_t day, bool working)
{
    size_t i = lower_bound(c, day);
    if (i < c->n_days && c->days[i].day == day) {
        c->days[i].working = working;
        return 0;
    }
    if (c->n_days == c->cap_days) {
        size_t cap = c->cap_days ? 2 * c->cap_days : 64;
        struct cal_day *days = realloc(c->days, cap * sizeof(*days));
        if (days == NULL)
            return -ENOMEM;
        c->days = days;
        c->cap_days = cap;
    }
    memmove(&c->days[i + 1], &c->days[i], (c->n_days - i) * sizeof(*c->days));
    c->days[i] = (struct cal_day){(int32_t)day, working};
    c->n_days++;
    return 0;
}

int calendar_set_day(struct calendar *c, int year, int month, int day, bool working)
{
    if (year < 1 || year > 9999 || month < 1 || month > 12 || day < 1 ||
        day > days_in_month(year, month))
        return -EINVAL;
    return put_day(c, days_from_civil(year, month, day), working);
}

/* Adds [start_ms, end_ms) to c's periods; the checks of calendar_add_period(). */
static int add_period_ms(struct calendar *c, int64_t start_ms, int64_t end_ms)
{
    if (start_ms < 0 || start_ms >= end_ms || end_ms > DAY_MS)
        return -EINVAL;
    int n = c->custom_periods ? c->n_periods : 0;
    int at = 0;
    for (; at < n; at++) {
        if (end_ms <= c->periods[at].start_ms)
            break;
        if (start_ms < c->periods[at].end_ms)
            return -EINVAL; /* overlaps periods[at] */
    }
    if (n == CALENDAR_MAX_PERIODS)
        return -ENOSPC;
    memmove(&c->periods[at + 1], &c->periods[at], (size_t)(n - at) * sizeof(c->periods[0]));
    c->periods[at] = (struct period){(int32_t)start_ms, (int32_t)end_ms};
    c->n_periods = n + 1;
    c->custom_periods = true;
    c->day_ms = 0;
    for (int i = 0; i < c->n_periods; i++)
        c->day_ms += c->periods[i].end_ms - c->periods[i].start_ms;
    return 0;
}

int calendar_add_period(struct calendar *c, int start_min, int end_min)
{
    if (start_min < 0 || end_min > 24 * 60)
        return -EINVAL;
    return add_period_ms(c, (int64_t)start_min * MINUTE_MS, (int64_t)end_min * MINUTE_MS);
}

int calendar_add(const struct calendar *c, int64_t start_ms, int64_t working_s, int64_t *ret_ms)
{
    if (working_s < 0 || working_s > CALENDAR_MAX_WORKING_S)
        return -EINVAL;
    int64_t day, tod;
    int r = split(c, start_ms, &day, &tod);
    if (r < 0)
        return r;
    int64_t need = working_s * 1000;

    /* The rest of the start day. */
    if (day_working(c, day)) {
        for (int i = 0; i < c->n_periods; i++) {
            if (tod >= c->periods[i].end_ms)
                continue;
            int64_t from = tod > c->periods[i].start_ms ? tod : c->periods[i].start_ms;
            int64_t avail = c->periods[i].end_ms - from;
            if (need <= avail) {
                *ret_ms = day * DAY_MS + from + need - c->offset_ms;
                return 0;
            }
            need -= avail;
        }
    }

    /* Whole working days after it: the limit runs out on the k-th, with
     * rem ms of it (0 < rem <= day_ms; 0 only for a zero limit). */
    int64_t k = need == 0 ? 1 : (need + c->day_ms - 1) / c->day_ms;
    int64_t rem = need - (k - 1) * c->day_ms;
    int64_t due_day = nth_working_day(c, day + 1, k);
    if (due_day > MAX_DAY)
        return -ERANGE;
    *ret_ms = due_day * DAY_MS + instant_within_day(c, rem) - c->offset_ms;
    return 0;
}

int64_t calendar_working_s(const struct calendar *c, int64_t from_ms, int64_t to_ms)
{
    int64_t d0, t0, d1, t1;
    int r = split(c, from_ms, &d0, &t0);
    if (r == 0)
        r = split(c, to_ms, &d1, &t1);
    if (r < 0)
        return r;
    if (to_ms <= from_ms)
        return 0;
    int64_t ms;
    if (d0 == d1) {
        ms = day_working(c, d0) ? working_ms_within_day(c, t0, t1) : 0;
    } else {
        ms = day_working(c, d0) ? working_ms_within_day(c, t0, DAY_MS) : 0;
        ms += working_days_between(c, d0 + 1, d1) * c->day_ms;
        ms += day_working(c, d1) ? working_ms_within_day(c, 0, t1) : 0;
    }
    return ms / 1000;
}

bool calendar_is_working_day(const struct calendar *c, int64_t at_ms)
{
    int64_t day, tod;
    return split(c, at_ms, &day, &tod) == 0 && day_working(c, day);
}

int calendar_load(struct calendar *c, PGconn *conn, char *err, size_t errlen)
{
    /* One statement, so both tables come from one snapshot. */
    static const char sql[] =
        "SELECT 0, (day - DATE '1970-01-01')::bigint, working::int, day::text FROM calendar_day"
        " UNION ALL"
        " SELECT 1, (extract(epoch FROM starts) * 1000)::bigint,"
        "        (extract(epoch FROM ends) * 1000)::bigint, starts::text || '-' || ends::text"
        "   FROM working_hours"
        " ORDER BY 1, 2";
    struct calendar next = {.offset_ms = c->offset_ms};
    set_default_periods(&next);

    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "calendar: %s", PQresultErrorMessage(res));
        goto fail_query;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        bool is_day = strcmp(PQgetvalue(res, i, 0), "0") == 0;
        int64_t a = strtoll(PQgetvalue(res, i, 1), NULL, 10);
        int64_t b = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        const char *what = PQgetvalue(res, i, 3);
        if (is_day) {
            if (a < MIN_DAY || a > MAX_DAY) {
                snprintf(err, errlen, "calendar_day %s: only years 1-9999 are supported", what);
                goto fail_rows;
            }
            if (put_day(&next, a, b != 0) < 0) {
                snprintf(err, errlen, "calendar: out of memory");
                goto fail_rows;
            }
            continue;
        }
        if (a % MINUTE_MS != 0 || b % MINUTE_MS != 0) {
            snprintf(err, errlen, "working_hours %s: periods must start and end on a whole minute",
                     what);
            goto fail_rows;
        }
        int rc = add_period_ms(&next, a, b);
        if (rc == -ENOSPC) {
            snprintf(err, errlen, "working_hours: more than %d periods", CALENDAR_MAX_PERIODS);
            goto fail_rows;
        }
        if (rc < 0) {
            snprintf(err, errlen, "working_hours %s: empty, or overlaps another period", what);
            goto fail_rows;
        }
    }
    PQclear(res);
    free(c->days);
    *c = next;
    return 0;

fail_rows:
    free(next.days);
fail_query:
    PQclear(res);
    return -1;
}
