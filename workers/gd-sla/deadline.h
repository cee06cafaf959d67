/* deadline.h - the SLA worker's live deadlines: compact store, (incident, kind) index, wheel. */
#ifndef GD_SLA_DEADLINE_H
#define GD_SLA_DEADLINE_H

/* A deadline table holds one entry per (incident_id, kind) the broker
 * streamed, applies the protocol's version rules to DEADLINE and CLEAR,
 * and fires WARN and ESCALATE events through a timing wheel.
 *
 * Memory per deadline: the 48-byte entry below, kept in chunks of
 * DEADLINE_CHUNK entries that never move, plus one 4-byte slot of the
 * open-addressing index at a load factor between 3/8 and 3/4
 * (5.3 .. 10.7 bytes). About 56 bytes per deadline at a million
 * (deadline_table_memory() reports the exact figure). The entry keeps
 * the warning time in the wheel timer while the warning is pending, so
 * warn_at costs nothing once passed.
 *
 * Library code: no logging, no I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wheel.h"

#define DEADLINE_CHUNK 4096

enum deadline_flags {
    DEADLINE_WARN_PENDING = 1 << 0, /* timer armed at warn_at; WARN not sent yet */
    DEADLINE_WARNED = 1 << 1,       /* WARN sent for this version */
    DEADLINE_FIRED = 1 << 2,        /* ESCALATE sent for this version */
};

struct deadline {
    struct wheel_timer timer; /* expires = warn_at while WARN_PENDING, else due_at */
    uint64_t incident_id;
    int64_t due_at;   /* ms since the Unix epoch (UTC) */
    uint32_t version; /* incident version the deadline belongs to */
    uint8_t kind;     /* enum gd_deadline_kind */
    uint8_t flags;    /* enum deadline_flags */
    uint16_t unused;
};

/* What deadline_table_advance reports for an entry. */
enum deadline_event { DEADLINE_EV_WARN = 0, DEADLINE_EV_ESCALATE };

/* Called for each WARN or ESCALATE that is due. The entry stays in the
 * table (an escalated one with DEADLINE_FIRED and no timer) until CLEAR,
 * a newer DEADLINE or deadline_table_reset(); the callback must not
 * upsert, clear or reset (it may call deadline_table_retry on other
 * entries). */
typedef void (*deadline_fire_cb)(struct deadline *d, enum deadline_event ev, void *arg);

/* Positive outcomes of upsert and clear. */
enum deadline_outcome {
    DEADLINE_ADDED = 1,    /* new (incident_id, kind) */
    DEADLINE_REPLACED = 2, /* a higher version replaced the stored one */
    DEADLINE_IGNORED = 3,  /* stored version is equal or higher: nothing changed */
    DEADLINE_REMOVED = 4,  /* clear: entry removed */
    DEADLINE_ABSENT = 5,   /* clear: no such entry */
};

struct deadline_table {
    struct wheel wheel;
    struct deadline **chunks; /* chunk i holds entries i*DEADLINE_CHUNK ... */
    uint32_t n_chunks;
    uint32_t cap_chunks;
    uint32_t used;       /* entries ever handed out of the chunks */
    uint32_t free_list;  /* handle of a free entry (linked through timer.expires), 0 = none */
    uint32_t count;      /* live entries */
    uint32_t *index;     /* open addressing, linear probing: handle (index + 1), 0 = empty */
    uint32_t index_mask; /* capacity - 1; capacity a power of two */
};

/* Initialises an empty table whose wheel ticks every tick_ms from `now`
 * (ms). Returns 0 or -ENOMEM (nothing to free then). */
int deadline_table_init(struct deadline_table *t, uint32_t tick_ms, int64_t now);

/* Frees everything; accepts a zeroed table. */
void deadline_table_fini(struct deadline_table *t);

/* Drops every entry (keeps the memory for reuse) and restarts the wheel
 * at `now`: what the worker does when it reconnects. */
void deadline_table_reset(struct deadline_table *t, int64_t now);

/* Applies DEADLINE: inserts (incident_id, kind), or replaces the stored
 * entry if `version` is higher (warning and escalation flags start again
 * for the new version). warn_at 0, or warn_at >= due_at, means no
 * warning. Returns DEADLINE_ADDED, DEADLINE_REPLACED, DEADLINE_IGNORED,
 * or -ENOMEM (table unchanged). */
int deadline_table_upsert(struct deadline_table *t, uint64_t incident_id, uint8_t kind,
                          uint32_t version, int64_t warn_at, int64_t due_at);

/* Applies CLEAR: removes (incident_id, kind) if its stored version is
 * <= `version`. Returns DEADLINE_REMOVED, DEADLINE_IGNORED or
 * DEADLINE_ABSENT. */
int deadline_table_clear(struct deadline_table *t, uint64_t incident_id, uint8_t kind,
                         uint32_t version);

/* The entry for (incident_id, kind), or NULL. Valid until the next
 * upsert, clear, reset or fini. */
struct deadline *deadline_table_find(const struct deadline_table *t, uint64_t incident_id,
                                     uint8_t kind);

/* Sends `ev` of `d` again at `at`: for a WARN or ESCALATE the broker
 * answered with a transient error (busy, internal). A WARN is re-armed
 * only while `d` has not escalated and `at` is before its due time; an
 * ESCALATE is re-armed at `at` or its due time, whichever is later. */
void deadline_table_retry(struct deadline_table *t, struct deadline *d, enum deadline_event ev,
                          int64_t at);

/* Fires every WARN and ESCALATE due at `now` (wheel timing contract:
 * never early, at most one tick late). A deadline whose warning and due
 * time have both passed gives WARN then ESCALATE in the same call.
 * Returns the number of events. */
uint64_t deadline_table_advance(struct deadline_table *t, int64_t now, deadline_fire_cb cb,
                                void *arg);

/* When the table next needs deadline_table_advance (see
 * wheel_next_expiry): ms, or WHEEL_NEVER. */
int64_t deadline_table_next_expiry(struct deadline_table *t);

/* Live entries. */
static inline uint32_t deadline_table_count(const struct deadline_table *t)
{
    return t->count;
}

/* Entries still waiting to fire (WARN or ESCALATE). */
static inline uint64_t deadline_table_armed(const struct deadline_table *t)
{
    return wheel_count(&t->wheel);
}

/* Bytes the table has allocated (chunks, chunk directory, index). */
size_t deadline_table_memory(const struct deadline_table *t);

#endif
