/* session.c - DEALER session with gd-broker: stream of deadlines in, WARN/ESCALATE out.
 *
 * The ZeroMQ socket is watched with uv_poll on ZMQ_FD, which is
 * edge-triggered: we read until ZMQ_EVENTS has no POLLIN, and look again
 * after every send (a send may process incoming commands). One pass reads
 * at most DRAIN_BUDGET messages, then an idle handle continues, so a
 * full-set stream of millions does not starve the timers.
 *
 * Nothing here frees or resets the deadline table from inside the
 * table's fire callback: a send failure there is acted on from a
 * zero-delay timer. */
#include "session.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>
#include <zmq.h>

#include "svcnotify.h"

#define DRAIN_BUDGET  1024
#define HELLO_BEAT_MS 50
#define BYE_LINGER_MS 500

struct session_conn {
    uv_poll_t poll;
    void *sock;
    struct session *s;
};

struct session_request {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    uint8_t kind;
    uint8_t ev; /* enum deadline_event */
    UT_hash_handle hh;
};

static void pump(struct session *s);
static void on_drain(uv_idle_t *h);
static void fail(struct session *s, const char *why);

static const char *endpoint_name(const struct session *s)
{
    return s->cfg->endpoints[s->endpoint];
}

static uint64_t next_random(struct session *s)
{
    /* xorshift64*: jitter only, no need for quality */
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * UINT64_C(2685821657736338717);
}

/* ---- requests awaiting OK/ERR ---- */

static void requests_drop_all(struct session *s)
{
    struct session_request *r, *tmp;
    HASH_ITER(hh, s->requests, r, tmp)
    {
        HASH_DEL(s->requests, r);
        free(r);
    }
    s->n_requests = 0;
}

static struct session_request *request_take(struct session *s, uint64_t ref)
{
    struct session_request *r = NULL;
    HASH_FIND(hh, s->requests, &ref, sizeof(ref), r);
    if (r) {
        HASH_DEL(s->requests, r);
        s->n_requests--;
    }
    return r;
}

/* ---- socket ---- */

static bool readable(struct session_conn *c)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &len) < 0)
        return false;
    return events & ZMQ_POLLIN;
}

/* Sends one message. Returns 0 or a negative errno. */
static int send_msg(struct session *s, const struct gd_msg *m)
{
    if (s->conn == NULL)
        return -ENOTCONN;
    gd_buf_reset(&s->out);
    int rc = gd_encode(m, &s->out);
    if (rc < 0)
        return -EINVAL;
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(m->type, header);
    if (zmq_send(s->conn->sock, header, sizeof(header), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(s->conn->sock, s->out.data, s->out.len, ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    s->last_send = uv_now(s->loop);
    /* ZMQ_FD is edge-triggered and a send may have consumed the edge */
    if (readable(s->conn))
        uv_idle_start(&s->drain, on_drain);
    return 0;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct session_conn *c = h->data;
    pump(c->s);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct session_conn *c = h->data;
    c->s->open_handles--;
    free(c);
}

static void conn_close(struct session *s, int linger_ms)
{
    struct session_conn *c = s->conn;
    if (c == NULL)
        return;
    s->conn = NULL;
    uv_idle_stop(&s->drain);
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_conn_closed);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
    zmq_close(c->sock);
}

static int set_int(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value));
}

/* Opens a DEALER to the current endpoint. Returns 0 or a negative errno. */
static int conn_open(struct session *s)
{
    const struct config *cfg = s->cfg;
    struct session_conn *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return -ENOMEM;
    c->s = s;
    c->sock = zmq_socket(s->zctx, ZMQ_DEALER);
    if (c->sock == NULL)
        goto fail_socket;
    int64_t maxmsg = GD_MAX_BODY + 1024;
    /* the full set may be millions of messages: no high-water mark on our
     * side, so the broker streams as fast as we read */
    if (set_int(c->sock, ZMQ_LINGER, 0) < 0 || set_int(c->sock, ZMQ_RCVHWM, 0) < 0 ||
        set_int(c->sock, ZMQ_SNDHWM, 0) < 0 ||
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0)
        goto fail_options;
    if (cfg->curve_server_key &&
        (zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, cfg->curve_server_key, 40) < 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, cfg->curve_public_key, 40) < 0 ||
         zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, cfg->curve_secret_key, 40) < 0))
        goto fail_options;
    if (zmq_connect(c->sock, endpoint_name(s)) < 0)
        goto fail_options;
    int fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(c->sock, ZMQ_FD, &fd, &len) < 0)
        goto fail_options;
    int rc = uv_poll_init(s->loop, &c->poll, fd);
    if (rc < 0) {
        zmq_close(c->sock);
        free(c);
        return rc;
    }
    c->poll.data = c;
    s->open_handles++;
    uv_poll_start(&c->poll, UV_READABLE, on_poll);
    s->conn = c;
    return 0;

fail_options:
    rc = -zmq_errno();
    zmq_close(c->sock);
    free(c);
    return rc;
fail_socket:
    rc = -zmq_errno();
    free(c);
    return rc;
}

/* ---- connection life ---- */

static uint32_t backoff_delay(struct session *s)
{
    const struct config *cfg = s->cfg;
    uint64_t d = cfg->backoff_min_ms;
    for (uint32_t i = 1; i < s->failures && d < cfg->backoff_max_ms; i++)
        d *= 2;
    if (d > cfg->backoff_max_ms)
        d = cfg->backoff_max_ms;
    /* +-25% so that workers of a restarted broker do not reconnect in step */
    uint64_t quarter = d / 4;
    if (quarter)
        d = d - quarter + next_random(s) % (2 * quarter + 1);
    return (uint32_t)d;
}

static void drop_state(struct session *s)
{
    deadline_table_reset(&s->table, ticker_wall_ms());
    ticker_kick(&s->ticker);
    requests_drop_all(s);
    s->session_id = 0;
    s->sync_count = 0;
}

static void connect_next(struct session *s);

static void on_backoff(uv_timer_t *h)
{
    connect_next(h->data);
}

/* Gives up the connection and tries the next endpoint after `delay_ms`. */
static void reconnect_later(struct session *s, uint32_t delay_ms)
{
    conn_close(s, 0);
    drop_state(s);
    s->state = SESSION_WAITING;
    s->endpoint = (s->endpoint + 1) % s->cfg->n_endpoints;
    uv_timer_stop(&s->beat);
    uv_timer_start(&s->backoff, on_backoff, delay_ms, 0);
}

static void fail(struct session *s, const char *why)
{
    if (s->state == SESSION_STOPPED)
        return;
    s->failures++;
    uint32_t delay = backoff_delay(s);
    log_warn(s->log,
             "broker %s: %s; dropped %" PRIu32 " deadlines, next endpoint %s in %" PRIu32 " ms",
             endpoint_name(s), why, deadline_table_count(&s->table),
             s->cfg->endpoints[(s->endpoint + 1) % s->cfg->n_endpoints], delay);
    svcnotify_status("broker %s: %s; trying %s in %" PRIu32 " ms", endpoint_name(s), why,
                     s->cfg->endpoints[(s->endpoint + 1) % s->cfg->n_endpoints], delay);
    reconnect_later(s, delay);
}

static void on_deferred_failure(uv_timer_t *h)
{
    fail(h->data, "sending failed");
}

static void on_beat(uv_timer_t *h);

static void connect_next(struct session *s)
{
    if (s->state == SESSION_STOPPED)
        return;
    int rc = conn_open(s);
    if (rc < 0) {
        log_error(s->log, "cannot open a socket to %s: %s", endpoint_name(s), zmq_strerror(-rc));
        s->failures++;
        s->endpoint = (s->endpoint + 1) % s->cfg->n_endpoints;
        uv_timer_start(&s->backoff, on_backoff, backoff_delay(s), 0);
        return;
    }
    const struct config *cfg = s->cfg;
    struct gd_msg m = {.type = GD_T_HELLO};
    m.u.hello.role = GD_ROLE_SLA;
    m.u.hello.name = gd_str_c(cfg->name);
    m.u.hello.n_shard = cfg->n_shard;
    for (uint32_t i = 0; i < cfg->n_shard; i++)
        m.u.hello.shard[i] = gd_str_c(cfg->shard[i]);
    rc = send_msg(s, &m);
    if (rc < 0) {
        fail(s, "cannot send HELLO");
        return;
    }
    s->state = SESSION_HELLO;
    s->hello_at = uv_now(s->loop);
    log_info(s->log, "connecting to %s as \"%s\" (%s%" PRIu32 " towns)", endpoint_name(s),
             cfg->name, cfg->n_shard ? "" : "all, ", cfg->n_shard);
    svcnotify_status("connecting to the broker at %s", endpoint_name(s));
    uv_timer_start(&s->beat, on_beat, HELLO_BEAT_MS, HELLO_BEAT_MS);
}

static void on_beat(uv_timer_t *h)
{
    struct session *s = h->data;
    uint64_t now = uv_now(s->loop);
    if (s->state == SESSION_HELLO) {
        if (now - s->hello_at >= s->cfg->hello_timeout_ms)
            fail(s, "no answer to HELLO");
        return;
    }
    if (s->state != SESSION_SYNCING && s->state != SESSION_LIVE)
        return;
    if (now - s->last_recv >= (uint64_t)s->liveness * s->heartbeat_ms) {
        fail(s, "silent beyond liveness x heartbeat");
        return;
    }
    /* twice per interval: the broker's view of our silence has slack */
    if (now - s->last_send >= s->heartbeat_ms / 2) {
        struct gd_msg m = {.type = GD_T_HEARTBEAT};
        if (send_msg(s, &m) < 0)
            fail(s, "cannot send HEARTBEAT");
    }
}

/* ---- deadlines firing ---- */

static void on_fire(struct deadline *d, enum deadline_event ev, void *arg)
{
    struct session *s = arg;
    if (s->conn == NULL || (s->state != SESSION_SYNCING && s->state != SESSION_LIVE))
        return; /* unreachable: the table is empty without a session */
    struct session_request *r = malloc(sizeof(*r));
    if (r == NULL) {
        uv_timer_start(&s->backoff, on_deferred_failure, 0, 0);
        return;
    }
    r->ref = ++s->next_ref;
    r->incident_id = d->incident_id;
    r->version = d->version;
    r->kind = d->kind;
    r->ev = (uint8_t)ev;
    struct gd_msg m = {.type = ev == DEADLINE_EV_WARN ? GD_T_WARN : GD_T_ESCALATE};
    m.u.command.ref = r->ref;
    m.u.command.incident_id = d->incident_id;
    m.u.command.version = d->version;
    m.u.command.kind = (enum gd_deadline_kind)d->kind;
    if (send_msg(s, &m) < 0) {
        free(r);
        uv_timer_start(&s->backoff, on_deferred_failure, 0, 0);
        return;
    }
    HASH_ADD(hh, s->requests, ref, sizeof(r->ref), r);
    s->n_requests++;
    if (ev == DEADLINE_EV_WARN)
        s->stats.warns++;
    else
        s->stats.escalations++;
    log_debug(s->log, "%s incident %" PRIu64 " %s v%" PRIu32,
              ev == DEADLINE_EV_WARN ? "WARN" : "ESCALATE", d->incident_id,
              gd_deadline_kind_name((enum gd_deadline_kind)d->kind), d->version);
}

/* ---- messages from the broker ---- */

static void on_welcome(struct session *s, const struct gd_welcome *w)
{
    if (s->state != SESSION_HELLO) {
        log_warn(s->log, "WELCOME outside a HELLO: ignored");
        return;
    }
    s->session_id = w->session;
    s->heartbeat_ms = w->heartbeat_ms ? w->heartbeat_ms : 1;
    s->liveness = w->liveness ? w->liveness : 1;
    s->state = SESSION_SYNCING;
    s->sync_started = uv_now(s->loop);
    s->sync_count = 0;
    uint64_t period = s->heartbeat_ms / 4 ? s->heartbeat_ms / 4 : 1;
    uv_timer_start(&s->beat, on_beat, period, period);
    log_info(s->log,
             "session %" PRIu64 " on %s: heartbeat %" PRIu32 " ms x %" PRIu32
             "; receiving the deadlines",
             w->session, endpoint_name(s), s->heartbeat_ms, s->liveness);
    svcnotify_status("session %" PRIu64 " on %s: receiving the deadlines", w->session,
                     endpoint_name(s));
}

static void on_denied(struct session *s, const struct gd_error_reply *e)
{
    log_error(s->log, "broker %s refused the session: %s: %.*s", endpoint_name(s),
              gd_code_name(e->code) ? gd_code_name(e->code) : "?", (int)e->message.len,
              e->message.ptr ? e->message.ptr : "");
    if (s->cfg->exit_on_denied) {
        session_stop(s, SESSION_EXIT_DENIED);
        return;
    }
    log_info(s->log, "saying HELLO again in %" PRIu32 " ms", s->cfg->denied_retry_ms);
    svcnotify_status("the broker at %s refused the session (%s); saying HELLO again in %" PRIu32
                     " ms",
                     endpoint_name(s), gd_code_name(e->code) ? gd_code_name(e->code) : "?",
                     s->cfg->denied_retry_ms);
    reconnect_later(s, s->cfg->denied_retry_ms);
}

static void on_deadline(struct session *s, const struct gd_deadline *d)
{
    if (s->state == SESSION_SYNCING)
        s->sync_count++;
    int rc = deadline_table_upsert(&s->table, d->incident_id, (uint8_t)d->kind, d->version,
                                   d->warn_at, d->due_at);
    if (rc < 0) {
        log_error(s->log, "out of memory holding %" PRIu32 " deadlines",
                  deadline_table_count(&s->table));
        session_stop(s, SESSION_EXIT_FAILED);
        return;
    }
    if (rc == DEADLINE_IGNORED)
        s->stats.ignored++;
    else
        s->stats.deadlines++;
}

static void on_clear(struct session *s, const struct gd_clear *c)
{
    int rc = deadline_table_clear(&s->table, c->incident_id, (uint8_t)c->kind, c->version);
    if (rc == DEADLINE_REMOVED)
        s->stats.clears++;
    else
        s->stats.ignored++;
}

static void on_synced(struct session *s, const struct gd_synced *y)
{
    if (s->state != SESSION_SYNCING) {
        log_warn(s->log, "SYNCED outside the initial stream: ignored");
        return;
    }
    s->state = SESSION_LIVE;
    s->failures = 0;
    uint64_t escalated = deadline_table_count(&s->table) - deadline_table_armed(&s->table);
    log_info(s->log,
             "synced: %" PRIu32 " deadlines received (broker sent %" PRIu32 ") in %" PRIu64
             " ms, holding %" PRIu32 ", %" PRIu64 " already escalated",
             s->sync_count, y->count, uv_now(s->loop) - s->sync_started,
             deadline_table_count(&s->table), escalated);
    svcnotify_status("timing %" PRIu32 " deadlines from the broker at %s (session %" PRIu64 ")",
                     deadline_table_count(&s->table), endpoint_name(s), s->session_id);
    if (s->sync_count != y->count)
        log_warn(s->log, "SYNCED count %" PRIu32 " differs from the %" PRIu32 " DEADLINEs received",
                 y->count, s->sync_count);
}

static void on_ok(struct session *s, const struct gd_ok *ok)
{
    struct session_request *r = request_take(s, ok->ref);
    if (r == NULL) {
        log_debug(s->log, "OK for unknown ref %" PRIu64, ok->ref);
        return;
    }
    if (ok->applied)
        s->stats.applied++;
    else
        s->stats.not_applied++;
    free(r);
}

static void on_err(struct session *s, const struct gd_error_reply *e)
{
    const char *code = gd_code_name(e->code) ? gd_code_name(e->code) : "?";
    if (e->code == GD_E_NO_SESSION) {
        fail(s, "the broker lost our session (ERR no_session)");
        return;
    }
    struct session_request *r = request_take(s, e->ref);
    if (r == NULL) {
        log_warn(s->log, "ERR %s (field '%.*s') for ref %" PRIu64 ": %.*s", code, (int)e->field.len,
                 e->field.ptr ? e->field.ptr : "", e->ref, (int)e->message.len,
                 e->message.ptr ? e->message.ptr : "");
        return;
    }
    s->stats.errors++;
    if (e->code == GD_E_BUSY || e->code == GD_E_INTERNAL) {
        struct deadline *d = deadline_table_find(&s->table, r->incident_id, r->kind);
        if (d && d->version == r->version) {
            deadline_table_retry(&s->table, d, (enum deadline_event)r->ev,
                                 ticker_wall_ms() + s->cfg->retry_ms);
            s->stats.retries++;
        }
    }
    log_debug(s->log, "ERR %s for incident %" PRIu64 " v%" PRIu32 ": %.*s", code, r->incident_id,
              r->version, (int)e->message.len, e->message.ptr ? e->message.ptr : "");
    free(r);
}

static void handle(struct session *s, const struct gd_msg *m)
{
    if (s->state == SESSION_HELLO && m->type != GD_T_WELCOME && m->type != GD_T_DENIED &&
        m->type != GD_T_HEARTBEAT) {
        log_warn(s->log, "%s before WELCOME: ignored", gd_type_name(m->type));
        return;
    }
    switch (m->type) {
    case GD_T_WELCOME:
        on_welcome(s, &m->u.welcome);
        break;
    case GD_T_DENIED:
        on_denied(s, &m->u.error);
        break;
    case GD_T_DEADLINE:
        on_deadline(s, &m->u.deadline);
        break;
    case GD_T_CLEAR:
        on_clear(s, &m->u.clear);
        break;
    case GD_T_SYNCED:
        on_synced(s, &m->u.synced);
        break;
    case GD_T_OK:
        on_ok(s, &m->u.ok);
        break;
    case GD_T_ERR:
        on_err(s, &m->u.error);
        break;
    case GD_T_HEARTBEAT:
        break;
    case GD_T_BYE:
        log_info(s->log, "broker said BYE: %.*s", (int)m->u.bye.reason.len,
                 m->u.bye.reason.ptr ? m->u.bye.reason.ptr : "");
        s->failures = 0;
        reconnect_later(s, backoff_delay(s));
        break;
    default:
        log_warn(s->log, "unexpected %s from the broker: ignored", gd_type_name(m->type));
    }
}

/* Reads one message; returns false when none was waiting. */
static bool read_one(struct session *s, struct session_conn *c)
{
    zmq_msg_t frames[2];
    size_t n = 0;
    bool extra = false;
    for (;;) {
        zmq_msg_t scratch;
        zmq_msg_t *f = n < 2 ? &frames[n] : &scratch;
        zmq_msg_init(f);
        if (zmq_msg_recv(f, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(f);
            if (n == 0)
                return false;
            break;
        }
        bool more = zmq_msg_more(f);
        if (f == &scratch) {
            extra = true;
            zmq_msg_close(f);
        } else {
            n++;
        }
        if (!more)
            break;
    }
    s->last_recv = uv_now(s->loop);
    if (n != 2 || extra) {
        log_warn(s->log, "dropped a message of %zu frames from the broker", n + extra);
    } else {
        struct gd_msg m;
        struct gd_decode_error err;
        if (gd_decode(s->decoder, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                      zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m, &err) < 0)
            log_warn(s->log, "undecodable message from the broker: %s (field '%s')",
                     gd_code_name(err.code), err.field ? err.field : "");
        else
            handle(s, &m);
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return true;
}

static void pump(struct session *s)
{
    struct session_conn *c = s->conn;
    bool any = false;
    int i = 0;
    for (; i < DRAIN_BUDGET && s->conn == c && c != NULL && readable(c); i++) {
        if (!read_one(s, c))
            break;
        any = true;
    }
    if (any && s->state != SESSION_STOPPED)
        ticker_kick(&s->ticker); /* fires deadlines that arrived already due */
    if (s->conn != c || c == NULL)
        return;
    if (i == DRAIN_BUDGET)
        uv_idle_start(&s->drain, on_drain);
    else
        uv_idle_stop(&s->drain);
}

static void on_drain(uv_idle_t *h)
{
    pump(h->data);
}

/* ---- activity report ---- */

static void on_report(uv_timer_t *h)
{
    struct session *s = h->data;
    struct session_stats *st = &s->stats;
    if (st->deadlines + st->clears + st->ignored + st->warns + st->escalations + st->applied +
            st->not_applied + st->errors ==
        0)
        return;
    log_info(s->log,
             "last %" PRIu32 " ms: %" PRIu64 " deadlines set, %" PRIu64 " cleared, %" PRIu64
             " stale; sent %" PRIu64 " WARN, %" PRIu64 " ESCALATE; answers: %" PRIu64
             " applied, %" PRIu64 " not applied, %" PRIu64 " errors (%" PRIu64
             " retried); holding %" PRIu32 ", %" PRIu32 " awaiting answer",
             s->cfg->report_ms, st->deadlines, st->clears, st->ignored, st->warns, st->escalations,
             st->applied, st->not_applied, st->errors, st->retries, deadline_table_count(&s->table),
             s->n_requests);
    memset(st, 0, sizeof(*st));
}

/* ---- life cycle ---- */

static void on_handle_closed(uv_handle_t *h)
{
    struct session *s = h->data;
    s->open_handles--;
}

int session_start(struct session *s, uv_loop_t *loop, const struct config *cfg,
                  const struct logger *log)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    s->cfg = cfg;
    s->log = log;
    s->rng = (uint64_t)ticker_wall_ms() ^ ((uint64_t)uv_os_getpid() << 32) ^ (uintptr_t)s;
    if (s->rng == 0)
        s->rng = 1;
    int rc = deadline_table_init(&s->table, cfg->tick_ms, ticker_wall_ms());
    if (rc < 0)
        return rc;
    s->decoder = gd_decoder_new();
    s->zctx = zmq_ctx_new();
    if (s->decoder == NULL || s->zctx == NULL) {
        rc = s->decoder == NULL ? -ENOMEM : -zmq_errno();
        goto fail_alloc;
    }
    /* handles: each gets data = s, counted until closed */
    uv_timer_t *timers[] = {&s->beat, &s->backoff, &s->report};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = s;
        s->open_handles++;
    }
    uv_idle_init(loop, &s->drain);
    s->drain.data = s;
    s->open_handles++;
    ticker_init(&s->ticker, loop, &s->table, on_fire, s);
    s->ticker.timer.data = &s->ticker;
    s->open_handles++;
    uv_timer_start(&s->report, on_report, cfg->report_ms, cfg->report_ms);
    s->state = SESSION_WAITING;
    connect_next(s);
    return 0;

fail_alloc:
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    gd_decoder_free(s->decoder);
    deadline_table_fini(&s->table);
    return rc;
}

static void on_ticker_closed(uv_handle_t *h)
{
    struct ticker *k = h->data;
    struct session *s = k->arg;
    s->open_handles--;
}

void session_stop(struct session *s, int status)
{
    if (s->state == SESSION_STOPPED)
        return;
    if (s->exit_status == 0)
        s->exit_status = status;
    int linger = 0;
    if (s->conn && (s->state == SESSION_SYNCING || s->state == SESSION_LIVE)) {
        struct gd_msg m = {.type = GD_T_BYE};
        m.u.bye.reason = GD_STR("shutdown");
        if (send_msg(s, &m) == 0)
            linger = BYE_LINGER_MS;
    }
    s->state = SESSION_STOPPED;
    conn_close(s, linger);
    uv_timer_t *timers[] = {&s->beat, &s->backoff, &s->report};
    for (size_t i = 0; i < 3; i++) {
        uv_timer_stop(timers[i]);
        uv_close((uv_handle_t *)timers[i], on_handle_closed);
    }
    uv_idle_stop(&s->drain);
    uv_close((uv_handle_t *)&s->drain, on_handle_closed);
    ticker_close(&s->ticker, on_ticker_closed);
    log_info(s->log, "stopped: %" PRIu32 " deadlines held, %" PRIu32 " answers outstanding",
             deadline_table_count(&s->table), s->n_requests);
}

void session_fini(struct session *s)
{
    requests_drop_all(s);
    deadline_table_fini(&s->table);
    gd_decoder_free(s->decoder);
    gd_buf_fini(&s->out);
    if (s->zctx)
        zmq_ctx_term(s->zctx);
    s->zctx = NULL;
    s->decoder = NULL;
}
