/* store.c - durable state changes: group commit to PostgreSQL in pipeline mode. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "log.h"
#include "pgarray.h"

#define LATENCY_SAMPLES 4096
#define MAX_QUERIES_IN_FLIGHT 10000

/* The write statements (see "statements" below). */
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
struct batch;

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
    bool commit_in_flight;
    uint32_t n_in_flight;         /* changes in the commit in flight */
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
    int n_up;                     /* lanes connected */
    int next_query_lane;
    struct store_stats stats;
    uint32_t latency[LATENCY_SAMPLES];
    uint32_t n_latency;
    int handles_open;
    bool closing;
    void (*closed)(void *);
    void *closed_ctx;
};

static void pump(struct lane *l);
static void conn_lost(struct lane *l, const char *why);
static void store_free(struct store *s);

struct store_change *store_change_new(void)
{
    return calloc(1, sizeof(struct store_change));
}

void store_change_free(struct store_change *c)
{
    if (!c)
        return;
    free(c->actor);
    free(c->note);
    free(c);
}

bool store_is_up(const struct store *s)
{
    return s->n_up == s->n_lanes;
}

uint32_t store_backlog(const struct store *s)
{
    uint32_t n = 0;
    for (int i = 0; i < s->n_lanes; i++)
        n += s->lanes[i].n_pending + s->lanes[i].n_in_flight;
    return n;
}

static uint64_t now_us(const struct lane *l)
{
    (void)l;
    return uv_hrtime() / 1000;
}

/* ---- statements ----
 *
 * Each write statement is described by its columns: the statement's text,
 * and a composite type of its rows made on every connection (pg_temp),
 * come from the list. A batch fills one binary array per column
 * (pgarray.h) and sends them as one array of rows, expanded with
 * unnest(). A column is added with one line in its list and one in the
 * function that fills a row. (Temporary types need the TEMPORARY
 * privilege on the database, which PUBLIC has unless revoked; the CSV
 * imports' temporary tables need it too.) */

struct column {
    const char *name;       /* of the table's column, and of the unnested one */
    enum pgarray_type type; /* of the array parameter */
    const char *value;      /* what is stored, in terms of the unnested columns; NULL: name */
};

/* Attachments travel as one JSON array text per row (unnest() cannot
 * expand an array of arrays of different lengths). */
#define ATTACHMENTS_VALUE                              \
    "CASE WHEN attachments IS NULL THEN '{}'::text[] " \
    "ELSE ARRAY(SELECT json_array_elements_text(attachments::json)) END"

/* STORE_NEW: the incident row. */
enum {
    NEW_ID,
    NEW_SOURCE,
    NEW_EXTERNAL_ID,
    NEW_CATEGORY,
    NEW_PRIORITY,
    NEW_STATE,
    NEW_VERSION,
    NEW_QUEUE,
    NEW_OWNER_UNIT,
    NEW_OWNER_LEVEL,
    NEW_LOCATION_UNIT,
    NEW_ADDRESS,
    NEW_LAT,
    NEW_LON,
    NEW_DESCRIPTION,
    NEW_REPORTER_NAME,
    NEW_REPORTER_PHONE,
    NEW_REPORTER_ADDRESS,
    NEW_ATTACHMENTS,
    NEW_REPORTED_AT,
    NEW_RECEIVED_AT,
    NEW_SIGN_DUE,
    NEW_RESOLVE_DUE,
    NEW_UPDATED_AT,
    NEW_SIGN_WARN,
    NEW_RESOLVE_WARN,
    NEW_LOCATED_BY,
    NEW_COLUMNS
};
static const struct column new_columns[NEW_COLUMNS] = {
    [NEW_ID] = {"id", PGARRAY_INT8, NULL},
    [NEW_SOURCE] = {"source", PGARRAY_TEXT, NULL},
    [NEW_EXTERNAL_ID] = {"external_id", PGARRAY_TEXT, NULL},
    [NEW_CATEGORY] = {"category", PGARRAY_TEXT, NULL},
    [NEW_PRIORITY] = {"priority", PGARRAY_TEXT, NULL},
    [NEW_STATE] = {"state", PGARRAY_TEXT, NULL},
    [NEW_VERSION] = {"version", PGARRAY_INT4, NULL},
    [NEW_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [NEW_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [NEW_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [NEW_LOCATION_UNIT] = {"location_unit", PGARRAY_TEXT, NULL},
    [NEW_ADDRESS] = {"address", PGARRAY_TEXT, NULL},
    [NEW_LAT] = {"lat", PGARRAY_FLOAT8, NULL},
    [NEW_LON] = {"lon", PGARRAY_FLOAT8, NULL},
    [NEW_DESCRIPTION] = {"description", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_NAME] = {"reporter_name", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_PHONE] = {"reporter_phone", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_ADDRESS] = {"reporter_address", PGARRAY_TEXT, NULL},
    [NEW_ATTACHMENTS] = {"attachments", PGARRAY_TEXT, ATTACHMENTS_VALUE},
    [NEW_REPORTED_AT] = {"reported_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RECEIVED_AT] = {"received_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_UPDATED_AT] = {"updated_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_SIGN_WARN] = {"sign_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RESOLVE_WARN] = {"resolve_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_LOCATED_BY] = {"located_by", PGARRAY_TEXT, NULL},
};

/* STORE_TRANSITION: the projection after the last change of an incident
 * in the batch. The first column is the key; the rest are set. */
enum {
    UPD_ID,
    UPD_STATE,
    UPD_VERSION,
    UPD_QUEUE,
    UPD_OWNER_UNIT,
    UPD_OWNER_LEVEL,
    UPD_SIGN_DUE,
    UPD_RESOLVE_DUE,
    UPD_ATTEMPTS,
    UPD_ESCALATIONS,
    UPD_FLAGGED,
    UPD_UPDATED_AT,
    UPD_SIGN_WARN,
    UPD_RESOLVE_WARN,
    UPD_EXTENSION_PENDING,
    UPD_COLUMNS
};
static const struct column update_columns[UPD_COLUMNS] = {
    [UPD_ID] = {"id", PGARRAY_INT8, NULL},
    [UPD_STATE] = {"state", PGARRAY_TEXT, NULL},
    [UPD_VERSION] = {"version", PGARRAY_INT4, NULL},
    [UPD_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [UPD_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [UPD_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [UPD_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_ATTEMPTS] = {"attempts", PGARRAY_INT4, NULL},
    [UPD_ESCALATIONS] = {"escalations", PGARRAY_INT4, NULL},
    [UPD_FLAGGED] = {"flagged", PGARRAY_BOOL, NULL},
    [UPD_UPDATED_AT] = {"updated_at", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_SIGN_WARN] = {"sign_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_RESOLVE_WARN] = {"resolve_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_EXTENSION_PENDING] = {"extension_pending", PGARRAY_TIMESTAMPTZ, NULL},
};

/* Every change: its event row. */
enum {
    EV_INCIDENT_ID,
    EV_VERSION,
    EV_AT,
    EV_KIND,
    EV_FROM_STATE,
    EV_TO_STATE,
    EV_QUEUE,
    EV_OWNER_UNIT,
    EV_OWNER_LEVEL,
    EV_ACTOR,
    EV_NOTE,
    EV_SIGN_DUE,
    EV_RESOLVE_DUE,
    EV_LOCATION_UNIT,
    EV_LOCATED_BY,
    EV_COLUMNS
};
static const struct column event_columns[EV_COLUMNS] = {
    [EV_INCIDENT_ID] = {"incident_id", PGARRAY_INT8, NULL},
    [EV_VERSION] = {"version", PGARRAY_INT4, NULL},
    [EV_AT] = {"at", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_KIND] = {"kind", PGARRAY_TEXT, NULL},
    [EV_FROM_STATE] = {"from_state", PGARRAY_TEXT, NULL},
    [EV_TO_STATE] = {"to_state", PGARRAY_TEXT, NULL},
    [EV_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [EV_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [EV_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [EV_ACTOR] = {"actor", PGARRAY_TEXT, NULL},
    [EV_NOTE] = {"note", PGARRAY_TEXT, NULL},
    [EV_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_LOCATION_UNIT] = {"location_unit", PGARRAY_TEXT, NULL},
    [EV_LOCATED_BY] = {"located_by", PGARRAY_TEXT, NULL},
};

/* The inserts are prepared once per connection: parsing and planning
 * them per batch would cost more than a small batch's rows, and their
 * plan does not depend on the tables. The update is planned for each
 * batch: a join's plan does, and a generic plan made while the table was
 * small (a seq scan of incident hashed against the rows) would go on
 * scanning the whole table for every batch as the table grows. */
static const struct {
    const char *name; /* of the prepared statement */
    const char *row_type; /* of its rows, a temporary type of each connection */
    const struct column *columns;
    int n;
    bool prepared;
} statements[ST_COUNT] = {
    [ST_NEW] = {"gd_new", "gd_new_row", new_columns, NEW_COLUMNS, true},
    [ST_UPDATE] = {"gd_update", "gd_update_row", update_columns, UPD_COLUMNS, false},
    [ST_EVENTS] = {"gd_events", "gd_event_row", event_columns, EV_COLUMNS, true},
};

#define MAX_COLUMNS NEW_COLUMNS /* the most of any statement */

/* The text of statement `st` (`type`: false) or of the CREATE TYPE of
 * its rows (true), malloc'd; NULL when out of memory. */
static char *sql_make(enum statement st, bool type)
{
    const struct column *cols = statements[st].columns;
    int n = statements[st].n;
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        return NULL;
    if (type) {
        fprintf(f, "CREATE TYPE pg_temp.%s AS (", statements[st].row_type);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s %s", i ? ", " : "", cols[i].name, pgarray_sql_element(cols[i].type));
        fputc(')', f);
    } else if (st == ST_UPDATE) {
        /* guarded by version: sending a batch twice changes nothing more */
        fputs("UPDATE incident i SET ", f);
        for (int i = 1; i < n; i++)
            fprintf(f, "%s%s = u.%s", i > 1 ? ", " : "", cols[i].name,
                    cols[i].value ? cols[i].value : cols[i].name);
        fprintf(f, " FROM unnest($1::pg_temp.%s[]) AS u", statements[st].row_type);
        fprintf(f, " WHERE i.%s = u.%s AND i.version < u.version", cols[0].name, cols[0].name);
    } else {
        fprintf(f, "INSERT INTO %s (", st == ST_NEW ? "incident" : "incident_event");
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", cols[i].name);
        fputs(") SELECT ", f);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", cols[i].value ? cols[i].value : cols[i].name);
        fprintf(f, " FROM unnest($1::pg_temp.%s[]) AS r", statements[st].row_type);
    }
    if (fclose(f) != 0) {
        free(sql);
        return NULL;
    }
    return sql;
}

/* The CREATE TYPEs of every statement's rows, in one text; NULL when out of memory. */
static char *types_make(void)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        return NULL;
    bool ok = true;
    for (int i = 0; ok && i < ST_COUNT; i++) {
        char *one = sql_make((enum statement)i, true);
        ok = one != NULL;
        if (ok)
            fprintf(f, "%s; ", one);
        free(one);
    }
    if (fclose(f) != 0 || !ok) {
        free(sql);
        return NULL;
    }
    return sql;
}

/* One statement's rows being built: an array per column, made into one
 * array of rows for the lane that sends them (pgarray_rows). */
struct params {
    struct pgarray a[MAX_COLUMNS];
    struct pgarray rows;
};

static void params_begin(struct params *p, enum statement st)
{
    for (int i = 0; i < statements[st].n; i++)
        pgarray_begin(&p->a[i], statements[st].columns[i].type);
}

/* Returns 0, or -ENOMEM when a parameter could not be built. */
static int params_end(struct params *p, enum statement st)
{
    for (int i = 0; i < statements[st].n; i++) {
        if (pgarray_end(&p->a[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The write statements' text, and the parameters of the batch being
 * sent (one at a time, by whichever lane sends). */
struct batch {
    char *sql[ST_COUNT];
    char *create_types; /* the row types, for each new connection */
    struct params params[ST_COUNT];
    struct gd_buf scratch; /* a row's attachments as JSON */
};

static void params_fini(struct params *p)
{
    for (int i = 0; i < MAX_COLUMNS; i++)
        pgarray_fini(&p->a[i]);
    pgarray_fini(&p->rows);
}

/* A JSON array of strings, into a's buffer (reset first); false when out of memory. */
static bool json_strings(struct gd_buf *b, char *const *v, uint32_t n)
{
    gd_buf_reset(b);
    bool ok = gd_buf_append(b, "[", 1) == 0;
    for (uint32_t i = 0; ok && i < n; i++) {
        ok = (!i || gd_buf_append(b, ",", 1) == 0) && gd_buf_append(b, "\"", 1) == 0;
        for (const unsigned char *p = (const unsigned char *)v[i]; ok && *p; p++) {
            char esc[8];
            if (*p == '"' || *p == '\\') {
                esc[0] = '\\';
                esc[1] = (char)*p;
                ok = gd_buf_append(b, esc, 2) == 0;
            } else if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                ok = gd_buf_append(b, esc, 6) == 0;
            } else {
                ok = gd_buf_append(b, (const char *)p, 1) == 0;
            }
        }
        ok = ok && gd_buf_append(b, "\"", 1) == 0;
    }
    return ok && gd_buf_append(b, "]", 2) == 0; /* with the NUL */
}

static void add_new_row(struct params *p, struct gd_buf *scratch, const struct store_change *c)
{
    const struct incident *inc = c->inc;
    struct pgarray *a = p->a;
    pgarray_int8(&a[NEW_ID], (int64_t)inc->id);
    pgarray_text(&a[NEW_SOURCE], inc->source);
    pgarray_text(&a[NEW_EXTERNAL_ID], inc->external_id);
    pgarray_text(&a[NEW_CATEGORY], inc->category_code);
    pgarray_text(&a[NEW_PRIORITY], gd_priority_name(inc->priority));
    pgarray_text(&a[NEW_STATE], gd_state_name(c->to));
    pgarray_int4(&a[NEW_VERSION], (int32_t)c->version);
    pgarray_text(&a[NEW_QUEUE], c->queue);
    pgarray_text(&a[NEW_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[NEW_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_text(&a[NEW_LOCATION_UNIT], inc->location_code);
    pgarray_text(&a[NEW_ADDRESS], inc->address);
    if (inc->has_coords) {
        pgarray_float8(&a[NEW_LAT], inc->lat);
        pgarray_float8(&a[NEW_LON], inc->lon);
    } else {
        pgarray_null(&a[NEW_LAT]);
        pgarray_null(&a[NEW_LON]);
    }
    pgarray_text(&a[NEW_DESCRIPTION], inc->description);
    pgarray_text(&a[NEW_REPORTER_NAME], inc->reporter_name);
    pgarray_text(&a[NEW_REPORTER_PHONE], inc->reporter_phone);
    pgarray_text(&a[NEW_REPORTER_ADDRESS], inc->reporter_address);
    if (!inc->n_attachments)
        pgarray_null(&a[NEW_ATTACHMENTS]);
    else if (json_strings(scratch, inc->attachments, inc->n_attachments))
        pgarray_text(&a[NEW_ATTACHMENTS], scratch->data);
    else
        a[NEW_ATTACHMENTS].failed = true;
    pgarray_time_ms(&a[NEW_REPORTED_AT], inc->reported_at);
    pgarray_time_ms(&a[NEW_RECEIVED_AT], inc->received_at);
    pgarray_time_ms(&a[NEW_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[NEW_RESOLVE_DUE], c->resolve_due);
    pgarray_time_ms(&a[NEW_UPDATED_AT], c->at);
    pgarray_time_ms(&a[NEW_SIGN_WARN], c->sign_warn);
    pgarray_time_ms(&a[NEW_RESOLVE_WARN], c->resolve_warn);
    pgarray_text(&a[NEW_LOCATED_BY], locate_method_name((enum locate_method)inc->located_by));
}

static void add_update_row(struct params *p, const struct store_change *c)
{
    struct pgarray *a = p->a;
    pgarray_int8(&a[UPD_ID], (int64_t)c->incident_id);
    pgarray_text(&a[UPD_STATE], gd_state_name(c->to));
    pgarray_int4(&a[UPD_VERSION], (int32_t)c->version);
    pgarray_text(&a[UPD_QUEUE], c->queue);
    pgarray_text(&a[UPD_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[UPD_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_time_ms(&a[UPD_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[UPD_RESOLVE_DUE], c->resolve_due);
    pgarray_int4(&a[UPD_ATTEMPTS], (int32_t)c->attempts);
    pgarray_int4(&a[UPD_ESCALATIONS], (int32_t)c->escalations);
    pgarray_bool(&a[UPD_FLAGGED], c->flagged);
    pgarray_time_ms(&a[UPD_UPDATED_AT], c->at);
    pgarray_time_ms(&a[UPD_SIGN_WARN], c->sign_warn);
    pgarray_time_ms(&a[UPD_RESOLVE_WARN], c->resolve_warn);
    pgarray_time_ms(&a[UPD_EXTENSION_PENDING], c->extension_pending);
}

static void add_event_row(struct params *p, const struct store_change *c)
{
    struct pgarray *a = p->a;
    bool first = c->kind == STORE_NEW;
    pgarray_int8(&a[EV_INCIDENT_ID], (int64_t)c->incident_id);
    pgarray_int4(&a[EV_VERSION], (int32_t)c->version);
    pgarray_time_ms(&a[EV_AT], c->at);
    pgarray_text(&a[EV_KIND], gd_event_kind_name(c->event));
    if (first)
        pgarray_null(&a[EV_FROM_STATE]);
    else
        pgarray_text(&a[EV_FROM_STATE], gd_state_name(c->from));
    pgarray_text(&a[EV_TO_STATE], gd_state_name(c->to));
    pgarray_text(&a[EV_QUEUE], c->queue);
    pgarray_text(&a[EV_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[EV_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_text(&a[EV_ACTOR], c->actor);
    pgarray_text(&a[EV_NOTE], c->note);
    /* the deadlines in force after the event, for the reports */
    pgarray_time_ms(&a[EV_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[EV_RESOLVE_DUE], c->resolve_due);
    /* where the incident was located, and how: on its receive event */
    pgarray_text(&a[EV_LOCATION_UNIT], first ? c->inc->location_code : "");
    pgarray_text(&a[EV_LOCATED_BY],
                 first ? locate_method_name((enum locate_method)c->inc->located_by) : "");
}

/* ---- the connection ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void watch(struct lane *l, int events)
{
    if (l->poll_active && l->poll_events == events)
        return;
    l->poll_events = events;
    l->poll_active = true;
    uv_poll_start(l->poll, events, on_poll);
}

static void unwatch(struct lane *l)
{
    if (l->poll_active) {
        uv_poll_stop(l->poll);
        l->poll_active = false;
    }
}

/* One of the store's handles is released; the last one frees the store
 * once store_close() was called. */
static void handle_gone(struct store *s)
{
    if (--s->handles_open > 0 || !s->closing)
        return;
    void (*closed)(void *) = s->closed;
    void *ctx = s->closed_ctx;
    store_free(s);
    if (closed)
        closed(ctx);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lane *l = h->data;
    handle_gone(l->s);
}

static void on_poll_closed(uv_handle_t *h)
{
    struct lane *l = h->data;
    free(h);
    handle_gone(l->s);
}

static void poll_close(struct lane *l)
{
    if (!l->poll)
        return;
    unwatch(l);
    uv_close((uv_handle_t *)l->poll, on_poll_closed);
    l->poll = NULL;
}

/* Watches the connection's current socket with a new poll handle, closing
 * the old one (libuv unregisters it at once, so the fd may be watched again
 * right away). Returns 0, or -1 (out of memory, or libuv refused the fd). */
static int poll_open(struct lane *l)
{
    poll_close(l);
    uv_poll_t *p = malloc(sizeof(*p));
    if (!p)
        return -1;
    if (uv_poll_init(l->s->loop, p, PQsocket(l->conn)) != 0) {
        free(p);
        return -1;
    }
    p->data = l;
    l->poll = p;
    l->poll_active = false;
    l->s->handles_open++;
    return 0;
}

static void drop_conn(struct lane *l)
{
    if (!l->conn)
        return;
    poll_close(l);
    PQfinish(l->conn);
    l->conn = NULL;
}

/* Opens a broker connection to `dsn` (key=value pairs or a URI, expanded
 * as dbname): blocking, or started for PQconnectPoll. The defaults come
 * before the DSN, so that the DSN may override them: only a server that
 * accepts writes (with a multi-host DSN libpq tries the hosts in order and
 * skips standbys), a bounded wait for each host, and keepalives so that a
 * primary whose host vanished is noticed. application_name comes after
 * it: the fence (store_fence) finds a dead broker's connections by it.
 * Returns what libpq returns (NULL only when out of memory). */
static PGconn *open_conn(const char *dsn, bool blocking)
{
    const char *const keys[] = {"target_session_attrs", "connect_timeout", "keepalives_idle",
                                "keepalives_interval", "keepalives_count", "dbname",
                                "application_name", NULL};
    const char *const values[] = {"read-write", "5", "5", "2", "3", dsn,
                                  STORE_APPLICATION_NAME, NULL};
    return blocking ? PQconnectdbParams(keys, values, 1) : PQconnectStartParams(keys, values, 1);
}

static void on_retry(uv_timer_t *t);

static void start_connect(struct lane *l)
{
    l->conn = open_conn(l->s->dsn, false);
    if (!l->conn || PQstatus(l->conn) == CONNECTION_BAD) {
        /* once per outage at warn level, then every 100th attempt */
        l->failures++;
        log_printf(l->failures % 100 == 1 ? LOG_WARN : LOG_DEBUG, "store",
                   "lane %d cannot connect (attempt %u): %s", l->index, l->failures,
                   l->conn ? PQerrorMessage(l->conn) : "out of memory");
        if (l->conn)
            PQfinish(l->conn);
        l->conn = NULL;
        uv_timer_start(&l->retry_timer, on_retry, l->s->opt.retry_ms, 0);
        return;
    }
    l->state = CONN_CONNECTING;
    if (poll_open(l) < 0) {
        conn_lost(l, "cannot watch the connection's socket");
        return;
    }
    watch(l, UV_WRITABLE);
}

static void on_retry(uv_timer_t *t)
{
    struct lane *l = t->data;
    if (l->state == CONN_DOWN && !l->conn)
        start_connect(l);
}

static bool send_prepares(struct lane *l);

/* Creates the statements' row types on the new connection (blocking,
 * once per connection, like the verify check) and notes their OIDs.
 * Returns 0, or -1 with PostgreSQL's message in err. */
static int make_row_types(struct lane *l, char *err, size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT 'pg_temp.%s'::regtype::oid, 'pg_temp.%s'::regtype::oid, "
             "'pg_temp.%s'::regtype::oid",
             statements[0].row_type, statements[1].row_type, statements[2].row_type);
    PGresult *res = PQexec(l->conn, l->s->batch->create_types);
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        PQclear(res);
        res = PQexec(l->conn, sql);
    }
    int rc = -1;
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQnfields(res) == ST_COUNT) {
        for (int i = 0; i < ST_COUNT; i++)
            l->row_type[i] = (uint32_t)strtoul(PQgetvalue(res, 0, i), NULL, 10);
        rc = 0;
    } else {
        snprintf(err, errlen, "cannot make the row types: %s", PQresultErrorMessage(res));
        err[strcspn(err, "\n")] = '\0';
    }
    PQclear(res);
    return rc;
}

static void connected(struct lane *l)
{
    /* the owner checks it may write on this server (after a failover: that
     * it holds its lock there) before anything is sent */
    if (l->s->opt.verify && l->s->opt.verify(l->s->opt.ctx, l->conn) != 0) {
        conn_lost(l, "the broker's own check refused the connection");
        return;
    }
    char err[256];
    if (make_row_types(l, err, sizeof(err)) < 0) {
        conn_lost(l, err);
        return;
    }
    if (PQsetnonblocking(l->conn, 1) != 0 || PQenterPipelineMode(l->conn) != 1 ||
        !send_prepares(l)) {
        conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    l->was_up = true;
    l->state = CONN_UP;
    l->failures = 0;
    log_info("store", "database connected (lane %d)", l->index);
    watch(l, UV_READABLE);
    struct store *s = l->s;
    if (++s->n_up == s->n_lanes && s->opt.on_state)
        s->opt.on_state(s->opt.ctx, true);
    pump(l);
}

static void continue_connect(struct lane *l)
{
    PostgresPollingStatusType st = PQconnectPoll(l->conn);
    if (st == PGRES_POLLING_OK) {
        connected(l);
        return;
    }
    if (st != PGRES_POLLING_READING && st != PGRES_POLLING_WRITING) {
        conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    /* Any step may have closed the socket and opened another, perhaps under
     * the same number: libpq moves to the next host of a multi-host DSN
     * when one refuses or is read-only. So every step watches anew. */
    if (poll_open(l) < 0) {
        conn_lost(l, "cannot watch the connection's socket");
        return;
    }
    watch(l, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
}

static void op_free(struct op *op)
{
    free(op->error);
    if (op->result)
        PQclear(op->result);
    free(op);
}

/* Puts a list of changes back at the head of the pending queue. */
static void requeue_front(struct lane *l, struct store_change *head, uint32_t n)
{
    if (!head)
        return;
    struct store_change *tail = head;
    while (tail->next)
        tail = tail->next;
    tail->next = l->pending;
    if (!l->pending)
        l->pending_tail = tail;
    l->pending = head;
    l->n_pending += n;
}

static void conn_lost(struct lane *l, const char *why)
{
    bool was_up = l->state == CONN_UP;
    if (!was_up)
        l->failures++;
    log_printf(was_up || l->failures % 100 == 1 ? LOG_WARN : LOG_DEBUG, "store",
               "lane %d: database connection %s: %s", l->index, was_up ? "lost" : "failed",
               why && *why ? why : "(no message)");
    drop_conn(l);
    l->state = CONN_DOWN;
    l->s->stats.reconnects += was_up;
    /* Whatever was in flight has an unknown outcome: commits are sent
     * again (they are idempotent), queries are answered with NULL. */
    struct op *op = l->ops;
    l->ops = l->ops_tail = NULL;
    struct store_change *resend = NULL, *resend_tail = NULL;
    uint32_t n_resend = 0;
    while (op) {
        struct op *next = op->next;
        if (op->kind == OP_COMMIT) {
            if (resend_tail)
                resend_tail->next = op->changes;
            else
                resend = op->changes;
            if (op->changes) {
                resend_tail = op->changes;
                while (resend_tail->next)
                    resend_tail = resend_tail->next;
            }
            n_resend += op->n_changes;
            op->changes = NULL;
        } else if (op->kind == OP_QUERY) {
            l->n_queries--;
            op->cb(op->ctx, NULL);
        }
        op_free(op);
        op = next;
    }
    requeue_front(l, resend, n_resend);
    l->commit_in_flight = false;
    l->n_in_flight = 0;
    if (was_up) {
        struct store *s = l->s;
        if (s->n_up-- == s->n_lanes && s->opt.on_state)
            s->opt.on_state(s->opt.ctx, false);
    }
    if (!l->s->closing)
        uv_timer_start(&l->retry_timer, on_retry, l->s->opt.retry_ms, 0);
}

/* ---- sending ---- */

static void push_op(struct lane *l, struct op *op)
{
    if (l->ops_tail)
        l->ops_tail->next = op;
    else
        l->ops = op;
    l->ops_tail = op;
}

/* Sends statement `st` with the batch's parameters: prepared ones by
 * name, the others with their text, to be planned for these rows. */
static bool send_statement(struct lane *l, enum statement st)
{
    const struct pgarray *rows = &l->s->batch->params[st].rows;
    const char *value = pgarray_data(rows);
    int length = pgarray_length(rows), format = 1; /* binary */
    if (!statements[st].prepared)
        return PQsendQueryParams(l->conn, l->s->batch->sql[st], 1, NULL, &value, &length, &format,
                                 0) == 1;
    return PQsendQueryPrepared(l->conn, statements[st].name, 1, &value, &length, &format, 0) == 1;
}

/* Sends the PREPAREs of a new connection ahead of everything else. */
static bool send_prepares(struct lane *l)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return false;
    op->kind = OP_PREPARE;
    bool ok = true;
    for (int i = 0; i < ST_COUNT; i++) {
        if (!statements[i].prepared)
            continue;
        ok = ok && PQsendPrepare(l->conn, statements[i].name, l->s->batch->sql[i], 1, NULL) == 1;
        op->n_commands++;
    }
    ok = ok && PQpipelineSync(l->conn) == 1;
    push_op(l, op);
    return ok;
}

/* Fills the store's parameters with the rows of `changes`; says which
 * statements have rows. Returns 0, or -ENOMEM. */
static int build_batch(struct batch *s, const struct store_change *changes, bool has[ST_COUNT])
{
    for (int i = 0; i < ST_COUNT; i++) {
        params_begin(&s->params[i], (enum statement)i);
        has[i] = false;
    }
    for (const struct store_change *c = changes; c; c = c->next) {
        add_event_row(&s->params[ST_EVENTS], c);
        has[ST_EVENTS] = true;
        if (c->kind == STORE_NEW) {
            add_new_row(&s->params[ST_NEW], &s->scratch, c);
            has[ST_NEW] = true;
            continue;
        }
        /* The projection: only the last change of each incident in this
         * batch is written (UPDATE ... FROM cannot apply two rows to one
         * target row). */
        bool last = true;
        for (const struct store_change *d = c->next; d; d = d->next)
            if (d->incident_id == c->incident_id && d->kind == STORE_TRANSITION) {
                last = false;
                break;
            }
        if (last) {
            add_update_row(&s->params[ST_UPDATE], c);
            has[ST_UPDATE] = true;
        }
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (has[i] && params_end(&s->params[i], (enum statement)i) < 0)
            return -ENOMEM;
    return 0;
}

/* Takes up to `max` changes from the pending queue and sends them as one
 * transaction. */
static void send_commit(struct lane *l, uint32_t max)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return;
    op->kind = OP_COMMIT;
    struct store_change *tail = NULL;
    while (l->pending && op->n_changes < max) {
        struct store_change *c = l->pending;
        l->pending = c->next;
        c->next = NULL;
        if (tail)
            tail->next = c;
        else
            op->changes = c;
        tail = c;
        op->n_changes++;
    }
    if (!l->pending)
        l->pending_tail = NULL;
    l->n_pending -= op->n_changes;

    bool has[ST_COUNT];
    if (build_batch(l->s->batch, op->changes, has) < 0) {
        /* out of memory: put them back and try again with the next event */
        log_error("store", "out of memory building a batch of %u changes", op->n_changes);
        requeue_front(l, op->changes, op->n_changes);
        op->changes = NULL;
        op_free(op);
        return;
    }
    for (int i = 0; i < ST_COUNT; i++) {
        struct params *p = &l->s->batch->params[i];
        if (has[i] && pgarray_rows(&p->rows, l->row_type[i], p->a, statements[i].n) < 0) {
            log_error("store", "out of memory building a batch of %u changes", op->n_changes);
            requeue_front(l, op->changes, op->n_changes);
            op->changes = NULL;
            op_free(op);
            return;
        }
    }
    bool ok = true;
    for (int i = 0; i < ST_COUNT; i++) {
        if (has[i]) {
            op->n_commands++;
            ok = ok && send_statement(l, (enum statement)i);
        }
    }
    ok = ok && PQpipelineSync(l->conn) == 1;
    op->started_us = now_us(l);
    l->commit_in_flight = true;
    l->n_in_flight = op->n_changes;
    push_op(l, op);
    if (!ok)
        conn_lost(l, PQerrorMessage(l->conn));
}

static void on_flush_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* Sends what can be sent and flushes libpq's output buffer. */
static void pump(struct lane *l)
{
    if (l->state != CONN_UP)
        return;
    if (!l->commit_in_flight && l->pending) {
        if (l->n_pending >= l->s->opt.batch_max || l->s->opt.flush_ms == 0 ||
            !uv_is_active((uv_handle_t *)&l->flush_timer)) {
            /* Either a full batch, or the flush timer expired (we are
             * called from it), or nothing is waiting for it yet: a lone
             * change after a quiet period goes out at once, and later
             * ones gather behind it while its commit runs. */
            uv_timer_stop(&l->flush_timer);
            send_commit(l, l->singles_left ? 1 : l->s->opt.batch_max);
            if (l->state != CONN_UP)
                return;
        }
    }
    int rc = PQflush(l->conn);
    if (rc < 0) {
        conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    watch(l, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

void store_append(struct store *s, struct store_change *c)
{
    struct lane *l = &s->lanes[c->incident_id % (uint64_t)s->n_lanes];
    c->next = NULL;
    if (l->pending_tail)
        l->pending_tail->next = c;
    else
        l->pending = c;
    l->pending_tail = c;
    l->n_pending++;
    if (l->state != CONN_UP || l->commit_in_flight)
        return; /* goes out when the connection returns / after this commit */
    if (l->n_pending >= s->opt.batch_max || s->opt.flush_ms == 0) {
        pump(l);
    } else if (!uv_is_active((uv_handle_t *)&l->flush_timer)) {
        uv_timer_start(&l->flush_timer, on_flush_timer, s->opt.flush_ms, 0);
    }
}

void store_flush(struct store *s)
{
    for (int i = 0; i < s->n_lanes; i++) {
        uv_timer_stop(&s->lanes[i].flush_timer);
        pump(&s->lanes[i]);
    }
}

int store_query(struct store *s, const char *sql, int nparams, const char *const *values,
                store_query_cb cb, void *ctx)
{
    if (!store_is_up(s))
        return -ENOTCONN;
    struct lane *l = &s->lanes[s->next_query_lane];
    s->next_query_lane = (s->next_query_lane + 1) % s->n_lanes;
    if (l->n_queries >= MAX_QUERIES_IN_FLIGHT)
        return -EAGAIN;
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return -ENOMEM;
    op->kind = OP_QUERY;
    op->cb = cb;
    op->ctx = ctx;
    op->n_commands = 1;
    op->started_us = now_us(l);
    bool ok = PQsendQueryParams(l->conn, sql, nparams, NULL, values, NULL, NULL, 0) == 1 &&
              PQpipelineSync(l->conn) == 1;
    l->n_queries++;
    push_op(l, op);
    if (!ok) {
        conn_lost(l, PQerrorMessage(l->conn));
        return 0; /* conn_lost answered the callback with NULL */
    }
    pump(l);
    return 0;
}

/* ---- results ---- */

const uint32_t store_latency_bounds_us[STORE_LATENCY_BUCKETS] = {
    500, 1000, 2000, 5000, 10000, 25000, 50000, 100000, 250000, 1000000,
};

static void record_latency(struct lane *l, uint64_t us)
{
    struct store_stats *st = &l->s->stats;
    st->commit_sum_us += us;
    for (int i = 0; i < STORE_LATENCY_BUCKETS; i++)
        if (us <= store_latency_bounds_us[i])
            st->commit_le[i]++;
    if (l->s->n_latency < LATENCY_SAMPLES)
        l->s->latency[l->s->n_latency++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void complete_commit(struct lane *l, struct op *op)
{
    l->commit_in_flight = false;
    l->n_in_flight = 0;
    if (l->singles_left > 0)
        l->singles_left--;
    if (op->failed && op->n_changes > 1) {
        /* Retry each change in its own transaction, so that one bad change
         * cannot fail its neighbours. */
        log_warn("store", "batch of %u changes failed (%s); retrying them one by one",
                 op->n_changes, op->error ? op->error : "?");
        requeue_front(l, op->changes, op->n_changes);
        l->singles_left = op->n_changes;
        op->changes = NULL;
        return;
    }
    enum store_result result = STORE_COMMITTED;
    if (op->failed) {
        struct store_change *c = op->changes;
        bool unique = strcmp(op->sqlstate, "23505") == 0;
        if (unique && c->kind == STORE_NEW && strcmp(op->constraint, "incident_pkey") == 0) {
            /* a row with this very id: ids are this broker's own (counted
             * on from max(id) once it holds the lock), so it is our own
             * insert, whose COMMIT landed but whose answer was lost with
             * the connection (a failover). It is stored: go on with it. */
            result = STORE_COMMITTED;
        } else if (unique && c->kind == STORE_NEW) {
            /* (source, external_id) is stored already under another id: an
             * incident closed before we started. The caller looks it up. */
            result = STORE_CONFLICT;
        } else if (unique && strcmp(op->constraint, "incident_event_pkey") == 0) {
            /* this very event is stored: sent again after a reconnection */
            result = STORE_COMMITTED;
        } else {
            l->s->stats.failures++;
            log_error("store", "incident %llu: change refused by the database: %s",
                      (unsigned long long)c->incident_id, op->error ? op->error : "?");
            result = STORE_FAILED;
        }
    } else {
        record_latency(l, now_us(l) - op->started_us);
        l->s->stats.commits++;
        l->s->stats.changes += op->n_changes;
    }
    struct store_change *c = op->changes;
    op->changes = NULL;
    while (c) {
        struct store_change *next = c->next;
        c->next = NULL;
        c->done(c->ctx, c, result);
        c = next;
    }
}

/* Errors in the data itself (SQLSTATE classes 22 and 23) are the
 * change's fault; anything else (disk full, shutdown, serialization,
 * connection) is the database's, and the batch is sent again later. */
static bool data_error(const char *sqlstate)
{
    return strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0;
}

static void finish_op(struct lane *l, struct op *op)
{
    if (op->kind == OP_PREPARE) {
        if (op->failed)
            conn_lost(l, op->error ? op->error : "PREPARE failed");
        return;
    }
    if (op->kind == OP_QUERY) {
        l->n_queries--;
        op->cb(op->ctx, op->result);
        return;
    }
    if (op->failed && !data_error(op->sqlstate)) {
        requeue_front(l, op->changes, op->n_changes);
        op->changes = NULL;
        l->commit_in_flight = false;
        l->n_in_flight = 0;
        char why[256];
        snprintf(why, sizeof(why), "commit failed, will retry: %s",
                 op->error ? op->error : "unknown error");
        conn_lost(l, why);
        return;
    }
    complete_commit(l, op);
}

/* Consumes every result libpq has ready, in pipeline order. */
static void read_results(struct lane *l)
{
    while (l->ops && l->state == CONN_UP) {
        struct op *op = l->ops;
        if (PQisBusy(l->conn))
            break;
        PGresult *res = PQgetResult(l->conn);
        if (!res) {
            if (!op->awaiting_null)
                break;
            op->awaiting_null = false;
            continue;
        }
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            l->ops = op->next;
            if (!l->ops)
                l->ops_tail = NULL;
            finish_op(l, op);
            op_free(op);
            continue;
        }
        op->awaiting_null = true;
        if (st == PGRES_FATAL_ERROR || st == PGRES_PIPELINE_ABORTED) {
            if (!op->failed && st == PGRES_FATAL_ERROR) {
                const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
                snprintf(op->sqlstate, sizeof(op->sqlstate), "%s", state ? state : "XX000");
                const char *cons = PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME);
                snprintf(op->constraint, sizeof(op->constraint), "%s", cons ? cons : "");
                op->error = strdup(PQresultErrorMessage(res));
                if (op->error)
                    op->error[strcspn(op->error, "\n")] = '\0';
            }
            op->failed = true;
        }
        if (op->kind == OP_QUERY && !op->result) {
            op->result = res;
            res = NULL;
        }
        op->results++;
        if (res)
            PQclear(res);
    }
    if (l->state == CONN_UP && PQstatus(l->conn) == CONNECTION_BAD)
        conn_lost(l, PQerrorMessage(l->conn));
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct lane *l = h->data;
    if (l->state == CONN_CONNECTING) {
        continue_connect(l);
        return;
    }
    if (l->state != CONN_UP)
        return;
    if (status < 0) {
        conn_lost(l, uv_strerror(status));
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(l->conn)) {
            conn_lost(l, PQerrorMessage(l->conn));
            return;
        }
        read_results(l);
    }
    pump(l);
}

/* ---- life cycle ---- */

static void store_free(struct store *s)
{
    if (s->batch)
        free(s->batch->create_types);
    for (int i = 0; s->batch && i < ST_COUNT; i++) {
        free(s->batch->sql[i]);
        params_fini(&s->batch->params[i]);
    }
    if (s->batch)
        gd_buf_fini(&s->batch->scratch);
    free(s->batch);
    free(s->dsn);
    free(s);
}

int store_open(struct store **ret, uv_loop_t *loop, const struct store_options *opt)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opt = *opt;
    s->dsn = strdup(opt->dsn);
    s->batch = calloc(1, sizeof(*s->batch));
    bool ok = s->dsn && s->batch;
    for (int i = 0; ok && i < ST_COUNT; i++)
        ok = (s->batch->sql[i] = sql_make((enum statement)i, false)) != NULL;
    if (ok)
        ok = (s->batch->create_types = types_make()) != NULL;
    if (!ok) {
        store_free(s);
        return -ENOMEM;
    }
    s->n_lanes = opt->lanes < 1 ? 1 : opt->lanes > STORE_MAX_LANES ? STORE_MAX_LANES : opt->lanes;
    for (int i = 0; i < s->n_lanes; i++) {
        struct lane *l = &s->lanes[i];
        l->s = s;
        l->index = i;
        l->state = CONN_DOWN;
        uv_timer_init(loop, &l->flush_timer);
        uv_timer_init(loop, &l->retry_timer);
        l->flush_timer.data = l;
        l->retry_timer.data = l;
        s->handles_open += 2;
    }
    *ret = s;
    return 0;
}

void store_start(struct store *s)
{
    for (int i = 0; i < s->n_lanes; i++)
        if (s->lanes[i].state == CONN_DOWN && !s->lanes[i].conn)
            start_connect(&s->lanes[i]);
}

void store_take_stats(struct store *s, struct store_stats *ret)
{
    *ret = s->stats;
    ret->commit_p50_us = ret->commit_p99_us = 0;
    if (s->n_latency) {
        uint64_t *v = malloc(sizeof(uint64_t) * s->n_latency);
        if (v) {
            for (uint32_t i = 0; i < s->n_latency; i++)
                v[i] = s->latency[i];
            qsort(v, s->n_latency, sizeof(uint64_t), cmp_u64);
            ret->commit_p50_us = (uint32_t)v[(s->n_latency - 1) / 2];
            ret->commit_p99_us = (uint32_t)v[(s->n_latency - 1) * 99 / 100];
            free(v);
        }
    }
    s->n_latency = 0;
}

void store_close(struct store *s, void (*closed)(void *ctx), void *ctx)
{
    if (!s)
        return;
    s->closing = true;
    s->closed = closed;
    s->closed_ctx = ctx;
    for (int i = 0; i < s->n_lanes; i++) {
        struct lane *l = &s->lanes[i];
        while (l->pending) {
            struct store_change *c = l->pending;
            l->pending = c->next;
            store_change_free(c);
        }
        while (l->ops) {
            struct op *op = l->ops;
            l->ops = op->next;
            while (op->changes) {
                struct store_change *c = op->changes;
                op->changes = c->next;
                store_change_free(c);
            }
            op_free(op);
        }
        drop_conn(l);
        uv_timer_stop(&l->flush_timer);
        uv_timer_stop(&l->retry_timer);
        uv_close((uv_handle_t *)&l->flush_timer, on_handle_closed);
        uv_close((uv_handle_t *)&l->retry_timer, on_handle_closed);
    }
}

PGconn *store_connect_blocking(const char *dsn, char *err, size_t errlen)
{
    PGconn *conn = open_conn(dsn, true);
    if (PQstatus(conn) != CONNECTION_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

static int sql_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".sql") == 0;
}

int store_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, sql_file, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "cannot read migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0) {
            FILE *f = fopen(path, "r");
            char *sql = NULL;
            size_t len = 0;
            if (f) {
                FILE *mem = open_memstream(&sql, &len);
                char chunk[8192];
                size_t got;
                while (mem && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
                    fwrite(chunk, 1, got, mem);
                if (mem)
                    fclose(mem);
                fclose(f);
            }
            if (!sql) {
                snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
                rc = -1;
            } else {
                PGresult *res = PQexec(conn, sql);
                ExecStatusType st = PQresultStatus(res);
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                    snprintf(err, errlen, "%s: %s", path, PQresultErrorMessage(res));
                    err[strcspn(err, "\n")] = '\0';
                    rc = -1;
                    /* leave no transaction half open on this connection */
                    PQclear(PQexec(conn, "ROLLBACK"));
                }
                PQclear(res);
                free(sql);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Takes the active-broker lock on `conn`: at once when it is free;
 * otherwise tells w->standby, then waits for it, calling w->tick at least
 * every w->tick_ms. Returns the lock query's result, or NULL when the
 * connection failed (PQerrorMessage says why). */
static PGresult *take_lock(PGconn *conn, const struct store_wait *w)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d)", STORE_ACTIVE_LOCK);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        return res;
    PQclear(res);
    if (w && w->standby)
        w->standby(w->ctx);
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d)", STORE_ACTIVE_LOCK);
    if (!PQsendQuery(conn, sql))
        return NULL;
    int timeout = w && w->tick_ms ? (int)w->tick_ms : -1;
    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno != EINTR)
            return NULL;
        if (n > 0 && !PQconsumeInput(conn))
            return NULL;
        if (!PQisBusy(conn))
            break;
        if (w && w->tick)
            w->tick(w->ctx);
    }
    res = PQgetResult(conn);
    for (PGresult *more; (more = PQgetResult(conn)) != NULL;)
        PQclear(more);
    return res;
}

int store_fence(PGconn *conn, const struct store_wait *w, char *err, size_t errlen)
{
    PGresult *res = take_lock(conn, w);
    if (!res) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto fail;
    PQclear(res);
    /* The lock is ours, so no other broker is active; but a broker that
     * died may still have a transaction running on a backend that has not
     * noticed. End those, and wait until they are gone, before reading
     * anything: otherwise a late commit could change what we loaded. */
    for (int i = 0; i < 100; i++) {
        res = PQexec(conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = '" STORE_APPLICATION_NAME "' "
                           "AND pid <> pg_backend_pid() AND datname = current_database()");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            goto fail;
        bool none = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
        PQclear(res);
        if (none)
            return 0;
        usleep(100 * 1000);
    }
    snprintf(err, errlen, "connections of a previous broker did not end within 10 s");
    return -1;
fail:
    snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    err[strcspn(err, "\n")] = '\0';
    PQclear(res);
    return -1;
}
