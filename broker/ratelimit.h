/* ratelimit.h - token buckets: at most `burst` acts at once, and `count` more every `period_ms`.
 *
 * Integer arithmetic throughout: the bucket holds credit, an act costs
 * `period_ms` units of it and every ms brings `count` units, so a rate
 * such as 3 a second keeps its pace exactly. Time is the caller's
 * monotonic clock in ms (the loop's uv_now); a clock that goes backwards
 * brings nothing. Nothing is allocated.
 */
#ifndef GD_BROKER_RATELIMIT_H
#define GD_BROKER_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit {
    uint64_t credit; /* units held, at most burst * period_ms */
    uint64_t cap;    /* burst * period_ms */
    uint64_t count;  /* acts regained per period */
    uint64_t period_ms;
    uint64_t at_ms; /* when `credit` was last brought up to date */
};

/* A full bucket at `now_ms`. burst, count and period_ms are >= 1. */
void ratelimit_init(struct ratelimit *rl, uint32_t burst, uint32_t count, uint32_t period_ms,
                    uint64_t now_ms);

/* Brings the bucket up to `now_ms` and returns 0 when an act is allowed
 * now, else how many ms until one is (at least 1). Takes nothing. */
uint64_t ratelimit_wait(struct ratelimit *rl, uint64_t now_ms);

/* Takes one act; call only after ratelimit_wait() returned 0. */
void ratelimit_take(struct ratelimit *rl);

/* True when the bucket is full at `now_ms`: it then limits nothing, and a
 * caller keeping one bucket per client may forget it. */
bool ratelimit_full(const struct ratelimit *rl, uint64_t now_ms);

#endif
