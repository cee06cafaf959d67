/* wheel.c - hierarchical timing wheel (Varghese & Lauck) with bitmap skipping.
 *
 * Placement: a timer expiring at tick `et` (>= cur) goes to the lowest
 * level L whose higher digits (bits above WHEEL_BITS*(L+1)) equal cur's,
 * in the slot named by et's level-L digit. So a level-L slot other than
 * level 0 is always ahead of cur's own level-L digit, and is re-filed
 * (cascaded) one level down when cur reaches the start of its block,
 * i.e. when cur's lower L digits are all zero. Level-0 slot s holds
 * exactly the timers of tick (cur with its low digit replaced by s).
 *
 * Bitmaps mark slots that may hold timers. A cancel does not know its
 * slot, so bits are cleared lazily when a scan finds the slot empty. */
#include "wheel.h"

#include <stddef.h>

#define SLOT_MASK (WHEEL_SLOTS - 1u)
#define MAP_WORDS (WHEEL_SLOTS / 64)
#define SPAN_BITS (WHEEL_BITS * WHEEL_LEVELS) /* ticks covered: 2^SPAN_BITS */

static void list_init(struct wheel_timer *h)
{
    h->next = h->prev = h;
}

static bool list_empty(const struct wheel_timer *h)
{
    return h->next == h;
}

static void list_push(struct wheel_timer *h, struct wheel_timer *t)
{
    t->prev = h->prev;
    t->next = h;
    h->prev->next = t;
    h->prev = t;
}

static void list_unlink(struct wheel_timer *t)
{
    t->prev->next = t->next;
    t->next->prev = t->prev;
    t->next = t->prev = NULL;
}

/* Moves every element of `from` to the empty list `to`. */
static void list_move_all(struct wheel_timer *from, struct wheel_timer *to)
{
    if (list_empty(from)) {
        list_init(to);
        return;
    }
    to->next = from->next;
    to->prev = from->prev;
    to->next->prev = to;
    to->prev->next = to;
    list_init(from);
}

/* The first tick whose start is at or after `expires`: never early. */
static uint64_t expiry_tick(const struct wheel *w, int64_t expires)
{
    if (expires <= 0)
        return 0;
    return ((uint64_t)expires + w->tick_ms - 1) / w->tick_ms;
}

static unsigned digit(uint64_t tick, unsigned level)
{
    return (unsigned)(tick >> (WHEEL_BITS * level)) & SLOT_MASK;
}

static void map_set(struct wheel *w, unsigned level, unsigned slot)
{
    w->map[level][slot / 64] |= UINT64_C(1) << (slot % 64);
}

static void map_clear(struct wheel *w, unsigned level, unsigned slot)
{
    w->map[level][slot / 64] &= ~(UINT64_C(1) << (slot % 64));
}

/* The first slot >= from at `level` whose bit is set and which really
 * holds timers (stale bits met on the way are cleared); WHEEL_SLOTS if
 * none. */
static unsigned next_slot(struct wheel *w, unsigned level, unsigned from)
{
    for (unsigned word = from / 64; word < MAP_WORDS; word++) {
        uint64_t bits = w->map[level][word];
        if (word == from / 64)
            bits &= ~UINT64_C(0) << (from % 64);
        while (bits) {
            unsigned slot = word * 64 + (unsigned)__builtin_ctzll(bits);
            if (!list_empty(&w->slots[level][slot]))
                return slot;
            map_clear(w, level, slot);
            bits &= bits - 1;
        }
    }
    return WHEEL_SLOTS;
}

/* Files an armed-but-unlinked timer by its expiry relative to cur. */
static void place(struct wheel *w, struct wheel_timer *t)
{
    uint64_t et = expiry_tick(w, t->expires);
    if (et < w->cur) {
        list_push(&w->due, t);
        return;
    }
    for (unsigned level = 0; level < WHEEL_LEVELS; level++) {
        unsigned above = WHEEL_BITS * (level + 1);
        if (et >> above == w->cur >> above) {
            unsigned slot = digit(et, level);
            list_push(&w->slots[level][slot], t);
            map_set(w, level, slot);
            return;
        }
    }
    list_push(&w->overflow, t);
}

void wheel_init(struct wheel *w, uint32_t tick_ms, int64_t now)
{
    w->tick_ms = tick_ms ? tick_ms : 1;
    w->cur = now > 0 ? (uint64_t)now / w->tick_ms : 0;
    w->count = 0;
    for (unsigned level = 0; level < WHEEL_LEVELS; level++) {
        for (unsigned slot = 0; slot < WHEEL_SLOTS; slot++)
            list_init(&w->slots[level][slot]);
        for (unsigned word = 0; word < MAP_WORDS; word++)
            w->map[level][word] = 0;
    }
    list_init(&w->overflow);
    list_init(&w->due);
}

void wheel_add(struct wheel *w, struct wheel_timer *t, int64_t expires)
{
    t->expires = expires;
    w->count++;
    place(w, t);
}

void wheel_cancel(struct wheel *w, struct wheel_timer *t)
{
    if (!wheel_armed(t))
        return;
    list_unlink(t);
    w->count--;
}

void wheel_readd(struct wheel *w, struct wheel_timer *t, int64_t expires)
{
    wheel_cancel(w, t);
    wheel_add(w, t, expires);
}

/* Fires every timer on `head`, including those a callback adds to it. */
static uint64_t fire_list(struct wheel *w, struct wheel_timer *head, wheel_fire_cb cb, void *arg)
{
    uint64_t n = 0;
    struct wheel_timer batch;
    while (!list_empty(head)) {
        list_move_all(head, &batch);
        while (!list_empty(&batch)) {
            struct wheel_timer *t = batch.next;
            list_unlink(t);
            w->count--;
            n++;
            cb(t, arg);
        }
    }
    return n;
}

/* Re-files the timers of one slot (or the overflow list) against cur. */
static void refile(struct wheel *w, struct wheel_timer *head)
{
    struct wheel_timer batch;
    list_move_all(head, &batch);
    while (!list_empty(&batch)) {
        struct wheel_timer *t = batch.next;
        list_unlink(t);
        place(w, t);
    }
}

/* At the start of a block of a higher level, brings its timers down. */
static void cascade(struct wheel *w)
{
    if ((w->cur & ((UINT64_C(1) << SPAN_BITS) - 1)) == 0)
        refile(w, &w->overflow);
    for (unsigned level = WHEEL_LEVELS - 1; level >= 1; level--) {
        if ((w->cur & ((UINT64_C(1) << (WHEEL_BITS * level)) - 1)) != 0)
            continue;
        unsigned slot = digit(w->cur, level);
        refile(w, &w->slots[level][slot]);
        map_clear(w, level, slot);
    }
}

/* The first tick >= cur at which something is to be done; UINT64_MAX if
 * the wheel (without the due list) is empty. */
static uint64_t next_event_tick(struct wheel *w)
{
    uint64_t best = UINT64_MAX;
    for (unsigned level = 0; level < WHEEL_LEVELS; level++) {
        unsigned slot = next_slot(w, level, digit(w->cur, level));
        if (slot == WHEEL_SLOTS)
            continue;
        unsigned above = WHEEL_BITS * (level + 1);
        uint64_t tick = (w->cur >> above << above) | ((uint64_t)slot << (WHEEL_BITS * level));
        if (tick < w->cur)
            tick = w->cur; /* a block entered but not cascaded yet */
        if (tick < best)
            best = tick;
        if (level == 0 && best == w->cur)
            return best;
    }
    if (!list_empty(&w->overflow)) {
        uint64_t tick = ((w->cur >> SPAN_BITS) + 1) << SPAN_BITS;
        if (tick < best)
            best = tick;
    }
    return best;
}

uint64_t wheel_advance(struct wheel *w, int64_t now, wheel_fire_cb cb, void *arg)
{
    uint64_t n = fire_list(w, &w->due, cb, arg);
    if (now < 0)
        return n;
    uint64_t target = (uint64_t)now / w->tick_ms;
    while (w->cur <= target) {
        cascade(w);
        unsigned slot = digit(w->cur, 0);
        n += fire_list(w, &w->slots[0][slot], cb, arg);
        map_clear(w, 0, slot);
        n += fire_list(w, &w->due, cb, arg);
        w->cur++;
        uint64_t next = next_event_tick(w);
        if (next > w->cur)
            w->cur = next <= target ? next : target + 1;
    }
    return n;
}

int64_t wheel_next_expiry(struct wheel *w)
{
    if (!list_empty(&w->due))
        return 0;
    uint64_t tick = next_event_tick(w);
    if (tick == UINT64_MAX || tick > (uint64_t)INT64_MAX / w->tick_ms)
        return WHEEL_NEVER;
    return (int64_t)(tick * w->tick_ms);
}
