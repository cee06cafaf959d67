/* ticker.c - one libuv timer re-armed for the deadline table's next expiry. */
#include "ticker.h"

#include <time.h>

int64_t ticker_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_timer(uv_timer_t *h)
{
    ticker_kick(h->data);
}

int ticker_init(struct ticker *k, uv_loop_t *loop, struct deadline_table *table,
                deadline_fire_cb cb, void *arg)
{
    int rc = uv_timer_init(loop, &k->timer);
    if (rc < 0)
        return rc;
    k->timer.data = k;
    k->table = table;
    k->cb = cb;
    k->arg = arg;
    k->fired = 0;
    return 0;
}

void ticker_kick(struct ticker *k)
{
    int64_t now = ticker_wall_ms();
    k->fired += deadline_table_advance(k->table, now, k->cb, k->arg);
    int64_t next = deadline_table_next_expiry(k->table);
    if (next == WHEEL_NEVER) {
        uv_timer_stop(&k->timer);
        return;
    }
    /* the wall clock may be a little behind the loop's monotonic clock:
     * a wake-up that finds nothing due just sleeps again */
    int64_t delay = next - now;
    if (delay < 0)
        delay = 0;
    if (delay > TICKER_MAX_SLEEP_MS)
        delay = TICKER_MAX_SLEEP_MS;
    uv_update_time(k->timer.loop);
    uv_timer_start(&k->timer, on_timer, (uint64_t)delay, 0);
}

void ticker_close(struct ticker *k, uv_close_cb close_cb)
{
    uv_timer_stop(&k->timer);
    uv_close((uv_handle_t *)&k->timer, close_cb);
}
