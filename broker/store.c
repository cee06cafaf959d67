/* store.c - durable state changes: group commit to PostgreSQL in pipeline mode (sending, results, life cycle).
 *
 * The store's other files: store-conn.c (connections), store-rows.c (the
 * rows of the incident writes and the event log), store-setup.c
 * (migrations, fencing), store-recover.c (reading incidents back). */
#include "store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"

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

/* ---- sending ---- */

/* Sends prepared statement `st` with the batch's parameters. */
static bool send_statement(struct lane *l, enum statement st)
{
    const struct pgarray *rows = store__rows_param(l->s->batch, st);
    const char *value = pgarray_data(rows);
    int length = pgarray_length(rows), format = 1; /* binary */
    return PQsendQueryPrepared(l->conn, store__statement_name(st), 1, &value, &length, &format,
                               0) == 1;
}

/* The changes of `op` are no longer in flight. */
static void op_landed(struct lane *l, const struct op *op)
{
    for (const struct store_change *c = op->changes; c; c = c->next)
        store__busy_del(&l->busy, c->incident_id);
    l->commits_in_flight--;
    l->n_in_flight -= op->n_changes;
    if (!l->commits_in_flight)
        store__busy_clear(&l->busy); /* and an overflow is over */
}

/* Takes up to `max` changes from the pending queue and sends them as one
 * transaction, its own Sync behind it. While other commits are in flight
 * it stops at the first change of an incident that has a change in one of
 * them. Returns the number of changes sent (0: none could go). */
static uint32_t send_commit(struct lane *l, uint32_t max)
{
    if (l->commits_in_flight && store__busy_has(&l->busy, l->pending->incident_id))
        return 0;
    struct op *op = calloc(1, sizeof(*op));
    if (!op)
        return 0;
    op->kind = OP_COMMIT;
    op->single = l->singles_left > 0;
    struct store_change *tail = NULL;
    while (l->pending && op->n_changes < max) {
        struct store_change *c = l->pending;
        if (l->commits_in_flight && store__busy_has(&l->busy, c->incident_id))
            break;
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
    if (store__rows_build(l->s->batch, op->changes, l->row_type, has) < 0) {
        /* out of memory: put them back and try again with the next event */
        log_error("store", "out of memory building a batch of %u changes", op->n_changes);
        store__requeue_front(l, op->changes, op->n_changes);
        op->changes = NULL;
        store__op_free(op);
        return 0;
    }
    bool ok = true;
    for (int i = 0; i < ST_COUNT; i++) {
        if (has[i]) {
            op->n_commands++;
            ok = ok && send_statement(l, (enum statement)i);
        }
    }
    ok = ok && PQpipelineSync(l->conn) == 1;
    op->started_us = store__now_us();
    l->commits_in_flight++;
    l->n_in_flight += op->n_changes;
    for (const struct store_change *c = op->changes; c; c = c->next)
        store__busy_add(&l->busy, c->incident_id);
    uint32_t n = op->n_changes;
    store__push_op(l, op);
    if (!ok)
        store__conn_lost(l, PQerrorMessage(l->conn));
    return n;
}

static void on_flush_timer(uv_timer_t *t)
{
    store__pump(t->data);
}

/* Whether the lane may send another commit now: none in flight, or
 * fewer than the pipeline's depth and enough pending to be worth a
 * transaction of its own (a commit behind another costs the backend a
 * WAL flush of its own, so a few changes wait for the one in flight). */
static bool room_for_commit(const struct lane *l)
{
    const struct store *s = l->s;
    if (!l->commits_in_flight)
        return true;
    if (l->commits_in_flight >= s->pipeline)
        return false;
    return l->singles_left || l->n_pending >= s->pipeline_min;
}

/* Sends what can be sent and flushes libpq's output buffer. */
void store__pump(struct lane *l)
{
    if (l->state != CONN_UP)
        return;
    while (l->pending && room_for_commit(l)) {
        if (l->n_pending < l->s->opt.batch_max && l->s->opt.flush_ms != 0 &&
            uv_is_active((uv_handle_t *)&l->flush_timer))
            break;
        /* Either a full batch, or the flush timer expired (we are called
         * from it), or nothing is waiting for it yet: a lone change after
         * a quiet period goes out at once, and later ones gather behind
         * it while its commit runs. */
        uv_timer_stop(&l->flush_timer);
        uint32_t sent = send_commit(l, l->singles_left ? 1 : l->s->opt.batch_max);
        if (l->state != CONN_UP)
            return;
        if (!sent)
            break;
    }
    int rc = PQflush(l->conn);
    if (rc < 0) {
        store__conn_lost(l, PQerrorMessage(l->conn));
        return;
    }
    store__watch(l, rc == 1 ? UV_READABLE | UV_WRITABLE : UV_READABLE);
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
    if (l->state != CONN_UP || !room_for_commit(l))
        return; /* goes out when the connection returns / after a commit */
    if (l->n_pending >= s->opt.batch_max || s->opt.flush_ms == 0) {
        store__pump(l);
    } else if (!uv_is_active((uv_handle_t *)&l->flush_timer)) {
        uv_timer_start(&l->flush_timer, on_flush_timer, s->opt.flush_ms, 0);
    }
}

void store_flush(struct store *s)
{
    for (int i = 0; i < s->n_lanes; i++) {
        uv_timer_stop(&s->lanes[i].flush_timer);
        store__pump(&s->lanes[i]);
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
    op->started_us = store__now_us();
    bool ok = PQsendQueryParams(l->conn, sql, nparams, NULL, values, NULL, NULL, 0) == 1 &&
              PQpipelineSync(l->conn) == 1;
    l->n_queries++;
    store__push_op(l, op);
    if (!ok) {
        store__conn_lost(l, PQerrorMessage(l->conn));
        return 0; /* store__conn_lost answered the callback with NULL */
    }
    store__pump(l);
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
    op_landed(l, op);
    if (op->single && l->singles_left > 0)
        l->singles_left--;
    if (op->failed && op->n_changes > 1) {
        /* Retry each change in its own transaction, so that one bad change
         * cannot fail its neighbours. */
        log_warn("store", "batch of %u changes failed (%s); retrying them one by one",
                 op->n_changes, op->error ? op->error : "?");
        store__requeue_front(l, op->changes, op->n_changes);
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
        record_latency(l, store__now_us() - op->started_us);
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
            store__conn_lost(l, op->error ? op->error : "PREPARE failed");
        return;
    }
    if (op->kind == OP_QUERY) {
        l->n_queries--;
        op->cb(op->ctx, op->result);
        return;
    }
    if (op->failed && !data_error(op->sqlstate)) {
        /* the commits sent after it are sent again too: conn_lost puts
         * them back, then this one goes in front of them */
        op_landed(l, op);
        char why[256];
        snprintf(why, sizeof(why), "commit failed, will retry: %s",
                 op->error ? op->error : "unknown error");
        store__conn_lost(l, why);
        store__requeue_front(l, op->changes, op->n_changes);
        op->changes = NULL;
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
            store__op_free(op);
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
        store__conn_lost(l, PQerrorMessage(l->conn));
}

void store__on_poll(uv_poll_t *h, int status, int events)
{
    struct lane *l = h->data;
    if (l->state == CONN_CONNECTING) {
        store__continue_connect(l);
        return;
    }
    if (l->state != CONN_UP)
        return;
    if (status < 0) {
        store__conn_lost(l, uv_strerror(status));
        return;
    }
    if (events & UV_READABLE) {
        if (!PQconsumeInput(l->conn)) {
            store__conn_lost(l, PQerrorMessage(l->conn));
            return;
        }
        read_results(l);
    }
    store__pump(l);
}

/* ---- life cycle ---- */

int store_open(struct store **ret, uv_loop_t *loop, const struct store_options *opt)
{
    struct store *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->opt = *opt;
    s->on_poll = store__on_poll;
    s->pump = store__pump;
    s->dsn = strdup(opt->dsn);
    if (!s->dsn || store__rows_new(&s->batch) < 0) {
        store__store_free(s);
        return -ENOMEM;
    }
    s->n_lanes = opt->lanes < 1 ? 1 : opt->lanes > STORE_MAX_LANES ? STORE_MAX_LANES : opt->lanes;
    s->pipeline = opt->pipeline < 1                     ? 1
                  : opt->pipeline > STORE_MAX_PIPELINE ? STORE_MAX_PIPELINE
                                                       : opt->pipeline;
    s->pipeline_min = opt->batch_max / 4 ? opt->batch_max / 4 : 1;
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
            store__start_connect(&s->lanes[i]);
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
            store__op_free(op);
        }
        store__drop_conn(l);
        uv_timer_stop(&l->flush_timer);
        uv_timer_stop(&l->retry_timer);
        uv_close((uv_handle_t *)&l->flush_timer, store__on_handle_closed);
        uv_close((uv_handle_t *)&l->retry_timer, store__on_handle_closed);
    }
}
