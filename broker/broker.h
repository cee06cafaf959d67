/* broker.h - the broker's data model and the one struct that main owns.
 *
 * Every module receives a struct broker pointer; there is no other
 * process state (besides the log level). Incidents, queues, sessions and
 * intake clients are defined here because every module walks them; each
 * module's header declares the functions that change them.
 */
#ifndef GD_BROKER_BROKER_H
#define GD_BROKER_BROKER_H

#include <stdbool.h>
#include <stdint.h>
#include <uthash.h>
#include <uv.h>

#include "auth.h"
#include "config.h"
#include "effects.h"
#include "gdp.h"
#include "index.h"
#include "locate.h"
#include "org.h"
#include "peers.h"
#include "ratelimit.h"
#include "store.h"
#include "svcnotify.h"
#include "zsock.h"

struct session;
struct client;
struct submits;
struct calendar;

/* Someone waiting for a reply that is sent once a change is durable. */
struct waiter {
    struct waiter *next;
    enum gd_type type;        /* ACCEPTED for SUBMIT, DONE, OK */
    bool duplicate;           /* ACCEPTED: answer duplicate=true */
    bool applied;             /* OK: applied flag */
    uint64_t ref;
    struct client *client;    /* intake endpoint, or */
    uint64_t session_id;      /* work endpoint */
    struct submits *batch;    /* intake: an item of this SUBMITS, */
    uint32_t slot;            /* this one */
};

/* An open incident (closed ones leave memory once their last change is
 * durable). Strings are owned by the incident. */
struct incident {
    uint64_t id;
    uint32_t version;
    enum gd_state state;
    enum gd_priority priority;
    char *source;
    char *external_id;
    char *key;                 /* source "\x1f" external_id: the dedup key */
    uint16_t key_len;
    char *category_code;       /* as submitted; "" if none */
    struct category *category; /* NULL when unknown */
    char *location_code;       /* the unit located (as submitted, when not located); "" if none */
    struct unit *location;     /* NULL when unknown */
    uint8_t located_by;        /* enum locate_method: how `location` was found */
    char *address;
    bool has_coords;
    double lat, lon;
    char *description;
    char *reporter_name;       /* PII: only to the owning worker */
    char *reporter_phone;
    char *reporter_address;
    uint32_t n_attachments;
    char *attachments[GD_MAX_ATTACHMENTS];
    int64_t reported_at, received_at;
    int64_t sign_due, resolve_due;   /* 0 = no deadline */
    int64_t sign_warn, resolve_warn; /* warning instants; 0 = none */
    int64_t extension_pending; /* requested resolve deadline awaiting approval */
    uint32_t attempts, escalations;
    bool flagged;
    uint8_t warned;            /* bit per gd_deadline_kind: WARN recorded */
    uint8_t announced;         /* bit per kind: a DEADLINE is live at the SLA worker */

    struct queue *queue;       /* owning queue */
    struct unit *owner;        /* owning unit; NULL for triage */
    enum gd_level level;       /* owning level */

    bool durable;              /* its insert has committed */
    struct queue *od_queue;    /* counted in its overdue (overdue.c), or NULL */
    uint32_t od_gen;           /* bumped when tracked: older heap entries are stale */
    bool dl_counted;           /* counted among live deadlines (tally.c): */
    struct unit *dl_town;      /* its town's, or NULL: the no-town count */
    bool queued;               /* linked in queue->items[priority] */
    int64_t enqueued_at;
    struct incident *qprev, *qnext;

    struct session *session;   /* delivered to, until signed/finished */
    uint64_t delivery_id;
    bool in_flight;            /* counted in session credit and queue in_flight */
    struct incident *sprev, *snext;

    enum gd_event_kind last_event;
    uint32_t pending_changes;  /* changes not yet durable: keeps it alive */
    bool doomed;               /* closed or dropped: free when pending == 0 */
    struct waiter *waiters;    /* SUBMITs waiting for the first commit */

    struct incident *oprev, *onext; /* b->open, while indexed */
};

/* A queue: a unit's inbox (grid, community, district), a town sector's
 * (<town>.<sector>), or the district triage queue. */
struct queue {
    char *name;
    struct unit *unit;         /* NULL for triage */
    int sector;                /* town sector queues: enum sector; else -1 */
    struct incident *items[GD_PRIO_COUNT]; /* FIFO per priority (utlist DL) */
    uint32_t depth;
    uint32_t in_flight;
    uint32_t overdue;          /* kept by tally.c */
    uint32_t overdue_check;    /* tally.c's verifying pass */
    struct session **consumers;
    uint32_t n_consumers, cap_consumers;
    uint32_t next_consumer;    /* round-robin position */
    uint64_t entered, finished;         /* totals, for rates */
    uint64_t last_entered, last_finished;
    bool reported;             /* gauges published at least once */
    bool dirty;                /* waiting for a dispatch pass */
    struct queue *dirty_next;
    UT_hash_handle hh;
};

struct session {
    uint64_t id;
    uint8_t rid[256];          /* ZeroMQ routing id */
    size_t rid_len;
    char name[GD_MAX_NAME + 1];
    enum gd_role role;
    uint32_t credit;
    uint32_t in_flight;
    struct queue **queues;
    uint32_t n_queues;
    uint32_t next_queue;       /* round-robin start for fairness */
    int64_t last_recv, last_send;
    struct incident *deliveries;  /* in-flight (utlist DL via sprev/snext) */
    /* role sla */
    struct unit **towns;       /* shard; NULL with all_towns */
    uint32_t n_towns;
    bool all_towns;
    bool no_town;              /* also serves incidents located at no town */
    uint64_t *sync_ids;        /* initial set still to send */
    uint32_t sync_pos, sync_len, sync_sent;
    bool synced;
    UT_hash_handle hh;         /* by routing id */
    UT_hash_handle hi;         /* by id */
};

/* An intake peer with requests waiting for a commit. Exists only while
 * it has some; bounds what one client can make us hold. */
struct client {
    uint8_t rid[256];
    size_t rid_len;
    uint32_t pending;
    UT_hash_handle hh;
};

/* An intake peer's SNAPSHOT allowance, kept while its bucket is not full. */
struct snapshot_client {
    struct ratelimit allowance;
    uint8_t rid[256];
    size_t rid_len;
    UT_hash_handle hh;        /* by routing id, least recently used first */
};

struct counters {
    uint64_t submitted, accepted, duplicates, rejected, busy;
    uint64_t delivered, signed_, resolved, closed, reopened, returned, requeued;
    uint64_t extension_requests, extensions_denied;
    uint64_t extended, progressed, dispatched, escalated, flagged, warned, poisoned;
    uint64_t worker_errors, sla_stale, denied;
    uint64_t snapshots, snapshots_limited, snapshots_busy;
    uint64_t sessions_opened, sessions_lost;
    uint64_t status_batches, status_bytes_raw, status_bytes_sent;
};

/* Incidents whose deadline is ahead, by the instant they become overdue
 * (tally.c). */
struct overdue_heap {
    struct overdue_entry *entries;
    size_t n, cap;
    uint64_t ticks;
};

struct broker {
    struct config cfg;
    struct broker_clock clock;    /* wired by main before anything runs */
    struct effects fx;            /* upward calls of the lower layers, wired by main */
    uv_loop_t *loop;
    void *zctx;
    struct zsock intake;
    struct zsock work;
    struct zsock status;
    struct store *store;
    PGconn *lock_conn;            /* holds the active-broker advisory lock */
    struct auth auth;
    struct org org;
    struct locate *locate;        /* boundaries and addresses: where a SUBMIT is */
    struct calendar *calendar;    /* working time, for working-time limits */

    struct index incidents;       /* open incidents by id (incident.c) */
    struct index by_key;          /* by (source, external_id) */
    struct incident *open;        /* the same, oldest indexed first (utlist DL) */
    uint32_t n_open;
    struct svcnotify notify;         /* the service manager (systemd), svcnotify.h */
    struct overdue_heap overdue;     /* tally.c */
    uint32_t live_deadlines_no_town; /* tally.c: of incidents without a town */
    uint64_t next_id;
    uint64_t next_delivery;

    struct queue *queues;         /* by name */
    struct queue *triage;
    struct session *sessions;     /* by routing id */
    struct session *sessions_by_id;
    uint32_t n_sessions;
    uint64_t next_session;
    struct client *clients;
    struct submits *submits;  /* SUBMITS waiting for some item's outcome (intake.c) */
    struct snapshot_client *snapshot_clients;
    struct ratelimit snapshot_rate; /* SNAPSHOTs of all clients together */
    struct peers peers;           /* connections per endpoint */

    struct gd_decoder *decoder;
    struct gd_buf out;            /* scratch encode buffer */

    struct session *sla_all;      /* SLA session serving every town, or NULL */
    struct session *sla_no_town;  /* serving incidents without a town */
    uv_timer_t sla_timer;         /* no_sla_worker check */
    uv_timer_t sla_sync_timer;    /* initial deadline streams in progress */
    struct queue *dirty;          /* queues to dispatch on the next pass */
    uv_idle_t dispatch_idle;
    uv_timer_t heartbeat_timer;
    int64_t heartbeat_tick;       /* broker_now() at its last run, 0 before */
    uv_timer_t gauge_timer;
    struct status_batches *batches; /* transitions waiting to be published */
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t shutdown_timer;
    bool ready;                   /* served once: endpoints and database up */
    bool stopping;
    int64_t stop_started;
    int64_t started_at;
    int64_t last_gauge_at;
    struct counters counters;
};

/* Wall-clock now in ms since the Unix epoch, read from the clock that
 * main passed in (b->clock). */
static inline int64_t broker_now(const struct broker *b)
{
    return b->clock.now(b->clock.ctx);
}

#endif
