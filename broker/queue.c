/* queue.c - queues of incidents: priority FIFO, consumers, and how names map to org units. */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

static struct queue *queue_create(struct broker *b, const char *name, size_t len,
                                  struct unit *unit, int sector)
{
    struct queue *q = calloc(1, sizeof(*q));
    if (!q)
        return NULL;
    q->name = strndup(name, len);
    if (!q->name) {
        free(q);
        return NULL;
    }
    q->unit = unit;
    q->sector = sector;
    HASH_ADD_KEYPTR(hh, b->queues, q->name, strlen(q->name), q);
    return q;
}

struct queue *queue_lookup(struct broker *b, const char *name, size_t len)
{
    struct queue *q = NULL;
    HASH_FIND(hh, b->queues, name, len, q);
    if (q)
        return q;
    if (len == strlen(QUEUE_TRIAGE) && memcmp(name, QUEUE_TRIAGE, len) == 0)
        return queue_create(b, name, len, NULL, -1);
    const char *dot = memchr(name, '.', len);
    if (dot) {
        struct unit *town = org_unit(&b->org, name, (size_t)(dot - name));
        char sector[16];
        size_t slen = len - (size_t)(dot - name) - 1;
        if (!town || town->level != GD_LEVEL_TOWN || slen >= sizeof(sector))
            return NULL;
        memcpy(sector, dot + 1, slen);
        sector[slen] = '\0';
        int sec = sector_parse(sector);
        return sec < 0 ? NULL : queue_create(b, name, len, town, sec);
    }
    struct unit *u = org_unit(&b->org, name, len);
    if (!u || u->level == GD_LEVEL_MICRO_GRID || u->level == GD_LEVEL_TOWN)
        return NULL;
    return queue_create(b, name, len, u, -1);
}

struct queue *queue_of_unit(struct broker *b, struct unit *unit, enum sector sector)
{
    if (unit->level != GD_LEVEL_TOWN)
        return queue_lookup(b, unit->code, strlen(unit->code));
    char name[GD_MAX_QUEUE + 1];
    int n = snprintf(name, sizeof(name), "%s.%s", unit->code, sector_name(sector));
    if (n < 0 || (size_t)n >= sizeof(name))
        return NULL;
    return queue_lookup(b, name, (size_t)n);
}

void queue_push(struct queue *q, struct incident *inc, bool at_head, int64_t now)
{
    queue_unlink(inc);
    inc->queue = q;
    inc->enqueued_at = now;
    inc->queued = true;
    if (at_head)
        DL_PREPEND2(q->items[inc->priority], inc, qprev, qnext);
    else
        DL_APPEND2(q->items[inc->priority], inc, qprev, qnext);
    q->depth++;
    q->entered++;
}

void queue_unlink(struct incident *inc)
{
    if (!inc->queued)
        return;
    struct queue *q = inc->queue;
    DL_DELETE2(q->items[inc->priority], inc, qprev, qnext);
    inc->qprev = inc->qnext = NULL;
    inc->queued = false;
    q->depth--;
}

struct incident *queue_peek(const struct queue *q)
{
    for (int p = 0; p < GD_PRIO_COUNT; p++)
        if (q->items[p])
            return q->items[p];
    return NULL;
}

int queue_add_consumer(struct queue *q, struct session *s)
{
    if (q->n_consumers == q->cap_consumers) {
        uint32_t cap = q->cap_consumers ? q->cap_consumers * 2 : 4;
        struct session **v = realloc(q->consumers, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        q->consumers = v;
        q->cap_consumers = cap;
    }
    q->consumers[q->n_consumers++] = s;
    return 0;
}

void queue_remove_consumer(struct queue *q, struct session *s)
{
    for (uint32_t i = 0; i < q->n_consumers; i++) {
        if (q->consumers[i] == s) {
            memmove(&q->consumers[i], &q->consumers[i + 1],
                    (q->n_consumers - i - 1) * sizeof(*q->consumers));
            q->n_consumers--;
            if (q->next_consumer > i)
                q->next_consumer--;
            return;
        }
    }
}

uint32_t queue_possible(const struct broker *b)
{
    uint32_t n = 1; /* triage */
    for (const struct unit *u = b->org.units; u; u = u->hh.next)
        if (u->level == GD_LEVEL_TOWN)
            n += SECTOR_COUNT;
        else if (u->level != GD_LEVEL_MICRO_GRID)
            n++;
    return n;
}

void queue_free_all(struct broker *b)
{
    struct queue *q, *tmp;
    HASH_ITER(hh, b->queues, q, tmp) {
        HASH_DEL(b->queues, q);
        free(q->consumers);
        free(q->name);
        free(q);
    }
    b->triage = NULL;
}
