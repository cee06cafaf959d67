/* pump.c - gd-hotline's submit window: orders in flight to the broker, alone or in SUBMITS
 * batches per shard, in line order, committed as a prefix. */
#include "pump.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "hlog.h"
#include "order.h"

enum slot_state { SLOT_FREE, SLOT_SENT, SLOT_WAIT, SLOT_DONE };

/* The refs of SUBMITS messages have this bit; an order's own ref (its SUBMIT's, and its item's in
 * a SUBMITS) is its seq + 1, without it. So a REJECTED or BUSY says by its ref alone whether it
 * is about one order or a whole SUBMITS. */
#define SUBMITS_REF (UINT64_C(1) << 63)

struct slot {
    enum slot_state state;
    uint64_t seq; /* also the request ref */
    size_t shard; /* the intake it goes to */
    uint64_t line, start, end;
    bool rejected;
    char reason[GD_MAX_TEXT + 160];
    char ticket[GD_MAX_EXTERNAL_ID + 1];
    struct gd_buf body; /* the encoded SUBMIT, kept for resends (alone or as a SUBMITS item) */
    int64_t due;        /* SENT: resend at; WAIT: send at */
    int64_t sent_at;    /* SENT: first sent since its last answer or fail-over */
    uint64_t msg;       /* SENT: the ref of the message it went in last */
    bool alone;         /* a SUBMITS holding it was refused whole: from now on sent as SUBMIT */
};

struct pump {
    const struct pump_config *cfg;
    struct feed *feed;
    struct intake *const *in;
    size_t n_in;
    const struct city *city;
    struct resume *res;
    struct slot *slots;
    struct slot **groups; /* n_in lists of cfg->batch: the due orders of each shard */
    struct gd_buf out;    /* a SUBMITS body being built */
    uint64_t n_batches;   /* SUBMITS refs given out */
    uint64_t head, tail;  /* seqs: [head, tail) occupy slots */
    struct resume_pos pos;
    bool pos_dirty;
    int64_t last_save;
    struct pump_stats st;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct slot *slot_of(struct pump *p, uint64_t seq)
{
    return &p->slots[seq % p->cfg->window];
}

/* Sends the `n` due orders `group` of shard `shard` in one message: one as a SUBMIT, more as a
 * SUBMITS (the caller keeps them within cfg->batch and GD_MAX_BODY). Returns 0, also when the
 * socket cannot take it now (they wait 100 ms), or -errno. */
static int send_group(struct pump *p, size_t shard, struct slot *const *group, uint32_t n,
                      int64_t now)
{
    uint64_t ref;
    int rc;
    if (n == 1) {
        ref = group[0]->seq + 1;
        rc = intake_send_raw(p->in[shard], GD_T_SUBMIT, group[0]->body.data, group[0]->body.len);
    } else {
        const struct gd_buf *items[GD_MAX_SUBMITS];
        for (uint32_t i = 0; i < n; i++)
            items[i] = &group[i]->body;
        ref = SUBMITS_REF | ++p->n_batches;
        gd_buf_reset(&p->out);
        rc = gd_encode_submits(ref, n, items, &p->out);
        if (rc < 0)
            return rc == -GD_E_INTERNAL ? -ENOMEM : -EINVAL;
        rc = intake_send_raw(p->in[shard], GD_T_SUBMITS, p->out.data, p->out.len);
    }
    if (rc == -EAGAIN || rc == -EINTR) { /* no broker connection yet: try again shortly */
        for (uint32_t i = 0; i < n; i++) {
            group[i]->state = SLOT_WAIT;
            group[i]->due = now + 100;
        }
        return 0;
    }
    if (rc < 0)
        return rc;
    for (uint32_t i = 0; i < n; i++) {
        struct slot *s = group[i];
        if (s->state != SLOT_SENT)
            s->sent_at = now;
        s->state = SLOT_SENT;
        s->msg = ref;
        s->due = now + p->cfg->timeout_ms;
    }
    if (n == 1) {
        p->st.submit_msgs++;
    } else {
        p->st.submits_msgs++;
        p->st.submits_orders += n;
    }
    return 0;
}

/* Reads one line into a new slot at the tail. Returns 1, 0 (no line now)
 * or -errno. */
static int take_line(struct pump *p)
{
    struct feed_line l;
    int rc = feed_next(p->feed, &l);
    if (rc <= 0)
        return rc;
    uint64_t seq = p->tail++;
    struct slot *s = slot_of(p, seq);
    s->seq = seq;
    s->line = l.number;
    s->start = l.start;
    s->end = l.end;
    s->rejected = false;
    s->alone = false;
    s->msg = 0;
    s->ticket[0] = '\0';
    p->st.lines++;
    if (l.too_long) {
        s->state = SLOT_DONE;
        s->rejected = true;
        snprintf(s->reason, sizeof(s->reason),
                 "line longer than the limit of bytes (%" PRIu64 " bytes)", l.end - l.start);
        return 1;
    }
    struct order o;
    char why[256];
    if (order_parse(l.data, l.len, &o, why, sizeof(why)) < 0) {
        s->state = SLOT_DONE;
        s->rejected = true;
        snprintf(s->reason, sizeof(s->reason), "%s", why);
        order_ticket(l.data, l.len, s->ticket);
        return 1;
    }
    snprintf(s->ticket, sizeof(s->ticket), "%.*s", (int)o.msg.u.submit.external_id.len,
             o.msg.u.submit.external_id.ptr);
    o.msg.u.submit.ref = seq + 1; /* refs are never 0 */
    s->shard = 0;
    if (p->city) {
        const struct gd_str *unit = &o.msg.u.submit.location.unit;
        int i = city_shard_of_unit(p->city, unit->ptr, unit->len);
        s->shard = (size_t)(i >= 0 ? i : city_default_shard(p->city));
    }
    gd_buf_reset(&s->body);
    rc = gd_encode(&o.msg, &s->body);
    order_fini(&o);
    if (rc < 0) {
        s->state = SLOT_DONE;
        s->rejected = true;
        snprintf(s->reason, sizeof(s->reason), "not sendable: %s",
                 gd_code_message((enum gd_code) - rc));
        return 1;
    }
    s->state = SLOT_WAIT; /* sent by send_due(), with the other due orders of its shard */
    s->due = 0;
    return 1;
}

/* Settles one order of shard `shard` by the outcome `r` of its SUBMIT or of its item in a
 * SUBMITS: accepted, refused (to the reject file), or not now (sent again later): BUSY, and
 * `limit`, the client's own requests in flight beyond the broker's --max-pending, which
 * PROTOCOL.md §9 says to retry once earlier answers came. */
static void on_result(struct pump *p, size_t shard, const struct gd_submit_result *r)
{
    uint64_t ref = r->ref;
    if (ref == 0 || (ref & SUBMITS_REF) || ref - 1 < p->head || ref - 1 >= p->tail)
        return; /* late answer to something already final, or not ours */
    struct slot *s = slot_of(p, ref - 1);
    if ((s->state != SLOT_SENT && s->state != SLOT_WAIT) || s->shard != shard)
        return;
    if (r->code == GD_OK) {
        s->state = SLOT_DONE;
        if (r->duplicate)
            p->st.duplicates++;
        else
            p->st.accepted++;
        hlog(p->cfg->log_level, HLOG_DEBUG, "line %" PRIu64 ": incident %" PRIu64 "%s", s->line,
             r->incident_id, r->duplicate ? " (duplicate)" : "");
    } else if (r->code == GD_E_BUSY || r->code == GD_E_LIMIT) {
        p->st.busy++;
        s->state = SLOT_WAIT;
        s->due = now_ms() + (r->retry_ms ? r->retry_ms : 100);
    } else {
        s->state = SLOT_DONE;
        s->rejected = true;
        snprintf(s->reason, sizeof(s->reason), "refused by the broker: %s%s%.*s: %.*s",
                 gd_code_name(r->code), r->field.len ? " at " : "", (int)r->field.len,
                 r->field.ptr ? r->field.ptr : "", (int)r->message.len,
                 r->message.ptr ? r->message.ptr : "");
    }
}

/* Handles a REJECTED or BUSY for a whole SUBMITS of shard `shard` (ref 0: the broker could not
 * read a message; it may have been one of our SUBMITS). BUSY, or REJECTED `limit`: its orders wait
 * and go again in a batch. Any other REJECTED: its orders are sent again one by one, each then
 * answered on its own, so none is lost nor stuck in a message the broker refuses. */
static void on_whole(struct pump *p, size_t shard, const struct gd_msg *m)
{
    uint64_t ref = intake_msg_ref(m);
    bool busy = m->type == GD_T_BUSY || m->u.error.code == GD_E_LIMIT;
    uint32_t retry_ms = m->type == GD_T_BUSY ? m->u.busy.retry_ms : 0;
    int64_t now = now_ms();
    uint64_t n = 0;
    for (uint64_t q = p->head; q < p->tail; q++) {
        struct slot *s = slot_of(p, q);
        if ((s->state != SLOT_SENT && s->state != SLOT_WAIT) || s->shard != shard || s->alone ||
            !(ref ? s->msg == ref : (s->msg & SUBMITS_REF) != 0))
            continue;
        s->state = SLOT_WAIT;
        s->msg = 0;
        if (busy) {
            s->due = now + (retry_ms ? retry_ms : 100);
        } else {
            s->alone = true;
            s->due = now;
        }
        n++;
    }
    if (n == 0)
        return;
    if (busy) {
        p->st.busy++;
        return;
    }
    p->st.batches_refused++;
    const struct gd_error_reply *e = &m->u.error;
    hlog(p->cfg->log_level, HLOG_WARN,
         "the broker refused a SUBMITS of %" PRIu64 " orders as a whole (%s%s%.*s: %.*s): "
         "sending them one by one",
         n, gd_code_name(e->code), e->field.len ? " at " : "", (int)e->field.len,
         e->field.ptr ? e->field.ptr : "", (int)e->message.len,
         e->message.ptr ? e->message.ptr : "");
}

/* Handles one reply from the intake of shard `shard`. */
static void on_reply(struct pump *p, size_t shard, const struct gd_msg *m)
{
    uint64_t ref = intake_msg_ref(m);
    struct gd_submit_result r = {.ref = ref};
    switch (m->type) {
    case GD_T_SUBMITTED:
        for (uint32_t i = 0; i < m->u.submitted.n_results; i++)
            on_result(p, shard, &m->u.submitted.results[i]);
        return;
    case GD_T_ACCEPTED:
        r.code = GD_OK;
        r.incident_id = m->u.accepted.incident_id;
        r.duplicate = m->u.accepted.duplicate;
        break;
    case GD_T_REJECTED:
        if (ref == 0 || (ref & SUBMITS_REF)) {
            on_whole(p, shard, m);
            return;
        }
        r.code = m->u.error.code;
        r.field = m->u.error.field;
        r.message = m->u.error.message;
        break;
    case GD_T_BUSY:
        if (ref & SUBMITS_REF) {
            on_whole(p, shard, m);
            return;
        }
        r.code = GD_E_BUSY;
        r.retry_ms = m->u.busy.retry_ms;
        break;
    default:
        return;
    }
    on_result(p, shard, &r);
}

/* Pops the final slots at the head, writing rejects in line order. */
static int commit_head(struct pump *p)
{
    while (p->head < p->tail) {
        struct slot *s = slot_of(p, p->head);
        if (s->state != SLOT_DONE)
            break;
        if (s->rejected) {
            int rc =
                resume_reject(p->res, feed_inode(p->feed), s->line, s->start, s->ticket, s->reason);
            if (rc < 0)
                return rc;
            p->st.rejected++;
            hlog(p->cfg->log_level, HLOG_INFO, "line %" PRIu64 " rejected: %s", s->line, s->reason);
        }
        p->pos = (struct resume_pos){feed_inode(p->feed), s->end, s->line, 0};
        p->pos_dirty = true;
        s->state = SLOT_FREE;
        p->head++;
    }
    return 0;
}

static int save(struct pump *p)
{
    if (!p->pos_dirty || !feed_seekable(p->feed))
        return 0;
    int rc = resume_save(p->res, p->pos);
    if (rc < 0)
        return rc;
    p->pos_dirty = false;
    p->last_save = now_ms();
    return 0;
}

/* Sends every order that is due: new ones, those that timed out and those that waited out a BUSY,
 * in line order, gathered per shard into messages of up to cfg->batch orders that fit
 * GD_MAX_BODY (an order that fits no SUBMITS, or one refused in a SUBMITS before, goes alone).
 * Returns 0 with *ret_next the time of the next such event (or INT64_MAX), or -errno. */
static int send_due(struct pump *p, int64_t now, int64_t *ret_next)
{
    const size_t room = GD_MAX_BODY - GD_SUBMITS_OVERHEAD;
    const uint32_t batch = p->cfg->batch;
    uint32_t n[CITY_MAX_SHARDS] = {0};
    size_t bytes[CITY_MAX_SHARDS] = {0};
    int rc;
    for (uint64_t q = p->head; q < p->tail; q++) {
        struct slot *s = slot_of(p, q);
        if ((s->state != SLOT_SENT && s->state != SLOT_WAIT) || s->due > now)
            continue;
        if (s->state == SLOT_SENT)
            p->st.resent++;
        size_t i = s->shard;
        if (batch == 1 || s->alone || s->body.len > room) {
            if ((rc = send_group(p, i, &s, 1, now)) < 0)
                return rc;
            continue;
        }
        struct slot **g = p->groups + i * batch;
        if (n[i] && bytes[i] + s->body.len > room) {
            if ((rc = send_group(p, i, g, n[i], now)) < 0)
                return rc;
            n[i] = 0;
            bytes[i] = 0;
        }
        g[n[i]++] = s;
        bytes[i] += s->body.len;
        if (n[i] == batch) {
            if ((rc = send_group(p, i, g, n[i], now)) < 0)
                return rc;
            n[i] = 0;
            bytes[i] = 0;
        }
    }
    for (size_t i = 0; i < p->n_in; i++)
        if (n[i] && (rc = send_group(p, i, p->groups + i * batch, n[i], now)) < 0)
            return rc;
    int64_t next = INT64_MAX;
    for (uint64_t q = p->head; q < p->tail; q++) {
        const struct slot *s = slot_of(p, q);
        if ((s->state == SLOT_SENT || s->state == SLOT_WAIT) && s->due < next)
            next = s->due;
    }
    *ret_next = next;
    return 0;
}

/* Moves an intake whose broker went silent while orders wait on it to the
 * next endpoint of its list, and queues those orders to be sent there at
 * once. Returns whether any order waits for an answer on an intake that can
 * move (the caller wakes up often enough to notice the silence). */
static bool check_failover(struct pump *p, int64_t now)
{
    bool watching = false;
    for (size_t i = 0; i < p->n_in; i++) {
        if (intake_n_endpoints(p->in[i]) < 2)
            continue;
        int64_t oldest = 0;
        for (uint64_t q = p->head; q < p->tail; q++) {
            const struct slot *s = slot_of(p, q);
            if (s->shard == i && s->state == SLOT_SENT && (oldest == 0 || s->sent_at < oldest))
                oldest = s->sent_at;
        }
        if (oldest)
            watching = true;
        char was[INTAKE_MAX_ENDPOINT_LEN + 1];
        snprintf(was, sizeof(was), "%s", intake_endpoint(p->in[i]));
        int rc = intake_failover_due(p->in[i], oldest);
        if (rc < 0) {
            hlog(p->cfg->log_level, HLOG_WARN, "cannot connect to the next endpoint after %s: %s",
                 was, strerror(-rc));
            continue;
        }
        if (rc == 0)
            continue;
        uint64_t moved = 0;
        for (uint64_t q = p->head; q < p->tail; q++) {
            struct slot *s = slot_of(p, q);
            if (s->shard != i || (s->state != SLOT_SENT && s->state != SLOT_WAIT))
                continue;
            s->state = SLOT_WAIT;
            s->due = now;
            moved++;
        }
        p->st.failovers++;
        hlog(p->cfg->log_level, HLOG_WARN,
             "broker %s silent for %" PRIu32 " ms: now %s, sending the %" PRIu64
             " orders in flight again",
             was, p->cfg->failover_ms, intake_endpoint(p->in[i]), moved);
    }
    return watching;
}

int pump_run(const struct pump_config *cfg, struct feed *feed, struct intake *const *in,
             size_t n_in, const struct city *city, struct resume *res, int stop_fd,
             struct svcnotify *notify, struct pump_stats *ret_stats)
{
    if (n_in < 1 || n_in > CITY_MAX_SHARDS ||
        (city && (city_n_shards(city) != n_in || city_default_shard(city) < 0)))
        return -EINVAL;
    struct pump p = {.cfg = cfg, .feed = feed, .in = in, .n_in = n_in, .city = city, .res = res};
    if (cfg->batch < 1 || cfg->batch > GD_MAX_SUBMITS)
        return -EINVAL;
    p.slots = calloc(cfg->window, sizeof(*p.slots));
    p.groups = calloc(n_in * cfg->batch, sizeof(*p.groups));
    if (!p.slots || !p.groups) {
        free(p.slots);
        free(p.groups);
        return -ENOMEM;
    }
    p.last_save = now_ms();
    int rc = 0;
    bool stopping = false, draining_for_rotation = false;
    int64_t stop_by = 0;
    for (;;) {
        svcnotify_watchdog(notify);
        /* free the slots answered since the last turn before refilling: filling first left them
         * taken until the next wake-up, up to poll_ms later */
        rc = commit_head(&p);
        if (rc < 0)
            goto done;
        /* fill the window */
        while (!stopping && !draining_for_rotation && p.tail - p.head < cfg->window) {
            rc = take_line(&p);
            if (rc < 0)
                goto done;
            if (rc == 0)
                break;
        }
        rc = commit_head(&p);
        if (rc < 0)
            goto done;
        int64_t now = now_ms();
        bool idle = p.head == p.tail;
        if (p.pos_dirty && (idle || now - p.last_save >= cfg->save_ms)) {
            rc = save(&p);
            if (rc < 0)
                goto done;
        }
        if (idle) {
            if (stopping) {
                rc = 1;
                goto done;
            }
            if (draining_for_rotation) {
                rc = feed_reopen(feed);
                if (rc < 0)
                    goto done;
                hlog(cfg->log_level, HLOG_INFO,
                     "input rotated: reading the new file from its "
                     "start");
                svcnotify_status("input rotated: submitting the new file from its start");
                p.pos = (struct resume_pos){feed_inode(feed), 0, 0, 0};
                p.pos_dirty = true;
                draining_for_rotation = false;
                continue;
            }
            if (feed_eof(feed)) {
                rc = 0;
                goto done;
            }
        }
        bool watching = cfg->failover_ms > 0 && check_failover(&p, now);
        int64_t next;
        rc = send_due(&p, now, &next);
        if (rc < 0)
            goto done;
        int timeout = next == INT64_MAX ? -1 : (int)(next - now < 0 ? 0 : next - now);
        /* notice a silent broker within a tenth of failover_ms */
        int watch_ms = (int)(cfg->failover_ms / 10 ? cfg->failover_ms / 10 : 1);
        if (watching && (timeout < 0 || timeout > watch_ms))
            timeout = watch_ms;
        bool window_full = p.tail - p.head >= cfg->window;
        if (!stopping && !draining_for_rotation && !window_full && !feed_eof(feed)) {
            /* following: no new line now; look again soon */
            if (feed_rotated(feed) && !draining_for_rotation)
                draining_for_rotation = true;
            if (timeout < 0 || timeout > cfg->poll_ms)
                timeout = cfg->poll_ms;
        }
        if (p.pos_dirty && (timeout < 0 || timeout > cfg->save_ms))
            timeout = cfg->save_ms;
        if (stopping && (timeout < 0 || timeout > 100))
            timeout = 100;
        timeout = svcnotify_wait_ms(notify, timeout);
        zmq_pollitem_t items[CITY_MAX_SHARDS + 1] = {{.fd = stop_fd, .events = ZMQ_POLLIN}};
        for (size_t i = 0; i < n_in; i++)
            items[1 + i] = (zmq_pollitem_t){.socket = intake_socket(in[i]), .events = ZMQ_POLLIN};
        int n = stop_fd >= 0 ? zmq_poll(items, (int)n_in + 1, timeout)
                             : zmq_poll(items + 1, (int)n_in, timeout);
        if (n < 0 && zmq_errno() != EINTR) {
            rc = -zmq_errno();
            goto done;
        }
        if (stop_fd >= 0 && items[0].revents) {
            char sig[128]; /* consume the signalfd record(s) */
            if (read(stop_fd, sig, sizeof(sig)) < 0 && errno != EAGAIN)
                hlog(cfg->log_level, HLOG_WARN, "reading the signal fd: %s", strerror(errno));
            if (stopping) { /* a second signal: leave now */
                rc = 1;
                goto done;
            }
            stopping = true;
            stop_by = now_ms() + 2 * (int64_t)cfg->timeout_ms;
            svcnotify_stopping("stopping: waiting up to %d ms for %" PRIu64 " orders in flight",
                               2 * cfg->timeout_ms, p.tail - p.head);
            hlog(cfg->log_level, HLOG_INFO,
                 "stopping: waiting up to %d ms for %" PRIu64 " orders in flight",
                 2 * cfg->timeout_ms, p.tail - p.head);
        }
        if (stopping && now_ms() >= stop_by) {
            hlog(cfg->log_level, HLOG_WARN,
                 "stopping with %" PRIu64 " orders unconfirmed; they "
                 "are read again on the next start",
                 p.tail - p.head);
            rc = 1;
            goto done;
        }
        for (size_t i = 0; i < n_in; i++) {
            struct gd_msg m;
            int got;
            while ((got = intake_recv(in[i], 0, &m)) != 0) {
                if (got == 1)
                    on_reply(&p, i, &m);
                else if (got != -EPROTO) {
                    rc = got;
                    goto done;
                }
            }
        }
    }
done:
    if (rc >= 0) {
        int src = commit_head(&p);
        if (src == 0)
            src = save(&p);
        if (src < 0)
            rc = src;
    }
    for (unsigned i = 0; i < cfg->window; i++)
        gd_buf_fini(&p.slots[i].body);
    free(p.slots);
    free(p.groups);
    gd_buf_fini(&p.out);
    *ret_stats = p.st;
    return rc;
}
