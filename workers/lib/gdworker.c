/* gdworker.c - GDP/1 worker session over a ZeroMQ DEALER, driven by a libuv loop (see gdworker.h).
 *
 * ZeroMQ integration follows broker/zsock.c: ZMQ_FD is edge-triggered and
 * only says that ZMQ_EVENTS may have changed, so the poll callback reads
 * until ZMQ_EVENTS has no POLLIN, and after a send made outside the poll
 * callback an idle handle re-checks ZMQ_EVENTS on the next loop iteration
 * (a send can swallow the edge for messages that arrived meanwhile).
 * Reading everything in one pass is fine here: a broker sends a worker at
 * most `credit` deliveries plus one answer per command and heartbeats.
 *
 * Each connection attempt gets a fresh socket (a new routing id, nothing
 * left queued from the old session); its uv_poll handle lives in a small
 * struct conn freed in the handle's close callback. One timer ticks for
 * heartbeats, liveness, the HELLO timeout and request timeouts; another
 * waits out the reconnect backoff.
 */
#include "gdworker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define DEFAULT_HELLO_TIMEOUT_MS   3000
#define DEFAULT_REQUEST_TIMEOUT_MS 10000
#define DEFAULT_RECONNECT_MIN_MS   100
#define DEFAULT_RECONNECT_MAX_MS   10000
#define DEFAULT_MAX_PENDING        4096
#define MAX_PENDING_LIMIT          65536
#define CONNECTING_TICK_MS         50
#define BYE_LINGER_MS              300

enum state { ST_IDLE, ST_WAITING, ST_CONNECTING, ST_READY, ST_CLOSING };

struct request {
    struct request *prev, *next;
    uint64_t ref;
    uint64_t incident_id;
    uint64_t deadline; /* uv_now() ms */
    gdw_done_cb cb;
    void *arg;
};

/* One socket and the poll handle watching its ZMQ_FD. */
struct conn {
    uv_poll_t poll;
    void *sock;
    struct gdw_client *c;
};

struct gdw_client {
    uv_loop_t *loop;
    void *zctx;
    struct conn *conn; /* NULL when not connected */
    uv_timer_t tick;
    uv_timer_t retry;
    uv_idle_t kick; /* re-checks ZMQ_EVENTS after sends outside the poll callback */
    int handles_open;
    enum state state;
    bool started;
    bool in_drain;

    char *endpoints[GDW_MAX_ENDPOINTS];
    size_t n_endpoints, ep_index;
    char **queues;
    size_t n_queues;
    char name[GD_MAX_NAME + 1];
    char curve_server[GDW_CURVE_KEY_LEN + 1];
    char curve_public[GDW_CURVE_KEY_LEN + 1];
    char curve_secret[GDW_CURVE_KEY_LEN + 1];
    bool curve;
    uint32_t hello_timeout_ms, request_timeout_ms, reconnect_min_ms, reconnect_max_ms;
    uint32_t max_pending;
    gdw_deliver_cb on_deliver;
    gdw_event_cb on_event;
    void *data;

    uint32_t credit;      /* wanted */
    uint32_t sent_credit; /* what the broker has for this session */
    uint32_t backoff_ms;
    uint64_t session;
    uint32_t heartbeat_ms, liveness;
    uint64_t attempt_started, last_recv, last_send;
    uint64_t rng;

    struct request *req_head, *req_tail;
    uint32_t n_pending;
    uint64_t next_ref;

    struct gd_decoder *decoder;
    struct gd_buf body;

    gdw_close_cb close_cb;
    void *close_data;
};

static void disconnect(struct gdw_client *c, const char *reason, enum gdw_event ev,
                       enum gd_code code);
static void on_kick(uv_idle_t *h);
static void on_tick(uv_timer_t *t);
static void release(struct gdw_client *c);

/* ---- small helpers ---- */

static uint32_t rand32(struct gdw_client *c)
{
    /* xorshift64*: jitter only, no need for quality */
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    return (uint32_t)((c->rng * 2685821657736338717ULL) >> 32);
}

static void emit(struct gdw_client *c, enum gdw_event ev, const struct gdw_event_info *info)
{
    if (c->on_event && c->state != ST_CLOSING)
        c->on_event(c, ev, info, c->data);
}

static bool readable(struct conn *k)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(k->sock, ZMQ_EVENTS, &events, &len) < 0)
        return false;
    return events & ZMQ_POLLIN;
}

/* Encodes `m` and sends it as [header][body]. Returns 0 or a negative errno
 * (-EINVAL when the encoder refuses a value). */
static int send_msg(struct gdw_client *c, const struct gd_msg *m)
{
    if (!c->conn)
        return -ENOTCONN;
    gd_buf_reset(&c->body);
    int rc = gd_encode(m, &c->body);
    if (rc < 0)
        return rc == -GD_E_INTERNAL ? -ENOMEM : -EINVAL;
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(m->type, header);
    if (zmq_send(c->conn->sock, header, sizeof(header), ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0)
        return -errno;
    /* ZeroMQ takes the rest of a message once its first frame is queued. */
    if (zmq_send(c->conn->sock, c->body.data, c->body.len, ZMQ_DONTWAIT) < 0)
        return -errno;
    c->last_send = uv_now(c->loop);
    if (!c->in_drain)
        uv_idle_start(&c->kick, on_kick);
    return 0;
}

/* ---- pending requests ---- */

static void req_unlink(struct gdw_client *c, struct request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        c->req_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        c->req_tail = r->prev;
    c->n_pending--;
}

static void req_finish(struct gdw_client *c, struct request *r, int status,
                       const struct gdw_result *res)
{
    req_unlink(c, r);
    struct gdw_result fallback = {.incident_id = r->incident_id, .message = "", .field = ""};
    r->cb(c, status, res ? res : &fallback, r->arg);
    free(r);
}

/* Fails every pending request with `status`. Requests added by the
 * callbacks themselves are failed too only if they were added before
 * this call started (none can be: commands need a session). */
static void req_fail_all(struct gdw_client *c, int status)
{
    while (c->req_head)
        req_finish(c, c->req_head, status, NULL);
}

static struct request *req_find(struct gdw_client *c, uint64_t ref)
{
    for (struct request *r = c->req_head; r; r = r->next)
        if (r->ref == ref)
            return r;
    return NULL;
}

/* ---- incoming messages ---- */

static void on_welcome(struct gdw_client *c, const struct gd_welcome *w)
{
    c->state = ST_READY;
    c->session = w->session;
    c->heartbeat_ms = w->heartbeat_ms;
    c->liveness = w->liveness;
    c->backoff_ms = 0;
    uint32_t tick = c->heartbeat_ms / 4;
    if (tick < 5)
        tick = 5;
    if (tick > 250)
        tick = 250;
    uv_timer_start(&c->tick, on_tick, tick, tick);
    struct gdw_event_info info = {.endpoint = c->endpoints[c->ep_index],
                                  .session = w->session,
                                  .heartbeat_ms = w->heartbeat_ms,
                                  .liveness = w->liveness};
    emit(c, GDW_EV_READY, &info);
    /* the credit may have changed while HELLO was on its way */
    if (c->state == ST_READY && c->credit != c->sent_credit) {
        struct gd_msg m = {.type = GD_T_CREDIT};
        m.u.credit.credit = c->credit;
        if (send_msg(c, &m) == 0)
            c->sent_credit = c->credit;
    }
}

static void on_answer(struct gdw_client *c, const struct gd_msg *m)
{
    uint64_t ref = m->type == GD_T_OK ? m->u.ok.ref : m->u.error.ref;
    struct request *r = ref ? req_find(c, ref) : NULL;
    if (m->type == GD_T_OK) {
        if (!r)
            return; /* answer after its timeout */
        struct gdw_result res = {.incident_id = m->u.ok.incident_id,
                                 .version = m->u.ok.version,
                                 .applied = m->u.ok.applied,
                                 .message = "",
                                 .field = ""};
        req_finish(c, r, 0, &res);
        return;
    }
    const struct gd_error_reply *e = &m->u.error;
    char message[GD_MAX_TEXT + 1], field[GD_MAX_NAME + 1];
    snprintf(message, sizeof(message), "%.*s", (int)e->message.len, e->message.ptr);
    snprintf(field, sizeof(field), "%.*s", (int)e->field.len, e->field.ptr);
    if (r) {
        struct gdw_result res = {
            .incident_id = r->incident_id, .code = e->code, .message = message, .field = field};
        req_finish(c, r, GDW_ERR, &res);
    } else if (e->code != GD_E_NO_SESSION) {
        struct gdw_event_info info = {
            .endpoint = c->endpoints[c->ep_index], .code = e->code, .reason = message};
        emit(c, GDW_EV_PROTOCOL, &info);
    }
    if (e->code == GD_E_NO_SESSION && c->state == ST_READY)
        disconnect(c, "the broker has no session for this worker (restarted, or declared it dead)",
                   GDW_EV_LOST, GD_OK);
}

static void handle(struct gdw_client *c, zmq_msg_t *frames, size_t n)
{
    if (n != 2)
        return; /* not GDP/1; nothing to answer */
    struct gd_msg m;
    struct gd_decode_error err = {0};
    if (gd_decode(c->decoder, zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]),
                  zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &m, &err) < 0) {
        char why[GD_MAX_NAME + 64];
        snprintf(why, sizeof(why), "undecodable message from the broker: %s %s",
                 gd_code_name(err.code), err.field ? err.field : "");
        struct gdw_event_info info = {
            .endpoint = c->endpoints[c->ep_index], .code = err.code, .reason = why};
        emit(c, GDW_EV_PROTOCOL, &info);
        return;
    }
    if (c->state == ST_CONNECTING) {
        if (m.type == GD_T_WELCOME) {
            on_welcome(c, &m.u.welcome);
        } else if (m.type == GD_T_DENIED) {
            char message[GD_MAX_TEXT + 1];
            snprintf(message, sizeof(message), "%.*s", (int)m.u.error.message.len,
                     m.u.error.message.ptr);
            disconnect(c, message, GDW_EV_DENIED, m.u.error.code);
        }
        return; /* anything else belongs to no session of ours */
    }
    if (c->state != ST_READY)
        return;
    switch (m.type) {
    case GD_T_DELIVER:
        c->on_deliver(c, &m.u.deliver, c->data);
        break;
    case GD_T_OK:
    case GD_T_ERR:
        on_answer(c, &m);
        break;
    case GD_T_BYE: {
        char why[GD_MAX_TEXT + 32];
        snprintf(why, sizeof(why), "the broker said BYE (%.*s)", (int)m.u.bye.reason.len,
                 m.u.bye.reason.ptr);
        disconnect(c, why, GDW_EV_LOST, GD_OK);
        break;
    }
    default: /* HEARTBEAT, or a message for SLA sessions: a sign of life */
        break;
    }
}

/* Reads whole messages while ZMQ_EVENTS says there are any, for as long as
 * `k` is still the client's connection (a callback may end it). */
static void drain(struct gdw_client *c)
{
    struct conn *k = c->conn;
    if (!k || c->in_drain)
        return;
    c->in_drain = true;
    while (c->conn == k && readable(k)) {
        zmq_msg_t frames[3];
        size_t n = 0;
        bool got = false;
        for (;;) {
            zmq_msg_t scratch;
            zmq_msg_t *f = n < 3 ? &frames[n] : &scratch;
            zmq_msg_init(f);
            if (zmq_msg_recv(f, k->sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(f);
                break;
            }
            got = true;
            bool more = zmq_msg_more(f);
            if (f == &scratch)
                zmq_msg_close(f);
            else
                n++;
            if (!more)
                break;
        }
        if (!got)
            break;
        c->last_recv = uv_now(c->loop);
        /* more than 2 frames: handle() ignores it (n is 3) */
        handle(c, frames, n);
        for (size_t i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
    c->in_drain = false;
    if (c->conn)
        uv_idle_stop(&c->kick);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct conn *k = h->data;
    if (k->c && k->c->conn == k)
        drain(k->c);
}

static void on_kick(uv_idle_t *h)
{
    struct gdw_client *c = h->data;
    uv_idle_stop(h);
    drain(c);
}

/* ---- connecting ---- */

static void on_conn_closed(uv_handle_t *h)
{
    struct conn *k = h->data;
    struct gdw_client *c = k->c;
    free(k);
    if (--c->handles_open == 0 && c->state == ST_CLOSING)
        release(c);
}

static void conn_close(struct gdw_client *c, int linger_ms)
{
    struct conn *k = c->conn;
    if (!k)
        return;
    c->conn = NULL;
    uv_poll_stop(&k->poll);
    uv_close((uv_handle_t *)&k->poll, on_conn_closed);
    zmq_setsockopt(k->sock, ZMQ_LINGER, &linger_ms, sizeof(linger_ms));
    zmq_close(k->sock);
    k->sock = NULL;
}

static void on_retry(uv_timer_t *t);

static int set_curve(struct gdw_client *c, void *sock)
{
    if (!c->curve)
        return 0;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, c->curve_server, GDW_CURVE_KEY_LEN) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, c->curve_public, GDW_CURVE_KEY_LEN) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, c->curve_secret, GDW_CURVE_KEY_LEN) < 0)
        return -errno;
    return 0;
}

/* Opens a socket to the current endpoint and sends HELLO. On failure the
 * attempt counts as failed and the next one is scheduled. */
static void connect_next(struct gdw_client *c)
{
    const char *ep = c->endpoints[c->ep_index];
    struct gdw_event_info info = {.endpoint = ep};
    emit(c, GDW_EV_CONNECTING, &info);
    if (c->state == ST_CLOSING)
        return;
    char why[160];
    int rc = 0;
    struct conn *k = calloc(1, sizeof(*k));
    if (!k) {
        disconnect(c, "out of memory", GDW_EV_LOST, GD_OK);
        return;
    }
    k->c = c;
    k->sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!k->sock) {
        snprintf(why, sizeof(why), "zmq_socket: %s", zmq_strerror(errno));
        free(k);
        disconnect(c, why, GDW_EV_LOST, GD_OK);
        return;
    }
    int zero = 0;
    int64_t maxmsg = GD_MAX_BODY + 1024;
    zmq_setsockopt(k->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(k->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    rc = set_curve(c, k->sock);
    if (rc == 0 && zmq_connect(k->sock, ep) < 0)
        rc = -errno;
    int fd = -1;
    size_t len = sizeof(fd);
    if (rc == 0 && zmq_getsockopt(k->sock, ZMQ_FD, &fd, &len) < 0)
        rc = -errno;
    if (rc == 0)
        rc = uv_poll_init(c->loop, &k->poll, fd);
    if (rc < 0) {
        snprintf(why, sizeof(why), "cannot connect to %s: %s", ep, zmq_strerror(-rc));
        zmq_close(k->sock);
        free(k);
        disconnect(c, why, GDW_EV_LOST, GD_OK);
        return;
    }
    k->poll.data = k;
    c->handles_open++;
    c->conn = k;
    uv_poll_start(&k->poll, UV_READABLE, on_poll);
    c->state = ST_CONNECTING;
    c->attempt_started = c->last_recv = c->last_send = uv_now(c->loop);
    uv_timer_start(&c->tick, on_tick, CONNECTING_TICK_MS, CONNECTING_TICK_MS);

    struct gd_msg m = {.type = GD_T_HELLO};
    struct gd_hello *h = &m.u.hello;
    h->role = GD_ROLE_WORKER;
    h->name = gd_str_c(c->name);
    h->credit = c->credit ? c->credit : 1;
    h->n_queues = (uint32_t)c->n_queues;
    for (size_t i = 0; i < c->n_queues; i++)
        h->queues[i] = gd_str_c(c->queues[i]);
    rc = send_msg(c, &m);
    c->sent_credit = h->credit;
    if (rc == 0 && c->credit == 0) {
        struct gd_msg cm = {.type = GD_T_CREDIT};
        rc = send_msg(c, &cm);
        c->sent_credit = 0;
    }
    if (rc < 0) {
        snprintf(why, sizeof(why), "cannot send HELLO to %s: %s", ep, strerror(-rc));
        disconnect(c, why, GDW_EV_LOST, GD_OK);
    }
}

/* Ends the current connection or attempt, fails pending commands with
 * -ECONNRESET, reports `ev`, and schedules the next attempt on the next
 * endpoint after the backoff. */
static void disconnect(struct gdw_client *c, const char *reason, enum gdw_event ev,
                       enum gd_code code)
{
    if (c->state == ST_CLOSING)
        return;
    const char *ep = c->endpoints[c->ep_index];
    conn_close(c, 0);
    c->state = ST_WAITING;
    c->session = 0;
    uv_timer_stop(&c->tick);
    uv_idle_stop(&c->kick);
    c->ep_index = (c->ep_index + 1) % c->n_endpoints;
    if (c->backoff_ms == 0)
        c->backoff_ms = c->reconnect_min_ms;
    else if (c->backoff_ms < c->reconnect_max_ms / 2)
        c->backoff_ms *= 2;
    else
        c->backoff_ms = c->reconnect_max_ms;
    /* up to +25% jitter so that a town's workers do not reconnect in step */
    uint32_t delay = c->backoff_ms + (c->backoff_ms >= 4 ? rand32(c) % (c->backoff_ms / 4) : 0);
    uv_timer_start(&c->retry, on_retry, delay, 0);
    req_fail_all(c, -ECONNRESET);
    struct gdw_event_info info = {
        .endpoint = ep, .retry_ms = delay, .code = code, .reason = reason};
    emit(c, ev, &info);
}

static void on_retry(uv_timer_t *t)
{
    struct gdw_client *c = t->data;
    if (c->state == ST_WAITING)
        connect_next(c);
}

static void on_tick(uv_timer_t *t)
{
    struct gdw_client *c = t->data;
    uint64_t now = uv_now(c->loop);
    if (c->state == ST_CONNECTING) {
        if (now - c->attempt_started >= c->hello_timeout_ms)
            disconnect(c, "no WELCOME in time", GDW_EV_LOST, GD_OK);
        return;
    }
    if (c->state != ST_READY)
        return;
    uint64_t dead_after = (uint64_t)c->heartbeat_ms * c->liveness;
    if (now - c->last_recv > dead_after) {
        char why[96];
        snprintf(why, sizeof(why), "the broker was silent for %llu ms",
                 (unsigned long long)(now - c->last_recv));
        disconnect(c, why, GDW_EV_LOST, GD_OK);
        return;
    }
    if (now - c->last_send >= c->heartbeat_ms) {
        struct gd_msg m = {.type = GD_T_HEARTBEAT};
        send_msg(c, &m); /* a full queue is the broker's problem; liveness tells */
    }
    while (c->req_head && c->req_head->deadline <= now) {
        struct request *r = c->req_head;
        req_finish(c, r, -ETIMEDOUT, NULL);
        if (c->state != ST_READY)
            return;
    }
    /* The timer callback ran outside the poll callback: a heartbeat sent
     * here may have consumed the edge of an incoming message. */
    drain(c);
}

/* ---- public API ---- */

static int copy_str(char **dst, const char *src)
{
    *dst = strdup(src);
    return *dst ? 0 : -ENOMEM;
}

static bool key_ok(const char *k)
{
    return k && strlen(k) == GDW_CURVE_KEY_LEN;
}

static void client_free(struct gdw_client *c)
{
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    if (c->queues)
        for (size_t i = 0; i < c->n_queues; i++)
            free(c->queues[i]);
    free(c->queues);
    gd_decoder_free(c->decoder);
    gd_buf_fini(&c->body);
    if (c->zctx)
        zmq_ctx_term(c->zctx);
    c->zctx = NULL;
}

int gdw_new(uv_loop_t *loop, const struct gdw_options *opt, struct gdw_client **ret_client)
{
    if (!loop || !opt || !opt->on_deliver || opt->n_endpoints == 0 ||
        opt->n_endpoints > GDW_MAX_ENDPOINTS || opt->n_queues == 0 ||
        opt->n_queues > GD_MAX_QUEUES || opt->credit > GD_MAX_CREDIT ||
        (opt->name && strlen(opt->name) > GD_MAX_NAME) || opt->max_pending > MAX_PENDING_LIMIT)
        return -EINVAL;
    bool any_key = opt->curve_server_key || opt->curve_public_key || opt->curve_secret_key;
    if (any_key && !(key_ok(opt->curve_server_key) && key_ok(opt->curve_public_key) &&
                     key_ok(opt->curve_secret_key)))
        return -EINVAL;
    for (size_t i = 0; i < opt->n_queues; i++) {
        const char *q = opt->queues[i];
        if (!q || !*q || strlen(q) > GD_MAX_QUEUE || !gd_utf8_valid(gd_str_c(q)))
            return -EINVAL;
    }
    for (size_t i = 0; i < opt->n_endpoints; i++)
        if (!opt->endpoints[i] || !*opt->endpoints[i])
            return -EINVAL;

    int rc = -ENOMEM;
    struct gdw_client *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    c->loop = loop;
    for (size_t i = 0; i < opt->n_endpoints; i++, c->n_endpoints++)
        if (copy_str(&c->endpoints[i], opt->endpoints[i]) < 0)
            goto free_client;
    c->queues = calloc(opt->n_queues, sizeof(*c->queues));
    if (!c->queues)
        goto free_client;
    for (size_t i = 0; i < opt->n_queues; i++, c->n_queues++)
        if (copy_str(&c->queues[i], opt->queues[i]) < 0)
            goto free_client;
    snprintf(c->name, sizeof(c->name), "%s", opt->name ? opt->name : "");
    if (any_key) {
        c->curve = true;
        memcpy(c->curve_server, opt->curve_server_key, GDW_CURVE_KEY_LEN + 1);
        memcpy(c->curve_public, opt->curve_public_key, GDW_CURVE_KEY_LEN + 1);
        memcpy(c->curve_secret, opt->curve_secret_key, GDW_CURVE_KEY_LEN + 1);
    }
    c->hello_timeout_ms = opt->hello_timeout_ms ? opt->hello_timeout_ms : DEFAULT_HELLO_TIMEOUT_MS;
    c->request_timeout_ms =
        opt->request_timeout_ms ? opt->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    c->reconnect_min_ms = opt->reconnect_min_ms ? opt->reconnect_min_ms : DEFAULT_RECONNECT_MIN_MS;
    c->reconnect_max_ms = opt->reconnect_max_ms ? opt->reconnect_max_ms : DEFAULT_RECONNECT_MAX_MS;
    if (c->reconnect_max_ms < c->reconnect_min_ms)
        c->reconnect_max_ms = c->reconnect_min_ms;
    c->max_pending = opt->max_pending ? opt->max_pending : DEFAULT_MAX_PENDING;
    c->credit = opt->credit;
    c->on_deliver = opt->on_deliver;
    c->on_event = opt->on_event;
    c->data = opt->data;
    c->rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)c;
    if (!c->rng)
        c->rng = 1;
    c->decoder = gd_decoder_new();
    if (!c->decoder)
        goto free_client;
    c->zctx = zmq_ctx_new();
    if (!c->zctx) {
        rc = -errno;
        goto free_client;
    }
    uv_timer_init(loop, &c->tick);
    uv_timer_init(loop, &c->retry);
    uv_idle_init(loop, &c->kick);
    c->tick.data = c->retry.data = c->kick.data = c;
    *ret_client = c;
    return 0;

free_client:
    client_free(c);
    free(c);
    return rc;
}

int gdw_start(struct gdw_client *c)
{
    if (c->state == ST_CLOSING)
        return -ESHUTDOWN;
    if (c->started)
        return -EALREADY;
    c->started = true;
    c->state = ST_WAITING;
    /* from the loop, so that no callback runs inside this call */
    return uv_timer_start(&c->retry, on_retry, 0, 0);
}

/* After the last handle of a closing client is closed: fails what was
 * pending, frees the client, then tells the owner. */
static void release(struct gdw_client *c)
{
    req_fail_all(c, -ECANCELED);
    gdw_close_cb cb = c->close_cb;
    void *data = c->close_data;
    client_free(c);
    free(c);
    if (cb)
        cb(data);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct gdw_client *c = h->data;
    if (--c->handles_open == 0)
        release(c);
}

void gdw_close(struct gdw_client *c, gdw_close_cb cb, void *data)
{
    if (!c || c->state == ST_CLOSING)
        return;
    int linger = 0;
    if (c->state == ST_READY) {
        struct gd_msg m = {.type = GD_T_BYE};
        m.u.bye.reason = GD_STR("shutdown");
        if (send_msg(c, &m) == 0)
            linger = BYE_LINGER_MS;
    }
    c->state = ST_CLOSING;
    c->close_cb = cb;
    c->close_data = data;
    /* pending requests are failed in release(), from the loop */
    conn_close(c, linger);
    uv_timer_stop(&c->tick);
    uv_timer_stop(&c->retry);
    uv_idle_stop(&c->kick);
    c->handles_open += 3;
    uv_close((uv_handle_t *)&c->tick, on_handle_closed);
    uv_close((uv_handle_t *)&c->retry, on_handle_closed);
    uv_close((uv_handle_t *)&c->kick, on_handle_closed);
}

bool gdw_ready(const struct gdw_client *c)
{
    return c->state == ST_READY;
}

uint64_t gdw_session(const struct gdw_client *c)
{
    return c->state == ST_READY ? c->session : 0;
}

int gdw_set_credit(struct gdw_client *c, uint32_t credit)
{
    if (credit > GD_MAX_CREDIT)
        return -EINVAL;
    c->credit = credit;
    if (c->state != ST_READY || credit == c->sent_credit)
        return 0;
    struct gd_msg m = {.type = GD_T_CREDIT};
    m.u.credit.credit = credit;
    int rc = send_msg(c, &m);
    if (rc == 0)
        c->sent_credit = credit;
    return rc;
}

static bool text_ok(const char *s, bool required)
{
    if (!s || !*s)
        return !required;
    size_t n = strlen(s);
    return n <= GD_MAX_TEXT && gd_utf8_valid(gd_str_make(s, n));
}

static int command(struct gdw_client *c, enum gd_type type, const struct gd_command *cmd,
                   gdw_done_cb cb, void *arg)
{
    if (!cb || cmd->incident_id == 0)
        return -EINVAL;
    if (c->state != ST_READY)
        return -ENOTCONN;
    if (c->n_pending >= c->max_pending)
        return -ENOBUFS;
    struct request *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    struct gd_msg m = {.type = type};
    m.u.command = *cmd;
    m.u.command.ref = r->ref = ++c->next_ref;
    int rc = send_msg(c, &m);
    if (rc < 0) {
        free(r);
        return rc;
    }
    r->incident_id = cmd->incident_id;
    r->deadline = uv_now(c->loop) + c->request_timeout_ms;
    r->cb = cb;
    r->arg = arg;
    r->prev = c->req_tail;
    if (c->req_tail)
        c->req_tail->next = r;
    else
        c->req_head = r;
    c->req_tail = r;
    c->n_pending++;
    return 0;
}

int gdw_sign(struct gdw_client *c, uint64_t incident_id, uint32_t version, uint64_t delivery_id,
             gdw_done_cb cb, void *arg)
{
    if (!version && !delivery_id)
        return -EINVAL;
    struct gd_command cmd = {
        .incident_id = incident_id, .version = version, .delivery_id = delivery_id};
    return command(c, GD_T_SIGN, &cmd, cb, arg);
}

int gdw_progress(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *note,
                 gdw_done_cb cb, void *arg)
{
    if (!text_ok(note, false))
        return -EINVAL;
    struct gd_command cmd = {
        .incident_id = incident_id, .version = version, .text = gd_str_c(note)};
    return command(c, GD_T_PROGRESS, &cmd, cb, arg);
}

int gdw_extend(struct gdw_client *c, uint64_t incident_id, uint32_t version, int64_t until_ms,
               const char *reason, gdw_done_cb cb, void *arg)
{
    if (until_ms <= 0 || !text_ok(reason, true))
        return -EINVAL;
    struct gd_command cmd = {.incident_id = incident_id,
                             .version = version,
                             .until = until_ms,
                             .text = gd_str_c(reason)};
    return command(c, GD_T_EXTEND, &cmd, cb, arg);
}

int gdw_return(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *reason,
               const char *rule, gdw_done_cb cb, void *arg)
{
    if (!text_ok(reason, true) || !text_ok(rule, false))
        return -EINVAL;
    struct gd_command cmd = {.incident_id = incident_id,
                             .version = version,
                             .text = gd_str_c(reason),
                             .rule = gd_str_c(rule)};
    return command(c, GD_T_RETURN, &cmd, cb, arg);
}

int gdw_resolve(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *result,
                gdw_done_cb cb, void *arg)
{
    if (!text_ok(result, false))
        return -EINVAL;
    struct gd_command cmd = {
        .incident_id = incident_id, .version = version, .text = gd_str_c(result)};
    return command(c, GD_T_RESOLVE, &cmd, cb, arg);
}
