/* test-calendar.c - specification tests for the working-time calendar (broker/calendar.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "calendar.h"

#define CHINA    480 /* UTC+8, no DST */
#define HOUR_S   3600
#define WD_S     28800 /* one working day of the default periods */
#define MINUTE_S 60

/* ---- instants, computed with libc (independently of the module) ---- */

static int64_t utc_ms(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = s};
    return (int64_t)timegm(&tm) * 1000;
}

/* A local wall-clock time in China as ms since the epoch. */
static int64_t cn(int y, int mo, int d, int h, int mi)
{
    return utc_ms(y, mo, d, h, mi, 0) - (int64_t)CHINA * 60000;
}

static const char *show(int64_t ms, int32_t offset_min, char *buf, size_t len)
{
    time_t t = (time_t)((ms + (int64_t)offset_min * 60000) / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d:%02d.%03d local", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return buf;
}

/* Fails unless calendar_add(c, start, s) succeeds with expected. */
#define assert_due(c, start, s, expected) check_due(c, start, s, expected, __FILE__, __LINE__)

static void check_due(const struct calendar *c, int64_t start, int64_t s, int64_t expected,
                      const char *file, int line)
{
    int64_t got = INT64_MIN;
    int r = calendar_add(c, start, s, &got);
    if (r != 0 || got != expected) {
        char b1[64], b2[64], b3[64];
        fail_msg("%s:%d: start %s + %lld s: expected %s, got %s (r=%d)", file, line,
                 show(start, CHINA, b1, sizeof(b1)), (long long)s,
                 show(expected, CHINA, b2, sizeof(b2)),
                 r == 0 ? show(got, CHINA, b3, sizeof(b3)) : "-", r);
    }
    /* Whatever the case, the working time back is the limit. */
    assert_int_equal(calendar_working_s(c, start, got), s);
}

/* ---- the official calendar of 2025 and 2026 (国务院办公厅节假日安排) ---- */

struct holiday {
    int y, m, d;
    bool working;
};

static const struct holiday official[] = {
    {2025, 1, 1, false},  {2025, 1, 26, true},  {2025, 1, 28, false}, {2025, 1, 29, false},
    {2025, 1, 30, false}, {2025, 1, 31, false}, {2025, 2, 1, false},  {2025, 2, 2, false},
    {2025, 2, 3, false},  {2025, 2, 4, false},  {2025, 2, 8, true},   {2025, 4, 4, false},
    {2025, 4, 5, false},  {2025, 4, 6, false},  {2025, 4, 27, true},  {2025, 5, 1, false},
    {2025, 5, 2, false},  {2025, 5, 3, false},  {2025, 5, 4, false},  {2025, 5, 5, false},
    {2025, 5, 31, false}, {2025, 6, 1, false},  {2025, 6, 2, false},  {2025, 9, 28, true},
    {2025, 10, 1, false}, {2025, 10, 2, false}, {2025, 10, 3, false}, {2025, 10, 4, false},
    {2025, 10, 5, false}, {2025, 10, 6, false}, {2025, 10, 7, false}, {2025, 10, 8, false},
    {2025, 10, 11, true}, {2026, 1, 1, false},  {2026, 1, 2, false},  {2026, 1, 3, false},
    {2026, 1, 4, true},   {2026, 2, 14, true},  {2026, 2, 15, false}, {2026, 2, 16, false},
    {2026, 2, 17, false}, {2026, 2, 18, false}, {2026, 2, 19, false}, {2026, 2, 20, false},
    {2026, 2, 21, false}, {2026, 2, 22, false}, {2026, 2, 23, false}, {2026, 2, 28, true},
    {2026, 4, 4, false},  {2026, 4, 5, false},  {2026, 4, 6, false},  {2026, 5, 1, false},
    {2026, 5, 2, false},  {2026, 5, 3, false},  {2026, 5, 4, false},  {2026, 5, 5, false},
    {2026, 5, 9, true},   {2026, 6, 19, false}, {2026, 6, 20, false}, {2026, 6, 21, false},
    {2026, 9, 20, true},  {2026, 9, 25, false}, {2026, 9, 26, false}, {2026, 9, 27, false},
    {2026, 10, 1, false}, {2026, 10, 2, false}, {2026, 10, 3, false}, {2026, 10, 4, false},
    {2026, 10, 5, false}, {2026, 10, 6, false}, {2026, 10, 7, false}, {2026, 10, 10, true},
};

static int setup_china(void **state)
{
    struct calendar *c = calendar_new(CHINA);
    if (c == NULL)
        return -1;
    /* Set in reverse order: insertion must keep the array sorted. */
    for (size_t i = sizeof(official) / sizeof(official[0]); i-- > 0;)
        if (calendar_set_day(c, official[i].y, official[i].m, official[i].d, official[i].working) !=
            0)
            return -1;
    *state = c;
    return 0;
}

static int teardown_calendar(void **state)
{
    calendar_free(*state);
    return 0;
}

/* ---- working hours within a day ---- */

static void test_one_working_day_from_the_morning_start_is_due_that_evening(void **state)
{
    assert_due(*state, cn(2026, 3, 2, 8, 30), WD_S, cn(2026, 3, 2, 18, 0));
}

static void test_a_limit_used_up_at_a_period_end_is_due_at_that_end(void **state)
{
    /* 3.5 h from 08:30 is 12:00, not 13:30 after lunch. */
    assert_due(*state, cn(2026, 3, 2, 8, 30), 3 * HOUR_S + 30 * MINUTE_S, cn(2026, 3, 2, 12, 0));
    /* Ending at 18:00, not at 08:30 the next morning. */
    assert_due(*state, cn(2026, 3, 2, 14, 0), 4 * HOUR_S, cn(2026, 3, 2, 18, 0));
    /* The same on a later day: 1 h on Monday, 3.5 h on Tuesday morning. */
    assert_due(*state, cn(2026, 3, 2, 17, 0), 4 * HOUR_S + 30 * MINUTE_S, cn(2026, 3, 3, 12, 0));
    assert_due(*state, cn(2026, 3, 2, 18, 0), WD_S, cn(2026, 3, 3, 18, 0));
}

static void test_a_start_in_the_lunch_break_counts_from_the_afternoon(void **state)
{
    assert_due(*state, cn(2026, 3, 3, 12, 30), HOUR_S, cn(2026, 3, 3, 14, 30));
    assert_due(*state, cn(2026, 3, 3, 12, 0), HOUR_S, cn(2026, 3, 3, 14, 30));
}

static void test_a_start_at_1759_carries_into_the_next_morning(void **state)
{
    assert_due(*state, cn(2026, 3, 3, 17, 59), 2 * HOUR_S, cn(2026, 3, 4, 10, 29));
}

static void test_a_start_before_the_first_period_counts_from_its_start(void **state)
{
    assert_due(*state, cn(2026, 3, 4, 6, 0), HOUR_S, cn(2026, 3, 4, 9, 30));
}

static void test_a_start_on_a_sunday_night_counts_from_monday_morning(void **state)
{
    assert_due(*state, cn(2026, 3, 8, 22, 0), HOUR_S, cn(2026, 3, 9, 9, 30));
}

static void test_a_friday_afternoon_limit_skips_the_weekend(void **state)
{
    /* 2 h on Friday, 3.5 h on Monday morning, 2.5 h after lunch. */
    assert_due(*state, cn(2026, 3, 6, 16, 0), WD_S, cn(2026, 3, 9, 16, 0));
}

static void test_seconds_and_milliseconds_are_kept(void **state)
{
    int64_t start = cn(2026, 3, 2, 9, 0) + 1234; /* 09:00:01.234 */
    assert_due(*state, start, 1, start + 1000);
    assert_int_equal(calendar_working_s(*state, start, start + 999), 0);
    assert_int_equal(calendar_working_s(*state, start, start + 1999), 1);
}

/* ---- zero working time ---- */

static void test_zero_working_time_moves_the_start_to_the_next_working_instant(void **state)
{
    const struct calendar *c = *state;
    int64_t inside = cn(2026, 3, 2, 10, 0) + 7;
    assert_due(c, inside, 0, inside);
    assert_due(c, cn(2026, 3, 2, 8, 30), 0, cn(2026, 3, 2, 8, 30));
    assert_due(c, cn(2026, 3, 2, 12, 0), 0,
               cn(2026, 3, 2, 13, 30)); /* a period end is not working */
    assert_due(c, cn(2026, 3, 2, 18, 0), 0, cn(2026, 3, 3, 8, 30));
    assert_due(c, cn(2026, 3, 7, 11, 0), 0, cn(2026, 3, 9, 8, 30));    /* Saturday */
    assert_due(c, cn(2026, 9, 30, 18, 30), 0, cn(2026, 10, 8, 8, 30)); /* National Day */
}

/* ---- weekends, holidays and make-up working days (调休) ---- */

static void test_national_day_week_2026_is_skipped(void **state)
{
    /* 1 h on Wednesday Sept 30, Oct 1-7 off, 7 h on Thursday Oct 8. */
    assert_due(*state, cn(2026, 9, 30, 17, 0), WD_S, cn(2026, 10, 8, 17, 0));
}

static void test_make_up_saturday_after_national_day_is_a_working_day(void **state)
{
    const struct calendar *c = *state;
    assert_true(calendar_is_working_day(c, cn(2026, 10, 10, 12, 0)));
    /* Fri Oct 9 09:00 + 2 WD: Saturday Oct 10 counts, Sunday does not. */
    assert_due(c, cn(2026, 10, 9, 9, 0), 2 * WD_S, cn(2026, 10, 12, 9, 0));
    assert_due(c, cn(2026, 10, 10, 17, 0), 2 * HOUR_S, cn(2026, 10, 12, 9, 30));
}

static void test_make_up_sunday_before_national_day_is_a_working_day(void **state)
{
    const struct calendar *c = *state;
    assert_false(calendar_is_working_day(c, cn(2026, 9, 19, 12, 0)));
    assert_true(calendar_is_working_day(c, cn(2026, 9, 20, 12, 0)));
    assert_due(c, cn(2026, 9, 19, 10, 0), HOUR_S, cn(2026, 9, 20, 9, 30));
}

static void test_fifteen_working_days_across_mid_autumn_and_national_day_2026(void **state)
{
    /* Working days from Mon Sept 21: 21 22 23 24 | 28 29 30 | Oct 8 9 10(Sat)
     * | 12 13 14 15 16 | 19: the 15 WD starting 09:00 on the 1st end 09:00
     * on the 16th. */
    assert_due(*state, cn(2026, 9, 21, 9, 0), 15 * WD_S, cn(2026, 10, 19, 9, 0));
    assert_int_equal(calendar_working_s(*state, cn(2026, 9, 21, 0, 0), cn(2026, 10, 19, 0, 0)),
                     15 * WD_S);
}

static void test_spring_festival_2026_with_its_make_up_saturdays(void **state)
{
    const struct calendar *c = *state;
    /* Friday Feb 13 + 1 WD lands on the make-up Saturday Feb 14. */
    assert_due(c, cn(2026, 2, 13, 10, 0), WD_S, cn(2026, 2, 14, 10, 0));
    /* From the make-up Saturday's end of day across Feb 15-23 to Tuesday Feb 24. */
    assert_due(c, cn(2026, 2, 14, 17, 0), 2 * HOUR_S, cn(2026, 2, 24, 9, 30));
    /* Mon Feb 24..Fri 27, Sat 28 (make-up): 5 WD from Tue 08:30 end Sat 18:00. */
    assert_due(c, cn(2026, 2, 24, 8, 30), 5 * WD_S, cn(2026, 2, 28, 18, 0));
    assert_false(calendar_is_working_day(c, cn(2026, 2, 17, 10, 0)));
}

static void test_a_later_override_replaces_an_earlier_one(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    assert_int_equal(calendar_set_day(c, 2026, 3, 4, false), 0);
    assert_false(calendar_is_working_day(c, cn(2026, 3, 4, 10, 0)));
    assert_int_equal(calendar_set_day(c, 2026, 3, 4, true), 0);
    assert_true(calendar_is_working_day(c, cn(2026, 3, 4, 10, 0)));
    assert_due(c, cn(2026, 3, 3, 17, 0), 2 * HOUR_S, cn(2026, 3, 4, 9, 30));
    calendar_free(c);
}

/* ---- year end and leap years ---- */

static void test_year_end_dec_31_to_jan_2(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    assert_int_equal(calendar_set_day(c, 2020, 1, 1, false), 0);
    /* Tue 2019-12-31 17:00 + 2 h: 1 h that day, New Year's Day off, 09:30 Jan 2. */
    assert_due(c, cn(2019, 12, 31, 17, 0), 2 * HOUR_S, cn(2020, 1, 2, 9, 30));
    assert_int_equal(calendar_working_s(c, cn(2019, 12, 31, 0, 0), cn(2020, 1, 3, 0, 0)), 2 * WD_S);
    calendar_free(c);
}

static void test_year_end_2025_runs_to_the_make_up_sunday_jan_4(void **state)
{
    assert_due(*state, cn(2025, 12, 31, 17, 0), 2 * HOUR_S, cn(2026, 1, 4, 9, 30));
}

static void test_leap_day_is_a_working_day_like_any_other(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    /* Mon 2028-02-28 17:00 + 2 h: Tuesday Feb 29, not March 1. */
    assert_due(c, cn(2028, 2, 28, 17, 0), 2 * HOUR_S, cn(2028, 2, 29, 9, 30));
    assert_int_equal(calendar_set_day(c, 2028, 2, 29, false), 0);
    assert_due(c, cn(2028, 2, 28, 17, 0), 2 * HOUR_S, cn(2028, 3, 1, 9, 30));
    calendar_free(c);
}

static void test_only_real_dates_can_be_overridden(void **state)
{
    struct calendar *c = *state;
    assert_int_equal(calendar_set_day(c, 2027, 2, 29, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 2100, 2, 29, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 2000, 2, 29, false), 0);
    assert_int_equal(calendar_set_day(c, 2026, 4, 31, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 2026, 13, 1, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 2026, 0, 1, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 2026, 1, 0, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 0, 1, 1, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 10000, 1, 1, false), -EINVAL);
    assert_int_equal(calendar_set_day(c, 1, 1, 1, true), 0);
    assert_int_equal(calendar_set_day(c, 9999, 12, 31, false), 0);
}

/* ---- the UTC offset ---- */

static void test_days_are_local_days_not_utc_days(void **state)
{
    const struct calendar *c = *state;
    /* 16:30 UTC on Wed Sept 30 is 00:30 on Thu Oct 1 in China: a holiday. */
    int64_t t = utc_ms(2026, 9, 30, 16, 30, 0);
    assert_false(calendar_is_working_day(c, t));
    assert_true(calendar_is_working_day(c, t - HOUR_S * 1000));
    /* 17:00 UTC on a Friday is 01:00 on Saturday: + 1 h is Monday 09:30 local. */
    assert_due(c, utc_ms(2026, 3, 6, 17, 0, 0), HOUR_S, cn(2026, 3, 9, 9, 30));
    assert_due(c, utc_ms(2026, 3, 6, 17, 0, 0), HOUR_S, utc_ms(2026, 3, 9, 1, 30, 0));
}

static void test_a_calendar_in_utc_and_one_west_of_it(void **state)
{
    (void)state;
    struct calendar *utc = calendar_new(0);
    struct calendar *west = calendar_new(-300); /* UTC-5 */
    assert_non_null(utc);
    assert_non_null(west);
    int64_t t = utc_ms(2026, 3, 9, 2, 0, 0); /* Monday 02:00 UTC = Sunday 21:00 at UTC-5 */
    int64_t due;
    assert_int_equal(calendar_add(utc, t, HOUR_S, &due), 0);
    assert_int_equal(due, utc_ms(2026, 3, 9, 9, 30, 0));
    assert_int_equal(calendar_add(west, t, HOUR_S, &due), 0);
    assert_int_equal(due, utc_ms(2026, 3, 9, 14, 30, 0));
    calendar_free(utc);
    calendar_free(west);
}

/* ---- working periods ---- */

static void test_the_first_added_period_replaces_the_defaults(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    assert_int_equal(calendar_add_period(c, 14 * 60, 18 * 60), 0);
    assert_int_equal(calendar_add_period(c, 9 * 60, 12 * 60), 0); /* out of order is fine */
    assert_due(c, cn(2026, 3, 2, 8, 30), 3 * HOUR_S, cn(2026, 3, 2, 12, 0));
    assert_due(c, cn(2026, 3, 2, 8, 30), 7 * HOUR_S, cn(2026, 3, 2, 18, 0));
    assert_due(c, cn(2026, 3, 2, 8, 30), 8 * HOUR_S, cn(2026, 3, 3, 10, 0));
    assert_int_equal(calendar_working_s(c, cn(2026, 3, 2, 0, 0), cn(2026, 3, 9, 0, 0)),
                     35 * HOUR_S);
    calendar_free(c);
}

static void test_periods_may_touch_but_not_overlap(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    assert_int_equal(calendar_add_period(c, 8 * 60, 12 * 60), 0);
    assert_int_equal(calendar_add_period(c, 12 * 60, 13 * 60), 0);
    assert_int_equal(calendar_add_period(c, 11 * 60, 14 * 60), -EINVAL);
    assert_int_equal(calendar_add_period(c, 7 * 60, 8 * 60 + 1), -EINVAL);
    assert_int_equal(calendar_add_period(c, 8 * 60, 12 * 60), -EINVAL);
    assert_int_equal(calendar_add_period(c, 15 * 60, 15 * 60), -EINVAL);
    assert_int_equal(calendar_add_period(c, 16 * 60, 15 * 60), -EINVAL);
    assert_int_equal(calendar_add_period(c, -1, 60), -EINVAL);
    assert_int_equal(calendar_add_period(c, 23 * 60, 24 * 60 + 1), -EINVAL);
    /* Refused periods changed nothing: 5 h a day. */
    assert_due(c, cn(2026, 3, 2, 8, 0), 5 * HOUR_S, cn(2026, 3, 2, 13, 0));
    assert_due(c, cn(2026, 3, 2, 11, 0), 2 * HOUR_S, cn(2026, 3, 2, 13, 0)); /* straight through */
    assert_due(c, cn(2026, 3, 2, 11, 0), 3 * HOUR_S, cn(2026, 3, 3, 9, 0));
    calendar_free(c);
}

static void test_a_day_has_at_most_max_periods(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    for (int i = 0; i < CALENDAR_MAX_PERIODS; i++)
        assert_int_equal(calendar_add_period(c, i * 60, i * 60 + 30), 0);
    assert_int_equal(calendar_add_period(c, 1439, 1440), -ENOSPC);
    calendar_free(c);
}

static void test_a_whole_day_period_ending_at_midnight(void **state)
{
    (void)state;
    struct calendar *c = calendar_new(CHINA);
    assert_non_null(c);
    assert_int_equal(calendar_add_period(c, 0, 24 * 60), 0);
    /* Friday 22:00 + 2 h ends at midnight, Friday's end. */
    assert_due(c, cn(2026, 3, 6, 22, 0), 2 * HOUR_S, cn(2026, 3, 7, 0, 0));
    /* ... + 3 h continues on Monday at 00:00. */
    assert_due(c, cn(2026, 3, 6, 22, 0), 3 * HOUR_S, cn(2026, 3, 9, 1, 0));
    calendar_free(c);
}

/* ---- long limits and the limits of the range ---- */

static void test_a_thousand_working_days_matches_the_working_day_count(void **state)
{
    const struct calendar *c = *state;
    int64_t start = cn(2025, 1, 2, 8, 30), due;
    assert_int_equal(calendar_add(c, start, 1000 * (int64_t)WD_S, &due), 0);
    assert_int_equal(calendar_working_s(c, start, due), 1000 * (int64_t)WD_S);
    /* It ends at 18:00 on a working day. */
    assert_true(calendar_is_working_day(c, due - 1));
    assert_int_equal(((due + CHINA * 60000) % 86400000) / 60000, 18 * 60);
    /* 1000 WD at 5 a week is ~4 years: far past the overrides. */
    assert_true(due > cn(2028, 10, 1, 0, 0) && due < cn(2029, 1, 1, 0, 0));
}

static void test_bad_arguments_are_refused_and_leave_the_result_alone(void **state)
{
    const struct calendar *c = *state;
    int64_t due = 42;
    assert_int_equal(calendar_add(c, cn(2026, 3, 2, 9, 0), -1, &due), -EINVAL);
    assert_int_equal(calendar_add(c, cn(2026, 3, 2, 9, 0), CALENDAR_MAX_WORKING_S + 1, &due),
                     -EINVAL);
    assert_int_equal(calendar_add(c, INT64_MAX, 1, &due), -ERANGE);
    assert_int_equal(calendar_add(c, INT64_MIN, 1, &due), -ERANGE);
    assert_int_equal(calendar_add(c, utc_ms(10000, 1, 1, 12, 0, 0), 1, &due), -ERANGE);
    /* The start is in range but the result would be in year 10000. */
    assert_int_equal(calendar_add(c, cn(9999, 12, 31, 17, 0), 2 * HOUR_S, &due), -ERANGE);
    assert_int_equal(due, 42);
    assert_int_equal(calendar_add(c, cn(9999, 12, 31, 17, 0), HOUR_S, &due), 0);
    assert_int_equal(due, cn(9999, 12, 31, 18, 0));
    assert_int_equal(calendar_add(c, cn(1, 1, 1, 0, 0), HOUR_S, &due), 0); /* a Monday */
    assert_int_equal(due, cn(1, 1, 1, 9, 30));
    assert_int_equal(calendar_add(c, cn(1, 1, 1, 0, 0) - 1, HOUR_S, &due), -ERANGE);
    assert_int_equal(calendar_add(c, cn(2026, 3, 2, 9, 0), CALENDAR_MAX_WORKING_S, &due), -ERANGE);
    assert_int_equal(calendar_working_s(c, INT64_MIN, 0), -ERANGE);
    assert_int_equal(calendar_working_s(c, 0, INT64_MAX), -ERANGE);
    assert_int_equal(calendar_working_s(c, cn(2026, 3, 3, 0, 0), cn(2026, 3, 2, 0, 0)), 0);
    assert_false(calendar_is_working_day(c, INT64_MAX));
}

static void test_calendar_new_refuses_impossible_offsets(void **state)
{
    (void)state;
    assert_null(calendar_new(18 * 60 + 1));
    assert_null(calendar_new(-18 * 60 - 1));
    struct calendar *c = calendar_new(-18 * 60);
    assert_non_null(c);
    calendar_free(c);
    calendar_free(NULL);
}

/* ---- loading from PostgreSQL (only under tests/pg/with-pg.sh) ---- */

static PGresult *exec_ok(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(res));
    return res;
}

static void test_load_reads_calendar_day_and_working_hours(void **state)
{
    const char *dsn = getenv("GD_DB_DSN");
    if (dsn == NULL || *dsn == '\0')
        skip(); /* a unit test run needs no database */
    struct calendar *c = *state;
    char err[256] = "";
    PGconn *conn = PQconnectdb(dsn);
    assert_int_equal(PQstatus(conn), CONNECTION_OK);
    /* Everything inside a transaction that is rolled back. */
    PQclear(exec_ok(conn, "BEGIN"));
    PQclear(exec_ok(conn, "DELETE FROM calendar_day; DELETE FROM working_hours"));
    PQclear(exec_ok(conn, "INSERT INTO calendar_day VALUES ('2026-03-04', false, 'test'),"
                          " ('2026-03-07', true, 'test')"));
    PQclear(
        exec_ok(conn, "INSERT INTO working_hours VALUES ('09:00', '12:00'), ('13:00', '17:00')"));
    assert_int_equal(calendar_load(c, conn, err, sizeof(err)), 0);
    /* The overrides were replaced: National Day 2026 is a working week now. */
    assert_true(calendar_is_working_day(c, cn(2026, 10, 1, 10, 0)));
    assert_false(calendar_is_working_day(c, cn(2026, 3, 4, 10, 0)));
    /* Tue 16:00 + 2 h: 1 h Tuesday, Wednesday off, 1 h Thursday. */
    assert_due(c, cn(2026, 3, 3, 16, 0), 2 * HOUR_S, cn(2026, 3, 5, 10, 0));
    assert_due(c, cn(2026, 3, 6, 16, 30), HOUR_S, cn(2026, 3, 7, 9, 30)); /* working Saturday */

    /* No working hours: the defaults. */
    PQclear(exec_ok(conn, "DELETE FROM working_hours"));
    assert_int_equal(calendar_load(c, conn, err, sizeof(err)), 0);
    assert_due(c, cn(2026, 3, 3, 8, 30), WD_S, cn(2026, 3, 3, 18, 0));

    /* A period that is not whole minutes is refused and changes nothing. */
    PQclear(exec_ok(conn, "INSERT INTO working_hours VALUES ('09:00:30', '12:00')"));
    assert_int_equal(calendar_load(c, conn, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "whole minute"));
    assert_due(c, cn(2026, 3, 3, 8, 30), WD_S, cn(2026, 3, 3, 18, 0));
    PQclear(exec_ok(conn, "DELETE FROM working_hours"));

    /* Overlapping periods (the table only keys on starts) are refused. */
    PQclear(
        exec_ok(conn, "INSERT INTO working_hours VALUES ('09:00', '12:00'), ('11:00', '13:00')"));
    assert_int_equal(calendar_load(c, conn, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "overlaps"));
    PQclear(exec_ok(conn, "ROLLBACK"));

    /* A failing query reports PostgreSQL's message. */
    PQclear(exec_ok(conn, "BEGIN"));
    PQclear(exec_ok(conn, "CREATE TEMP TABLE calendar_day (day text)"));
    assert_int_equal(calendar_load(c, conn, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "calendar: "));
    PQclear(exec_ok(conn, "ROLLBACK"));
    PQfinish(conn);
}

/* ---- property test against a brute-force reference ---- */

/* The reference: days walked one by one from libc's weekday, a plain table of
 * overrides, and each day's periods intersected with the interval. */
#define REF_FIRST_YEAR 2023
#define REF_DAYS       (366 * 7) /* 2023 .. 2029 */

struct ref {
    int32_t offset_min;
    int64_t day0_ms;            /* local midnight of REF_FIRST_YEAR-01-01 as a UTC instant */
    signed char over[REF_DAYS]; /* -1 none, 0 rest, 1 working */
    int n_periods;
    int64_t start_ms[3], end_ms[3]; /* after local midnight, sorted */
};

static bool ref_working_day(const struct ref *r, int64_t i)
{
    if (i >= 0 && i < REF_DAYS && r->over[i] >= 0)
        return r->over[i] == 1;
    time_t t = (time_t)((r->day0_ms + (int64_t)r->offset_min * 60000) / 1000 + i * 86400);
    struct tm tm;
    gmtime_r(&t, &tm);
    return tm.tm_wday >= 1 && tm.tm_wday <= 5;
}

static int64_t ref_day_of(const struct ref *r, int64_t ms)
{
    int64_t d = ms - r->day0_ms;
    return d >= 0 ? d / 86400000 : -((-d + 86399999) / 86400000);
}

static int64_t ref_add(const struct ref *r, int64_t start, int64_t working_s)
{
    int64_t need = working_s * 1000;
    for (int64_t i = ref_day_of(r, start);; i++) {
        if (!ref_working_day(r, i))
            continue;
        int64_t midnight = r->day0_ms + i * 86400000;
        for (int p = 0; p < r->n_periods; p++) {
            int64_t s = midnight + r->start_ms[p], e = midnight + r->end_ms[p];
            if (s < start)
                s = start;
            if (e <= s)
                continue; /* nothing of this period is left */
            if (need <= e - s)
                return s + need;
            need -= e - s;
        }
    }
}

static int64_t ref_working_s(const struct ref *r, int64_t from, int64_t to)
{
    int64_t ms = 0;
    for (int64_t i = ref_day_of(r, from); i <= ref_day_of(r, to); i++) {
        if (!ref_working_day(r, i))
            continue;
        int64_t midnight = r->day0_ms + i * 86400000;
        for (int p = 0; p < r->n_periods; p++) {
            int64_t s = midnight + r->start_ms[p], e = midnight + r->end_ms[p];
            s = s > from ? s : from;
            e = e < to ? e : to;
            if (e > s)
                ms += e - s;
        }
    }
    return ms / 1000;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rnd_in(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(rnd() % (uint64_t)(hi - lo + 1));
}

/* A random calendar and its reference twin: an offset, 1-3 periods on whole
 * minutes (sometimes touching, sometimes reaching midnight), and a random set
 * of overrides in 2024-2027. */
static struct calendar *random_calendar(struct ref *r)
{
    static const int32_t offsets[] = {480, 0, -300, 345, 840, -720};
    memset(r, 0, sizeof(*r));
    r->offset_min = offsets[rnd() % 6];
    r->day0_ms = utc_ms(REF_FIRST_YEAR, 1, 1, 0, 0, 0) - (int64_t)r->offset_min * 60000;
    memset(r->over, -1, sizeof(r->over));
    struct calendar *c = calendar_new(r->offset_min);
    assert_non_null(c);

    r->n_periods = (int)rnd_in(1, 3);
    int cut[6];
    for (;;) { /* 2n distinct-enough minute marks in [0, 1440], sorted */
        for (int i = 0; i < 2 * r->n_periods; i++)
            cut[i] = rnd() % 4 == 0 ? (rnd() % 2 ? 0 : 1440) : (int)rnd_in(0, 1440);
        for (int i = 1; i < 2 * r->n_periods; i++)
            for (int j = i; j > 0 && cut[j - 1] > cut[j]; j--) {
                int t = cut[j];
                cut[j] = cut[j - 1];
                cut[j - 1] = t;
            }
        bool ok = true;
        for (int p = 0; p < r->n_periods; p++)
            ok = ok && cut[2 * p] < cut[2 * p + 1];
        if (ok)
            break;
    }
    if (rnd() % 3 == 0 && r->n_periods > 1)
        cut[2] = cut[1]; /* touching periods */
    for (int p = 0; p < r->n_periods; p++) {
        r->start_ms[p] = (int64_t)cut[2 * p] * 60000;
        r->end_ms[p] = (int64_t)cut[2 * p + 1] * 60000;
        /* Added in reverse: calendar_add_period keeps them sorted. */
    }
    for (int p = r->n_periods; p-- > 0;)
        assert_int_equal(calendar_add_period(c, cut[2 * p], cut[2 * p + 1]), 0);

    int n_over = (int)rnd_in(0, 400);
    for (int k = 0; k < n_over; k++) {
        int64_t i = rnd_in(366, 366 + 4 * 365); /* 2024 .. 2027 */
        bool working = rnd() % 2;
        time_t t = (time_t)(utc_ms(REF_FIRST_YEAR, 1, 1, 0, 0, 0) / 1000 + i * 86400);
        struct tm tm;
        gmtime_r(&t, &tm);
        assert_int_equal(calendar_set_day(c, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, working),
                         0);
        r->over[i] = working;
    }
    return c;
}

/* A random instant in 2024-2027: often exactly on a period boundary. */
static int64_t random_instant(const struct ref *r)
{
    int64_t day = rnd_in(366, 366 + 4 * 365);
    int64_t midnight = r->day0_ms + day * 86400000;
    int p = (int)(rnd() % (uint64_t)r->n_periods);
    switch (rnd() % 4) {
    case 0:
        return midnight + r->start_ms[p];
    case 1:
        return midnight + r->end_ms[p];
    default:
        return midnight + rnd_in(0, 86400000 - 1);
    }
}

static int64_t random_limit(const struct ref *r)
{
    int64_t day_s = 0;
    for (int p = 0; p < r->n_periods; p++)
        day_s += (r->end_ms[p] - r->start_ms[p]) / 1000;
    switch (rnd() % 5) {
    case 0:
        return rnd_in(0, 2) * (r->end_ms[0] - r->start_ms[0]) / 1000; /* period lengths */
    case 1:
        return rnd_in(0, 15) * day_s; /* whole working days */
    case 2:
        return rnd_in(0, 4 * HOUR_S);
    default:
        return rnd_in(0, 15 * day_s);
    }
}

static void test_add_and_working_s_agree_with_a_brute_force_reference(void **state)
{
    (void)state;
    int checks = 0;
    for (int round = 0; round < 40; round++) {
        struct ref *r = malloc(sizeof(*r));
        assert_non_null(r);
        struct calendar *c = random_calendar(r);
        for (int k = 0; k < 250; k++) {
            int64_t start = random_instant(r), limit = random_limit(r), due = 0;
            int64_t expected = ref_add(r, start, limit);
            assert_int_equal(calendar_add(c, start, limit, &due), 0);
            if (due != expected)
                fail_msg("round %d: add(%lld, %lld) = %lld, reference %lld", round,
                         (long long)start, (long long)limit, (long long)due, (long long)expected);
            assert_int_equal(calendar_working_s(c, start, due), limit);

            int64_t a = random_instant(r),
                    b = rnd() % 2 ? random_instant(r) : a + rnd_in(0, 20 * 86400000LL);
            int64_t w = calendar_working_s(c, a, b);
            int64_t w_ref = b > a ? ref_working_s(r, a, b) : 0;
            if (w != w_ref)
                fail_msg("round %d: working_s(%lld, %lld) = %lld, reference %lld", round,
                         (long long)a, (long long)b, (long long)w, (long long)w_ref);
            /* The working day of an instant agrees too. */
            assert_int_equal(calendar_is_working_day(c, a), ref_working_day(r, ref_day_of(r, a)));
            checks += 3;
        }
        calendar_free(c);
        free(r);
    }
    print_message("%d checks against the reference\n", checks);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_china, teardown_calendar)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_one_working_day_from_the_morning_start_is_due_that_evening),
        T(test_a_limit_used_up_at_a_period_end_is_due_at_that_end),
        T(test_a_start_in_the_lunch_break_counts_from_the_afternoon),
        T(test_a_start_at_1759_carries_into_the_next_morning),
        T(test_a_start_before_the_first_period_counts_from_its_start),
        T(test_a_start_on_a_sunday_night_counts_from_monday_morning),
        T(test_a_friday_afternoon_limit_skips_the_weekend),
        T(test_seconds_and_milliseconds_are_kept),
        T(test_zero_working_time_moves_the_start_to_the_next_working_instant),
        T(test_national_day_week_2026_is_skipped),
        T(test_make_up_saturday_after_national_day_is_a_working_day),
        T(test_make_up_sunday_before_national_day_is_a_working_day),
        T(test_fifteen_working_days_across_mid_autumn_and_national_day_2026),
        T(test_spring_festival_2026_with_its_make_up_saturdays),
        T(test_a_later_override_replaces_an_earlier_one),
        T(test_year_end_dec_31_to_jan_2),
        T(test_year_end_2025_runs_to_the_make_up_sunday_jan_4),
        T(test_leap_day_is_a_working_day_like_any_other),
        T(test_only_real_dates_can_be_overridden),
        T(test_days_are_local_days_not_utc_days),
        T(test_a_calendar_in_utc_and_one_west_of_it),
        T(test_the_first_added_period_replaces_the_defaults),
        T(test_periods_may_touch_but_not_overlap),
        T(test_a_day_has_at_most_max_periods),
        T(test_a_whole_day_period_ending_at_midnight),
        T(test_a_thousand_working_days_matches_the_working_day_count),
        T(test_bad_arguments_are_refused_and_leave_the_result_alone),
        T(test_calendar_new_refuses_impossible_offsets),
        T(test_load_reads_calendar_day_and_working_hours),
        T(test_add_and_working_s_agree_with_a_brute_force_reference),
    };
    return cmocka_run_group_tests_name("calendar", tests, NULL, NULL);
}
