/* notify.h - telling the service manager (systemd) how the broker is doing.
 *
 * With NOTIFY_SOCKET set (a Type=notify unit) the broker reports READY
 * once it serves, or once it waits as a standby; STATUS lines saying which;
 * RELOADING around a SIGHUP reload and STOPPING at a signal. With
 * WatchdogSec set it sends WATCHDOG=1 at half the interval from the event
 * loop, and from the standby's wait for the active-broker lock: a broker
 * whose loop hangs stops sending them, and systemd kills and restarts it
 * (which also frees the lock for a standby). Without NOTIFY_SOCKET every
 * call does nothing. */
#ifndef GD_NOTIFY_H
#define GD_NOTIFY_H

#include <stdint.h>
#include <uv.h>

/* Reads the watchdog interval from the environment and starts the
 * watchdog timer on `loop` (it fires once the loop runs). */
void notify_init(uv_loop_t *loop);

/* READY=1 and STATUS=<text>. */
void notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STATUS=<text>. */
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* RELOADING=1 before a reload; notify_ready after it. */
void notify_reloading(void);

/* STOPPING=1: a signal asked the broker to stop. */
void notify_stopping(void);

/* WATCHDOG=1 now, if the watchdog is on and the last one is older than a
 * quarter of its interval: for waits outside the loop. */
void notify_watchdog(void);

/* The watchdog interval in ms, 0 when off: how long a wait outside the
 * loop may block between notify_watchdog calls (half of it, to be safe). */
uint64_t notify_watchdog_ms(void);

/* Stops the watchdog timer (its handle closes with the loop's others). */
void notify_close(void);

#endif
