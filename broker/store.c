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

#define LATENCY_SAMPLES 4096
#define MAX_QUERIES_IN_FLIGHT 10000

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

/* One connection with its own queue of changes. Changes are spread over
 * the lanes by incident id, so one incident's changes always commit in
 * order, while the lanes' transactions (and their fsync waits) overlap. */
struct lane {
    struct store *s;
    int index;
    PGconn *conn;
    enum conn_state state;
    uv_poll_t poll;
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
};

struct store {
    uv_loop_t *loop;
    struct store_options opt;
    char *dsn;
    struct lane lanes[STORE_MAX_LANES];
    int n_lanes;
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

/* ---- array parameters ---- */

/* One array parameter being built as a PostgreSQL array literal. */
struct arr {
    struct gd_buf buf;
    bool first;
};

static int buf_reserve(struct gd_buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

static void buf_putc(struct gd_buf *b, char c)
{
    if (buf_reserve(b, 1) == 0)
        b->data[b->len++] = c;
}

static void buf_put(struct gd_buf *b, const char *p, size_t n)
{
    if (buf_reserve(b, n) == 0) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

static void arr_begin(struct arr *a)
{
    a->buf.len = 0;
    a->first = true;
    buf_putc(&a->buf, '{');
}

static void arr_sep(struct arr *a)
{
    if (!a->first)
        buf_putc(&a->buf, ',');
    a->first = false;
}

/* A text element, quoted: backslash and double quote are escaped. */
static void arr_text(struct arr *a, const char *s)
{
    arr_sep(a);
    buf_putc(&a->buf, '"');
    while (s && *s) {
        size_t run = strcspn(s, "\"\\");
        buf_put(&a->buf, s, run);
        s += run;
        if (!*s)
            break;
        buf_putc(&a->buf, '\\');
        buf_putc(&a->buf, *s++);
    }
    buf_putc(&a->buf, '"');
}

static void arr_null(struct arr *a)
{
    arr_sep(a);
    buf_put(&a->buf, "NULL", 4);
}

static void arr_i64(struct arr *a, int64_t v)
{
    /* by hand: snprintf is most of the cost of building a batch */
    char tmp[24], *p = tmp + sizeof(tmp);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    arr_sep(a);
    buf_put(&a->buf, p, (size_t)(tmp + sizeof(tmp) - p));
}

static void arr_f64(struct arr *a, double v)
{
    char tmp[32];
    arr_sep(a);
    int n = snprintf(tmp, sizeof(tmp), "%.9g", v);
    buf_put(&a->buf, tmp, (size_t)n);
}

static void arr_bool(struct arr *a, bool v)
{
    arr_sep(a);
    buf_putc(&a->buf, v ? 't' : 'f');
}

/* Attachments travel as one JSON array text per row (unnest() cannot
 * expand an array of arrays of different lengths). */
static void arr_json_strings(struct arr *a, char *const *v, uint32_t n)
{
    struct gd_buf j = {0};
    buf_putc(&j, '[');
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            buf_putc(&j, ',');
        buf_putc(&j, '"');
        for (const unsigned char *p = (const unsigned char *)v[i]; *p; p++) {
            if (*p == '"' || *p == '\\') {
                buf_putc(&j, '\\');
                buf_putc(&j, (char)*p);
            } else if (*p < 0x20) {
                char esc[8];
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                buf_put(&j, esc, 6);
            } else {
                buf_putc(&j, (char)*p);
            }
        }
        buf_putc(&j, '"');
    }
    buf_putc(&j, ']');
    buf_putc(&j, '\0');
    arr_text(a, j.data);
    gd_buf_fini(&j);
}

static const char *arr_end(struct arr *a)
{
    buf_putc(&a->buf, '}');
    buf_putc(&a->buf, '\0');
    return a->buf.data;
}

/* ---- statements ---- */

static const char sql_new[] =
    "INSERT INTO incident (id, source, external_id, category, priority, state, version, queue, "
    "owner_unit, owner_level, location_unit, address, lat, lon, description, reporter_name, "
    "reporter_phone, reporter_address, attachments, reported_at, received_at, sign_due, "
    "resolve_due, updated_at, sign_warn, resolve_warn, located_by) "
    "SELECT id, source, external_id, category, priority, state, version, queue, owner_unit, "
    "owner_level, location_unit, address, lat, lon, description, reporter_name, "
    "reporter_phone, reporter_address, CASE WHEN attachments IS NULL THEN '{}'::text[] "
    "ELSE ARRAY(SELECT json_array_elements_text(attachments::json)) END, "
    "gd_ts(reported_at), gd_ts(received_at), gd_ts(sign_due), gd_ts(resolve_due), gd_ts(at), "
    "gd_ts(sign_warn), gd_ts(resolve_warn), located_by "
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], "
    "$7::int[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::float8[], "
    "$14::float8[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[], "
    "$20::int8[], $21::int8[], $22::int8[], $23::int8[], $24::int8[], $25::int8[], "
    "$26::int8[], $27::text[]) AS r(id, source, external_id, category, priority, state, "
    "version, queue, owner_unit, owner_level, location_unit, address, lat, lon, description, "
    "reporter_name, reporter_phone, reporter_address, attachments, reported_at, received_at, "
    "sign_due, resolve_due, at, sign_warn, resolve_warn, located_by)";
#define SQL_NEW_PARAMS 27

static const char sql_update[] =
    "UPDATE incident i SET state = u.state, version = u.version, queue = u.queue, "
    "owner_unit = u.owner_unit, owner_level = u.owner_level, sign_due = gd_ts(u.sign_due), "
    "resolve_due = gd_ts(u.resolve_due), attempts = u.attempts, escalations = u.escalations, "
    "flagged = u.flagged, updated_at = gd_ts(u.at), sign_warn = gd_ts(u.sign_warn), "
    "resolve_warn = gd_ts(u.resolve_warn), extension_pending = gd_ts(u.extension_pending) "
    "FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], "
    "$7::int8[], $8::int8[], $9::int[], $10::int[], $11::bool[], $12::int8[], $13::int8[], "
    "$14::int8[], $15::int8[]) AS u(id, state, version, queue, owner_unit, owner_level, "
    "sign_due, resolve_due, attempts, escalations, flagged, at, sign_warn, resolve_warn, "
    "extension_pending) "
    "WHERE i.id = u.id AND i.version < u.version";
#define SQL_UPDATE_PARAMS 15

static const char sql_events[] =
    "INSERT INTO incident_event (incident_id, version, at, kind, from_state, to_state, queue, "
    "owner_unit, owner_level, actor, note, sign_due, resolve_due, location_unit, located_by) "
    "SELECT id, version, gd_ts(at), kind, from_state, to_state, queue, owner_unit, owner_level, "
    "actor, note, gd_ts(sign_due), gd_ts(resolve_due), location_unit, located_by "
    "FROM unnest($1::bigint[], $2::int[], $3::int8[], $4::text[], $5::text[], $6::text[], "
    "$7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::int8[], $13::int8[], "
    "$14::text[], $15::text[]) "
    "AS e(id, version, at, kind, from_state, to_state, queue, owner_unit, owner_level, actor, note, "
    "sign_due, resolve_due, location_unit, located_by)";
#define SQL_EVENTS_PARAMS 15

#define MAX_PARAMS SQL_NEW_PARAMS /* the largest */

struct params {
    struct arr a[MAX_PARAMS];
    const char *values[MAX_PARAMS];
};

static void params_begin(struct params *p, int n)
{
    for (int i = 0; i < n; i++)
        arr_begin(&p->a[i]);
}

static void params_end(struct params *p, int n)
{
    for (int i = 0; i < n; i++)
        p->values[i] = arr_end(&p->a[i]);
}

static void params_fini(struct params *p)
{
    for (int i = 0; i < MAX_PARAMS; i++)
        gd_buf_fini(&p->a[i].buf);
}

static void add_new_row(struct params *p, const struct store_change *c)
{
    const struct incident *inc = c->inc;
    struct arr *a = p->a;
    arr_i64(&a[0], (int64_t)inc->id);
    arr_text(&a[1], inc->source);
    arr_text(&a[2], inc->external_id);
    arr_text(&a[3], inc->category_code);
    arr_text(&a[4], gd_priority_name(inc->priority));
    arr_text(&a[5], gd_state_name(c->to));
    arr_i64(&a[6], c->version);
    arr_text(&a[7], c->queue);
    arr_text(&a[8], c->owner_unit);
    arr_text(&a[9], gd_level_name(c->owner_level));
    arr_text(&a[10], inc->location_code);
    arr_text(&a[11], inc->address);
    if (inc->has_coords) {
        arr_f64(&a[12], inc->lat);
        arr_f64(&a[13], inc->lon);
    } else {
        arr_null(&a[12]);
        arr_null(&a[13]);
    }
    arr_text(&a[14], inc->description);
    arr_text(&a[15], inc->reporter_name);
    arr_text(&a[16], inc->reporter_phone);
    arr_text(&a[17], inc->reporter_address);
    if (inc->n_attachments)
        arr_json_strings(&a[18], inc->attachments, inc->n_attachments);
    else
        arr_null(&a[18]);
    arr_i64(&a[19], inc->reported_at);
    arr_i64(&a[20], inc->received_at);
    arr_i64(&a[21], c->sign_due);
    arr_i64(&a[22], c->resolve_due);
    arr_i64(&a[23], c->at);
    arr_i64(&a[24], c->sign_warn);
    arr_i64(&a[25], c->resolve_warn);
    arr_text(&a[26], locate_method_name((enum locate_method)inc->located_by));
}

static void add_update_row(struct params *p, const struct store_change *c)
{
    struct arr *a = p->a;
    arr_i64(&a[0], (int64_t)c->incident_id);
    arr_text(&a[1], gd_state_name(c->to));
    arr_i64(&a[2], c->version);
    arr_text(&a[3], c->queue);
    arr_text(&a[4], c->owner_unit);
    arr_text(&a[5], gd_level_name(c->owner_level));
    arr_i64(&a[6], c->sign_due);
    arr_i64(&a[7], c->resolve_due);
    arr_i64(&a[8], c->attempts);
    arr_i64(&a[9], c->escalations);
    arr_bool(&a[10], c->flagged);
    arr_i64(&a[11], c->at);
    arr_i64(&a[12], c->sign_warn);
    arr_i64(&a[13], c->resolve_warn);
    arr_i64(&a[14], c->extension_pending);
}

static void add_event_row(struct params *p, const struct store_change *c)
{
    struct arr *a = p->a;
    arr_i64(&a[0], (int64_t)c->incident_id);
    arr_i64(&a[1], c->version);
    arr_i64(&a[2], c->at);
    arr_text(&a[3], gd_event_kind_name(c->event));
    if (c->kind == STORE_NEW)
        arr_null(&a[4]);
    else
        arr_text(&a[4], gd_state_name(c->from));
    arr_text(&a[5], gd_state_name(c->to));
    arr_text(&a[6], c->queue);
    arr_text(&a[7], c->owner_unit);
    arr_text(&a[8], gd_level_name(c->owner_level));
    arr_text(&a[9], c->actor);
    arr_text(&a[10], c->note);
    /* the deadlines in force after the event, for the reports */
    arr_i64(&a[11], c->sign_due);
    arr_i64(&a[12], c->resolve_due);
    /* where the incident was located, and how: on its receive event */
    bool first = c->kind == STORE_NEW;
    arr_text(&a[13], first ? c->inc->location_code : "");
    arr_text(&a[14], first ? locate_method_name((enum locate_method)c->inc->located_by) : "");
}

/* ---- the connection ---- */

static void on_poll(uv_poll_t *h, int status, int events);

static void watch(struct lane *l, int events)
{
    if (l->poll_active && l->poll_events == events)
        return;
    l->poll_events = events;
    l->poll_active = true;
    uv_poll_start(&l->poll, events, on_poll);
}

static void unwatch(struct lane *l)
{
    if (l->poll_active) {
        uv_poll_stop(&l->poll);
        l->poll_active = false;
    }
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lane *l = h->data;
    if (--l->s->handles_open > 0 || !l->s->closing)
        return;
    struct store *s = l->s;
    void (*closed)(void *) = s->closed;
    void *ctx = s->closed_ctx;
    free(s->dsn);
    free(s);
    if (closed)
        closed(ctx);
}

/* Re-initialises the poll handle for a new socket. The old one must have
 * been closed first; libuv forbids two handles on one fd. */
static void poll_reinit(struct lane *l, int fd)
{
    uv_poll_init(l->s->loop, &l->poll, fd);
    l->poll.data = l;
    l->poll_active = false;
    l->s->handles_open++;
}

static void drop_conn(struct lane *l)
{
    if (!l->conn)
        return;
    unwatch(l);
    uv_close((uv_handle_t *)&l->poll, on_handle_closed);
    PQfinish(l->conn);
    l->conn = NULL;
}

static void on_retry(uv_timer_t *t);

static void start_connect(struct lane *l)
{
    const char *const keys[] = {"dbname", "application_name", NULL};
    const char *const values[] = {l->s->dsn, STORE_APPLICATION_NAME, NULL};
    l->conn = PQconnectStartParams(keys, values, 1);
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
    poll_reinit(l, PQsocket(l->conn));
    watch(l, UV_WRITABLE);
}

static void on_retry(uv_timer_t *t)
{
    struct lane *l = t->data;
    if (l->state == CONN_DOWN && !l->conn && l->poll_active == false)
        start_connect(l);
}

static bool send_prepares(struct lane *l);

static void connected(struct lane *l)
{
    /* after a loss (not at start-up), the owner checks it may still write */
    if (l->was_up && l->s->opt.verify && l->s->opt.verify(l->s->opt.ctx) != 0) {
        conn_lost(l, "the broker's own check refused the connection");
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
    switch (PQconnectPoll(l->conn)) {
    case PGRES_POLLING_READING: watch(l, UV_READABLE); break;
    case PGRES_POLLING_WRITING: watch(l, UV_WRITABLE); break;
    case PGRES_POLLING_OK: connected(l); break;
    default: conn_lost(l, PQerrorMessage(l->conn)); break;
    }
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

/* The write statements are prepared once per connection (parsing and
 * planning them per batch would cost more than a small batch's insert). */
static const struct {
    const char *name;
    const char *sql;
    int nparams;
} statements[] = {
    {"gd_new", sql_new, SQL_NEW_PARAMS},
    {"gd_update", sql_update, SQL_UPDATE_PARAMS},
    {"gd_events", sql_events, SQL_EVENTS_PARAMS},
};

static bool send_prepared(struct lane *l, int which, const char *const *values)
{
    return PQsendQueryPrepared(l->conn, statements[which].name, statements[which].nparams,
                               values, NULL, NULL, 0) == 1;
}

/* Sends the PREPAREs of a new connection ahead of everything else. */
static bool send_prepares(struct lane *l)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return false;
    op->kind = OP_PREPARE;
    bool ok = true;
    for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
        ok = ok && PQsendPrepare(l->conn, statements[i].name, statements[i].sql,
                                 statements[i].nparams, NULL) == 1;
        op->n_commands++;
    }
    ok = ok && PQpipelineSync(l->conn) == 1;
    push_op(l, op);
    return ok;
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

    static const int nparams[3] = {SQL_NEW_PARAMS, SQL_UPDATE_PARAMS, SQL_EVENTS_PARAMS};
    struct params p[3];
    memset(p, 0, sizeof(p));
    for (int i = 0; i < 3; i++)
        params_begin(&p[i], nparams[i]);
    uint32_t n_new = 0, n_trans = 0;
    for (struct store_change *c = op->changes; c; c = c->next) {
        add_event_row(&p[2], c);
        if (c->kind == STORE_NEW) {
            add_new_row(&p[0], c);
            n_new++;
            continue;
        }
        n_trans++;
        /* The projection: only the last change of each incident in this
         * batch is written (UPDATE ... FROM cannot apply two rows to one
         * target row). */
        bool last = true;
        for (struct store_change *d = c->next; d; d = d->next)
            if (d->incident_id == c->incident_id && d->kind == STORE_TRANSITION) {
                last = false;
                break;
            }
        if (last)
            add_update_row(&p[1], c);
    }
    for (int i = 0; i < 3; i++)
        params_end(&p[i], nparams[i]);

    bool ok = true;
    if (n_new) {
        op->n_commands++;
        ok = ok && send_prepared(l, 0, p[0].values);
    }
    if (n_trans) {
        op->n_commands++;
        ok = ok && send_prepared(l, 1, p[1].values);
    }
    op->n_commands++;
    ok = ok && send_prepared(l, 2, p[2].values);
    ok = ok && PQpipelineSync(l->conn) == 1;
    for (int i = 0; i < 3; i++)
        params_fini(&p[i]);
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
        if (unique && c->kind == STORE_NEW) {
            /* (source, external_id) is stored already: an incident closed
             * before we started, or our own insert whose COMMIT we never
             * heard about before a reconnection. The caller looks it up. */
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

int store_open(struct store **ret, uv_loop_t *loop, const struct store_options *opt)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opt = *opt;
    s->dsn = strdup(opt->dsn);
    if (!s->dsn) {
        free(s);
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
    /* the DSN may be key=value pairs or a URI: expand it as dbname, then
     * let application_name override whatever it says */
    const char *const keys[] = {"dbname", "application_name", NULL};
    const char *const values[] = {dsn, STORE_APPLICATION_NAME, NULL};
    PGconn *conn = PQconnectdbParams(keys, values, 1);
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
