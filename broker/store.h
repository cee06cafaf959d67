/* store.h - durable state changes: group commit to PostgreSQL in pipeline mode.
 *
 * The store owns a few non-blocking libpq connections ("lanes") in
 * pipeline mode, each watched by a uv_poll on PQsocket. A change goes to
 * the lane of its incident (id modulo lanes), so the changes of one
 * incident commit in order while the lanes' commits overlap. State changes are queued with
 * store_append(); they are gathered for at most flush_ms or batch_max
 * changes per lane and written in one transaction made of a few multi-row
 * statements (each statement's rows are passed as one binary array of a
 * composite type and expanded with unnest(), so a batch of 1000 changes
 * is still 3 statements). Up to `pipeline` commits per lane are in flight
 * at a time, each its own transaction ending in its own Sync, so that the
 * backend starts the next one as soon as the previous has committed; one
 * goes behind another only with batch_max / 4 changes or more (else they
 * wait for the commit in flight), and never with a change of an incident
 * that has one in a commit still in flight. Each change's callback runs
 * once its transaction committed, or once the database refused it.
 *
 * If the connection fails, the batch in flight goes back to the head of
 * the queue and is sent again after reconnecting. Statements are written
 * so that sending a batch twice has the effect of sending it once (insert
 * ON CONFLICT DO NOTHING; updates guarded by version), since a lost
 * connection leaves the outcome of the last COMMIT unknown.
 *
 * If a batch fails for another reason, its changes are retried one per
 * transaction, so that one bad change never fails its neighbours. A
 * failed statement aborts only its own transaction (up to its Sync): the
 * commits behind it in the pipeline hold none of its incidents, so they
 * go on, and the retries keep each incident's changes in order.
 */
#ifndef GD_BROKER_STORE_H
#define GD_BROKER_STORE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gdp.h"

struct incident;
struct store;

enum store_change_kind {
    STORE_NEW,        /* insert the incident and its first event */
    STORE_TRANSITION, /* append an event and update the projection */
};

/* Outcome passed to a change's callback. */
enum store_result {
    STORE_COMMITTED = 0,
    STORE_CONFLICT = 1, /* STORE_NEW: (source, external_id) already stored */
    STORE_FAILED = -1,  /* the database refused this change */
};

struct store_change;
typedef void (*store_change_cb)(void *ctx, struct store_change *c, enum store_result result);

/* One state change. The event and the incident's projection after it are
 * captured when the change is made, so that a batch never writes a state
 * that its own events do not explain. Strings `queue`, `owner_unit` must
 * outlive the change (they point at the broker's queue/unit names);
 * `actor` and `note` are owned by the change and freed with it. */
struct store_change {
    struct store_change *next;
    enum store_change_kind kind;
    struct incident *inc;       /* STORE_NEW: the row's immutable fields */
    uint64_t incident_id;
    /* event row */
    uint32_t version;
    int64_t at;                 /* ms since epoch */
    enum gd_event_kind event;
    enum gd_state from, to;     /* from is ignored for STORE_NEW */
    const char *queue;
    const char *owner_unit;
    enum gd_level owner_level;
    char *actor;
    char *note;
    /* projection after the event */
    int64_t sign_due, resolve_due;
    int64_t sign_warn, resolve_warn;
    int64_t extension_pending;
    uint32_t attempts, escalations;
    bool flagged;
    /* for the broker's own use after the commit; the store ignores them */
    int deadline_kind;          /* WARN/ESCALATE/FLAG: enum gd_deadline_kind; else -1 */
    int64_t deadline_due;
    const char *from_queue;     /* queue before the event */
    /* completion */
    store_change_cb done;
    void *ctx;
};

/* Allocates a zeroed change; NULL when out of memory. */
struct store_change *store_change_new(void);
/* Frees a change and its actor/note; accepts NULL. */
void store_change_free(struct store_change *c);

typedef void (*store_state_cb)(void *ctx, bool up);
/* Called with the result of store_query(): `res` is NULL when the query
 * could not run (connection lost); it is freed after the callback. */
typedef void (*store_query_cb)(void *ctx, const PGresult *res);

#define STORE_MAX_LANES 8
#define STORE_MAX_PIPELINE 8

struct store_options {
    const char *dsn;
    int lanes;               /* connections, 1..STORE_MAX_LANES */
    uint32_t pipeline;       /* commits in flight per lane, 1..STORE_MAX_PIPELINE */
    uint32_t flush_ms;
    uint32_t batch_max;
    uint32_t retry_ms;
    store_state_cb on_state; /* connection went up or down */
    /* Called (blocking) with every new connection before anything is sent
     * on it (it is not yet non-blocking; the hook may read its host and
     * port, not run queries on it); non-zero: drop it and try again later.
     * NULL: no check. */
    int (*verify)(void *ctx, PGconn *conn);
    void *ctx;
};

/* Creates the store on `loop`; changes can be appended at once, and are
 * written once store_start() has connected. Returns 0 or -ENOMEM. */
int store_open(struct store **ret, uv_loop_t *loop, const struct store_options *opt);

/* Starts connecting (asynchronously). */
void store_start(struct store *s);

/* Queues a change for the next commit. Never fails; the change is owned
 * by the store until its callback has run (the callback may free it or
 * keep it; after the callback the store forgets it). */
void store_append(struct store *s, struct store_change *c);

/* Queues a read-only query with text parameters, run in order with the
 * commits (it sees every batch sent before it). Returns 0, or -ENOMEM;
 * -ENOTCONN when the database is down (the callback is then not called). */
int store_query(struct store *s, const char *sql, int nparams, const char *const *values,
                store_query_cb cb, void *ctx);

bool store_is_up(const struct store *s);

/* Changes not yet committed (queued or in flight). */
uint32_t store_backlog(const struct store *s);

/* Upper bounds (µs) of the cumulative commit-latency histogram buckets. */
#define STORE_LATENCY_BUCKETS 10
extern const uint32_t store_latency_bounds_us[STORE_LATENCY_BUCKETS];

struct store_stats {
    uint64_t commits;         /* transactions committed */
    uint64_t commit_le[STORE_LATENCY_BUCKETS]; /* commits at most that long (cumulative) */
    uint64_t commit_sum_us;   /* total commit time */
    uint64_t changes;         /* changes committed */
    uint64_t failures;        /* changes refused by the database */
    uint64_t reconnects;
    uint32_t commit_p50_us;   /* since the last call of store_take_stats */
    uint32_t commit_p99_us;
};

/* Copies the counters and the latency percentiles of the commits since
 * the previous call, then restarts the latency window. */
void store_take_stats(struct store *s, struct store_stats *ret);

/* Sends whatever is queued now, without waiting for flush_ms. */
void store_flush(struct store *s);

/* Closes the connection and frees the store. Changes still queued are
 * dropped without their callbacks: flush and wait for store_backlog() to
 * reach 0 first for a clean shutdown. Calls `closed` once libuv has
 * released its handles. Accepts NULL. */
void store_close(struct store *s, void (*closed)(void *ctx), void *ctx);

/* Opens a blocking connection for start-up work (migrations, loading).
 * Like every connection of the store, it goes only to a server that
 * accepts writes (target_session_attrs=read-write unless the DSN says
 * otherwise: with a multi-host DSN, the primary). Returns NULL with a
 * message in err on failure. */
PGconn *store_connect_blocking(const char *dsn, char *err, size_t errlen);

/* Every connection of the broker says so, so that the next broker can
 * find the connections of one that died (store_fence). */
#define STORE_APPLICATION_NAME "gd-broker"
/* Session advisory lock held by the active broker for its whole life. */
#define STORE_ACTIVE_LOCK 7347002

/* What store_fence does while another broker holds the lock: standby()
 * once when the wait begins, tick() at least every tick_ms while it lasts
 * (0: no ticks). Any of them may be NULL. */
struct store_wait {
    void (*standby)(void *ctx);
    void (*tick)(void *ctx);
    void *ctx;
    uint64_t tick_ms;
};

/* Makes this process the only broker writing to the database: takes the
 * active-broker lock on `conn` (waiting while another broker holds it, as
 * `w` says; keep `conn` open for as long as the broker runs), then ends
 * the connections a dead broker left and waits until they are gone, so
 * that no late commit of theirs can change what we load next. Returns 0,
 * or -1 with a message in err. */
int store_fence(PGconn *conn, const struct store_wait *w, char *err, size_t errlen);

/* Applies every *.sql file of `dir` in name order over `conn`. Returns 0,
 * or -1 with the file name and PostgreSQL's message in err. */
int store_migrate(PGconn *conn, const char *dir, char *err, size_t errlen);

/* The schema version (broker/sql/NNNN_*.sql) this broker's statements need. */
#define STORE_SCHEMA_VERSION 9

/* Checks that the database behind `conn` has every migration up to
 * STORE_SCHEMA_VERSION applied. Returns 0, or -1 with a message in err
 * that says which version it found and how to migrate. */
int store_check_schema(PGconn *conn, char *err, size_t errlen);

#endif
