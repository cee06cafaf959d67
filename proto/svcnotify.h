/* svcnotify.h - telling the service manager (systemd) how a long-running program is doing.
 *
 * For gd-broker, gd-worker, gd-sla, gd-dashboard, gd-hotline and gd-open311
 * under a Type=notify unit (NOTIFY_SOCKET set): READY=1 once the program does its
 * job or waits for what it needs in its normal way, STATUS lines on its
 * big state changes, STOPPING=1 at a signal. With WatchdogSec= set
 * (WATCHDOG_USEC) the program sends WATCHDOG=1 at half the interval from
 * the loop that does its work: a libuv loop through svcnotify_watch_loop,
 * a poll loop by calling svcnotify_watchdog on every turn and waiting no
 * longer than svcnotify_wait_ms. A loop that hangs stops sending them and
 * systemd kills and restarts the program. Never feed it from a thread of
 * its own: that thread would keep pinging while the work is stuck.
 *
 * Without NOTIFY_SOCKET every call does nothing. The module does not log
 * (a failed sd_notify is not the program's problem) and keeps no globals:
 * the watchdog state lives in the caller's struct svcnotify.
 */
#ifndef GD_PROTO_SVCNOTIFY_H
#define GD_PROTO_SVCNOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct svcnotify {
    uint64_t interval_ms; /* WATCHDOG_USEC in ms; 0: no watchdog */
    uint64_t last_ms;     /* uv_hrtime, in ms, of the last WATCHDOG=1 */
    uv_timer_t timer;     /* svcnotify_watch_loop's */
    bool timer_on;
};

/* Reads the watchdog interval from the environment (WATCHDOG_USEC, and
 * WATCHDOG_PID if set must be this process). Nothing is sent. Returns the
 * interval in ms, 0 when there is no watchdog. */
uint64_t svcnotify_init(struct svcnotify *n);

/* Feeds the watchdog from `loop`: a timer sending WATCHDOG=1 at half the
 * interval, unreferenced (it keeps no loop alive). Does nothing without a
 * watchdog. Returns 0 or a negative libuv code (no timer then). */
int svcnotify_watch_loop(struct svcnotify *n, uv_loop_t *loop);

/* For a loop that is not libuv's: sends WATCHDOG=1 when the last one is
 * half an interval old (at once the first time). Cheap; call it on every
 * turn of the loop. Does nothing without a watchdog. */
void svcnotify_watchdog(struct svcnotify *n);

/* The longest a poll loop calling svcnotify_watchdog may wait in one turn,
 * in ms: a quarter of the interval, or `max_ms` if that is shorter or
 * there is no watchdog. */
int svcnotify_wait_ms(const struct svcnotify *n, int max_ms);

/* READY=1 and STATUS=<text> (at most 500 bytes are sent). */
void svcnotify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STATUS=<text>. */
void svcnotify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 and STATUS=<text>: a reload begins (svcnotify_ready after it). */
void svcnotify_reloading(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1 and STATUS=<text>: a signal asked the program to stop. */
void svcnotify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Stops and closes svcnotify_watch_loop's timer (it closes with the loop's
 * other handles); accepts a struct without one. */
void svcnotify_close(struct svcnotify *n);

#endif
