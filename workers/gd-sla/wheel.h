/* wheel.h - hierarchical timing wheel: millions of one-shot timers, O(1) add and cancel. */
#ifndef GD_SLA_WHEEL_H
#define GD_SLA_WHEEL_H

/* Geometry: WHEEL_LEVELS levels of WHEEL_SLOTS slots. A tick lasts
 * `tick_ms` (set at init); level L slot s holds timers whose expiry tick
 * agrees with the wheel's current tick on every bit above level L and has
 * s as its level-L digit (8 bits per level). With 4 x 256 slots the wheel
 * spans 2^32 ticks (497 days at 10 ms, 6.8 years at 50 ms); a timer beyond
 * the top level waits on an overflow list that is re-filed each time the
 * current tick crosses a multiple of 2^32.
 *
 * Timing contract: a timer set to expire at `expires` (ms, any clock the
 * caller uses consistently; gd-sla uses CLOCK_REALTIME) fires during the
 * first wheel_advance(now) with ceil(expires / tick_ms) * tick_ms <= now.
 * It never fires early (expires <= now at firing), and fires at most
 * tick_ms - 1 ms after `expires` if wheel_advance is called at the times
 * wheel_next_expiry() names. A timer added already past that point fires
 * at the next wheel_advance, whatever `now` is.
 *
 * Memory: timers are intrusive (struct wheel_timer, 24 bytes, embedded by
 * the caller); the wheel itself is a fixed ~16 KiB of list heads plus
 * bitmaps, whatever the number of timers. Library code: no logging, no
 * allocation. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WHEEL_LEVELS 4
#define WHEEL_BITS   8
#define WHEEL_SLOTS  (1u << WHEEL_BITS)
#define WHEEL_NEVER  INT64_MAX

/* Embed in the caller's object. `next`/`prev` are NULL while not armed. */
struct wheel_timer {
    struct wheel_timer *next;
    struct wheel_timer *prev;
    int64_t expires; /* ms, as given to wheel_add */
};

struct wheel {
    uint32_t tick_ms;
    uint64_t cur;   /* next tick to process: every tick < cur is done */
    uint64_t count; /* armed timers */
    struct wheel_timer slots[WHEEL_LEVELS][WHEEL_SLOTS]; /* list heads (sentinels) */
    uint64_t map[WHEEL_LEVELS][WHEEL_SLOTS / 64];        /* bit set: slot may be non-empty */
    struct wheel_timer overflow;                         /* beyond the top level */
    struct wheel_timer due;                              /* added already due */
};

/* Called for each expiring timer, already disarmed: it may re-add it,
 * add or cancel any other timer, or free it. */
typedef void (*wheel_fire_cb)(struct wheel_timer *t, void *arg);

/* Initialises an empty wheel whose first tick is the one containing
 * `now` (ms). tick_ms must be >= 1. */
void wheel_init(struct wheel *w, uint32_t tick_ms, int64_t now);

/* Arms `t` to expire at `expires` (ms). `t` must not be armed (use
 * wheel_cancel first or wheel_readd). O(1). */
void wheel_add(struct wheel *w, struct wheel_timer *t, int64_t expires);

/* Disarms `t` if armed; harmless if not. O(1). */
void wheel_cancel(struct wheel *w, struct wheel_timer *t);

/* Moves `t` (armed or not) to expire at `expires`. */
void wheel_readd(struct wheel *w, struct wheel_timer *t, int64_t expires);

static inline bool wheel_armed(const struct wheel_timer *t)
{
    return t->next != NULL;
}

/* Fires, through `cb`, every timer due at `now` (see the timing contract),
 * timers added already due first, then by expiry tick (timers of one tick
 * in no particular order). Returns the number fired. Empty stretches of
 * the wheel are skipped through the bitmaps, so a clock jump of days costs
 * a few hundred steps, not one per tick. A `now` earlier than the last
 * one fires only timers added already due. */
uint64_t wheel_advance(struct wheel *w, int64_t now, wheel_fire_cb cb, void *arg);

/* The earliest time (ms) at which wheel_advance may have work: an expiry
 * tick or a cascade of a higher level; WHEEL_NEVER when the wheel is
 * empty, a time <= any `now` when timers wait on the due list. Never later
 * than the first expiry; may be earlier (a cascade, or a slot emptied by
 * cancels, costs one spurious wake-up). */
int64_t wheel_next_expiry(struct wheel *w);

/* Number of armed timers. */
static inline uint64_t wheel_count(const struct wheel *w)
{
    return w->count;
}

#endif
