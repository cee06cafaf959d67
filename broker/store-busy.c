/* store-busy.c - the incidents with a change in a commit in flight on a lane.
 *
 * A lane keeps up to `pipeline` commits in flight; a later change of an
 * incident that has one in flight waits until that commit is done, so that
 * each incident's changes still commit in order when an earlier commit
 * fails and its changes are sent again. Open addressing with linear
 * probing; a slot with n == 0 is free.
 */
#include <stdlib.h>
#include <string.h>

#include "store-internal.h"

static uint32_t busy_hash(uint64_t id, uint32_t cap)
{
    return (uint32_t)((id * 0x9e3779b97f4a7c15u) >> 32) & (cap - 1);
}

/* The slot of `id`, or the free slot where it would go. */
static struct busy_slot *busy_slot(const struct busy_set *b, uint64_t id)
{
    uint32_t i = busy_hash(id, b->cap);
    while (b->slots[i].n && b->slots[i].id != id)
        i = (i + 1) & (b->cap - 1);
    return &b->slots[i];
}

bool store__busy_has(const struct busy_set *b, uint64_t id)
{
    return b->overflow || (b->cap && busy_slot(b, id)->n);
}

void store__busy_add(struct busy_set *b, uint64_t id)
{
    if (b->overflow)
        return;
    if ((b->used + 1) * 2 > b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 1024;
        struct busy_slot *old = b->slots, *slots = calloc(cap, sizeof(*slots));
        if (!slots || cap < b->cap) {
            free(slots);
            b->overflow = true;
            return;
        }
        uint32_t old_cap = b->cap;
        b->slots = slots;
        b->cap = cap;
        for (uint32_t i = 0; i < old_cap; i++)
            if (old[i].n)
                *busy_slot(b, old[i].id) = old[i];
        free(old);
    }
    struct busy_slot *slot = busy_slot(b, id);
    if (!slot->n++) {
        slot->id = id;
        b->used++;
    }
}

void store__busy_del(struct busy_set *b, uint64_t id)
{
    if (b->overflow || !b->cap)
        return;
    struct busy_slot *slot = busy_slot(b, id);
    if (!slot->n || --slot->n)
        return;
    b->used--;
    /* free the slot, moving back the entries after it that probed past it */
    uint32_t mask = b->cap - 1, hole = (uint32_t)(slot - b->slots);
    for (uint32_t i = (hole + 1) & mask; b->slots[i].n; i = (i + 1) & mask) {
        uint32_t home = busy_hash(b->slots[i].id, b->cap);
        /* movable when its home is not within (hole, i] cyclically */
        if (((i - home) & mask) >= ((i - hole) & mask)) {
            b->slots[hole] = b->slots[i];
            b->slots[i].n = 0;
            hole = i;
        }
    }
}

void store__busy_clear(struct busy_set *b)
{
    if (b->cap)
        memset(b->slots, 0, sizeof(*b->slots) * b->cap);
    b->used = 0;
    b->overflow = false;
}

void store__busy_free(struct busy_set *b)
{
    free(b->slots);
    *b = (struct busy_set){0};
}
