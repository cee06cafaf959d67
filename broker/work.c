/* work.c - the work endpoint: worker sessions, deliveries, heartbeats and worker commands. */
#include "work.h"

#include <errno.h>
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
#include "route.h"
#include "sla.h"
#include "status.h"

/* ---- sending ---- */

static int send_to(struct broker *b, const uint8_t *rid, size_t rid_len, const struct gd_msg *m)
{
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(m->type, header);
    gd_buf_reset(&b->out);
    int rc = gd_encode(m, &b->out);
    if (rc < 0) {
        log_error("work", "cannot encode %s: %s", gd_type_name(m->type),
                  gd_code_name((enum gd_code)-rc));
        return rc;
    }
    const void *parts[3] = {rid, header, b->out.data};
    size_t lens[3] = {rid_len, sizeof(header), b->out.len};
    return zsock_send(&b->work, parts, lens, 3);
}

static int send_session(struct broker *b, struct session *s, const struct gd_msg *m)
{
    s->last_send = broker_now(b);
    return send_to(b, s->rid, s->rid_len, m);
}

int work_send(struct broker *b, struct session *s, const struct gd_msg *m)
{
    return send_session(b, s, m);
}

static void send_error(struct broker *b, const uint8_t *rid, size_t rid_len, enum gd_type type,
                       uint64_t ref, enum gd_code code, const char *field, const char *message)
{
    struct gd_msg m = {.type = type};
    m.u.error = (struct gd_error_reply){
        .ref = ref,
        .code = code,
        .message = gd_str_c(message ? message : gd_code_message(code)),
        .field = gd_str_c(field),
    };
    send_to(b, rid, rid_len, &m);
    b->counters.worker_errors++;
}

static struct session *session_by_id(struct broker *b, uint64_t id)
{
    struct session *s = NULL;
    HASH_FIND(hi, b->sessions_by_id, &id, sizeof(id), s);
    return s;
}

void work_answer(struct broker *b, uint64_t session_id, const struct gd_msg *m)
{
    struct session *s = session_by_id(b, session_id);
    if (s)
        send_session(b, s, m);
}

/* ---- deliveries ---- */

void work_detach(struct broker *b, struct incident *inc)
{
    struct session *s = incident_detach(inc);
    if (!s)
        return;
    /* the freed credit may take work from any of its queues */
    for (uint32_t i = 0; i < s->n_queues; i++)
        work_kick(b, s->queues[i]);
}

static void session_lost(struct broker *b, struct session *s, const char *why);

static bool deliver(struct broker *b, struct session *s, struct incident *inc)
{
    inc->session = s;
    inc->delivery_id = ++b->next_delivery;
    DL_APPEND2(s->deliveries, inc, sprev, snext);
    s->in_flight++;
    if (lifecycle_apply(b, inc, GD_EV_DELIVER, GD_ST_DELIVERED, NULL, false, s->name, NULL,
                        NULL) < 0) {
        DL_DELETE2(s->deliveries, inc, sprev, snext);
        inc->session = NULL;
        s->in_flight--;
        return false;
    }
    struct gd_msg m = {.type = GD_T_DELIVER};
    m.u.deliver.delivery_id = inc->delivery_id;
    m.u.deliver.attempt = inc->attempts + 1;
    incident_view(inc, true, &m.u.deliver.incident);
    int rc = send_session(b, s, &m);
    b->counters.delivered++;
    if (rc < 0) {
        /* gone (EHOSTUNREACH) or not reading (EAGAIN): either way the
         * session cannot take work; its deliveries go back */
        session_lost(b, s, rc == -EAGAIN ? "not reading its messages" : "disconnected");
        return false;
    }
    return true;
}

static void dispatch_queue(struct broker *b, struct queue *q)
{
    while (q->depth && q->n_consumers) {
        struct session *chosen = NULL;
        for (uint32_t i = 0; i < q->n_consumers; i++) {
            struct session *s = q->consumers[(q->next_consumer + i) % q->n_consumers];
            if (s->in_flight < s->credit) {
                chosen = s;
                q->next_consumer = (q->next_consumer + i + 1) % q->n_consumers;
                break;
            }
        }
        if (!chosen)
            return;
        if (!deliver(b, chosen, queue_peek(q)))
            return;
    }
}

static void on_dispatch(uv_idle_t *h)
{
    struct broker *b = h->data;
    uv_idle_stop(h);
    /* While the database is down nothing is delivered; work_kick_all()
     * runs when it is back. */
    bool can = !b->stopping && store_is_up(b->store);
    while (b->dirty) {
        struct queue *q = b->dirty;
        b->dirty = q->dirty_next;
        q->dirty = false;
        q->dirty_next = NULL;
        if (can)
            dispatch_queue(b, q);
    }
}

void work_kick(struct broker *b, struct queue *q)
{
    if (q->dirty)
        return;
    q->dirty = true;
    q->dirty_next = b->dirty;
    b->dirty = q;
    uv_idle_start(&b->dispatch_idle, on_dispatch);
}

void work_kick_all(struct broker *b)
{
    for (struct queue *q = b->queues; q; q = q->hh.next)
        if (q->depth && q->n_consumers)
            work_kick(b, q);
}

/* ---- sessions ---- */

static void session_free(struct broker *b, struct session *s)
{
    if (s->role == GD_ROLE_SLA)
        sla_session_gone(b, s);
    for (uint32_t i = 0; i < s->n_queues; i++)
        queue_remove_consumer(s->queues[i], s);
    HASH_DELETE(hh, b->sessions, s);
    HASH_DELETE(hi, b->sessions_by_id, s);
    b->n_sessions--;
    free(s->queues);
    free(s);
}

/* Puts an unsigned delivery back at the head of its queue, or, after
 * max_attempts deliveries nobody signed for, one level up with an alarm
 * (a poison item must not block its queue forever). */
static void put_back(struct broker *b, struct incident *inc, const char *why)
{
    inc->attempts++;
    if (inc->attempts < b->cfg.max_attempts) {
        lifecycle_apply(b, inc, GD_EV_REQUEUE, GD_ST_QUEUED, NULL, true, NULL, why, NULL);
        b->counters.requeued++;
        return;
    }
    char note[160];
    snprintf(note, sizeof(note), "delivered %u times and never signed for (last: %s)",
             inc->attempts, why);
    struct route up;
    int rc = route_parent(b, inc, &up);
    if (rc == 0) {
        inc->attempts = 0;
        inc->escalations++;
        lifecycle_apply(b, inc, GD_EV_ESCALATE, GD_ST_QUEUED, &up, true, NULL, note, NULL);
    } else {
        lifecycle_apply(b, inc, GD_EV_REQUEUE, GD_ST_QUEUED, NULL, false, NULL, note, NULL);
    }
    b->counters.poisoned++;
    status_alarm(b, "poison", "warning", inc->id, inc->queue->name, note);
}

static void session_lost(struct broker *b, struct session *s, const char *why)
{
    log_warn("work", "session %llu (%s) lost: %s", (unsigned long long)s->id, s->name, why);
    b->counters.sessions_lost++;
    while (s->deliveries) { /* all unsigned */
        struct incident *inc = s->deliveries;
        work_detach(b, inc);
        put_back(b, inc, why);
    }
    session_free(b, s);
}

void work_session_lost(struct broker *b, struct session *s, const char *why)
{
    session_lost(b, s, why);
}

static void session_end(struct broker *b, struct session *s)
{
    log_info("work", "session %llu (%s) said BYE", (unsigned long long)s->id, s->name);
    while (s->deliveries) {
        struct incident *inc = s->deliveries;
        work_detach(b, inc);
        if (inc->state == GD_ST_DELIVERED) {
            lifecycle_apply(b, inc, GD_EV_REQUEUE, GD_ST_QUEUED, NULL, true, NULL,
                            "worker left before sign-for", NULL);
            b->counters.requeued++;
        }
    }
    session_free(b, s);
}

/* With CurveZMQ on: may principal `p` open the session HELLO `h` asks
 * for? Its role must match and every queue or town must lie in its scope.
 * Writes the reason into msg when not. */
static bool hello_allowed(struct broker *b, const struct principal *p, const struct gd_hello *h,
                          char *msg, size_t msglen)
{
    if (!p)
        return true;
    enum auth_role want = h->role == GD_ROLE_SLA ? AUTH_SLA : AUTH_WORKER;
    if (p->role != want) {
        snprintf(msg, msglen, "a principal with role %s may not open a %s session",
                 auth_role_name(p->role), gd_role_name(h->role));
        return false;
    }
    for (uint32_t i = 0; i < h->n_queues; i++) {
        struct queue *q = queue_lookup(b, h->queues[i].ptr, h->queues[i].len);
        if (q && !auth_in_scope(p, q->unit)) {
            snprintf(msg, msglen, "queue %s is outside your scope", q->name);
            return false;
        }
    }
    if (h->role == GD_ROLE_SLA && h->n_shard == 0 && !p->everywhere) {
        snprintf(msg, msglen, "only a district-wide SLA principal may serve all towns");
        return false;
    }
    for (uint32_t i = 0; i < h->n_shard; i++) {
        struct unit *u = org_unit(&b->org, h->shard[i].ptr, h->shard[i].len);
        if (u && !auth_in_scope(p, u)) {
            snprintf(msg, msglen, "town %s is outside your scope", u->code);
            return false;
        }
    }
    return true;
}

static void handle_hello(struct broker *b, const zmq_msg_t *rid, struct session *old,
                         const struct gd_hello *h, const struct principal *p)
{
    const uint8_t *id = zmq_msg_data((zmq_msg_t *)rid);
    size_t id_len = zmq_msg_size((zmq_msg_t *)rid);
    if (old)
        session_lost(b, old, "said HELLO again");
    char why[160];
    if (!hello_allowed(b, p, h, why, sizeof(why))) {
        send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_DENIED, "queues", why);
        auth_refused(b, p->name, why);
        return;
    }
    if (b->n_sessions >= b->cfg.max_sessions) {
        send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_LIMIT, NULL,
                   "too many worker sessions; try again later or raise --max-sessions");
        return;
    }
    if (h->credit > b->cfg.max_credit) {
        char msg[128];
        snprintf(msg, sizeof(msg), "credit %u is above this broker's maximum of %u", h->credit,
                 b->cfg.max_credit);
        send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_LIMIT, "credit", msg);
        return;
    }
    struct session *s = calloc(1, sizeof(*s));
    if (s)
        s->queues = calloc(h->n_queues ? h->n_queues : 1, sizeof(*s->queues));
    if (!s || !s->queues) {
        if (s)
            free(s);
        send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_INTERNAL, NULL, "out of memory");
        return;
    }
    for (uint32_t i = 0; i < h->n_queues; i++) {
        struct queue *q = queue_lookup(b, h->queues[i].ptr, h->queues[i].len);
        if (!q) {
            char msg[GD_MAX_QUEUE + 128];
            snprintf(msg, sizeof(msg),
                     "no queue '%.*s': use a grid, community or district code, "
                     "<town>.<sector> or triage",
                     (int)h->queues[i].len, h->queues[i].ptr);
            free(s->queues);
            free(s);
            send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_NOT_FOUND, "queues", msg);
            return;
        }
        bool seen = false;
        for (uint32_t j = 0; j < s->n_queues; j++)
            seen = seen || s->queues[j] == q;
        if (!seen)
            s->queues[s->n_queues++] = q;
    }
    s->role = h->role;
    if (h->role == GD_ROLE_SLA) {
        char msg[256];
        int rc = sla_hello(b, s, h, msg, sizeof(msg));
        if (rc < 0) {
            free(s->queues);
            free(s);
            send_error(b, id, id_len, GD_T_DENIED, 0, (enum gd_code)-rc, "shard", msg);
            return;
        }
    }
    s->id = ++b->next_session;
    memcpy(s->rid, id, id_len);
    s->rid_len = id_len;
    snprintf(s->name, sizeof(s->name), "%.*s", (int)h->name.len, h->name.ptr);
    if (!s->name[0])
        snprintf(s->name, sizeof(s->name), "worker-%llu", (unsigned long long)s->id);
    s->credit = h->credit;
    s->last_recv = s->last_send = broker_now(b);
    for (uint32_t i = 0; i < s->n_queues; i++) {
        if (queue_add_consumer(s->queues[i], s) < 0) {
            for (uint32_t j = 0; j < i; j++)
                queue_remove_consumer(s->queues[j], s);
            free(s->queues);
            free(s);
            send_error(b, id, id_len, GD_T_DENIED, 0, GD_E_INTERNAL, NULL, "out of memory");
            return;
        }
    }
    HASH_ADD(hh, b->sessions, rid, s->rid_len, s);
    HASH_ADD(hi, b->sessions_by_id, id, sizeof(s->id), s);
    b->n_sessions++;
    b->counters.sessions_opened++;
    if (s->role == GD_ROLE_SLA)
        log_info("work", "session %llu (%s): SLA timers for %s", (unsigned long long)s->id,
                 s->name, s->all_towns ? "all towns" : "its shard");
    else
        log_info("work", "session %llu (%s): %u queues, credit %u", (unsigned long long)s->id,
                 s->name, s->n_queues, s->credit);
    struct gd_msg m = {.type = GD_T_WELCOME};
    m.u.welcome = (struct gd_welcome){
        .session = s->id, .heartbeat_ms = b->cfg.heartbeat_ms, .liveness = b->cfg.liveness};
    send_session(b, s, &m);
    if (s->role == GD_ROLE_SLA)
        sla_start_sync(b, s);
    for (uint32_t i = 0; i < s->n_queues; i++)
        work_kick(b, s->queues[i]);
}

static bool serves(const struct session *s, const struct queue *q)
{
    for (uint32_t i = 0; i < s->n_queues; i++)
        if (s->queues[i] == q)
            return true;
    return false;
}

static enum gd_event_kind event_of(enum gd_type t)
{
    switch (t) {
    case GD_T_SIGN: return GD_EV_SIGN;
    case GD_T_PROGRESS: return GD_EV_PROGRESS;
    case GD_T_EXTEND: return GD_EV_EXTEND;
    case GD_T_RETURN: return GD_EV_RETURN;
    default: return GD_EV_RESOLVE;
    }
}

static void cmd_error(struct broker *b, struct session *s, const struct gd_command *c,
                      enum gd_code code, const char *field, const char *message)
{
    send_error(b, s->rid, s->rid_len, GD_T_ERR, c->ref, code, field, message);
}

static void handle_command(struct broker *b, struct session *s, enum gd_type type,
                           const struct gd_command *c)
{
    char msg[256];
    struct incident *inc = incident_by_id(b, c->incident_id);
    if (!inc || !inc->durable) {
        snprintf(msg, sizeof(msg), "incident %llu is not open (unknown, or already closed)",
                 (unsigned long long)c->incident_id);
        cmd_error(b, s, c, GD_E_NOT_FOUND, "incident_id", msg);
        return;
    }
    enum gd_event_kind ev = event_of(type);
    /* A retry of the command that made the current version: answer it
     * again instead of applying it twice. */
    bool same_sign = type == GD_T_SIGN && c->delivery_id && c->delivery_id == inc->delivery_id;
    /* Any session may retry (the first answer can be lost with a
     * connection): the same kind of command on the version it made. */
    bool same_kind = inc->last_event == ev ||
                     (ev == GD_EV_EXTEND && inc->last_event == GD_EV_EXTEND_REQUEST);
    if (same_kind &&
        (same_sign || (c->version && c->version + 1 == inc->version))) {
        if (inc->pending_changes) {
            cmd_error(b, s, c, GD_E_BUSY, NULL,
                      "the first copy of this command is still being stored; retry shortly");
            return;
        }
        struct gd_msg m = {.type = GD_T_OK};
        m.u.ok = (struct gd_ok){
            .ref = c->ref, .incident_id = inc->id, .version = inc->version, .applied = false};
        send_session(b, s, &m);
        return;
    }
    if (!store_is_up(b->store) || store_backlog(b->store) >= b->cfg.backlog_max) {
        cmd_error(b, s, c, GD_E_BUSY, NULL,
                  store_is_up(b->store) ? "the broker is catching up with its database; retry"
                                        : "the database is unavailable; retry");
        return;
    }
    if (!serves(s, inc->queue)) {
        snprintf(msg, sizeof(msg), "incident %llu belongs to queue %s, which this session does not serve",
                 (unsigned long long)inc->id, inc->queue->name);
        cmd_error(b, s, c, GD_E_NOT_OWNER, "incident_id", msg);
        return;
    }
    if (type == GD_T_SIGN && c->delivery_id) {
        if (c->delivery_id != inc->delivery_id || inc->session != s) {
            cmd_error(b, s, c, GD_E_NOT_OWNER, "delivery_id",
                      "this delivery was taken back (the session was thought dead, or the "
                      "incident moved); wait for a new delivery");
            return;
        }
    } else if (c->version != inc->version) {
        snprintf(msg, sizeof(msg), "incident %llu is at version %u, not %u; read it again",
                 (unsigned long long)inc->id, inc->version, c->version);
        cmd_error(b, s, c, GD_E_STALE_VERSION, "version", msg);
        return;
    }

    enum gd_state to = inc->state;
    const struct route *move = NULL;
    struct route r;
    bool ok_state;
    switch (type) {
    case GD_T_SIGN:
        ok_state = inc->state == GD_ST_DELIVERED && inc->session == s;
        to = GD_ST_SIGNED;
        break;
    case GD_T_PROGRESS:
        ok_state = inc->state == GD_ST_SIGNED || inc->state == GD_ST_IN_PROGRESS;
        to = GD_ST_IN_PROGRESS;
        break;
    case GD_T_EXTEND:
        ok_state = inc->state == GD_ST_SIGNED || inc->state == GD_ST_IN_PROGRESS;
        break;
    case GD_T_RETURN:
        ok_state = inc->state == GD_ST_DELIVERED || inc->state == GD_ST_SIGNED;
        to = GD_ST_QUEUED;
        break;
    default: /* RESOLVE */
        ok_state = inc->state == GD_ST_QUEUED || incident_in_hand(inc->state);
        to = GD_ST_RESOLVED;
        break;
    }
    if (!ok_state) {
        snprintf(msg, sizeof(msg), "%s is not allowed for an incident in state %s",
                 gd_type_name(type), gd_state_name(inc->state));
        cmd_error(b, s, c, GD_E_BAD_STATE, NULL, msg);
        return;
    }
    if (type == GD_T_EXTEND) {
        const struct sla *sla = inc->category ? &inc->category->sla[inc->priority] : NULL;
        int64_t now = broker_now(b);
        if (c->until <= now || (inc->resolve_due && c->until <= inc->resolve_due)) {
            cmd_error(b, s, c, GD_E_BAD_VALUE, "until",
                      "an extension must end after now and after the current resolve deadline");
            return;
        }
        if (sla && sla->set && inc->resolve_due &&
            c->until - inc->resolve_due > sla->max_extension_s * 1000) {
            snprintf(msg, sizeof(msg),
                     "this category allows extensions of at most %lld s",
                     (long long)sla->max_extension_s);
            cmd_error(b, s, c, GD_E_POLICY, "until", msg);
            return;
        }
        /* Beyond the automatic limit the request waits for the level
         * above (APPROVE on the intake endpoint). */
        if (b->cfg.extension_approval && inc->resolve_due &&
            c->until - inc->resolve_due > (sla && sla->set ? sla->auto_extension_s : 0) * 1000) {
            if (inc->extension_pending) {
                cmd_error(b, s, c, GD_E_BAD_STATE, NULL,
                          "an extension request is already waiting for approval");
                return;
            }
            ev = GD_EV_EXTEND_REQUEST;
        }
    }
    if (type == GD_T_RETURN) {
        int rc = route_return(b, inc, &r);
        if (rc == 1) {
            cmd_error(b, s, c, GD_E_BAD_STATE, NULL,
                      "the incident is already with the dispatcher (triage); resolve it or ask "
                      "an administrator to dispatch it");
            return;
        }
        if (rc < 0) {
            cmd_error(b, s, c, GD_E_INTERNAL, NULL, "out of memory");
            return;
        }
        move = &r;
    }
    struct waiter *w = waiter_for_session(s->id, c->ref);
    int64_t old_due = inc->resolve_due, old_warn = inc->resolve_warn;
    uint8_t old_warned = inc->warned;
    int64_t old_pending = inc->extension_pending;
    if (ev == GD_EV_EXTEND_REQUEST)
        inc->extension_pending = c->until;
    else if (type == GD_T_EXTEND)
        deadline_extend(b, inc, c->until, broker_now(b));
    char note[GD_MAX_TEXT * 2 + 16];
    struct gd_str text = c->text;
    if (type == GD_T_RETURN && c->rule.len) {
        snprintf(note, sizeof(note), "%.*s (rule: %.*s)", (int)c->text.len, c->text.ptr,
                 (int)c->rule.len, c->rule.ptr);
        text = gd_str_c(note);
    }
    if (!w || lifecycle_apply_str(b, inc, ev, to, move, false, s->name, text, w) < 0) {
        free(w);
        inc->resolve_due = old_due;
        inc->resolve_warn = old_warn;
        inc->warned = old_warned;
        inc->extension_pending = old_pending;
        cmd_error(b, s, c, GD_E_INTERNAL, NULL, "out of memory");
        return;
    }
    switch (type) {
    case GD_T_SIGN: b->counters.signed_++; inc->attempts = 0; break;
    case GD_T_PROGRESS: b->counters.progressed++; break;
    case GD_T_EXTEND:
        ev == GD_EV_EXTEND_REQUEST ? b->counters.extension_requests++ : b->counters.extended++;
        break;
    case GD_T_RETURN: b->counters.returned++; break;
    default: b->counters.resolved++; break;
    }
}

static void on_message(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow)
{
    struct broker *b = zs->data;
    if (n < 1)
        return;
    const uint8_t *rid = zmq_msg_data(&frames[0]);
    size_t rid_len = zmq_msg_size(&frames[0]);
    struct session *s = NULL;
    HASH_FIND(hh, b->sessions, rid, rid_len, s);
    if (s)
        s->last_recv = broker_now(b);
    if (overflow || n != 3) {
        send_error(b, rid, rid_len, GD_T_ERR, 0, GD_E_BAD_HEADER, NULL,
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
        /* a HELLO is answered DENIED, whatever refused it */
        bool hello = zmq_msg_size(&frames[1]) == GD_HEADER_LEN &&
                     ((const uint8_t *)zmq_msg_data(&frames[1]))[GD_SIGNATURE_LEN] == GD_T_HELLO;
        send_error(b, rid, rid_len, hello ? GD_T_DENIED : GD_T_ERR, derr.ref, derr.code,
                   derr.field, msg);
        return;
    }
    bool unknown;
    const struct principal *p = auth_peer(b, &frames[1], &unknown);
    if (unknown) {
        send_error(b, rid, rid_len, m.type == GD_T_HELLO ? GD_T_DENIED : GD_T_ERR, 0,
                   GD_E_DENIED, NULL, "your key is no longer authorised here");
        auth_refused(b, "(removed principal)", "use the work endpoint");
        if (s)
            session_lost(b, s, "its principal was removed");
        return;
    }
    if (m.type == GD_T_HELLO) {
        if (b->stopping) {
            send_error(b, rid, rid_len, GD_T_DENIED, 0, GD_E_BUSY, NULL,
                       "the broker is shutting down");
            return;
        }
        handle_hello(b, &frames[0], s, &m.u.hello, p);
        return;
    }
    if (!s) {
        uint64_t ref = 0;
        if (m.type >= GD_T_SIGN && m.type <= GD_T_ESCALATE)
            ref = m.u.command.ref;
        send_error(b, rid, rid_len, GD_T_ERR, ref, GD_E_NO_SESSION, NULL,
                   "no session: send HELLO first (the broker may have restarted or declared "
                   "this worker dead)");
        return;
    }
    switch (m.type) {
    case GD_T_HEARTBEAT:
        break;
    case GD_T_BYE:
        session_end(b, s);
        break;
    case GD_T_CREDIT:
        if (s->role == GD_ROLE_SLA) {
            send_error(b, rid, rid_len, GD_T_ERR, 0, GD_E_DENIED, NULL,
                       "SLA sessions take no deliveries");
            break;
        }
        if (m.u.credit.credit > b->cfg.max_credit) {
            send_error(b, rid, rid_len, GD_T_ERR, 0, GD_E_LIMIT, "credit",
                       "credit above this broker's maximum");
            break;
        }
        s->credit = m.u.credit.credit;
        for (uint32_t i = 0; i < s->n_queues; i++)
            work_kick(b, s->queues[i]);
        break;
    case GD_T_SIGN:
    case GD_T_PROGRESS:
    case GD_T_EXTEND:
    case GD_T_RETURN:
    case GD_T_RESOLVE:
        if (s->role == GD_ROLE_SLA)
            send_error(b, rid, rid_len, GD_T_ERR, m.u.command.ref, GD_E_DENIED, NULL,
                       "SLA sessions only send WARN and ESCALATE");
        else
            handle_command(b, s, m.type, &m.u.command);
        break;
    case GD_T_WARN:
    case GD_T_ESCALATE:
        if (s->role == GD_ROLE_SLA)
            sla_command(b, s, m.type, &m.u.command);
        else
            send_error(b, rid, rid_len, GD_T_ERR, m.u.command.ref, GD_E_DENIED, NULL,
                       "only SLA sessions may send WARN and ESCALATE");
        break;
    default: {
        char msg[96];
        snprintf(msg, sizeof(msg), "%s is not a message for the work endpoint",
                 gd_type_name(m.type));
        send_error(b, rid, rid_len, GD_T_ERR, 0, GD_E_UNKNOWN_TYPE, NULL, msg);
        break;
    }
    }
}

/* How often sessions are checked and heartbeats sent: twice a heartbeat. */
static uint32_t heartbeat_period(const struct broker *b)
{
    return b->cfg.heartbeat_ms / 2 ? b->cfg.heartbeat_ms / 2 : 1;
}

static void on_heartbeat(uv_timer_t *t)
{
    struct broker *b = t->data;
    int64_t now = broker_now(b);
    int64_t dead_after = (int64_t)b->cfg.heartbeat_ms * b->cfg.liveness;
    /* The broker's own absence (its loop held up, the process stopped or
     * starved) is not its workers' silence: their heartbeats wait unread
     * in the socket, and this timer runs before the loop reads them. What
     * the loop was away beyond this timer's period counts against nobody
     * now; whoever is really gone is found at the next run. */
    int64_t away = b->heartbeat_tick ? now - b->heartbeat_tick - heartbeat_period(b) : 0;
    b->heartbeat_tick = now;
    if (away < 0)
        away = 0;
    struct session *s, *tmp;
    HASH_ITER(hh, b->sessions, s, tmp) {
        if (now - s->last_recv > dead_after + away) {
            char why[96];
            snprintf(why, sizeof(why), "silent for %lld ms", (long long)(now - s->last_recv));
            session_lost(b, s, why);
        } else if (now - s->last_send >= (int64_t)b->cfg.heartbeat_ms) {
            struct gd_msg m = {.type = GD_T_HEARTBEAT};
            if (send_session(b, s, &m) == -EHOSTUNREACH)
                session_lost(b, s, "disconnected");
        }
    }
}

void work_init(struct broker *b)
{
    uv_idle_init(b->loop, &b->dispatch_idle);
    b->dispatch_idle.data = b;
}

int work_open(struct broker *b, char *err, size_t errlen)
{
    /* Deliveries are bounded by credit and answers by the commands a
     * worker sends; --work-hwm bounds what waits for a worker that does
     * not read (a full queue ends its session, see deliver()). */
    struct zsock_options o = {.type = ZMQ_ROUTER,
                              .endpoint = b->cfg.work_endpoint,
                              .maxmsg = GD_MAX_BODY + 1024,
                              .sndhwm = (int)b->cfg.work_hwm,
                              .rcvhwm = (int)b->cfg.work_hwm};
    auth_endpoint(b, "work", &o);
    peers_watch(&o);
    int rc = zsock_bind(&b->work, b->loop, b->zctx, &o, on_message, b, err, errlen);
    if (rc < 0)
        return rc;
    uv_timer_init(b->loop, &b->heartbeat_timer);
    b->heartbeat_timer.data = b;
    uv_timer_start(&b->heartbeat_timer, on_heartbeat, heartbeat_period(b), heartbeat_period(b));
    return 0;
}

void work_close(struct broker *b)
{
    struct session *s, *tmp;
    HASH_ITER(hh, b->sessions, s, tmp) {
        struct gd_msg m = {.type = GD_T_BYE};
        m.u.bye.reason = GD_STR("broker shutting down");
        send_session(b, s, &m);
        while (s->deliveries)
            work_detach(b, s->deliveries);
        session_free(b, s);
    }
    uv_timer_stop(&b->heartbeat_timer);
    uv_idle_stop(&b->dispatch_idle);
    uv_close((uv_handle_t *)&b->heartbeat_timer, NULL);
    uv_close((uv_handle_t *)&b->dispatch_idle, NULL);
    zsock_close(&b->work);
}
