/* svcnotify.c - sd_notify(3) for the broker and the worker programs: readiness, status, stopping, watchdog. */
#include "svcnotify.h"

#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void send_watchdog(struct svcnotify *n)
{
    sd_notify(0, "WATCHDOG=1");
    n->last_ms = now_ms();
}

uint64_t svcnotify_init(struct svcnotify *n)
{
    *n = (struct svcnotify){0};
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set (and WATCHDOG_PID, if set, is us) */
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec < 2000)
        return 0;
    n->interval_ms = usec / 1000;
    return n->interval_ms;
}

static void on_timer(uv_timer_t *t)
{
    send_watchdog(t->data);
}

int svcnotify_watch_loop(struct svcnotify *n, uv_loop_t *loop)
{
    if (n->interval_ms == 0 || n->timer_on)
        return 0;
    int rc = uv_timer_init(loop, &n->timer);
    if (rc < 0)
        return rc;
    n->timer.data = n;
    uv_unref((uv_handle_t *)&n->timer);
    rc = uv_timer_start(&n->timer, on_timer, 0, n->interval_ms / 2);
    if (rc < 0) {
        uv_close((uv_handle_t *)&n->timer, NULL);
        return rc;
    }
    n->timer_on = true;
    return 0;
}

void svcnotify_watchdog(struct svcnotify *n)
{
    if (n->interval_ms && (n->last_ms == 0 || now_ms() - n->last_ms >= n->interval_ms / 2))
        send_watchdog(n);
}

int svcnotify_wait_ms(const struct svcnotify *n, int max_ms)
{
    if (n->interval_ms == 0)
        return max_ms;
    uint64_t quarter = n->interval_ms / 4 ? n->interval_ms / 4 : 1;
    return max_ms >= 0 && (uint64_t)max_ms < quarter ? max_ms : (int)quarter;
}

static void send_status(const char *prefix, const char *fmt, va_list ap)
{
    char status[500];
    vsnprintf(status, sizeof(status), fmt, ap);
    sd_notifyf(0, "%sSTATUS=%s", prefix, status);
}

void svcnotify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("READY=1\n", fmt, ap);
    va_end(ap);
}

void svcnotify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("", fmt, ap);
    va_end(ap);
}

void svcnotify_reloading(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("RELOADING=1\n", fmt, ap);
    va_end(ap);
}

void svcnotify_stopping(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("STOPPING=1\n", fmt, ap);
    va_end(ap);
}

void svcnotify_close(struct svcnotify *n)
{
    if (!n->timer_on)
        return;
    uv_timer_stop(&n->timer);
    uv_close((uv_handle_t *)&n->timer, NULL);
    n->timer_on = false;
}
