/* store-internal.h - what the store's files share: lanes, operations, and the functions between them.
 *
 * Not a public header: only store.c (the pipeline: sending, results, life
 * cycle), store-conn.c (connections) and store-rows.c (the rows of the
 * incident writes and the event log) include it. Their
 * shared functions carry the prefix store__; everyone else uses store.h.
 */
#ifndef GD_BROKER_STORE_INTERNAL_H
#define GD_BROKER_STORE_INTERNAL_H

#include "store.h"

#include "pgarray.h"

#define LATENCY_SAMPLES 4096
#define MAX_QUERIES_IN_FLIGHT 10000

/* The write statements (store-rows.c). */
enum statement { ST_NEW, ST_UPDATE, ST_EVENTS, ST_COUNT };

enum op_kind { OP_COMMIT, OP_QUERY, OP_PREPARE };

/* Something sent down the pipeline whose results we are waiting for, in
 * the order it was sent. A commit is up to three statements and a Sync;
 * a query is one statement and a Sync. */
struct op {
    struct op *next;
    enum op_kind kind;
    struct store_change *changes; /* OP_COMMIT, in order */
    uint32_t n_changes;
    int n_commands;               /* statements before the Sync */
    int results;                  /* statement results seen so far */
    bool awaiting_null;           /* libpq ends each statement's results with NULL */
    bool failed;
    bool single;                  /* OP_COMMIT sent as one of the singles after a failed batch */
    char *error;                  /* first error message */
    char sqlstate[6];             /* of the first error */
    char constraint[64];          /* of the first error, if a constraint's */
    uint64_t started_us;
    store_query_cb cb;            /* OP_QUERY */
    void *ctx;
    PGresult *result;
};

enum conn_state { CONN_DOWN, CONN_CONNECTING, CONN_UP };

struct store;
/* The write statements' text and one batch's parameters (store-rows.c). */
struct batch;

/* The incidents with a change in a commit in flight on a lane, with how
 * many (store-busy.c). */
struct busy_slot {
    uint64_t id;
    uint32_t n;
};
struct busy_set {
    struct busy_slot *slots;
    uint32_t cap;                 /* a power of two, or 0 */
    uint32_t used;
    bool overflow;                /* an id could not be added: nothing is known */
};

/* One connection with its own queue of changes. Changes are spread over
 * the lanes by incident id, so one incident's changes always commit in
 * order, while the lanes' transactions (and their fsync waits) overlap. */
struct lane {
    struct store *s;
    int index;
    PGconn *conn;
    enum conn_state state;
    uv_poll_t *poll;              /* on PQsocket(conn); NULL when there is none */
    bool poll_active;
    int poll_events;
    uv_timer_t flush_timer;
    uv_timer_t retry_timer;

    struct store_change *pending, *pending_tail; /* not yet sent */
    uint32_t n_pending;
    struct op *ops, *ops_tail;    /* sent, awaiting results */
    uint32_t commits_in_flight;   /* commits sent, their Sync not yet read */
    uint32_t n_in_flight;         /* changes in those commits */
    struct busy_set busy;         /* their incidents */
    uint32_t n_queries;
    uint32_t singles_left;        /* after a failed batch: commits of one change */
    uint32_t failures;            /* connection attempts failed in a row */
    bool was_up;                  /* connected before: a new connection is a reconnection */
    uint32_t row_type[ST_COUNT];  /* OIDs of the statements' row types on this connection */
};

struct store {
    uv_loop_t *loop;
    struct store_options opt;
    char *dsn;
    struct lane lanes[STORE_MAX_LANES];
    int n_lanes;
    struct batch *batch;          /* the write statements and their parameters */
    uint32_t pipeline;            /* commits in flight per lane, at most */
    uint32_t pipeline_min;        /* changes pending before one goes behind another */
    int n_up;                     /* lanes connected */
    int next_query_lane;
    struct store_stats stats;
    uint32_t latency[LATENCY_SAMPLES];
    uint32_t n_latency;
    int handles_open;
    bool closing;
    void (*closed)(void *);
    void *closed_ctx;
    /* the pipeline's (store.c), called by the connections below it */
    uv_poll_cb on_poll;           /* a lane's socket is ready */
    void (*pump)(struct lane *l); /* a lane can send */
};

/* A monotonic clock for commit latencies, in µs. */
static inline uint64_t store__now_us(void)
{
    return uv_hrtime() / 1000;
}

/* ---- store.c: the pipeline ----
 * The connection code below it reaches these two through struct store
 * (on_poll, pump), never by name. */

/* Sends what lane `l` can send and flushes libpq's output buffer. */
void store__pump(struct lane *l);
/* The poll callback of a lane's socket (reads results, continues a
 * connection attempt, flushes). */
void store__on_poll(uv_poll_t *h, int status, int events);

/* ---- store-conn.c: connections ---- */

/* Polls the lane's socket for `events` (UV_READABLE, UV_WRITABLE). */
void store__watch(struct lane *l, int events);
/* Starts connecting lane `l` (asynchronously); on failure the retry
 * timer tries again after retry_ms. */
void store__start_connect(struct lane *l);
/* One more step of PQconnectPoll, once the socket is ready. */
void store__continue_connect(struct lane *l);
/* The connection failed or was lost (`why` is logged): commits in flight
 * go back to the head of the pending queue, queries are answered NULL,
 * and a reconnection is scheduled unless the store is closing. */
void store__conn_lost(struct lane *l, const char *why);
/* Closes the lane's connection and its poll handle, if any. */
void store__drop_conn(struct lane *l);
/* Frees an operation (not its changes). */
void store__op_free(struct op *op);
/* Puts a list of `n` changes back at the head of the lane's pending queue. */
void store__requeue_front(struct lane *l, struct store_change *head, uint32_t n);
/* Close callback of the lanes' timers: the last handle frees the store. */
void store__on_handle_closed(uv_handle_t *h);
/* Appends `op` to the operations awaiting results. */
void store__push_op(struct lane *l, struct op *op);
/* Sends the PREPAREs of a new connection ahead of everything else; false
 * when libpq refused (the caller drops the connection). */
bool store__send_prepares(struct lane *l);
/* Frees the store and its batch; its handles must be closed. */
void store__store_free(struct store *s);

/* ---- store-busy.c: the incidents of the commits in flight ---- */

/* Whether `id` has a change in flight (always true after an overflow). */
bool store__busy_has(const struct busy_set *b, uint64_t id);
/* Counts one more change of `id` in flight; when the set cannot grow, it
 * overflows: every id counts as busy until store__busy_clear. */
void store__busy_add(struct busy_set *b, uint64_t id);
/* Counts one change of `id` less. */
void store__busy_del(struct busy_set *b, uint64_t id);
/* Forgets every id (and an overflow): nothing is in flight any more. */
void store__busy_clear(struct busy_set *b);
/* Frees the set's memory; it is empty afterwards. */
void store__busy_free(struct busy_set *b);

/* ---- store-rows.c: the rows of the write statements ---- */

/* Builds the statements' text and the row types' CREATE TYPEs. Returns
 * 0, or -ENOMEM. */
int store__rows_new(struct batch **ret);
/* Frees what store__rows_new built; accepts NULL. */
void store__rows_free(struct batch *b);
/* What each new connection runs first: its row types and planner settings. */
const char *store__rows_session_sql(const struct batch *b);
/* The text of statement `st`. */
const char *store__rows_sql(const struct batch *b, enum statement st);
/* Name of prepared statement `st` (prepared once per connection) and its row type. */
const char *store__statement_name(enum statement st);
const char *store__statement_row_type(enum statement st);
/* Fills the batch's parameters with the rows of `changes` (row types
 * `row_type`, of the lane that sends them) and says which statements
 * have rows. Returns 0, or -ENOMEM. */
int store__rows_build(struct batch *b, const struct store_change *changes,
                      const uint32_t row_type[ST_COUNT], bool has[ST_COUNT]);
/* The parameter of statement `st` last built: one array of rows. */
const struct pgarray *store__rows_param(const struct batch *b, enum statement st);

#endif
