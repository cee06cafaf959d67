/* overdue.c - each queue's count of open incidents past a deadline, kept up to date. */
#include "tally.h"

#include <stdlib.h>

#include "broker.h"
#include "deadline.h"
#include "incident.h"
#include "log.h"

struct overdue_entry {
    int64_t at;   /* the instant the incident becomes overdue */
    uint64_t id;  /* the incident, looked up by id: it may have left */
    uint32_t gen; /* its od_gen when filed: a later change makes this stale */
};

static bool before(const struct overdue_entry *x, const struct overdue_entry *y)
{
    return x->at < y->at;
}

static void sift_up(struct overdue_entry *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!before(&h[i], &h[p]))
            break;
        struct overdue_entry t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

static void sift_down(struct overdue_entry *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(&h[l], &h[m]))
            m = l;
        if (r < n && before(&h[r], &h[m]))
            m = r;
        if (m == i)
            return;
        struct overdue_entry t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Files `inc` to become overdue at `at`. On out of memory it is not filed:
 * the next verifying pass counts it. */
static void push(struct broker *b, const struct incident *inc, int64_t at)
{
    struct overdue_heap *h = &b->overdue;
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 1024;
        struct overdue_entry *e = realloc(h->entries, cap * sizeof(*e));
        if (!e)
            return;
        h->entries = e;
        h->cap = cap;
    }
    h->entries[h->n] = (struct overdue_entry){.at = at, .id = inc->id, .gen = inc->od_gen};
    sift_up(h->entries, h->n++);
}

static void count(struct incident *inc)
{
    inc->od_queue = inc->queue;
    inc->od_queue->overdue++;
}

static void uncount(struct incident *inc)
{
    if (inc->od_queue) {
        inc->od_queue->overdue--;
        inc->od_queue = NULL;
    }
}

static struct unit *town_of(const struct incident *inc)
{
    return inc->location ? inc->location->town : NULL;
}

/* Counts `inc` among its town's live deadlines (or the no-town ones) when
 * `live`, undoing its previous count: where it was counted is kept, as an
 * org reload may move its place to another town. */
static void count_deadlines(struct broker *b, struct incident *inc, bool live)
{
    struct unit *town = town_of(inc);
    if (live == inc->dl_counted && (!live || town == inc->dl_town))
        return;
    if (inc->dl_counted) {
        if (inc->dl_town)
            inc->dl_town->live_deadlines--;
        else
            b->live_deadlines_no_town--;
    }
    if (live) {
        if (town)
            town->live_deadlines++;
        else
            b->live_deadlines_no_town++;
    }
    inc->dl_counted = live;
    inc->dl_town = live ? town : NULL;
}

void tally_track(struct broker *b, struct incident *inc)
{
    uncount(inc);
    inc->od_gen++; /* what was filed before is stale */
    count_deadlines(b, inc, deadline_live(inc));
    if (inc->doomed || !inc->durable || !inc->queue)
        return;
    int64_t at = deadline_overdue_from(inc);
    if (at <= broker_now(b))
        count(inc);
    else if (at != INT64_MAX)
        push(b, inc, at);
}

void tally_forget(struct broker *b, struct incident *inc)
{
    uncount(inc);
    inc->od_gen++;
    count_deadlines(b, inc, false);
}

void tally_rebuild(struct broker *b)
{
    b->overdue.n = 0;
    for (struct queue *q = b->queues; q; q = q->hh.next)
        q->overdue = 0;
    for (struct unit *u = b->org.units; u; u = u->hh.next)
        u->live_deadlines = 0;
    b->live_deadlines_no_town = 0;
    for (struct incident *inc = b->open; inc; inc = inc->onext) {
        inc->od_queue = NULL;
        inc->dl_counted = false;
        inc->dl_town = NULL;
        tally_track(b, inc);
    }
}

/* The counts a full pass gives, against the kept ones; any difference is
 * a change that was not tracked: logged, and repaired by a rebuild. An
 * incident with changes not yet committed is taken as counted: its
 * commit tracks it again. */
static void verify(struct broker *b, int64_t now)
{
    uint32_t drift = 0;
    for (struct queue *q = b->queues; q; q = q->hh.next)
        q->overdue_check = 0;
    for (struct unit *u = b->org.units; u; u = u->hh.next)
        u->live_deadlines_check = 0;
    uint32_t no_town = 0;
    for (struct incident *inc = b->open; inc; inc = inc->onext) {
        if (inc->pending_changes) {
            if (inc->od_queue)
                inc->od_queue->overdue_check++;
            if (inc->dl_counted)
                *(inc->dl_town ? &inc->dl_town->live_deadlines_check : &no_town) += 1;
            continue;
        }
        if (inc->durable && inc->queue && deadline_overdue(inc, now))
            inc->queue->overdue_check++;
        if (deadline_live(inc))
            *(town_of(inc) ? &town_of(inc)->live_deadlines_check : &no_town) += 1;
    }
    for (struct queue *q = b->queues; q; q = q->hh.next)
        if (q->overdue_check != q->overdue && !drift++)
            log_warn("tally", "queue %s: %u overdue kept, %u counted; counts rebuilt", q->name,
                     q->overdue, q->overdue_check);
    for (struct unit *u = b->org.units; u; u = u->hh.next)
        if (u->live_deadlines_check != u->live_deadlines && !drift++)
            log_warn("tally", "town %s: %u live deadlines kept, %u counted; counts rebuilt",
                     u->code, u->live_deadlines, u->live_deadlines_check);
    if (no_town != b->live_deadlines_no_town && !drift++)
        log_warn("tally", "no town: %u live deadlines kept, %u counted; counts rebuilt",
                 b->live_deadlines_no_town, no_town);
    if (drift)
        tally_rebuild(b);
}

void tally_tick(struct broker *b, int64_t now)
{
    struct overdue_heap *h = &b->overdue;
    while (h->n && h->entries[0].at <= now) {
        struct overdue_entry e = h->entries[0];
        h->entries[0] = h->entries[--h->n];
        sift_down(h->entries, h->n, 0);
        /* the same generation: nothing was tracked since it was filed */
        struct incident *inc = incident_by_id(b, e.id);
        if (inc && inc->od_gen == e.gen && !inc->od_queue && inc->queue)
            count(inc);
    }
    /* stale entries (incidents that changed or left) pile up until their
     * instant comes: past twice what is open, file everything again */
    if (h->n > 2 * (size_t)b->n_open + 4096)
        tally_rebuild(b);
    if (b->cfg.overdue_verify && ++h->ticks % b->cfg.overdue_verify == 0)
        verify(b, now);
}

void tally_free(struct broker *b)
{
    free(b->overdue.entries);
    b->overdue = (struct overdue_heap){0};
}
