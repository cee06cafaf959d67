/* status.c - the status endpoint: transitions, queue gauges, alarms and broker health on XPUB. */
#include "status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uthash.h>
#include <zstd.h>

#include "auth.h"
#include "log.h"
#include "peers.h"
#include "store.h"
#include "tally.h"

/* Subscription frames queued per subscriber before the broker reads them. */
#define STATUS_SUBSCRIPTIONS_QUEUED 32

/* Transitions and gauges are published in batches, one per town (§12.1):
 * a hundred dashboards each taking every transition would otherwise cost
 * the loop one message per transition per subscriber, and cut intake by
 * more than half; a district's thousands of active queues, one gauge
 * message each per period, as much again. A batch of transitions waits at
 * most --status-batch-ms, the gauges of a period go out together at its
 * end; bodies of 1 KiB or more go out zstd-compressed (about a tenth of
 * the size), since the bytes copied to every subscriber are what the
 * fan-out costs. */
#define COMPRESS_MIN 1024
#define COMPRESS_LEVEL 1

struct batch {
    char topic[GD_MAX_TOPIC]; /* inc.<town>, inc.district, inc.triage, queue.<town>... */
    enum gd_status_kind kind; /* GD_STATUS_TRANSITIONS or GD_STATUS_GAUGES */
    struct gd_buf items;      /* encoded item maps */
    uint32_t n;
    UT_hash_handle hh;
};

struct status_batches {
    struct broker *b;
    struct batch *by_topic;   /* one per town seen; org units are bounded */
    uv_timer_t timer;         /* running while some batch waits */
    bool waiting;
    ZSTD_CCtx *cctx;
    struct gd_buf item;       /* scratch: one encoded transition */
    struct gd_buf packed;     /* scratch: a compressed body */
};

/* Sends [topic][body]; XPUB drops for slow subscribers. */
static void send_status(struct broker *b, const char *topic, const struct gd_buf *body)
{
    const void *parts[2] = {topic, body->data};
    size_t lens[2] = {strlen(topic), body->len};
    zsock_send(&b->status, parts, lens, 2);
    /* the send applied any waiting subscriptions: new ones are reported */
    if (zsock_readable(&b->status))
        peers_check_subscribers(b);
}

static void send_batch(struct broker *b, struct batch *bt)
{
    struct status_batches *sb = b->batches;
    gd_buf_reset(&b->out);
    int rc = bt->kind == GD_STATUS_GAUGES ? gd_encode_gauges(bt->n, &bt->items, &b->out)
                                           : gd_encode_transitions(bt->n, &bt->items, &b->out);
    uint32_t n = bt->n;
    bt->n = 0;
    gd_buf_reset(&bt->items);
    if (rc < 0) {
        log_error("status", "cannot encode %u %s on %s: %s", n, gd_status_kind_name(bt->kind),
                  bt->topic, gd_code_name((enum gd_code)-rc));
        return;
    }
    const struct gd_buf *body = &b->out;
    if (b->out.len >= COMPRESS_MIN && sb->cctx) {
        size_t bound = ZSTD_compressBound(b->out.len);
        if (sb->packed.cap < bound) {
            char *p = realloc(sb->packed.data, bound);
            if (p) {
                sb->packed.data = p;
                sb->packed.cap = bound;
            }
        }
        if (sb->packed.cap >= bound) {
            size_t z = ZSTD_compressCCtx(sb->cctx, sb->packed.data, sb->packed.cap, b->out.data,
                                         b->out.len, COMPRESS_LEVEL);
            if (!ZSTD_isError(z) && z < b->out.len) {
                sb->packed.len = z;
                body = &sb->packed;
            }
        }
    }
    b->counters.status_batches++;
    b->counters.status_bytes_raw += b->out.len;
    b->counters.status_bytes_sent += body->len;
    send_status(b, bt->topic, body);
}

void status_flush(struct broker *b)
{
    struct status_batches *sb = b->batches;
    if (!sb || !sb->waiting)
        return;
    sb->waiting = false;
    uv_timer_stop(&sb->timer);
    for (struct batch *bt = sb->by_topic; bt; bt = bt->hh.next)
        if (bt->n)
            send_batch(b, bt);
}

static void on_batch_timer(uv_timer_t *t)
{
    struct status_batches *sb = t->data;
    status_flush(sb->b);
}

static void publish(struct broker *b, const char *topic, const struct gd_status *st)
{
    /* whatever happened before this goes out before it */
    status_flush(b);
    gd_buf_reset(&b->out);
    int rc = gd_encode_status(st, &b->out);
    if (rc < 0) {
        log_error("status", "cannot encode %s on %s: %s", gd_status_kind_name(st->kind), topic,
                  gd_code_name((enum gd_code)-rc));
        return;
    }
    send_status(b, topic, &b->out);
}

/* inc.<town>.<community>.<grid> from the incident's location; coarser
 * locations give shorter topics; unknown locations inc.triage. */
static void incident_topic(const char *prefix, const struct incident *inc, char *buf,
                           size_t size)
{
    const struct unit *u = inc->location;
    if (!u || !u->town) {
        snprintf(buf, size, "%s.%s", prefix, u ? "district" : "triage");
        return;
    }
    int n = snprintf(buf, size, "%s.%s", prefix, u->town->code);
    if (u->community && n > 0 && (size_t)n < size)
        n += snprintf(buf + n, size - (size_t)n, ".%s", u->community->code);
    if (u->grid && n > 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ".%s", u->grid->code);
}

/* The batch on `topic`, created when first needed (topics are per town:
 * bounded by the org tree). */
static struct batch *batch_for(struct status_batches *sb, const char *topic,
                               enum gd_status_kind kind)
{
    struct batch *bt = NULL;
    HASH_FIND_STR(sb->by_topic, topic, bt);
    if (!bt) {
        bt = calloc(1, sizeof(*bt));
        if (!bt)
            return NULL;
        snprintf(bt->topic, sizeof(bt->topic), "%s", topic);
        bt->kind = kind;
        HASH_ADD_STR(sb->by_topic, topic, bt);
    }
    return bt;
}

/* Appends the item encoded in sb->item to the batch on `topic`, sending
 * the batch first when the item would not fit. */
static bool batch_add(struct broker *b, const char *topic, enum gd_status_kind kind)
{
    struct status_batches *sb = b->batches;
    struct batch *bt = batch_for(sb, topic, kind);
    if (!bt)
        return false;
    uint32_t max = kind == GD_STATUS_GAUGES ? GD_MAX_GAUGES : GD_MAX_BATCH;
    /* room for the batch's own header (map, kind, array: < 32 bytes) */
    if (bt->n == max || bt->items.len + sb->item.len > GD_MAX_BODY - 32)
        send_batch(b, bt);
    if (gd_buf_append(&bt->items, sb->item.data, sb->item.len) < 0)
        return false;
    bt->n++;
    return true;
}

void status_transition(struct broker *b, const struct incident *inc, const struct store_change *c)
{
    struct status_batches *sb = b->batches;
    char topic[GD_MAX_TOPIC];
    incident_topic("inc", inc, topic, sizeof(topic));
    struct gd_status_transition tr = {
        .topic = gd_str_c(topic),
        .incident_id = inc->id,
        .version = c->version,
        .at = c->at,
        .event = c->event,
        .from = c->kind == STORE_NEW ? GD_ST_RECEIVED : c->from,
        .to = c->to,
        .priority = inc->priority,
        .level = c->owner_level,
        .category = gd_str_c(inc->category_code),
        .queue = gd_str_c(c->queue),
        .unit = gd_str_c(inc->location_code),
        /* how the unit was found: said once, where it was found */
        .located_by = c->kind == STORE_NEW
                          ? gd_str_c(locate_method_name((enum locate_method)inc->located_by))
                          : GD_STR_NULL,
        .source = gd_str_c(inc->source),
        .received_at = inc->received_at,
        .sign_due = c->sign_due,
        .resolve_due = c->resolve_due,
        .flagged = c->flagged,
    };
    /* the batch's topic is the item's up to the town: inc.<town> (or
     * inc.district, inc.triage, which have no further segment) */
    char btopic[GD_MAX_TOPIC];
    memcpy(btopic, topic, sizeof(btopic));
    char *dot = strchr(btopic + 4, '.');
    if (dot)
        *dot = '\0';
    gd_buf_reset(&sb->item);
    int rc = gd_encode_transition(&tr, &sb->item);
    if (rc < 0 || !batch_add(b, btopic, GD_STATUS_TRANSITIONS)) {
        log_error("status", "cannot publish version %u of incident %llu on %s: %s", c->version,
                  (unsigned long long)inc->id, topic,
                  rc < 0 ? gd_code_name((enum gd_code)-rc) : "out of memory");
        return;
    }
    if (!sb->waiting) {
        sb->waiting = true;
        uv_timer_start(&sb->timer, on_batch_timer, b->cfg.status_batch_ms, 0);
    }
}

void status_sla(struct broker *b, const struct incident *inc, bool breach,
                enum gd_deadline_kind kind, int64_t due, uint32_t version, enum gd_level level,
                const char *queue)
{
    char topic[GD_MAX_TOPIC];
    incident_topic(breach ? "sla.breach" : "sla.warn", inc, topic, sizeof(topic));
    struct gd_status st = {.kind = GD_STATUS_SLA};
    st.u.sla = (struct gd_status_sla){
        .at = broker_now(b),
        .breach = breach,
        .incident_id = inc->id,
        .version = version,
        .kind = kind,
        .level = level,
        .queue = gd_str_c(queue),
        .due_at = due,
    };
    publish(b, topic, &st);
}

void status_alarm(struct broker *b, const char *kind, const char *severity, uint64_t incident_id,
                  const char *queue, const char *message)
{
    char topic[GD_MAX_TOPIC];
    snprintf(topic, sizeof(topic), "alarm.%s", kind);
    struct gd_status st = {.kind = GD_STATUS_ALARM};
    st.u.alarm = (struct gd_status_alarm){
        .at = broker_now(b),
        .kind = gd_str_c(kind),
        .severity = gd_str_c(severity),
        .incident_id = incident_id,
        .queue = gd_str_c(queue),
        .message = gd_str_c(message),
    };
    log_warn("status", "alarm %s (%s): %s", kind, severity, message);
    publish(b, topic, &st);
}

void status_gauge(struct broker *b, const struct queue *q, int64_t now, struct gd_gauge *g)
{
    const struct incident *oldest = NULL;
    for (int p = 0; p < GD_PRIO_COUNT; p++)
        if (q->items[p] && (!oldest || q->items[p]->enqueued_at < oldest->enqueued_at))
            oldest = q->items[p];
    double period = b->cfg.gauge_ms / 1000.0;
    *g = (struct gd_gauge){
        .queue = gd_str_c(q->name),
        .depth = q->depth,
        .in_flight = q->in_flight,
        .oldest_age_ms = oldest ? now - oldest->enqueued_at : 0,
        .overdue = q->overdue,
        .consumers = q->n_consumers,
        .in_rate = (double)(q->entered - q->last_entered) / period,
        .out_rate = (double)(q->finished - q->last_finished) / period,
    };
}

static void add_counter(struct gd_status_broker *s, const char *name, uint64_t v)
{
    if (s->n_counters < GD_MAX_COUNTERS)
        s->counters[s->n_counters++] = (struct gd_counter){gd_str_c(name), v};
}

static void publish_broker(struct broker *b, int64_t now)
{
    struct store_stats ss;
    store_take_stats(b->store, &ss);
    struct gd_status st = {.kind = GD_STATUS_BROKER};
    struct gd_status_broker *s = &st.u.broker;
    *s = (struct gd_status_broker){
        .at = now,
        .started_at = b->started_at,
        .db_up = store_is_up(b->store),
        .active = true,
        .open_incidents = b->n_open,
        .sessions = b->n_sessions,
        .commit_backlog = store_backlog(b->store),
        .commit_p50_us = ss.commit_p50_us,
        .commit_p99_us = ss.commit_p99_us,
    };
    const struct counters *c = &b->counters;
    add_counter(s, "submitted", c->submitted);
    add_counter(s, "accepted", c->accepted);
    add_counter(s, "duplicates", c->duplicates);
    add_counter(s, "rejected", c->rejected);
    add_counter(s, "busy", c->busy);
    add_counter(s, "delivered", c->delivered);
    add_counter(s, "signed", c->signed_);
    add_counter(s, "resolved", c->resolved);
    add_counter(s, "closed", c->closed);
    add_counter(s, "reopened", c->reopened);
    add_counter(s, "returned", c->returned);
    add_counter(s, "requeued", c->requeued);
    add_counter(s, "extended", c->extended);
    add_counter(s, "extension_requests", c->extension_requests);
    add_counter(s, "extensions_denied", c->extensions_denied);
    add_counter(s, "progressed", c->progressed);
    add_counter(s, "dispatched", c->dispatched);
    add_counter(s, "escalated", c->escalated);
    add_counter(s, "flagged", c->flagged);
    add_counter(s, "warned", c->warned);
    add_counter(s, "sla_stale", c->sla_stale);
    add_counter(s, "denied", c->denied);
    for (int e = 0; e < PEERS_ENDPOINTS; e++)
        add_counter(s, peers_counter_name((enum peers_endpoint)e), b->peers.ep[e].refused);
    add_counter(s, "subscribers_cut", b->peers.subscribers_cut);
    add_counter(s, "snapshots", c->snapshots);
    add_counter(s, "snapshots_limited", c->snapshots_limited);
    add_counter(s, "snapshots_busy", c->snapshots_busy);
    add_counter(s, "poisoned", c->poisoned);
    add_counter(s, "worker_errors", c->worker_errors);
    add_counter(s, "sessions_opened", c->sessions_opened);
    add_counter(s, "sessions_lost", c->sessions_lost);
    add_counter(s, "commits", ss.commits);
    add_counter(s, "changes_committed", ss.changes);
    add_counter(s, "changes_refused", ss.failures);
    add_counter(s, "db_reconnects", ss.reconnects);
    add_counter(s, "status_batches", c->status_batches);
    add_counter(s, "status_bytes_raw", c->status_bytes_raw);
    add_counter(s, "status_bytes_sent", c->status_bytes_sent);
    /* commit latency as a cumulative histogram: commit_le_<µs> */
    static const char *const le_names[STORE_LATENCY_BUCKETS] = {
        "commit_le_500us", "commit_le_1ms",  "commit_le_2ms",   "commit_le_5ms",
        "commit_le_10ms",  "commit_le_25ms", "commit_le_50ms",  "commit_le_100ms",
        "commit_le_250ms", "commit_le_1s",
    };
    for (int i = 0; i < STORE_LATENCY_BUCKETS; i++)
        add_counter(s, le_names[i], ss.commit_le[i]);
    add_counter(s, "commit_sum_us", ss.commit_sum_us);
    publish(b, "broker", &st);
}

/* Every period: the broker's health, and the gauges of every queue that
 * has something to show (or had, the last time: so a drained queue
 * reports its zeros once). */
static void on_gauge_timer(uv_timer_t *t)
{
    struct broker *b = t->data;
    struct status_batches *sb = b->batches;
    int64_t now = broker_now(b);
    char topic[GD_MAX_TOPIC];
    status_flush(b); /* the transitions before this period's gauges */
    tally_tick(b, now); /* the deadlines that passed since the last period */
    for (struct queue *q = b->queues; q; q = q->hh.next) {
        struct gd_gauge g;
        status_gauge(b, q, now, &g);
        bool active = g.depth || g.in_flight || g.consumers || g.in_rate > 0 || g.out_rate > 0;
        if (active || q->reported) {
            /* queue.<town> for a town's desks, communities and grids;
             * queue.<district> for the district's own; queue.triage */
            const struct unit *u = q->unit;
            snprintf(topic, sizeof(topic), "queue.%s",
                     !u ? "triage" : u->town ? u->town->code : u->code);
            gd_buf_reset(&sb->item);
            int rc = gd_encode_gauge(&g, &sb->item);
            if (rc < 0 || !batch_add(b, topic, GD_STATUS_GAUGES))
                log_error("status", "cannot publish the gauges of %s: %s", q->name,
                          rc < 0 ? gd_code_name((enum gd_code)-rc) : "out of memory");
        }
        q->reported = active;
        q->last_entered = q->entered;
        q->last_finished = q->finished;
    }
    /* the period's gauges now, in one message per town */
    for (struct batch *bt = sb->by_topic; bt; bt = bt->hh.next)
        if (bt->kind == GD_STATUS_GAUGES && bt->n)
            send_batch(b, bt);
    publish_broker(b, now);
    b->last_gauge_at = now;
    peers_check_subscribers(b);
}

/* A new subscription (XPUB reports each distinct prefix once): a flood
 * of distinct prefixes is cut while it is still small. Checks come at
 * most every PEERS_CHECK_NS here, as a drain reports many at once. */
static void on_subscription(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow)
{
    (void)frames;
    (void)n;
    (void)overflow;
    peers_check_subscribers_due(zs->data);
}

int status_open(struct broker *b, char *err, size_t errlen)
{
    /* Subscriptions are read (and ignored) so that ZMQ_FD keeps working;
     * a subscriber sends a few, STATUS_SUBSCRIPTIONS_QUEUED is plenty.
     * XPUB drops what a subscriber's --status-hwm queue cannot take. */
    struct zsock_options o = {.type = ZMQ_XPUB,
                              .endpoint = b->cfg.status_endpoint,
                              .maxmsg = 1024,
                              .sndhwm = (int)b->cfg.status_hwm,
                              .rcvhwm = STATUS_SUBSCRIPTIONS_QUEUED};
    auth_endpoint(b, "status", &o);
    peers_watch(&o);
    int rc = zsock_bind(&b->status, b->loop, b->zctx, &o, on_subscription, b, err, errlen);
    if (rc < 0)
        return rc;
    b->batches = calloc(1, sizeof(*b->batches));
    if (!b->batches) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    b->batches->cctx = ZSTD_createCCtx(); /* without it, batches go uncompressed */
    uv_timer_init(b->loop, &b->batches->timer);
    b->batches->b = b;
    b->batches->timer.data = b->batches;
    uv_timer_init(b->loop, &b->gauge_timer);
    b->gauge_timer.data = b;
    uv_timer_start(&b->gauge_timer, on_gauge_timer, b->cfg.gauge_ms, b->cfg.gauge_ms);
    return 0;
}

static void free_batches(uv_handle_t *h)
{
    struct status_batches *sb = h->data;
    struct batch *bt, *tmp;
    HASH_ITER(hh, sb->by_topic, bt, tmp) {
        HASH_DEL(sb->by_topic, bt);
        gd_buf_fini(&bt->items);
        free(bt);
    }
    ZSTD_freeCCtx(sb->cctx);
    gd_buf_fini(&sb->item);
    gd_buf_fini(&sb->packed);
    free(sb);
}

void status_close(struct broker *b)
{
    status_flush(b);
    uv_timer_stop(&b->gauge_timer);
    uv_close((uv_handle_t *)&b->gauge_timer, NULL);
    if (b->batches) {
        uv_close((uv_handle_t *)&b->batches->timer, free_batches);
        b->batches = NULL;
    }
    zsock_close(&b->status);
}
