/* notify.c - sd_notify(3) for gd-broker: readiness, status and the watchdog. */
#include "notify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "log.h"

static struct {
    uv_timer_t timer;
    bool timer_on;
    uint64_t interval_ms; /* WatchdogSec, 0 = off */
    uint64_t last_ms;     /* uv_hrtime of the last WATCHDOG=1, in ms */
} wd;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void send_watchdog(void)
{
    sd_notify(0, "WATCHDOG=1");
    wd.last_ms = now_ms();
}

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    send_watchdog();
}

void notify_init(uv_loop_t *loop)
{
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is us) */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec < 2000)
        return;
    wd.interval_ms = usec / 1000;
    uv_timer_init(loop, &wd.timer);
    uv_unref((uv_handle_t *)&wd.timer); /* the watchdog alone keeps no loop alive */
    uv_timer_start(&wd.timer, on_watchdog, 0, wd.interval_ms / 2);
    wd.timer_on = true;
    log_info("notify", "systemd watchdog every %llu ms", (unsigned long long)wd.interval_ms / 2);
}

static void send_status(const char *prefix, const char *fmt, va_list ap)
{
    char status[512];
    vsnprintf(status, sizeof(status), fmt, ap);
    sd_notifyf(0, "%sSTATUS=%s", prefix, status);
}

void notify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("READY=1\n", fmt, ap);
    va_end(ap);
}

void notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("", fmt, ap);
    va_end(ap);
}

void notify_reloading(void)
{
    sd_notify(0, "RELOADING=1\nSTATUS=reloading the org tree, calendar and principals");
}

void notify_stopping(void)
{
    sd_notify(0, "STOPPING=1\nSTATUS=stopping: committing what is in progress");
}

void notify_watchdog(void)
{
    if (wd.interval_ms && now_ms() - wd.last_ms >= wd.interval_ms / 4)
        send_watchdog();
}

uint64_t notify_watchdog_ms(void)
{
    return wd.interval_ms;
}

void notify_close(void)
{
    if (wd.timer_on) {
        uv_timer_stop(&wd.timer);
        uv_close((uv_handle_t *)&wd.timer, NULL);
        wd.timer_on = false;
    }
}
