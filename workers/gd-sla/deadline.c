/* deadline.c - deadline entries in fixed chunks, an open-addressing index, and the wheel.
 *
 * Entries are named by 32-bit handles (position + 1) so that the index
 * costs 4 bytes a slot; chunks never move, so the wheel's intrusive
 * pointers stay valid while the table grows. The index uses linear
 * probing with backward-shift deletion (no tombstones). */
#include "deadline.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INDEX_MIN  1024u
#define HANDLE_MAX (UINT32_MAX - 1u)

static uint64_t mix64(uint64_t x)
{
    /* splitmix64 finaliser: incident ids are sequential, spread them */
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

static uint32_t key_hash(uint64_t incident_id, uint8_t kind)
{
    return (uint32_t)mix64(incident_id + kind * UINT64_C(0x9e3779b97f4a7c15));
}

static struct deadline *entry(const struct deadline_table *t, uint32_t handle)
{
    uint32_t i = handle - 1;
    return &t->chunks[i / DEADLINE_CHUNK][i % DEADLINE_CHUNK];
}

static struct deadline *from_timer(struct wheel_timer *tm)
{
    return (struct deadline *)((char *)tm - offsetof(struct deadline, timer));
}

int deadline_table_init(struct deadline_table *t, uint32_t tick_ms, int64_t now)
{
    memset(t, 0, sizeof(*t));
    t->index = calloc(INDEX_MIN, sizeof(*t->index));
    if (t->index == NULL)
        return -ENOMEM;
    t->index_mask = INDEX_MIN - 1;
    wheel_init(&t->wheel, tick_ms, now);
    return 0;
}

void deadline_table_fini(struct deadline_table *t)
{
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->n_chunks; i++)
        free(t->chunks[i]);
    free(t->chunks);
    free(t->index);
    memset(t, 0, sizeof(*t));
}

void deadline_table_reset(struct deadline_table *t, int64_t now)
{
    t->used = 0;
    t->free_list = 0;
    t->count = 0;
    memset(t->index, 0, ((size_t)t->index_mask + 1) * sizeof(*t->index));
    wheel_init(&t->wheel, t->wheel.tick_ms, now);
}

/* Index slot holding (incident_id, kind), or of the empty slot where it
 * would go. */
static uint32_t probe(const struct deadline_table *t, uint64_t incident_id, uint8_t kind)
{
    uint32_t i = key_hash(incident_id, kind) & t->index_mask;
    for (;;) {
        uint32_t h = t->index[i];
        if (h == 0)
            return i;
        const struct deadline *d = entry(t, h);
        if (d->incident_id == incident_id && d->kind == kind)
            return i;
        i = (i + 1) & t->index_mask;
    }
}

static int index_grow(struct deadline_table *t)
{
    size_t cap = ((size_t)t->index_mask + 1) * 2;
    if (cap > (size_t)UINT32_MAX + 1)
        return -ENOMEM;
    uint32_t *old = t->index;
    uint32_t old_cap = t->index_mask + 1;
    t->index = calloc(cap, sizeof(*t->index));
    if (t->index == NULL) {
        t->index = old;
        return -ENOMEM;
    }
    t->index_mask = (uint32_t)(cap - 1);
    for (uint32_t i = 0; i < old_cap; i++) {
        if (old[i] == 0)
            continue;
        const struct deadline *d = entry(t, old[i]);
        t->index[probe(t, d->incident_id, d->kind)] = old[i];
    }
    free(old);
    return 0;
}

/* Removes index slot i, shifting back the entries of its probe run. */
static void index_delete(struct deadline_table *t, uint32_t i)
{
    uint32_t hole = i;
    for (uint32_t j = (i + 1) & t->index_mask; t->index[j] != 0; j = (j + 1) & t->index_mask) {
        const struct deadline *d = entry(t, t->index[j]);
        uint32_t home = key_hash(d->incident_id, d->kind) & t->index_mask;
        /* j's entry may fill the hole if its home is not in (hole, j] */
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            t->index[hole] = t->index[j];
            hole = j;
        }
    }
    t->index[hole] = 0;
}

/* A fresh entry's handle, or 0 when out of memory. */
static uint32_t entry_alloc(struct deadline_table *t)
{
    if (t->free_list != 0) {
        uint32_t h = t->free_list;
        t->free_list = (uint32_t)entry(t, h)->timer.expires;
        return h;
    }
    if (t->used == HANDLE_MAX)
        return 0;
    if (t->used / DEADLINE_CHUNK == t->n_chunks) {
        if (t->n_chunks == t->cap_chunks) {
            uint32_t cap = t->cap_chunks ? t->cap_chunks * 2 : 16;
            struct deadline **chunks = realloc(t->chunks, cap * sizeof(*chunks));
            if (chunks == NULL)
                return 0;
            t->chunks = chunks;
            t->cap_chunks = cap;
        }
        struct deadline *chunk = malloc(DEADLINE_CHUNK * sizeof(*chunk));
        if (chunk == NULL)
            return 0;
        t->chunks[t->n_chunks++] = chunk;
    }
    return ++t->used;
}

static void entry_free(struct deadline_table *t, uint32_t handle)
{
    struct deadline *d = entry(t, handle);
    d->timer.next = d->timer.prev = NULL;
    d->timer.expires = t->free_list;
    t->free_list = handle;
}

/* Sets the timing of `d` for a new version and arms its first timer. */
static void arm(struct deadline_table *t, struct deadline *d, int64_t warn_at, int64_t due_at)
{
    d->due_at = due_at;
    wheel_cancel(&t->wheel, &d->timer);
    if (warn_at > 0 && warn_at < due_at) {
        d->flags = DEADLINE_WARN_PENDING;
        wheel_add(&t->wheel, &d->timer, warn_at);
    } else {
        d->flags = 0;
        wheel_add(&t->wheel, &d->timer, due_at);
    }
}

int deadline_table_upsert(struct deadline_table *t, uint64_t incident_id, uint8_t kind,
                          uint32_t version, int64_t warn_at, int64_t due_at)
{
    uint32_t slot = probe(t, incident_id, kind);
    if (t->index[slot] != 0) {
        struct deadline *d = entry(t, t->index[slot]);
        if (version <= d->version)
            return DEADLINE_IGNORED;
        d->version = version;
        arm(t, d, warn_at, due_at);
        return DEADLINE_REPLACED;
    }
    /* keep the load factor <= 3/4 */
    if ((uint64_t)(t->count + 1) * 4 > ((uint64_t)t->index_mask + 1) * 3) {
        if (index_grow(t) < 0)
            return -ENOMEM;
        slot = probe(t, incident_id, kind);
    }
    uint32_t h = entry_alloc(t);
    if (h == 0)
        return -ENOMEM;
    struct deadline *d = entry(t, h);
    d->timer.next = d->timer.prev = NULL;
    d->incident_id = incident_id;
    d->version = version;
    d->kind = kind;
    d->unused = 0;
    arm(t, d, warn_at, due_at);
    t->index[slot] = h;
    t->count++;
    return DEADLINE_ADDED;
}

int deadline_table_clear(struct deadline_table *t, uint64_t incident_id, uint8_t kind,
                         uint32_t version)
{
    uint32_t slot = probe(t, incident_id, kind);
    uint32_t h = t->index[slot];
    if (h == 0)
        return DEADLINE_ABSENT;
    struct deadline *d = entry(t, h);
    if (d->version > version)
        return DEADLINE_IGNORED;
    wheel_cancel(&t->wheel, &d->timer);
    index_delete(t, slot);
    entry_free(t, h);
    t->count--;
    return DEADLINE_REMOVED;
}

struct deadline *deadline_table_find(const struct deadline_table *t, uint64_t incident_id,
                                     uint8_t kind)
{
    uint32_t h = t->index[probe(t, incident_id, kind)];
    return h ? entry(t, h) : NULL;
}

void deadline_table_retry(struct deadline_table *t, struct deadline *d, enum deadline_event ev,
                          int64_t at)
{
    if (ev == DEADLINE_EV_WARN) {
        if ((d->flags & DEADLINE_FIRED) || at >= d->due_at)
            return;
        d->flags = (uint8_t)((d->flags & ~DEADLINE_WARNED) | DEADLINE_WARN_PENDING);
        wheel_readd(&t->wheel, &d->timer, at);
        return;
    }
    d->flags &= (uint8_t)~DEADLINE_FIRED;
    if (wheel_armed(&d->timer) && (d->flags & DEADLINE_WARN_PENDING))
        return; /* its warning is still to come, and the escalation after it */
    wheel_readd(&t->wheel, &d->timer, at > d->due_at ? at : d->due_at);
}

struct fire_ctx {
    struct deadline_table *t;
    deadline_fire_cb cb;
    void *arg;
    uint64_t events;
};

static void on_timer(struct wheel_timer *tm, void *arg)
{
    struct fire_ctx *fc = arg;
    struct deadline *d = from_timer(tm);
    fc->events++;
    if (d->flags & DEADLINE_WARN_PENDING) {
        d->flags = (uint8_t)((d->flags & ~DEADLINE_WARN_PENDING) | DEADLINE_WARNED);
        /* already past: lands on the due list and fires in this advance */
        wheel_add(&fc->t->wheel, &d->timer, d->due_at);
        fc->cb(d, DEADLINE_EV_WARN, fc->arg);
        return;
    }
    d->flags |= DEADLINE_FIRED;
    fc->cb(d, DEADLINE_EV_ESCALATE, fc->arg);
}

uint64_t deadline_table_advance(struct deadline_table *t, int64_t now, deadline_fire_cb cb,
                                void *arg)
{
    struct fire_ctx fc = {t, cb, arg, 0};
    wheel_advance(&t->wheel, now, on_timer, &fc);
    return fc.events;
}

int64_t deadline_table_next_expiry(struct deadline_table *t)
{
    return wheel_next_expiry(&t->wheel);
}

size_t deadline_table_memory(const struct deadline_table *t)
{
    return (size_t)t->n_chunks * DEADLINE_CHUNK * sizeof(struct deadline) +
           (size_t)t->cap_chunks * sizeof(*t->chunks) +
           ((size_t)t->index_mask + 1) * sizeof(*t->index);
}
