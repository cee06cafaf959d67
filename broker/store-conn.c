/* store-conn.c - the store's connections: opening them without blocking the loop, watching their sockets, losing them. */
#include "store-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

void store__watch(struct lane *l, int events)
{
    if (l->poll_active && l->poll_events == events)
        return;
    l->poll_events = events;
    l->poll_active = true;
    uv_poll_start(l->poll, events, l->s->on_poll);
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
    store__store_free(s);
    if (closed)
        closed(ctx);
}

void store__on_handle_closed(uv_handle_t *h)
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

void store__drop_conn(struct lane *l)
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

void store__start_connect(struct lane *l)
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
        store__conn_lost(l, "cannot store__watch the connection's socket");
        return;
    }
    store__watch(l, UV_WRITABLE);
}

static void on_retry(uv_timer_t *t)
{
    struct lane *l = t->data;
    if (l->state == CONN_DOWN && !l->conn)
        store__start_connect(l);
}

/* Creates the statements' row types on the new connection and sets its
 * planner (store__rows_session_sql), blocking, once per connection like
 * the verify check, and notes the types' OIDs. Returns 0, or -1 with
 * PostgreSQL's message in err. */
static int make_row_types(struct lane *l, char *err, size_t errlen)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT 'pg_temp.%s'::regtype::oid, 'pg_temp.%s'::regtype::oid, "
             "'pg_temp.%s'::regtype::oid",
             store__statement_row_type(ST_NEW), store__statement_row_type(ST_UPDATE),
             store__statement_row_type(ST_EVENTS));
    PGresult *res = PQexec(l->conn, store__rows_session_sql(l->s->batch));
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
        store__conn_lost(l, "the broker's own check refused the connection");
        return;
    }
    char err[256];
    if (make_row_types(l, err, sizeof(err)) < 0) {
        store__conn_lost(l, err);
        return;
    }
    if (PQsetnonblocking(l->conn, 1) != 0 || PQenterPipelineMode(l->conn) != 1 ||
        !store__send_prepares(l)) {
        store__conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    l->was_up = true;
    l->state = CONN_UP;
    l->failures = 0;
    log_info("store", "database connected (lane %d)", l->index);
    store__watch(l, UV_READABLE);
    struct store *s = l->s;
    if (++s->n_up == s->n_lanes && s->opt.on_state)
        s->opt.on_state(s->opt.ctx, true);
    l->s->pump(l);
}

void store__continue_connect(struct lane *l)
{
    PostgresPollingStatusType st = PQconnectPoll(l->conn);
    if (st == PGRES_POLLING_OK) {
        connected(l);
        return;
    }
    if (st != PGRES_POLLING_READING && st != PGRES_POLLING_WRITING) {
        store__conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    /* Any step may have closed the socket and opened another, perhaps under
     * the same number: libpq moves to the next host of a multi-host DSN
     * when one refuses or is read-only. So every step watches anew. */
    if (poll_open(l) < 0) {
        store__conn_lost(l, "cannot store__watch the connection's socket");
        return;
    }
    store__watch(l, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE);
}

void store__op_free(struct op *op)
{
    free(op->error);
    if (op->result)
        PQclear(op->result);
    free(op);
}

/* Puts a list of changes back at the head of the pending queue. */
void store__requeue_front(struct lane *l, struct store_change *head, uint32_t n)
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

void store__conn_lost(struct lane *l, const char *why)
{
    bool was_up = l->state == CONN_UP;
    if (!was_up)
        l->failures++;
    log_printf(was_up || l->failures % 100 == 1 ? LOG_WARN : LOG_DEBUG, "store",
               "lane %d: database connection %s: %s", l->index, was_up ? "lost" : "failed",
               why && *why ? why : "(no message)");
    store__drop_conn(l);
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
        store__op_free(op);
        op = next;
    }
    store__requeue_front(l, resend, n_resend);
    l->commits_in_flight = 0;
    l->n_in_flight = 0;
    store__busy_clear(&l->busy);
    if (was_up) {
        struct store *s = l->s;
        if (s->n_up-- == s->n_lanes && s->opt.on_state)
            s->opt.on_state(s->opt.ctx, false);
    }
    if (!l->s->closing)
        uv_timer_start(&l->retry_timer, on_retry, l->s->opt.retry_ms, 0);
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

void store__push_op(struct lane *l, struct op *op)
{
    if (l->ops_tail)
        l->ops_tail->next = op;
    else
        l->ops = op;
    l->ops_tail = op;
}

/* Sends the PREPAREs of a new connection ahead of everything else. */
bool store__send_prepares(struct lane *l)
{
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return false;
    op->kind = OP_PREPARE;
    bool ok = true;
    for (int i = 0; i < ST_COUNT; i++) {
        ok = ok && PQsendPrepare(l->conn, store__statement_name((enum statement)i),
                                 store__rows_sql(l->s->batch, (enum statement)i), 1, NULL) == 1;
        op->n_commands++;
    }
    ok = ok && PQpipelineSync(l->conn) == 1;
    store__push_op(l, op);
    return ok;
}

void store__store_free(struct store *s)
{
    for (int i = 0; i < s->n_lanes; i++)
        store__busy_free(&s->lanes[i].busy);
    store__rows_free(s->batch);
    free(s->dsn);
    free(s);
}
