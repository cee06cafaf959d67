/* test-timing-wheel.c - specification tests of gd-sla's timing wheel and deadline table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deadline.h"
#include "wheel.h"

/* ---- helpers ---- */

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * UINT64_C(2685821657736338717);
}

static uint64_t rnd_below(struct rng *r, uint64_t n)
{
    return n ? rnd(r) % n : 0;
}

struct item {
    struct wheel_timer timer;
    int id;
};

/* Records what fired, in order. `now` is the latest time the wheel was
 * advanced to (a clock may step back; what was due stays due). */
struct log {
    int ids[4096];
    size_t n;
    int64_t now;
    bool early; /* something fired with expires > now */
};

static void record(struct wheel_timer *t, void *arg)
{
    struct log *lg = arg;
    struct item *it = (struct item *)((char *)t - offsetof(struct item, timer));
    if (t->expires > lg->now)
        lg->early = true;
    if (lg->n < sizeof(lg->ids) / sizeof(lg->ids[0]))
        lg->ids[lg->n] = it->id;
    lg->n++;
}

static size_t advance(struct wheel *w, struct log *lg, int64_t now)
{
    lg->n = 0;
    if (now > lg->now)
        lg->now = now;
    return (size_t)wheel_advance(w, now, record, lg);
}

static struct wheel *wheel_new(uint32_t tick_ms, int64_t now)
{
    struct wheel *w = malloc(sizeof(*w));
    assert_non_null(w);
    wheel_init(w, tick_ms, now);
    return w;
}

/* ---- wheel ---- */

static void test_fires_at_the_first_tick_at_or_after_expiry(void **state)
{
    (void)state;
    struct wheel *w = wheel_new(10, 1000);
    struct item a = {.id = 1};
    struct log lg = {0};
    wheel_add(w, &a.timer, 1234); /* tick boundary after 1234 is 1240 */
    assert_true(wheel_armed(&a.timer));
    assert_int_equal(wheel_count(w), 1);
    assert_true(wheel_next_expiry(w) <= 1240);
    assert_int_equal(advance(w, &lg, 1233), 0);
    assert_int_equal(advance(w, &lg, 1239), 0);
    assert_int_equal(advance(w, &lg, 1240), 1);
    assert_int_equal(lg.ids[0], 1);
    assert_false(lg.early);
    assert_false(wheel_armed(&a.timer));
    assert_int_equal(wheel_count(w), 0);
    assert_int_equal(wheel_next_expiry(w), WHEEL_NEVER);
    assert_int_equal(advance(w, &lg, 5000), 0);
    free(w);
}

static void test_expiry_on_a_tick_boundary_fires_at_that_boundary(void **state)
{
    (void)state;
    struct wheel *w = wheel_new(10, 1000);
    struct item a = {.id = 1};
    struct log lg = {0};
    wheel_add(w, &a.timer, 1250);
    assert_int_equal(wheel_next_expiry(w), 1250);
    assert_int_equal(advance(w, &lg, 1249), 0);
    assert_int_equal(advance(w, &lg, 1250), 1);
    free(w);
}

static void test_cancelled_timer_never_fires(void **state)
{
    (void)state;
    struct wheel *w = wheel_new(1, 0);
    struct item a = {.id = 1}, b = {.id = 2};
    struct log lg = {0};
    wheel_add(w, &a.timer, 100);
    wheel_add(w, &b.timer, 100);
    wheel_cancel(w, &a.timer);
    wheel_cancel(w, &a.timer); /* harmless twice */
    assert_false(wheel_armed(&a.timer));
    assert_int_equal(wheel_count(w), 1);
    assert_int_equal(advance(w, &lg, 1000), 1);
    assert_int_equal(lg.ids[0], 2);
    free(w);
}

static void test_readd_moves_a_timer_earlier_or_later(void **state)
{
    (void)state;
    struct wheel *w = wheel_new(1, 0);
    struct item a = {.id = 1}, b = {.id = 2};
    struct log lg = {0};
    wheel_add(w, &a.timer, 500);
    wheel_add(w, &b.timer, 100);
    wheel_readd(w, &a.timer, 50);     /* earlier */
    wheel_readd(w, &b.timer, 100000); /* later, to a higher level */
    assert_int_equal(wheel_count(w), 2);
    assert_int_equal(advance(w, &lg, 60), 1);
    assert_int_equal(lg.ids[0], 1);
    assert_int_equal(advance(w, &lg, 99999), 0);
    assert_int_equal(advance(w, &lg, 100000), 1);
    assert_int_equal(lg.ids[0], 2);
    free(w);
}

static void test_timers_cascade_down_every_level(void **state)
{
    (void)state;
    /* tick 1 ms from an unaligned start: 300 ticks needs level 1, 70,000
     * level 2, 20,000,000 level 3, 3,000,000,000 the top of level 3 */
    const int64_t start = 123456789;
    const int64_t offsets[] = {5, 300, 70000, 20000000, 3000000000LL};
    const size_t n = sizeof(offsets) / sizeof(offsets[0]);
    struct wheel *w = wheel_new(1, start);
    struct item items[5];
    struct log lg = {0};
    for (size_t i = 0; i < n; i++) {
        items[i].id = (int)i;
        wheel_add(w, &items[i].timer, start + offsets[i]);
    }
    for (size_t i = 0; i < n; i++) {
        int64_t due = start + offsets[i];
        assert_true(wheel_next_expiry(w) <= due);
        assert_int_equal(advance(w, &lg, due - 1), 0);
        assert_int_equal(advance(w, &lg, due), 1);
        assert_int_equal(lg.ids[0], (int)i);
        assert_false(lg.early);
    }
    assert_int_equal(wheel_count(w), 0);
    free(w);
}

static void test_stepping_tick_by_tick_through_a_cascade(void **state)
{
    (void)state;
    /* every tick of the 256-tick boundary and beyond, with a timer on each */
    struct wheel *w = wheel_new(1, 200);
    struct item items[400];
    struct log lg = {0};
    for (int i = 0; i < 400; i++) {
        items[i].id = i;
        wheel_add(w, &items[i].timer, 201 + i);
    }
    for (int i = 0; i < 400; i++) {
        assert_int_equal(advance(w, &lg, 201 + i), 1);
        assert_int_equal(lg.ids[0], i);
    }
    free(w);
}

static void test_past_timers_fire_at_the_next_advance(void **state)
{
    (void)state;
    struct wheel *w = wheel_new(10, 100000);
    struct item a = {.id = 1}, b = {.id = 2}, c = {.id = 3};
    struct log lg = {0};
    assert_int_equal(advance(w, &lg, 100000), 0);
    wheel_add(w, &a.timer, 5);      /* long past */
    wheel_add(w, &b.timer, 99990);  /* the tick just processed */
    wheel_add(w, &c.timer, 100001); /* future */
    assert_true(wheel_next_expiry(w) <= 100000);
    /* even a `now` that went backwards fires what is past */
    assert_int_equal(advance(w, &lg, 99000), 2);
    assert_false(lg.early);
    assert_int_equal(advance(w, &lg, 100009), 0);
    assert_int_equal(advance(w, &lg, 100010), 1);
    assert_int_equal(lg.ids[0], 3);
    free(w);
}

static void test_beyond_the_top_level_waits_on_the_overflow_list(void **state)
{
    (void)state;
    /* 4 x 8 bits of 1 ms ticks span 2^32 ms (~49.7 days) */
    const int64_t start = 1700000000000LL;
    const int64_t far = start + (INT64_C(1) << 32) * 3 + 12345;
    struct wheel *w = wheel_new(1, start);
    struct item a = {.id = 1}, b = {.id = 2};
    struct log lg = {0};
    wheel_add(w, &a.timer, far);
    wheel_add(w, &b.timer, start + 1000);
    assert_int_equal(advance(w, &lg, start + 1000), 1);
    assert_int_equal(lg.ids[0], 2);
    /* jumps of weeks cost a handful of steps, not one per millisecond */
    for (int64_t now = start + 1000; now < far - 1; now += INT64_C(7) * 86400000) {
        assert_int_equal(advance(w, &lg, now), 0);
        assert_true(wheel_next_expiry(w) > now);
    }
    assert_int_equal(advance(w, &lg, far - 1), 0);
    assert_int_equal(advance(w, &lg, far), 1);
    assert_int_equal(lg.ids[0], 1);
    free(w);
}

static void test_a_jump_fires_everything_due_in_expiry_order(void **state)
{
    (void)state;
    struct rng r = {0x9e3779b97f4a7c15u};
    struct wheel *w = wheel_new(10, 0);
    enum { N = 3000 };
    struct item *items = calloc(N, sizeof(*items));
    assert_non_null(items);
    struct log *lg = calloc(1, sizeof(*lg));
    assert_non_null(lg);
    for (int i = 0; i < N; i++) {
        items[i].id = i;
        wheel_add(w, &items[i].timer, 1 + (int64_t)rnd_below(&r, 50000000));
    }
    assert_int_equal(advance(w, lg, 60000000), N);
    for (int i = 1; i < N; i++) {
        int64_t prev = (items[lg->ids[i - 1]].timer.expires + 9) / 10;
        int64_t cur = (items[lg->ids[i]].timer.expires + 9) / 10;
        assert_true(prev <= cur);
    }
    free(lg);
    free(items);
    free(w);
}

/* A callback re-adding its own timer, already due, gets it again in the
 * same advance; the deadline table relies on this for WARN then ESCALATE. */
struct readd_ctx {
    struct log lg; /* first: record() casts the arg */
    struct wheel *w;
    int64_t again;
};

static void readd_once(struct wheel_timer *t, void *arg)
{
    struct readd_ctx *c = arg;
    record(t, &c->lg);
    struct item *it = (struct item *)((char *)t - offsetof(struct item, timer));
    if (it->id < 100) {
        it->id += 100;
        wheel_add(c->w, t, c->again);
    }
}

static void test_callback_may_readd_a_due_timer_within_the_same_advance(void **state)
{
    (void)state;
    struct readd_ctx c = {.w = wheel_new(10, 0)};
    struct item a = {.id = 1}, b = {.id = 2};
    wheel_add(c.w, &a.timer, 500);
    wheel_add(c.w, &b.timer, 800);
    c.again = 700; /* past at now = 1000: same advance */
    c.lg.now = 1000;
    c.lg.n = 0;
    assert_int_equal(wheel_advance(c.w, 1000, readd_once, &c), 4);
    assert_int_equal(c.lg.ids[0], 1);
    assert_int_equal(c.lg.ids[1], 101);
    assert_int_equal(c.lg.ids[2], 2);
    assert_int_equal(c.lg.ids[3], 102);
    assert_false(c.lg.early);
    assert_int_equal(wheel_count(c.w), 0);
    free(c.w);
}

/* Property: random adds, cancels, moves and advances (small steps, jumps,
 * steps back) against a plain array. After every advance the set fired
 * must be exactly the armed timers whose tick boundary is <= now, fired
 * in non-decreasing tick order (those added already past first). */
static void test_random_operations_match_a_sorted_reference(void **state)
{
    (void)state;
    enum { N = 1500, OPS = 60000 };
    const uint32_t ticks[] = {1, 7, 10, 100};
    for (size_t g = 0; g < sizeof(ticks) / sizeof(ticks[0]); g++) {
        uint32_t tick = ticks[g];
        struct rng r = {0x1234567u + g};
        int64_t now = 1700000000000LL + (int64_t)rnd_below(&r, 1000000);
        struct wheel *w = wheel_new(tick, now);
        uint64_t ref_cur = (uint64_t)now / tick; /* mirrors the wheel's next tick */
        struct item *items = calloc(N, sizeof(*items));
        bool *armed = calloc(N, sizeof(*armed));
        bool *past = calloc(N, sizeof(*past)); /* added with its tick already done */
        bool *seen = calloc(N, sizeof(*seen));
        struct log *lg = calloc(1, sizeof(*lg));
        assert_true(items && armed && past && seen && lg);
        for (int i = 0; i < N; i++)
            items[i].id = i;
        for (int op = 0; op < OPS; op++) {
            unsigned what = (unsigned)rnd_below(&r, 100);
            int i = (int)rnd_below(&r, N);
            if (what < 45) {
                /* add or move: near, far, very far, or past */
                int64_t exp;
                switch (rnd_below(&r, 8)) {
                case 0:
                    exp = now - (int64_t)rnd_below(&r, 100000);
                    break;
                case 1:
                    exp = now + (int64_t)rnd_below(&r, INT64_C(1) << 36);
                    break;
                case 2:
                    exp = now + (int64_t)rnd_below(&r, 100000000);
                    break;
                default:
                    exp = now + (int64_t)rnd_below(&r, 5000);
                }
                wheel_readd(w, &items[i].timer, exp);
                armed[i] = true;
                past[i] = ((uint64_t)exp + tick - 1) / tick < ref_cur;
            } else if (what < 60) {
                wheel_cancel(w, &items[i].timer);
                armed[i] = false;
            } else {
                int64_t step;
                switch (rnd_below(&r, 10)) {
                case 0:
                    step = -(int64_t)rnd_below(&r, 3000);
                    break;
                case 1:
                    step = (int64_t)rnd_below(&r, 200000000);
                    break;
                case 2:
                    step = (int64_t)rnd_below(&r, INT64_C(1) << 34);
                    break;
                default:
                    step = (int64_t)rnd_below(&r, 700);
                }
                now += step;
                int64_t next = wheel_next_expiry(w);
                /* the wheel never sleeps past a due timer */
                for (int k = 0; k < N; k++)
                    if (armed[k] && !past[k])
                        assert_true(
                            next <=
                            (int64_t)((((uint64_t)items[k].timer.expires + tick - 1) / tick) *
                                      tick));
                size_t fired = advance(w, lg, now);
                assert_false(lg->early);
                assert_true(fired <= N);
                memset(seen, 0, N * sizeof(*seen));
                int64_t last_key = -1;
                for (size_t k = 0; k < fired; k++) {
                    int id = lg->ids[k];
                    assert_true(armed[id]);
                    assert_false(seen[id]);
                    seen[id] = true;
                    int64_t key =
                        past[id] ? 0
                                 : (int64_t)(((uint64_t)items[id].timer.expires + tick - 1) / tick);
                    assert_true(key >= last_key);
                    last_key = key;
                }
                for (int k = 0; k < N; k++) {
                    bool due =
                        armed[k] &&
                        (past[k] || (((uint64_t)items[k].timer.expires + tick - 1) / tick) * tick <=
                                        (uint64_t)now);
                    assert_int_equal(due, seen[k]);
                    if (due)
                        armed[k] = false;
                    assert_int_equal(armed[k], wheel_armed(&items[k].timer));
                }
                if ((uint64_t)now / tick + 1 > ref_cur)
                    ref_cur = (uint64_t)now / tick + 1;
            }
        }
        uint64_t live = 0;
        for (int k = 0; k < N; k++)
            live += armed[k];
        assert_int_equal(wheel_count(w), live);
        free(lg);
        free(seen);
        free(past);
        free(armed);
        free(items);
        free(w);
    }
}

/* ---- deadline table ---- */

struct fired {
    uint64_t incident_id[4096];
    uint8_t kind[4096];
    uint32_t version[4096];
    enum deadline_event ev[4096];
    size_t n;
};

static void on_deadline(struct deadline *d, enum deadline_event ev, void *arg)
{
    struct fired *f = arg;
    if (f->n < 4096) {
        f->incident_id[f->n] = d->incident_id;
        f->kind[f->n] = d->kind;
        f->version[f->n] = d->version;
        f->ev[f->n] = ev;
    }
    f->n++;
}

static size_t fire(struct deadline_table *t, struct fired *f, int64_t now)
{
    f->n = 0;
    deadline_table_advance(t, now, on_deadline, f);
    return f->n;
}

/* Each table test gets a fresh table at 1,000,000 ms, 10 ms ticks, and a
 * log of what it fired. */
struct table_fx {
    struct deadline_table t;
    struct fired f;
};

static int table_setup(void **state)
{
    struct table_fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL || deadline_table_init(&fx->t, 10, 1000000) < 0) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int table_teardown(void **state)
{
    struct table_fx *fx = *state;
    deadline_table_fini(&fx->t);
    free(fx);
    return 0;
}

static struct fired *fired_of(struct deadline_table *t)
{
    return &((struct table_fx *)t)->f; /* t is the first member */
}

static void test_upsert_adds_replaces_higher_and_ignores_equal_or_lower(void **state)
{
    struct deadline_table *t = *state;
    assert_int_equal(deadline_table_upsert(t, 7, 0, 3, 0, 2000000), DEADLINE_ADDED);
    assert_int_equal(deadline_table_upsert(t, 7, 1, 3, 0, 3000000), DEADLINE_ADDED);
    assert_int_equal(deadline_table_count(t), 2);
    assert_int_equal(deadline_table_upsert(t, 7, 0, 3, 0, 1500000), DEADLINE_IGNORED);
    assert_int_equal(deadline_table_upsert(t, 7, 0, 2, 0, 1500000), DEADLINE_IGNORED);
    assert_int_equal(deadline_table_find(t, 7, 0)->due_at, 2000000);
    assert_int_equal(deadline_table_upsert(t, 7, 0, 4, 0, 1500000), DEADLINE_REPLACED);
    struct deadline *d = deadline_table_find(t, 7, 0);
    assert_non_null(d);
    assert_int_equal(d->version, 4);
    assert_int_equal(d->due_at, 1500000);
    assert_int_equal(deadline_table_count(t), 2);
    assert_null(deadline_table_find(t, 8, 0));
    struct fired *f = fired_of(t);
    assert_int_equal(fire(t, f, 1499999), 0);
    assert_int_equal(fire(t, f, 1500000), 1);
    assert_int_equal(f->incident_id[0], 7);
    assert_int_equal(f->version[0], 4);
    assert_int_equal(f->ev[0], DEADLINE_EV_ESCALATE);
}

static void test_clear_removes_only_at_or_above_the_stored_version(void **state)
{
    struct deadline_table *t = *state;
    assert_int_equal(deadline_table_upsert(t, 9, 1, 5, 0, 2000000), DEADLINE_ADDED);
    assert_int_equal(deadline_table_clear(t, 9, 1, 4), DEADLINE_IGNORED);
    assert_non_null(deadline_table_find(t, 9, 1));
    assert_int_equal(deadline_table_clear(t, 9, 0, 9), DEADLINE_ABSENT);
    assert_int_equal(deadline_table_clear(t, 9, 1, 5), DEADLINE_REMOVED);
    assert_null(deadline_table_find(t, 9, 1));
    assert_int_equal(deadline_table_count(t), 0);
    assert_int_equal(deadline_table_armed(t), 0);
    assert_int_equal(fire(t, fired_of(t), 9000000), 0);
    /* a cleared deadline may come back with a later version */
    assert_int_equal(deadline_table_upsert(t, 9, 1, 6, 0, 2000000), DEADLINE_ADDED);
}

static void test_warn_then_escalate_once_per_version(void **state)
{
    struct deadline_table *t = *state;
    struct fired *f = fired_of(t);
    assert_int_equal(deadline_table_upsert(t, 1, 0, 1, 1100000, 1200000), DEADLINE_ADDED);
    assert_int_equal(fire(t, f, 1099999), 0);
    assert_int_equal(fire(t, f, 1100000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_WARN);
    assert_int_equal(fire(t, f, 1199999), 0);
    assert_int_equal(fire(t, f, 1200000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_ESCALATE);
    struct deadline *d = deadline_table_find(t, 1, 0);
    assert_true(d->flags & DEADLINE_FIRED);
    /* the entry stays until CLEAR or a new version, and never fires again */
    assert_int_equal(fire(t, f, 99000000), 0);
    assert_int_equal(deadline_table_upsert(t, 1, 0, 1, 1100000, 1200000), DEADLINE_IGNORED);
    assert_int_equal(fire(t, f, 99000001), 0);
    /* the broker's next level: a new version fires again */
    assert_int_equal(deadline_table_upsert(t, 1, 0, 2, 0, 99000100), DEADLINE_REPLACED);
    assert_int_equal(fire(t, f, 99000100), 1);
    assert_int_equal(f->version[0], 2);
}

static void test_past_warning_and_due_give_warn_then_escalate_at_once(void **state)
{
    struct deadline_table *t = *state;
    struct fired *f = fired_of(t);
    assert_int_equal(fire(t, f, 1500000), 0);
    assert_int_equal(deadline_table_upsert(t, 2, 1, 3, 1000, 2000), DEADLINE_ADDED);
    assert_int_equal(deadline_table_upsert(t, 3, 1, 3, 0, 1400000), DEADLINE_ADDED);
    assert_int_equal(fire(t, f, 1500000), 3);
    assert_int_equal(f->incident_id[0], 2);
    assert_int_equal(f->ev[0], DEADLINE_EV_WARN);
    size_t esc2 = f->incident_id[1] == 2 ? 1 : 2;
    assert_int_equal(f->incident_id[esc2], 2);
    assert_int_equal(f->ev[esc2], DEADLINE_EV_ESCALATE);
    assert_int_equal(f->ev[3 - esc2], DEADLINE_EV_ESCALATE);
    /* a warning at or after the due time is no warning */
    assert_int_equal(deadline_table_upsert(t, 4, 0, 1, 1700000, 1600000), DEADLINE_ADDED);
    assert_int_equal(fire(t, f, 1700000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_ESCALATE);
}

static void test_retry_resends_after_a_transient_error(void **state)
{
    struct deadline_table *t = *state;
    struct fired *f = fired_of(t);
    assert_int_equal(deadline_table_upsert(t, 5, 0, 1, 1100000, 1200000), DEADLINE_ADDED);
    assert_int_equal(fire(t, f, 1100000), 1);
    struct deadline *d = deadline_table_find(t, 5, 0);
    deadline_table_retry(t, d, DEADLINE_EV_WARN, 1150000);
    assert_int_equal(fire(t, f, 1150000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_WARN);
    assert_int_equal(fire(t, f, 1200000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_ESCALATE);
    deadline_table_retry(t, d, DEADLINE_EV_WARN, 1250000); /* escalated: no warning */
    deadline_table_retry(t, d, DEADLINE_EV_ESCALATE, 1300000);
    assert_int_equal(fire(t, f, 1299999), 0);
    assert_int_equal(fire(t, f, 1300000), 1);
    assert_int_equal(f->ev[0], DEADLINE_EV_ESCALATE);
    assert_int_equal(fire(t, f, 9000000), 0);
}

static void test_reset_drops_every_deadline(void **state)
{
    struct deadline_table *t = *state;
    for (uint64_t i = 1; i <= 5000; i++)
        assert_int_equal(deadline_table_upsert(t, i, (uint8_t)(i & 1), 1, 0, 2000000 + (int64_t)i),
                         DEADLINE_ADDED);
    deadline_table_reset(t, 1000000);
    assert_int_equal(deadline_table_count(t), 0);
    assert_int_equal(deadline_table_armed(t), 0);
    assert_null(deadline_table_find(t, 7, 1));
    assert_int_equal(fire(t, fired_of(t), 9000000), 0);
    assert_int_equal(deadline_table_upsert(t, 7, 1, 1, 0, 9500000), DEADLINE_ADDED);
    assert_int_equal(fire(t, fired_of(t), 9500000), 1);
}

/* Property: the index agrees with a plain array through growth and
 * backward-shift deletions; memory stays near 56 bytes a deadline. */
static void test_index_matches_a_reference_through_growth_and_deletes(void **state)
{
    struct deadline_table *t = *state;
    enum { IDS = 40000, OPS = 400000 };
    uint32_t *ver = calloc(IDS * 2, sizeof(*ver)); /* 0 = absent */
    assert_non_null(ver);
    struct rng r = {42};
    uint32_t live = 0;
    for (int op = 0; op < OPS; op++) {
        uint64_t id = 1 + rnd_below(&r, IDS);
        uint8_t kind = (uint8_t)rnd_below(&r, 2);
        uint32_t *v = &ver[(id - 1) * 2 + kind];
        uint32_t version = 1 + (uint32_t)rnd_below(&r, 6);
        if (rnd_below(&r, 3) == 0) {
            int rc = deadline_table_clear(t, id, kind, version);
            int want = *v == 0         ? DEADLINE_ABSENT
                       : version >= *v ? DEADLINE_REMOVED
                                       : DEADLINE_IGNORED;
            assert_int_equal(rc, want);
            if (rc == DEADLINE_REMOVED) {
                *v = 0;
                live--;
            }
        } else {
            int rc = deadline_table_upsert(t, id, kind, version, 0,
                                           2000000 + (int64_t)rnd_below(&r, 1000000));
            int want = *v == 0        ? DEADLINE_ADDED
                       : version > *v ? DEADLINE_REPLACED
                                      : DEADLINE_IGNORED;
            assert_int_equal(rc, want);
            if (rc == DEADLINE_ADDED)
                live++;
            if (rc != DEADLINE_IGNORED)
                *v = version;
        }
    }
    assert_int_equal(deadline_table_count(t), live);
    assert_int_equal(deadline_table_armed(t), live);
    for (uint64_t id = 1; id <= IDS; id++) {
        for (uint8_t kind = 0; kind < 2; kind++) {
            struct deadline *d = deadline_table_find(t, id, kind);
            uint32_t v = ver[(id - 1) * 2 + kind];
            if (v == 0) {
                assert_null(d);
            } else {
                assert_non_null(d);
                assert_int_equal(d->version, v);
            }
        }
    }
    assert_int_equal(sizeof(struct deadline), 48);
    free(ver);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fires_at_the_first_tick_at_or_after_expiry),
        cmocka_unit_test(test_expiry_on_a_tick_boundary_fires_at_that_boundary),
        cmocka_unit_test(test_cancelled_timer_never_fires),
        cmocka_unit_test(test_readd_moves_a_timer_earlier_or_later),
        cmocka_unit_test(test_timers_cascade_down_every_level),
        cmocka_unit_test(test_stepping_tick_by_tick_through_a_cascade),
        cmocka_unit_test(test_past_timers_fire_at_the_next_advance),
        cmocka_unit_test(test_beyond_the_top_level_waits_on_the_overflow_list),
        cmocka_unit_test(test_a_jump_fires_everything_due_in_expiry_order),
        cmocka_unit_test(test_callback_may_readd_a_due_timer_within_the_same_advance),
        cmocka_unit_test(test_random_operations_match_a_sorted_reference),
        cmocka_unit_test_setup_teardown(test_upsert_adds_replaces_higher_and_ignores_equal_or_lower,
                                        table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_clear_removes_only_at_or_above_the_stored_version,
                                        table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_warn_then_escalate_once_per_version, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(test_past_warning_and_due_give_warn_then_escalate_at_once,
                                        table_setup, table_teardown),
        cmocka_unit_test_setup_teardown(test_retry_resends_after_a_transient_error, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(test_reset_drops_every_deadline, table_setup,
                                        table_teardown),
        cmocka_unit_test_setup_teardown(test_index_matches_a_reference_through_growth_and_deletes,
                                        table_setup, table_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
