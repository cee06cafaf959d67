/* ticker.h - drives a deadline table from one libuv timer on the wall clock. */
#ifndef GD_SLA_TICKER_H
#define GD_SLA_TICKER_H

#include <stdint.h>
#include <uv.h>

#include "deadline.h"

/* Longest single sleep: a wall-clock step forward is noticed this late. */
#define TICKER_MAX_SLEEP_MS 1000

struct ticker {
    uv_timer_t timer;
    struct deadline_table *table;
    deadline_fire_cb cb;
    void *arg;
    uint64_t fired; /* events fired since init */
};

/* CLOCK_REALTIME in ms since the Unix epoch (the broker's clock basis). */
int64_t ticker_wall_ms(void);

/* Initialises the timer on `loop` for `table`; `cb` receives every WARN
 * and ESCALATE. Returns 0 or a negative libuv error. The ticker must stay
 * allocated until its close callback (ticker_close) has run. */
int ticker_init(struct ticker *k, uv_loop_t *loop, struct deadline_table *table,
                deadline_fire_cb cb, void *arg);

/* Fires what is due now and sleeps until the table's next expiry (at most
 * TICKER_MAX_SLEEP_MS). Call it after changing the table so that an
 * earlier or already past deadline is not missed. */
void ticker_kick(struct ticker *k);

/* Stops the timer and closes its handle; `close_cb` may be NULL. */
void ticker_close(struct ticker *k, uv_close_cb close_cb);

#endif
