/* calendar.h - working-time calendar: working days, holidays, 调休 and working hours. */
#ifndef GD_BROKER_CALENDAR_H
#define GD_BROKER_CALENDAR_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * A calendar says which local days are working days and which hours of a
 * working day are working time, and converts between instants and working
 * time. Every day is a working day from Monday to Friday and a rest day on
 * Saturday and Sunday, unless an override says otherwise: a public holiday
 * is a weekday set to non-working, a make-up working day (调休) a weekend day
 * set to working. Every working day has the same working periods (e.g.
 * 08:30-12:00 and 13:30-18:00 = 8 h, so one working day is 28,800 s).
 *
 * Times are milliseconds since the Unix epoch (UTC); days and periods are
 * local, local time being UTC + a fixed offset (China: +480 min, no DST).
 * Dates are proleptic Gregorian, from 0001-01-01 to 9999-12-31; an instant
 * whose local date falls outside that range is refused with -ERANGE.
 *
 * Working time is the union of half-open periods [start, end): a period's
 * start is a working instant, its end is not. Consequences callers can rely
 * on (and the unit tests check):
 *   - calendar_working_s(c, s, t) == n  whenever  calendar_add(c, s, n) == t;
 *   - a limit that runs out exactly at a period's end is due at that end
 *     (18:00 on the day), never at the next period's start (08:30 the next
 *     working day): the deadline a citizen is shown is the end of the
 *     working day the limit was used up in;
 *   - a start outside working time (lunch break, night, weekend, holiday)
 *     counts from the next working period's start.
 *
 * A calendar is not thread-safe; lookups are read-only and may run
 * concurrently with each other, never with a setter or calendar_load().
 * Cost: calendar_add() and calendar_working_s() take O(log d + k) for d
 * overrides, k of them lying between the two instants, and no time at all
 * per plain day or week in between; they never allocate.
 */
struct calendar;

/* Largest working time calendar_add() accepts: 10^12 s (≈ 120,000 years of
 * 8-hour days), which keeps every intermediate in int64 range. */
#define CALENDAR_MAX_WORKING_S INT64_C(1000000000000)

/* Most working periods a working day may have. */
#define CALENDAR_MAX_PERIODS 24

/* Largest accepted UTC offset either way, in minutes (ISO 8601: ±18:00). */
#define CALENDAR_MAX_OFFSET_MIN (18 * 60)

/* A new calendar for local time = UTC + utc_offset_min minutes, with no
 * overrides (Monday-Friday working) and the default periods 08:30-12:00 and
 * 13:30-18:00. Returns NULL when out of memory or when |utc_offset_min| >
 * CALENDAR_MAX_OFFSET_MIN. The caller frees it with calendar_free(). */
struct calendar *calendar_new(int32_t utc_offset_min);

/* Frees a calendar and everything it holds; accepts NULL. */
void calendar_free(struct calendar *c);

/* Makes the local date year-month-day a working day (working = true) or a
 * rest day, whatever its weekday says; a later call for the same date
 * replaces the earlier one. Returns 0, -EINVAL for a date that does not
 * exist (2026-02-29, month 13) or lies outside years 1-9999, or -ENOMEM
 * (the calendar is then unchanged). Memory: 8 bytes per distinct date. */
int calendar_set_day(struct calendar *c, int year, int month, int day, bool working);

/* Adds the working period [start_min, end_min) to every working day, in
 * minutes after local midnight (0 <= start_min < end_min <= 1440; 1440 is
 * midnight at the end of the day). The first call replaces the default
 * periods; later calls add to it. Periods may touch (12:00-13:00 after
 * 08:00-12:00) but not overlap. Returns 0, -EINVAL for a bad range or an
 * overlap, -ENOSPC when the day already has CALENDAR_MAX_PERIODS periods;
 * the calendar is unchanged on failure. */
int calendar_add_period(struct calendar *c, int start_min, int end_min);

/* The earliest instant at which working_s seconds of working time have
 * passed since start_ms, stored in *ret_ms (ms since the epoch, UTC). Time
 * before the next working instant does not count, so a start in the lunch
 * break, at night or on a holiday counts from the next period's start.
 * A limit used up exactly at a period's end returns that end.
 * working_s == 0 returns the next working instant at or after start_ms
 * (start_ms itself inside a period; the next period's start otherwise,
 * including at a period's end): the instant the clock starts, which is what
 * a limit tending to zero gives, and which keeps a zero limit from falling
 * due at night when nobody can act on it.
 * Returns 0, -EINVAL when working_s < 0 or > CALENDAR_MAX_WORKING_S, or
 * -ERANGE when start_ms or the result lies outside years 1-9999; *ret_ms is
 * written only on success. */
int calendar_add(const struct calendar *c, int64_t start_ms, int64_t working_s, int64_t *ret_ms);

/* Seconds of working time in [from_ms, to_ms), rounded down to a whole
 * second; 0 when to_ms <= from_ms. Returns the count (>= 0) or -ERANGE when
 * an instant lies outside years 1-9999. */
int64_t calendar_working_s(const struct calendar *c, int64_t from_ms, int64_t to_ms);

/* Whether the local date of at_ms is a working day (overrides applied).
 * Instants outside years 1-9999 are never working days. */
bool calendar_is_working_day(const struct calendar *c, int64_t at_ms);

/* Replaces the calendar's overrides with the rows of calendar_day and its
 * periods with the rows of working_hours (the defaults when that table is
 * empty), read in one statement (one snapshot) over a blocking connection.
 * Returns 0, or -1 with a message in err (size errlen) when the query fails
 * or a row is unusable (a date outside years 1-9999, a time that is not a
 * whole minute, overlapping periods, more than CALENDAR_MAX_PERIODS); the
 * calendar is unchanged on failure. */
int calendar_load(struct calendar *c, PGconn *conn, char *err, size_t errlen);

#endif
