/* intake.c - the intake endpoint: SUBMIT(S), QUERY, FEEDBACK, SNAPSHOT, DISPATCH, APPROVE. */
#include "intake.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

#include "auth.h"
#include "deadline.h"
#include "lifecycle.h"
#include "log.h"
#include "peers.h"
#include "queue.h"
#include "ratelimit.h"
#include "route.h"
#include "status.h"

/* A SUBMIT may say it was reported at most this far in the future
 * (clock skew between the reporting system and us). */
#define MAX_CLOCK_SKEW_MS (5 * 60 * 1000)
#define GAUGES_PER_MESSAGE 200
/* SNAPSHOTs one client may send at once; after them, one per gauge
 * period (a newer one would show the same figures). */
#define SNAPSHOT_BURST 3

static void count_answer(struct broker *b, const struct gd_msg *m)
{
    if (m->type == GD_T_ACCEPTED)
        m->u.accepted.duplicate ? b->counters.duplicates++ : b->counters.accepted++;
    else if (m->type == GD_T_REJECTED)
        b->counters.rejected++;
    else if (m->type == GD_T_BUSY)
        b->counters.busy++;
}

/* Sends the body encoded in b->out as a message of `type` to client `rid`. */
static int send_out(struct broker *b, const uint8_t *rid, size_t rid_len, enum gd_type type)
{
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(type, header);
    const void *parts[3] = {rid, header, b->out.data};
    size_t lens[3] = {rid_len, sizeof(header), b->out.len};
    return zsock_send(&b->intake, parts, lens, 3);
}

/* Sends `m` to client `rid`. Returns 0, or a negative errno when it was
 * not sent: the client is gone (it just misses the answer) or its queue
 * is full (it does not read; see intake_open). */
static int send_to(struct broker *b, const uint8_t *rid, size_t rid_len, const struct gd_msg *m)
{
    gd_buf_reset(&b->out);
    int rc = gd_encode(m, &b->out);
    if (rc < 0) {
        log_error("intake", "cannot encode %s: %s", gd_type_name(m->type),
                  gd_code_name((enum gd_code)-rc));
        return rc;
    }
    rc = send_out(b, rid, rid_len, m->type);
    count_answer(b, m);
    return rc;
}

/* REJECTED `code`; `message` NULL says the code's own words. */
static struct gd_msg rejected(uint64_t ref, enum gd_code code, const char *field,
                              const char *message)
{
    struct gd_msg m = {.type = GD_T_REJECTED};
    m.u.error = (struct gd_error_reply){
        .ref = ref,
        .code = code,
        .message = gd_str_c(message ? message : gd_code_message(code)),
        .field = gd_str_c(field),
    };
    return m;
}

static void reject(struct broker *b, const uint8_t *rid, size_t rid_len, uint64_t ref,
                   enum gd_code code, const char *field, const char *message)
{
    struct gd_msg m = rejected(ref, code, field, message);
    send_to(b, rid, rid_len, &m);
}

static void busy_for(struct broker *b, const uint8_t *rid, size_t rid_len, uint64_t ref,
                     const char *reason, uint32_t retry_ms)
{
    struct gd_msg m = {.type = GD_T_BUSY};
    m.u.busy = (struct gd_busy){.ref = ref, .retry_ms = retry_ms, .reason = gd_str_c(reason)};
    send_to(b, rid, rid_len, &m);
}

static void busy(struct broker *b, const uint8_t *rid, size_t rid_len, uint64_t ref,
                 const char *reason)
{
    busy_for(b, rid, rid_len, ref, reason, b->cfg.busy_retry_ms);
}

/* Why new work cannot be taken now, or NULL when it can. */
static const char *overloaded(struct broker *b)
{
    if (b->stopping)
        return "shutdown";
    if (!store_is_up(b->store))
        return "database_down";
    if (store_backlog(b->store) >= b->cfg.backlog_max)
        return "backlog";
    return NULL;
}

/* ---- clients with requests in progress ---- */

/* The client record for `rid`, created if needed, with one more pending
 * request; NULL when the client is at its limit (or out of memory). */
static struct client *client_hold(struct broker *b, const uint8_t *rid, size_t rid_len)
{
    struct client *c = NULL;
    HASH_FIND(hh, b->clients, rid, rid_len, c);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return NULL;
        memcpy(c->rid, rid, rid_len);
        c->rid_len = rid_len;
        HASH_ADD(hh, b->clients, rid, c->rid_len, c);
    }
    if (c->pending >= b->cfg.max_pending)
        return NULL;
    c->pending++;
    return c;
}

static void client_release(struct broker *b, struct client *c)
{
    if (--c->pending == 0) {
        HASH_DELETE(hh, b->clients, c);
        free(c);
    }
}

/* What a principal is told when `action` falls outside its scope. */
static void scope_message(char *buf, size_t size, const char *action, const struct unit *where)
{
    snprintf(buf, size, "%s outside your scope (%s)", action,
             where ? where->code : "no known location: district-wide principals only");
}

/* What a client at its --max-pending limit is told. */
static void limit_message(struct broker *b, char *buf, size_t size)
{
    snprintf(buf, size,
             "more than %u requests of this client are waiting for the database; "
             "wait for answers before sending more",
             b->cfg.max_pending);
}

/* A waiter for this request, counted against the client's limit; NULL
 * (after answering REJECTED) when the client has too many requests open. */
static struct waiter *hold(struct broker *b, const uint8_t *rid, size_t rid_len, enum gd_type type,
                           uint64_t ref)
{
    struct client *c = client_hold(b, rid, rid_len);
    struct waiter *w = c ? waiter_for_client(c, type, ref) : NULL;
    if (!w) {
        if (c)
            client_release(b, c);
        char msg[128];
        limit_message(b, msg, sizeof(msg));
        reject(b, rid, rid_len, ref, GD_E_LIMIT, NULL, msg);
    }
    return w;
}

/* Forgets waiter `w` of a request that could not be recorded, and says so. */
static void give_up(struct broker *b, struct waiter *w, const uint8_t *rid, size_t rid_len)
{
    struct client *c = w->client;
    uint64_t ref = w->ref;
    free(w);
    client_release(b, c);
    reject(b, rid, rid_len, ref, GD_E_INTERNAL, NULL, "out of memory");
}

/* ---- SUBMITS: each item answered into its slot ---- */

/* What a result's strings point to. */
struct submit_text {
    char text[GD_MAX_QUEUE + 1]; /* the queue, BUSY's reason or REJECTED's field */
    char *message;               /* REJECTED's message */
};

/* A SUBMITS whose items are being decided and stored. It holds one of
 * the client's --max-pending places per item read, from the moment the
 * item is read until SUBMITTED is sent. */
struct submits {
    struct submits *prev, *next; /* b->submits */
    struct client *client;
    uint64_t ref;
    uint32_t n;                  /* items */
    uint32_t left;               /* outcomes still to come (+1 while reading the items) */
    uint32_t held;               /* places held */
    struct gd_submit_result *res; /* n, in item order */
    struct submit_text *text;     /* n */
};

static size_t copy_text(char *dst, struct gd_str v)
{
    size_t n = v.len < GD_MAX_QUEUE ? v.len : GD_MAX_QUEUE;
    if (n)
        memcpy(dst, v.ptr, n);
    dst[n] = '\0';
    return n;
}

static void submits_free(struct submits *s)
{
    for (uint32_t i = 0; i < s->n; i++)
        free(s->text[i].message);
    free(s);
}

/* Sends SUBMITTED and forgets `s`. */
static void submits_finish(struct broker *b, struct submits *s)
{
    struct gd_msg m = {.type = GD_T_SUBMITTED};
    m.u.submitted = (struct gd_submitted){.ref = s->ref, .n_results = s->n, .results = s->res};
    gd_buf_reset(&b->out);
    int rc = gd_encode(&m, &b->out);
    if (rc == -GD_E_TOO_LARGE) {
        /* many long refusals: each said in its code's few words */
        for (uint32_t i = 0; i < s->n; i++)
            if (s->res[i].code != GD_OK && s->res[i].code != GD_E_BUSY)
                s->res[i].message = gd_str_c(gd_code_message(s->res[i].code));
        gd_buf_reset(&b->out);
        rc = gd_encode(&m, &b->out);
    }
    struct client *c = s->client;
    if (rc < 0)
        log_error("intake", "cannot encode SUBMITTED of %u results: %s", s->n,
                  gd_code_name((enum gd_code)-rc));
    else
        send_out(b, c->rid, c->rid_len, GD_T_SUBMITTED);
    c->pending -= s->held - 1;
    client_release(b, c);
    DL_DELETE(b->submits, s);
    submits_free(s);
}

/* Records answer `m` (ACCEPTED, REJECTED or BUSY) as the outcome of item
 * `slot` of `s`; sends SUBMITTED when it was the last one to come. */
static void submits_record(struct broker *b, struct submits *s, uint32_t slot,
                           const struct gd_msg *m)
{
    struct gd_submit_result *r = &s->res[slot];
    struct submit_text *t = &s->text[slot];
    count_answer(b, m);
    if (m->type == GD_T_ACCEPTED) {
        const struct gd_accepted *a = &m->u.accepted;
        size_t qn = copy_text(t->text, a->queue);
        *r = (struct gd_submit_result){.ref = a->ref,
                                       .code = GD_OK,
                                       .incident_id = a->incident_id,
                                       .version = a->version,
                                       .duplicate = a->duplicate,
                                       .state = a->state,
                                       .queue = {t->text, qn}};
    } else if (m->type == GD_T_BUSY) {
        const struct gd_busy *y = &m->u.busy;
        size_t n = copy_text(t->text, y->reason);
        *r = (struct gd_submit_result){.ref = y->ref,
                                       .code = GD_E_BUSY,
                                       .retry_ms = y->retry_ms,
                                       .reason = {t->text, n}};
    } else {
        const struct gd_error_reply *e = &m->u.error;
        size_t n = copy_text(t->text, e->field);
        t->message = strndup(e->message.ptr ? e->message.ptr : "", e->message.len);
        *r = (struct gd_submit_result){
            .ref = e->ref,
            .code = e->code,
            .field = {t->text, n},
            .message = t->message ? gd_str_c(t->message) : gd_str_c(gd_code_message(e->code)),
        };
    }
    if (--s->left == 0)
        submits_finish(b, s);
}

/* Where the answer to one SUBMIT goes: to the client, or into slot
 * `slot` of `batch`. */
struct reply_to {
    const uint8_t *rid;
    size_t rid_len;
    struct submits *batch;
    uint32_t slot;
};

static void reply(struct broker *b, const struct reply_to *to, const struct gd_msg *m)
{
    if (to->batch)
        submits_record(b, to->batch, to->slot, m);
    else
        send_to(b, to->rid, to->rid_len, m);
}

static void reply_reject(struct broker *b, const struct reply_to *to, uint64_t ref,
                         enum gd_code code, const char *field, const char *message)
{
    struct gd_msg m = rejected(ref, code, field, message);
    reply(b, to, &m);
}

static void reply_busy(struct broker *b, const struct reply_to *to, uint64_t ref,
                       const char *reason)
{
    struct gd_msg m = {.type = GD_T_BUSY};
    m.u.busy = (struct gd_busy){
        .ref = ref, .retry_ms = b->cfg.busy_retry_ms, .reason = gd_str_c(reason)};
    reply(b, to, &m);
}

/* A waiter for a SUBMIT: counted against the client's limit when alone
 * (an item's place is held by its SUBMITS). NULL after answering. */
static struct waiter *hold_submit(struct broker *b, const struct reply_to *to, uint64_t ref)
{
    if (!to->batch)
        return hold(b, to->rid, to->rid_len, GD_T_ACCEPTED, ref);
    struct waiter *w = waiter_for_client(to->batch->client, GD_T_ACCEPTED, ref);
    if (!w) {
        reply_reject(b, to, ref, GD_E_INTERNAL, NULL, "out of memory");
        return NULL;
    }
    w->batch = to->batch;
    w->slot = to->slot;
    return w;
}

static void give_up_submit(struct broker *b, struct waiter *w, const struct reply_to *to)
{
    if (!to->batch) {
        give_up(b, w, to->rid, to->rid_len);
        return;
    }
    uint64_t ref = w->ref;
    free(w);
    reply_reject(b, to, ref, GD_E_INTERNAL, NULL, "out of memory");
}

void intake_answer(struct broker *b, struct waiter *w, const struct gd_msg *m)
{
    if (w->batch) {
        submits_record(b, w->batch, w->slot, m);
        return;
    }
    send_to(b, w->client->rid, w->client->rid_len, m);
    client_release(b, w->client);
}

/* ---- SUBMIT ---- */

/* `where` is where the SUBMIT's location points (locate_submit). */
static void handle_submit(struct broker *b, const struct reply_to *to, const struct gd_submit *m,
                          const struct locate_result *where)
{
    b->counters.submitted++;
    struct incident *inc = incident_by_key(b, m->source, m->external_id);
    if (inc) {
        if (inc->durable) {
            struct gd_msg r = {.type = GD_T_ACCEPTED};
            r.u.accepted = (struct gd_accepted){
                .ref = m->ref,
                .incident_id = inc->id,
                .version = inc->version,
                .duplicate = true,
                .state = inc->state,
                .queue = gd_str_c(inc->queue->name),
            };
            reply(b, to, &r);
            return;
        }
        if (!store_is_up(b->store)) {
            reply_busy(b, to, m->ref, "database_down");
            return;
        }
        /* the first copy is still being stored: answer both together */
        struct waiter *w = hold_submit(b, to, m->ref);
        if (w) {
            w->duplicate = true;
            w->next = inc->waiters;
            inc->waiters = w;
        }
        return;
    }
    const char *why = overloaded(b);
    if (!why && b->n_open >= b->cfg.max_open)
        why = "capacity";
    if (why) {
        reply_busy(b, to, m->ref, why);
        return;
    }
    int64_t now = broker_now(b);
    if (m->reported_at > now + MAX_CLOCK_SKEW_MS) {
        reply_reject(b, to, m->ref, GD_E_BAD_VALUE, "reported_at",
                     "reported_at is in the future; send milliseconds since the Unix epoch, UTC");
        return;
    }
    struct category *cat = org_category(&b->org, m->category.ptr, m->category.len);
    struct route r;
    if (route_resolve(b, cat, where->unit, &r) < 0) {
        reply_reject(b, to, m->ref, GD_E_INTERNAL, NULL, "out of memory");
        return;
    }
    struct waiter *w = hold_submit(b, to, m->ref);
    if (!w)
        return;
    /* the incident's location unit is the one found (as submitted when
     * none was found) */
    struct gd_submit located = *m;
    if (where->unit)
        located.location.unit = gd_str_c(where->unit->code);
    inc = incident_from_submit(&located, cat, where->unit, b->next_id, now);
    if (!inc) {
        give_up_submit(b, w, to);
        return;
    }
    inc->located_by = (uint8_t)where->by;
    b->next_id++;
    lifecycle_receive(b, inc, &r, where->reason, w);
}

/* Every item as if it had come alone, each answered into its slot; `p`
 * is the sender's principal (NULL when security is off), its role
 * already allowed to SUBMIT: the scope is checked item by item. */
static void handle_submits(struct broker *b, const uint8_t *rid, size_t rid_len,
                           const struct gd_submits *m, const struct principal *p)
{
    char msg[192];
    struct client *c = client_hold(b, rid, rid_len);
    if (!c) {
        limit_message(b, msg, sizeof(msg));
        reject(b, rid, rid_len, m->ref, GD_E_LIMIT, NULL, msg);
        return;
    }
    uint32_t n = m->n_items;
    struct submits *s =
        calloc(1, sizeof(*s) + n * (sizeof(struct gd_submit_result) + sizeof(struct submit_text)));
    if (!s) {
        client_release(b, c);
        reject(b, rid, rid_len, m->ref, GD_E_INTERNAL, NULL, "out of memory");
        return;
    }
    s->client = c;
    s->ref = m->ref;
    s->n = n;
    s->left = n + 1; /* +1: not sent before every item is read */
    s->held = 1;
    s->res = (struct gd_submit_result *)(s + 1);
    s->text = (struct submit_text *)(s->res + n);
    DL_APPEND(b->submits, s);
    for (uint32_t i = 0; i < n; i++) {
        const struct gd_submit *it = &m->items[i];
        const struct reply_to to = {rid, rid_len, s, i};
        if (i > 0) {
            if (c->pending >= b->cfg.max_pending) {
                limit_message(b, msg, sizeof(msg));
                reply_reject(b, &to, it->ref, GD_E_LIMIT, NULL, msg);
                continue;
            }
            c->pending++;
            s->held++;
        }
        struct locate_result where = {.by = LOCATE_NONE};
        locate_submit(b->locate, &b->org, &it->location, &where);
        if (b->auth.enabled && !auth_in_scope(p, where.unit)) {
            scope_message(msg, sizeof(msg), "SUBMIT", where.unit);
            reply_reject(b, &to, it->ref, GD_E_DENIED, "location", msg);
            auth_refused(b, p->name, msg);
            continue;
        }
        handle_submit(b, &to, it, &where);
    }
    if (--s->left == 0)
        submits_finish(b, s);
}

/* ---- QUERY ---- */

static const char sql_query_by_id[] =
    "SELECT " INCIDENT_COLUMNS ", e.version, gd_ms(e.at), e.kind, coalesce(e.from_state, ''), "
    "e.to_state, e.queue, e.actor, e.note "
    "FROM incident i LEFT JOIN LATERAL (SELECT * FROM incident_event ev "
    "WHERE ev.incident_id = i.id ORDER BY ev.version DESC LIMIT 513) e ON $2 "
    "WHERE i.id = $1 ORDER BY e.version";

static const char sql_query_by_key[] =
    "SELECT " INCIDENT_COLUMNS ", e.version, gd_ms(e.at), e.kind, coalesce(e.from_state, ''), "
    "e.to_state, e.queue, e.actor, e.note "
    "FROM incident i LEFT JOIN LATERAL (SELECT * FROM incident_event ev "
    "WHERE ev.incident_id = i.id ORDER BY ev.version DESC LIMIT 513) e ON $3 "
    "WHERE i.source = $1 AND i.external_id = $2 ORDER BY e.version";

struct query_ctx {
    struct broker *b;
    struct waiter *w;
    char principal[64]; /* who asked ("" with security off); checked again on the answer */
};

static void on_query_result(void *ctx, const PGresult *res)
{
    struct query_ctx *q = ctx;
    struct broker *b = q->b;
    struct waiter *w = q->w;
    struct principal *p = NULL;
    if (b->auth.enabled)
        HASH_FIND(hn, b->auth.by_name, q->principal, strlen(q->principal), p);
    free(q);
    struct gd_msg m = {0};
    bool hidden = false;
    if (b->auth.enabled && res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res)) {
        /* answered only within the asker's scope, as it is now */
        const char *loc = PQgetvalue(res, 0, 10);
        hidden = !p || !auth_in_scope(p, org_unit(&b->org, loc, strlen(loc)));
    }
    if (hidden) {
        m.type = GD_T_REJECTED;
        m.u.error = (struct gd_error_reply){
            .ref = w->ref, .code = GD_E_NOT_FOUND, .message = GD_STR("no such incident")};
    } else if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
        m.type = GD_T_BUSY;
        m.u.busy = (struct gd_busy){.ref = w->ref,
                                    .retry_ms = b->cfg.busy_retry_ms,
                                    .reason = GD_STR("database_down")};
        if (res)
            log_error("intake", "QUERY failed: %s", PQresultErrorMessage(res));
    } else if (PQntuples(res) == 0) {
        m.type = GD_T_REJECTED;
        m.u.error = (struct gd_error_reply){
            .ref = w->ref,
            .code = GD_E_NOT_FOUND,
            .message = GD_STR("no such incident"),
        };
    } else {
        struct incident *tmp = incident_from_row(b, res, 0);
        if (!tmp) {
            m.type = GD_T_REJECTED;
            m.u.error = (struct gd_error_reply){
                .ref = w->ref, .code = GD_E_INTERNAL, .message = GD_STR("out of memory")};
            intake_answer(b, w, &m);
            free(w);
            return;
        }
        m.type = GD_T_INCIDENT;
        struct gd_incident_reply *r = &m.u.incident;
        r->ref = w->ref;
        incident_view(tmp, true, &r->incident);
        r->incident.queue = gd_str_c(PQgetvalue(res, 0, 7));
        r->incident.owner = gd_str_c(PQgetvalue(res, 0, 8));
        int level = gd_level_parse(gd_str_c(PQgetvalue(res, 0, 9)));
        r->incident.level = level < 0 ? GD_LEVEL_DISTRICT : (enum gd_level)level;
        int n = PQntuples(res);
        int first = 0;
        if (PQgetisnull(res, 0, INCIDENT_NCOLUMNS))
            n = 0; /* events not asked for */
        if (n > GD_MAX_EVENTS) {
            r->truncated = true;
            first = n - GD_MAX_EVENTS;
            n = GD_MAX_EVENTS;
        }
        struct gd_event *ev = calloc((size_t)(n ? n : 1), sizeof(*ev));
        for (int i = 0; ev && i < n; i++) {
            int row = first + i, col = INCIDENT_NCOLUMNS;
            int k = 0;
            for (; k < GD_EV_COUNT; k++)
                if (strcmp(gd_event_kind_name((enum gd_event_kind)k),
                           PQgetvalue(res, row, col + 2)) == 0)
                    break;
            int from = gd_state_parse(gd_str_c(PQgetvalue(res, row, col + 3)));
            int to = gd_state_parse(gd_str_c(PQgetvalue(res, row, col + 4)));
            ev[i] = (struct gd_event){
                .version = (uint32_t)strtoul(PQgetvalue(res, row, col), NULL, 10),
                .at = strtoll(PQgetvalue(res, row, col + 1), NULL, 10),
                .kind = (enum gd_event_kind)(k < GD_EV_COUNT ? k : GD_EV_RECEIVE),
                .from = from < 0 ? GD_ST_RECEIVED : (enum gd_state)from,
                .to = to < 0 ? GD_ST_RECEIVED : (enum gd_state)to,
                .queue = gd_str_c(PQgetvalue(res, row, col + 5)),
                .actor = gd_str_c(PQgetvalue(res, row, col + 6)),
                .note = gd_str_c(PQgetvalue(res, row, col + 7)),
            };
        }
        r->events = ev;
        r->n_events = ev ? (uint32_t)n : 0;
        intake_answer(b, w, &m);
        free(ev);
        incident_free(tmp);
        free(w);
        return;
    }
    intake_answer(b, w, &m);
    free(w);
}

static void handle_query(struct broker *b, const uint8_t *rid, size_t rid_len,
                         const struct gd_query *m, const struct principal *p)
{
    const char *why = overloaded(b);
    if (why) {
        busy(b, rid, rid_len, m->ref, why);
        return;
    }
    struct query_ctx *q = malloc(sizeof(*q));
    struct waiter *w = q ? hold(b, rid, rid_len, GD_T_INCIDENT, m->ref) : NULL;
    if (!w) {
        free(q);
        return;
    }
    *q = (struct query_ctx){.b = b, .w = w};
    if (p)
        snprintf(q->principal, sizeof(q->principal), "%s", p->name);
    char id[24], src[GD_MAX_CODE + 1], ext[GD_MAX_EXTERNAL_ID + 1];
    const char *events = m->events ? "true" : "false";
    int rc;
    if (m->incident_id) {
        snprintf(id, sizeof(id), "%llu", (unsigned long long)m->incident_id);
        const char *params[2] = {id, events};
        rc = store_query(b->store, sql_query_by_id, 2, params, on_query_result, q);
    } else {
        snprintf(src, sizeof(src), "%.*s", (int)m->source.len, m->source.ptr);
        snprintf(ext, sizeof(ext), "%.*s", (int)m->external_id.len, m->external_id.ptr);
        const char *params[3] = {src, ext, events};
        rc = store_query(b->store, sql_query_by_key, 3, params, on_query_result, q);
    }
    if (rc < 0) {
        free(q);
        struct client *c = w->client;
        free(w);
        client_release(b, c);
        busy(b, rid, rid_len, m->ref, "database_down");
    }
}

/* ---- FEEDBACK (回访) and DISPATCH ---- */

static struct incident *open_incident(struct broker *b, const uint8_t *rid, size_t rid_len,
                                      uint64_t ref, uint64_t id)
{
    struct incident *inc = incident_by_id(b, id);
    if (!inc || !inc->durable) {
        char msg[96];
        snprintf(msg, sizeof(msg), "incident %llu is not open (unknown, or already closed)",
                 (unsigned long long)id);
        reject(b, rid, rid_len, ref, GD_E_NOT_FOUND, "incident_id", msg);
        return NULL;
    }
    return inc;
}

/* The open incident an admin request names at `version`, after the
 * checks every such request makes (load, existence, version); NULL after
 * answering BUSY or REJECTED. */
static struct incident *versioned_incident(struct broker *b, const uint8_t *rid, size_t rid_len,
                                           uint64_t ref, uint64_t id, uint32_t version)
{
    const char *why = overloaded(b);
    if (why) {
        busy(b, rid, rid_len, ref, why);
        return NULL;
    }
    struct incident *inc = open_incident(b, rid, rid_len, ref, id);
    if (inc && version != inc->version) {
        char msg[128];
        snprintf(msg, sizeof(msg), "incident %llu is at version %u, not %u; read it again",
                 (unsigned long long)inc->id, inc->version, version);
        reject(b, rid, rid_len, ref, GD_E_STALE_VERSION, "version", msg);
        return NULL;
    }
    return inc;
}

static void handle_feedback(struct broker *b, const uint8_t *rid, size_t rid_len,
                            const struct gd_feedback *m)
{
    const char *why = overloaded(b);
    if (why) {
        busy(b, rid, rid_len, m->ref, why);
        return;
    }
    struct incident *inc = open_incident(b, rid, rid_len, m->ref, m->incident_id);
    if (!inc)
        return;
    if (inc->state != GD_ST_RESOLVED) {
        char msg[128];
        snprintf(msg, sizeof(msg), "feedback is taken for RESOLVED incidents; this one is %s",
                 gd_state_name(inc->state));
        reject(b, rid, rid_len, m->ref, GD_E_BAD_STATE, NULL, msg);
        return;
    }
    struct waiter *w = hold(b, rid, rid_len, GD_T_DONE, m->ref);
    if (!w)
        return;
    int rc = m->satisfied
                 ? lifecycle_apply_str(b, inc, GD_EV_CLOSE, GD_ST_CLOSED, NULL, false, "feedback",
                                       m->comment, w)
                 : lifecycle_apply_str(b, inc, GD_EV_REOPEN, GD_ST_QUEUED, NULL, false, "feedback",
                                       m->comment, w);
    if (rc < 0) {
        give_up(b, w, rid, rid_len);
        return;
    }
    m->satisfied ? b->counters.closed++ : b->counters.reopened++;
}

static void handle_dispatch(struct broker *b, const uint8_t *rid, size_t rid_len,
                            const struct gd_dispatch *m)
{
    struct incident *inc =
        versioned_incident(b, rid, rid_len, m->ref, m->incident_id, m->version);
    if (!inc)
        return;
    char msg[160];
    if (inc->state != GD_ST_QUEUED) {
        snprintf(msg, sizeof(msg), "only QUEUED incidents can be dispatched; this one is %s",
                 gd_state_name(inc->state));
        reject(b, rid, rid_len, m->ref, GD_E_BAD_STATE, NULL, msg);
        return;
    }
    struct route r;
    int rc = route_named(b, inc, m->unit.ptr, m->unit.len, &r);
    if (rc < 0) {
        reject(b, rid, rid_len, m->ref, (enum gd_code)-rc, "unit",
               rc == -GD_E_NOT_FOUND
                   ? "no such org unit or queue"
                   : "that unit has no queue for this incident: give a grid, community or "
                     "district code, or <town>.<sector>");
        return;
    }
    struct waiter *w = hold(b, rid, rid_len, GD_T_DONE, m->ref);
    if (!w)
        return;
    if (lifecycle_apply_str(b, inc, GD_EV_DISPATCH, GD_ST_QUEUED, &r, false, "dispatcher",
                            m->note, w) < 0) {
        give_up(b, w, rid, rid_len);
        return;
    }
    b->counters.dispatched++;
}

static void handle_approve(struct broker *b, const uint8_t *rid, size_t rid_len,
                           const struct gd_approve *m)
{
    struct incident *inc =
        versioned_incident(b, rid, rid_len, m->ref, m->incident_id, m->version);
    if (!inc)
        return;
    if (!inc->extension_pending) {
        reject(b, rid, rid_len, m->ref, GD_E_BAD_STATE, NULL,
               "no extension request is waiting for this incident");
        return;
    }
    struct waiter *w = hold(b, rid, rid_len, GD_T_DONE, m->ref);
    if (!w)
        return;
    int64_t until = inc->extension_pending;
    int64_t due = inc->resolve_due, warn = inc->resolve_warn;
    uint8_t warned = inc->warned;
    inc->extension_pending = 0;
    if (m->approve)
        deadline_extend(b, inc, until, broker_now(b));
    if (lifecycle_apply_str(b, inc, m->approve ? GD_EV_EXTEND : GD_EV_EXTEND_DENY, inc->state,
                            NULL, false, "approver", m->note, w) < 0) {
        inc->extension_pending = until;
        inc->resolve_due = due;
        inc->resolve_warn = warn;
        inc->warned = warned;
        give_up(b, w, rid, rid_len);
        return;
    }
    m->approve ? b->counters.extended++ : b->counters.extensions_denied++;
}

/* ---- SNAPSHOT ---- */

/* Forgets clients whose allowance is full again. Records are kept least
 * recently used first, so the walk stops at the first one still in use;
 * what stays was used within the last SNAPSHOT_BURST gauge periods. */
static void snapshot_forget_idle(struct broker *b, uint64_t now)
{
    struct snapshot_client *c, *tmp;
    HASH_ITER(hh, b->snapshot_clients, c, tmp) {
        if (!ratelimit_full(&c->allowance, now))
            break;
        HASH_DELETE(hh, b->snapshot_clients, c);
        free(c);
    }
}

/* Whether a SNAPSHOT of client `rid` is answered now: within the client's
 * allowance (else REJECTED limit) and the broker's --snapshot-rate (else
 * BUSY). Takes from both when it is. */
static bool snapshot_allowed(struct broker *b, const uint8_t *rid, size_t rid_len, uint64_t ref)
{
    uint64_t now = uv_now(b->loop);
    snapshot_forget_idle(b, now);
    struct snapshot_client *c = NULL;
    HASH_FIND(hh, b->snapshot_clients, rid, rid_len, c);
    uint64_t wait = c ? ratelimit_wait(&c->allowance, now) : 0;
    if (wait) {
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "a client may send %d SNAPSHOTs at once, then one every %u ms; retry in %llu ms",
                 SNAPSHOT_BURST, b->cfg.gauge_ms, (unsigned long long)wait);
        b->counters.snapshots_limited++;
        reject(b, rid, rid_len, ref, GD_E_LIMIT, NULL, msg);
        return false;
    }
    wait = ratelimit_wait(&b->snapshot_rate, now);
    if (wait) {
        b->counters.snapshots_busy++;
        busy_for(b, rid, rid_len, ref, "snapshot_rate", (uint32_t)wait);
        return false;
    }
    if (c) {
        HASH_DELETE(hh, b->snapshot_clients, c); /* to the end: most recently used */
    } else {
        c = calloc(1, sizeof(*c));
        if (!c) {
            reject(b, rid, rid_len, ref, GD_E_INTERNAL, NULL, "out of memory");
            return false;
        }
        ratelimit_init(&c->allowance, SNAPSHOT_BURST, 1, b->cfg.gauge_ms, now);
        memcpy(c->rid, rid, rid_len);
        c->rid_len = rid_len;
    }
    HASH_ADD(hh, b->snapshot_clients, rid, c->rid_len, c);
    ratelimit_take(&c->allowance);
    ratelimit_take(&b->snapshot_rate);
    return true;
}

static void handle_snapshot(struct broker *b, const uint8_t *rid, size_t rid_len,
                            const struct gd_snapshot *m)
{
    if (!snapshot_allowed(b, rid, rid_len, m->ref))
        return;
    b->counters.snapshots++;
    struct gd_gauge g[GAUGES_PER_MESSAGE];
    int64_t now = broker_now(b);
    uint32_t n = 0;
    for (struct queue *q = b->queues;; q = q->hh.next) {
        /* (an absent prefix has no bytes at all: never handed to memcmp) */
        if (q && m->prefix.len &&
            (m->prefix.len > strlen(q->name) ||
             memcmp(q->name, m->prefix.ptr, m->prefix.len) != 0))
            continue;
        if (q && n < GAUGES_PER_MESSAGE) {
            status_gauge(b, q, now, &g[n++]);
            continue;
        }
        /* a full message, or the end: a part with truncated=true means
         * more parts follow */
        struct gd_msg r = {.type = GD_T_GAUGES};
        r.u.gauges = (struct gd_gauges){
            .ref = m->ref, .at = now, .n_gauges = n, .gauges = g, .truncated = q != NULL};
        if (send_to(b, rid, rid_len, &r) < 0 || !q)
            break; /* the rest would not get through either */
        n = 0;
        status_gauge(b, q, now, &g[n++]);
    }
}

/* Messages queued for one client before further answers to it are
 * dropped: answers to the requests it may have waiting (--max-pending),
 * and SNAPSHOT_BURST SNAPSHOT answers of every queue the org tree allows
 * (fixed at start; a reload that adds units does not change it). */
static int intake_hwm(struct broker *b, uint32_t *ret_parts)
{
    uint32_t parts = (queue_possible(b) + GAUGES_PER_MESSAGE - 1) / GAUGES_PER_MESSAGE;
    *ret_parts = parts;
    uint64_t hwm = (uint64_t)b->cfg.max_pending + (uint64_t)SNAPSHOT_BURST * parts;
    return hwm > 100000000 ? 100000000 : (int)hwm;
}

/* ---- authorisation (when CurveZMQ is on) ---- */

static const char *const intake_action[] = {
    [GD_T_SUBMIT] = "SUBMIT",     [GD_T_QUERY] = "QUERY",       [GD_T_FEEDBACK] = "FEEDBACK",
    [GD_T_SNAPSHOT] = "SNAPSHOT", [GD_T_DISPATCH] = "DISPATCH", [GD_T_APPROVE] = "APPROVE",
    [GD_T_SUBMITS] = "SUBMITS",
};

static bool role_may(enum auth_role r, enum gd_type t)
{
    switch (t) {
    case GD_T_SUBMIT:
    case GD_T_SUBMITS:
    case GD_T_QUERY:
    case GD_T_FEEDBACK: return r == AUTH_INTAKE || r == AUTH_ADMIN;
    case GD_T_SNAPSHOT: return r == AUTH_INTAKE || r == AUTH_DASHBOARD || r == AUTH_ADMIN;
    case GD_T_DISPATCH:
    case GD_T_APPROVE: return r == AUTH_ADMIN;
    default: return true; /* answered unknown_type below */
    }
}

/* The incident a request names, if it is in memory. */
static const struct incident *named_incident(struct broker *b, const struct gd_msg *m)
{
    switch (m->type) {
    case GD_T_FEEDBACK: return incident_by_id(b, m->u.feedback.incident_id);
    case GD_T_DISPATCH: return incident_by_id(b, m->u.dispatch.incident_id);
    case GD_T_APPROVE: return incident_by_id(b, m->u.approve.incident_id);
    default: return NULL;
    }
}

static uint64_t ref_of(const struct gd_msg *m)
{
    switch (m->type) {
    case GD_T_SUBMIT: return m->u.submit.ref;
    case GD_T_SUBMITS: return m->u.submits.ref;
    case GD_T_QUERY: return m->u.query.ref;
    case GD_T_FEEDBACK: return m->u.feedback.ref;
    case GD_T_SNAPSHOT: return m->u.snapshot.ref;
    case GD_T_DISPATCH: return m->u.dispatch.ref;
    case GD_T_APPROVE: return m->u.approve.ref;
    default: return 0;
    }
}

/* Whether the sender of `frame` may make request `m`; answers REJECTED
 * denied when not. A SUBMIT is judged by `submit_unit`, the unit its
 * location was placed at (NULL: none). *ret_p is its principal (NULL when
 * security is off). */
static bool authorise(struct broker *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *frame,
                      const struct gd_msg *m, const struct unit *submit_unit,
                      const struct principal **ret_p)
{
    bool unknown;
    const struct principal *p = auth_peer(b, frame, &unknown);
    *ret_p = p;
    if (!b->auth.enabled)
        return true;
    const char *action = (size_t)m->type < sizeof(intake_action) / sizeof(intake_action[0]) &&
                                 intake_action[m->type]
                             ? intake_action[m->type]
                             : "send this";
    char msg[192];
    if (unknown) {
        reject(b, rid, rid_len, ref_of(m), GD_E_DENIED, NULL,
               "your key is no longer authorised here");
        auth_refused(b, "(removed principal)", action);
        return false;
    }
    if (!role_may(p->role, m->type)) {
        snprintf(msg, sizeof(msg), "a principal with role %s may not send %s",
                 auth_role_name(p->role), action);
        reject(b, rid, rid_len, ref_of(m), GD_E_DENIED, NULL, msg);
        auth_refused(b, p->name, action);
        return false;
    }
    const struct unit *where = NULL;
    bool scoped = false;
    if (m->type == GD_T_SUBMIT) {
        scoped = true;
        where = submit_unit;
    } else {
        const struct incident *inc = named_incident(b, m);
        if (inc) {
            scoped = true;
            where = inc->location;
        }
    }
    if (scoped && !auth_in_scope(p, where)) {
        scope_message(msg, sizeof(msg), action, where);
        reject(b, rid, rid_len, ref_of(m), GD_E_DENIED, "location", msg);
        auth_refused(b, p->name, msg);
        return false;
    }
    return true;
}

static void on_message(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow)
{
    struct broker *b = zs->data;
    if (n < 1)
        return;
    const uint8_t *rid = zmq_msg_data(&frames[0]);
    size_t rid_len = zmq_msg_size(&frames[0]);
    if (overflow || n != 3) {
        reject(b, rid, rid_len, 0, GD_E_BAD_HEADER, NULL,
               "a message is two frames: the GDP1 header and one msgpack body");
        return;
    }
    struct gd_msg m;
    struct gd_decode_error derr = {0};
    if (gd_decode(b->decoder, zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]),
                  zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), &m, &derr) < 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s%s%s", gd_code_message(derr.code),
                 derr.field && *derr.field ? ": " : "", derr.field ? derr.field : "");
        reject(b, rid, rid_len, derr.ref, derr.code, derr.field, msg);
        return;
    }
    /* placed before the scope check: an app may only submit incidents
     * that land in its scope, however it says where they are */
    struct locate_result where = {.by = LOCATE_NONE};
    if (m.type == GD_T_SUBMIT)
        locate_submit(b->locate, &b->org, &m.u.submit.location, &where);
    const struct principal *p;
    if (!authorise(b, rid, rid_len, &frames[1], &m, where.unit, &p))
        return;
    switch (m.type) {
    case GD_T_SUBMIT: {
        const struct reply_to to = {rid, rid_len, NULL, 0};
        handle_submit(b, &to, &m.u.submit, &where);
        break;
    }
    case GD_T_SUBMITS: handle_submits(b, rid, rid_len, &m.u.submits, p); break;
    case GD_T_QUERY: handle_query(b, rid, rid_len, &m.u.query, p); break;
    case GD_T_FEEDBACK: handle_feedback(b, rid, rid_len, &m.u.feedback); break;
    case GD_T_DISPATCH: handle_dispatch(b, rid, rid_len, &m.u.dispatch); break;
    case GD_T_APPROVE: handle_approve(b, rid, rid_len, &m.u.approve); break;
    case GD_T_SNAPSHOT: handle_snapshot(b, rid, rid_len, &m.u.snapshot); break;
    default: {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s is not a message for the intake endpoint",
                 gd_type_name(m.type));
        reject(b, rid, rid_len, 0, GD_E_UNKNOWN_TYPE, NULL, msg);
    }
    }
}

int intake_open(struct broker *b, char *err, size_t errlen)
{
    uint32_t parts;
    int hwm = intake_hwm(b, &parts);
    ratelimit_init(&b->snapshot_rate, b->cfg.snapshot_rate, b->cfg.snapshot_rate, 1000,
                   uv_now(b->loop));
    /* Requests beyond the same figure wait in the client's own queue
     * (ZeroMQ stops reading a connection whose queue is full). */
    struct zsock_options o = {.type = ZMQ_ROUTER,
                              .endpoint = b->cfg.intake_endpoint,
                              .maxmsg = GD_MAX_BODY + 1024,
                              .sndhwm = hwm,
                              .rcvhwm = hwm};
    auth_endpoint(b, "intake", &o);
    peers_watch(&o);
    int rc = zsock_bind(&b->intake, b->loop, b->zctx, &o, on_message, b, err, errlen);
    if (rc == 0)
        log_info("intake", "at most %d messages queued per client (--max-pending %u + %d "
                           "SNAPSHOTs of %u parts)",
                 hwm, b->cfg.max_pending, SNAPSHOT_BURST, parts);
    return rc;
}

void intake_free(struct broker *b)
{
    struct submits *s, *tmp;
    DL_FOREACH_SAFE(b->submits, s, tmp) {
        DL_DELETE(b->submits, s);
        submits_free(s);
    }
}

void intake_close(struct broker *b)
{
    zsock_close(&b->intake);
    struct snapshot_client *c, *tmp;
    HASH_ITER(hh, b->snapshot_clients, c, tmp) {
        HASH_DELETE(hh, b->snapshot_clients, c);
        free(c);
    }
}
