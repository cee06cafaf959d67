/* model.c - the dashboard's in-memory aggregates, updated from the status stream (no I/O). */
#include "model.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double dash_latency_bounds[DASH_LAT_BUCKETS] = {
    0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 900, 1800, 3600, 14400, 86400,
};

static const char *const sector_names[DASH_SECTORS] = {"party", "economy", "livelihood", "safety",
                                                       "other"};

struct dash_seen {
    uint64_t key[3]; /* shard, incident id, version */
    UT_hash_handle hh;
};

struct dash_track {
    uint64_t key[2]; /* shard, incident id */
    UT_hash_handle hh;
};

#define DAY_MS (24 * 3600 * 1000LL)

/* A queue's hash key: its shard and its zero-padded name. */
#define QUEUE_KEY_LEN \
    (offsetof(struct dash_queue, name) + GD_MAX_QUEUE + 1 - offsetof(struct dash_queue, shard))

static int64_t local_day_start(int64_t now, int32_t off_min)
{
    int64_t off = (int64_t)off_min * 60000;
    int64_t local = now + off;
    int64_t day = local >= 0 ? local / DAY_MS : -((-local + DAY_MS - 1) / DAY_MS);
    return day * DAY_MS - off;
}

void dash_model_init(struct dash_model *m, int32_t utc_offset_min, int64_t now)
{
    *m = (struct dash_model){.utc_offset_min = utc_offset_min, .n_shards = 1};
    m->day_start = local_day_start(now, utc_offset_min);
}

int dash_model_set_shards(struct dash_model *m, uint32_t n, const char *const *names)
{
    if (n == 0 || n > DASH_MAX_SHARDS)
        return -E2BIG;
    m->n_shards = n;
    for (uint32_t i = 0; i < n; i++)
        m->shard_name[i] = names[i];
    return 0;
}

void dash_seed_done(struct dash_model *m)
{
    struct dash_seen *s, *tmp;
    HASH_ITER(hh, m->seen, s, tmp)
    {
        HASH_DEL(m->seen, s);
        free(s);
    }
    m->n_seen = 0;
    memset(m->seed_cutoff, 0, sizeof(m->seed_cutoff));
}

void dash_model_fini(struct dash_model *m)
{
    if (!m)
        return;
    struct dash_unit *u, *ut;
    HASH_ITER(hh, m->units, u, ut)
    {
        HASH_DEL(m->units, u);
        free(u->name);
        free(u);
    }
    struct dash_category *c, *ct;
    HASH_ITER(hh, m->categories, c, ct)
    {
        HASH_DEL(m->categories, c);
        free(c);
    }
    struct dash_queue *q, *qt;
    HASH_ITER(hh, m->queues, q, qt)
    {
        HASH_DEL(m->queues, q);
        free(q);
    }
    struct dash_track *t, *tt;
    HASH_ITER(hh, m->delivered, t, tt)
    {
        HASH_DEL(m->delivered, t);
        free(t);
    }
    dash_seed_done(m);
    m->root = NULL;
}

static bool code_ok(const char *code)
{
    size_t n = strlen(code);
    return n >= 1 && n <= GD_MAX_CODE;
}

int dash_model_add_unit(struct dash_model *m, const char *code, const char *name,
                        enum gd_level level, const char *parent_code)
{
    if (!code_ok(code) || level < 0 || level >= GD_LEVEL_COUNT)
        return -EINVAL;
    if (m->n_units >= DASH_MAX_UNITS)
        return -E2BIG;
    if (dash_model_unit(m, code))
        return -EEXIST;
    struct dash_unit *parent = NULL;
    if (parent_code && *parent_code) {
        parent = dash_model_unit(m, parent_code);
        if (!parent)
            return -ENOENT;
    } else if (m->root) {
        return -EEXIST; /* a second district */
    }
    struct dash_unit *u = calloc(1, sizeof(*u));
    if (!u)
        return -ENOMEM;
    u->name = strdup(name ? name : code);
    if (!u->name) {
        free(u);
        return -ENOMEM;
    }
    memcpy(u->code, code, strlen(code) + 1);
    u->level = level;
    u->parent = parent;
    if (parent) {
        /* children kept in code order: the loader sends them sorted, so
         * appending keeps it; find the tail */
        struct dash_unit **p = &parent->child;
        while (*p)
            p = &(*p)->next;
        *p = u;
        parent->n_children++;
    } else {
        m->root = u;
    }
    HASH_ADD_STR(m->units, code, u);
    m->n_units++;
    m->version++;
    return 0;
}

static int sector_parse(const char *s, size_t n)
{
    for (int i = 0; i < DASH_OTHER; i++)
        if (strlen(sector_names[i]) == n && memcmp(sector_names[i], s, n) == 0)
            return i;
    return -1;
}

int dash_model_add_category(struct dash_model *m, const char *code, const char *sector)
{
    int s = sector ? sector_parse(sector, strlen(sector)) : -1;
    if (!code_ok(code) || s < 0)
        return -EINVAL;
    struct dash_category *c;
    HASH_FIND_STR(m->categories, code, c);
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return -ENOMEM;
        memcpy(c->code, code, strlen(code) + 1);
        HASH_ADD_STR(m->categories, code, c);
    }
    c->sector = (enum dash_sector)s;
    return 0;
}

struct dash_unit *dash_model_unit(const struct dash_model *m, const char *code)
{
    struct dash_unit *u;
    HASH_FIND_STR(m->units, code, u);
    return u;
}

static struct dash_unit *unit_of(const struct dash_model *m, struct gd_str code)
{
    if (code.len == 0 || code.len > GD_MAX_CODE)
        return NULL;
    struct dash_unit *u;
    HASH_FIND(hh, m->units, code.ptr, code.len, u);
    return u;
}

enum dash_sector dash_model_sector(const struct dash_model *m, struct gd_str category)
{
    if (category.len == 0 || category.len > GD_MAX_CODE)
        return DASH_OTHER;
    struct dash_category *c;
    HASH_FIND(hh, m->categories, category.ptr, category.len, c);
    return c ? c->sector : DASH_OTHER;
}

const char *dash_sector_name(enum dash_sector s)
{
    return s >= 0 && s < DASH_SECTORS ? sector_names[s] : "other";
}

void dash_model_reset_day(struct dash_model *m)
{
    for (struct dash_unit *u = m->units; u; u = u->hh.next)
        memset(u->day, 0, sizeof(u->day));
    dash_seed_done(m);
    m->version++;
}

void dash_model_tick(struct dash_model *m, int64_t now)
{
    int64_t start = local_day_start(now, m->utc_offset_min);
    if (start <= m->day_start)
        return;
    m->day_start = start;
    for (struct dash_unit *u = m->units; u; u = u->hh.next)
        memset(u->day, 0, sizeof(u->day));
    m->version++;
}

/* The counter of `d` that an event of `kind` bumps, or NULL. */
static uint32_t *day_counter(struct dash_day *d, const char *kind)
{
    if (!strcmp(kind, "receive"))
        return &d->received;
    if (!strcmp(kind, "sign"))
        return &d->signed_;
    if (!strcmp(kind, "resolve"))
        return &d->resolved;
    if (!strcmp(kind, "escalate"))
        return &d->escalated;
    if (!strcmp(kind, "return"))
        return &d->returned;
    if (!strcmp(kind, "warn_sla"))
        return &d->warned;
    if (!strcmp(kind, "breach"))
        return &d->breached;
    return NULL;
}

/* Adds n (and on_time) to the counter of `kind` of u and every ancestor. */
static void count_up(struct dash_unit *u, enum dash_sector s, const char *kind, uint32_t n,
                     uint32_t on_time)
{
    for (; u; u = u->parent) {
        uint32_t *c = day_counter(&u->day[s], kind);
        if (!c)
            return;
        *c += n;
        if (c == &u->day[s].resolved)
            u->day[s].resolved_on_time += on_time;
    }
}

void dash_seed_count(struct dash_model *m, const char *unit, const char *category, const char *kind,
                     uint32_t n, uint32_t on_time)
{
    struct dash_unit *u = unit_of(m, gd_str_c(unit));
    count_up(u ? u : m->root, dash_model_sector(m, gd_str_c(category)), kind, n, on_time);
    m->version++;
}

int dash_seed_mark(struct dash_model *m, uint32_t shard, uint64_t incident_id, uint32_t version)
{
    if (m->n_seen >= DASH_MAX_SEEN)
        return -E2BIG;
    struct dash_seen *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->key[0] = shard;
    s->key[1] = incident_id;
    s->key[2] = version;
    struct dash_seen *old;
    HASH_FIND(hh, m->seen, s->key, sizeof(s->key), old);
    if (old) {
        free(s);
        return 0;
    }
    HASH_ADD(hh, m->seen, key, sizeof(s->key), s);
    m->n_seen++;
    return 0;
}

void dash_seed_set_cutoff(struct dash_model *m, uint32_t shard, int64_t cutoff)
{
    if (shard < DASH_MAX_SHARDS)
        m->seed_cutoff[shard] = cutoff;
}

/* True when the seed already counted this transition of `shard`. */
static bool seeded(const struct dash_model *m, uint32_t shard, const struct gd_status_transition *t)
{
    if (!m->seed_cutoff[shard])
        return false;
    if (t->at < m->seed_cutoff[shard])
        return true;
    uint64_t key[3] = {shard, t->incident_id, t->version};
    struct dash_seen *s;
    HASH_FIND(hh, m->seen, key, sizeof(key), s);
    return s != NULL;
}

static void copy_str(char *dst, size_t size, struct gd_str s)
{
    size_t n = s.len < size - 1 ? s.len : size - 1;
    /* never cut a UTF-8 sequence in half */
    while (n > 0 && n < s.len && ((unsigned char)s.ptr[n] & 0xC0) == 0x80)
        n--;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
}

static struct dash_feed_item *feed_push(struct dash_model *m, enum dash_feed_kind kind, int64_t at)
{
    struct dash_feed_item *it = &m->feed[m->feed_seq % DASH_FEED_LEN];
    *it =
        (struct dash_feed_item){.seq = ++m->feed_seq, .kind = kind, .at = at, .sector = DASH_OTHER};
    return it;
}

static void observe_latency(struct dash_histogram *h, double s)
{
    for (int i = 0; i < DASH_LAT_BUCKETS; i++)
        if (s <= dash_latency_bounds[i])
            h->le[i]++;
    h->count++;
    h->sum += s;
}

/* Measures receipt -> first delivery once per incident; forgets the
 * incident when it closes. */
static void track_delivery(struct dash_model *m, uint32_t shard,
                           const struct gd_status_transition *t)
{
    uint64_t key[2] = {shard, t->incident_id};
    struct dash_track *tr;
    HASH_FIND(hh, m->delivered, key, sizeof(key), tr);
    if (t->event == GD_EV_CLOSE) {
        if (tr) {
            HASH_DEL(m->delivered, tr);
            free(tr);
            m->n_delivered--;
        }
        return;
    }
    if (t->event != GD_EV_DELIVER || tr || t->received_at <= 0 || t->at < t->received_at)
        return;
    observe_latency(&m->dispatch_latency, (double)(t->at - t->received_at) / 1000.0);
    if (m->n_delivered >= DASH_MAX_TRACKED)
        return; /* a later redelivery of this one may be measured again */
    tr = calloc(1, sizeof(*tr));
    if (!tr)
        return;
    memcpy(tr->key, key, sizeof(key));
    HASH_ADD(hh, m->delivered, key, sizeof(tr->key), tr);
    m->n_delivered++;
}

static void apply_transition(struct dash_model *m, uint32_t shard,
                             const struct gd_status_transition *t)
{
    m->transitions++;
    track_delivery(m, shard, t);
    enum dash_sector s = dash_model_sector(m, t->category);
    struct dash_unit *u = unit_of(m, t->unit);
    bool late = t->event == GD_EV_RESOLVE && t->resolve_due > 0 && t->at > t->resolve_due;
    if (t->at >= m->day_start && !seeded(m, shard, t))
        count_up(u ? u : m->root, s, gd_event_kind_name(t->event), 1, late ? 0 : 1);

    struct dash_feed_item *it = feed_push(m, DASH_FEED_TRANSITION, t->at);
    it->incident_id = t->incident_id;
    it->version = t->version;
    it->sector = s;
    it->late = late;
    snprintf(it->event, sizeof(it->event), "%s", gd_event_kind_name(t->event));
    snprintf(it->from, sizeof(it->from), "%s", gd_state_name(t->from));
    snprintf(it->to, sizeof(it->to), "%s", gd_state_name(t->to));
    copy_str(it->unit, sizeof(it->unit), t->unit);
    copy_str(it->queue, sizeof(it->queue), t->queue);
    copy_str(it->category, sizeof(it->category), t->category);
}

/* The finest unit named by a topic "sla.warn.<town>.<community>.<grid>". */
static struct dash_unit *topic_unit(const struct dash_model *m, const char *topic, size_t len)
{
    size_t i = len;
    while (i > 0 && topic[i - 1] != '.')
        i--;
    return unit_of(m, gd_str_make(topic + i, len - i));
}

/* The queue `name` of `shard`, or NULL. */
static struct dash_queue *queue_find(const struct dash_model *m, uint32_t shard, struct gd_str name)
{
    if (name.len == 0 || name.len > GD_MAX_QUEUE)
        return NULL;
    struct dash_queue probe;
    memset(&probe, 0, sizeof(probe));
    probe.shard = shard;
    memcpy(probe.name, name.ptr, name.len);
    struct dash_queue *q;
    HASH_FIND(hh, m->queues, &probe.shard, QUEUE_KEY_LEN, q);
    return q;
}

static void apply_sla(struct dash_model *m, uint32_t shard, const char *topic, size_t len,
                      const struct gd_status_sla *s)
{
    m->sla_events++;
    struct dash_unit *u = topic_unit(m, topic, len);
    struct dash_queue *q = queue_find(m, shard, s->queue);
    enum dash_sector sec = q ? q->sector : DASH_OTHER;
    if (s->at >= m->day_start)
        count_up(u ? u : m->root, sec, s->breach ? "breach" : "warn_sla", 1, 0);
    struct dash_feed_item *it = feed_push(m, s->breach ? DASH_FEED_BREACH : DASH_FEED_WARN, s->at);
    it->incident_id = s->incident_id;
    it->version = s->version;
    it->sector = sec;
    snprintf(it->event, sizeof(it->event), "%s", gd_deadline_kind_name(s->kind));
    if (u)
        snprintf(it->unit, sizeof(it->unit), "%s", u->code);
    copy_str(it->queue, sizeof(it->queue), s->queue);
}

static void apply_alarm(struct dash_model *m, const struct gd_status_alarm *a)
{
    m->alarms++;
    struct dash_feed_item *it = feed_push(m, DASH_FEED_ALARM, a->at);
    it->incident_id = a->incident_id;
    copy_str(it->event, sizeof(it->event), a->kind);
    copy_str(it->severity, sizeof(it->severity), a->severity);
    copy_str(it->queue, sizeof(it->queue), a->queue);
    copy_str(it->message, sizeof(it->message), a->message);
}

static void apply_broker(struct dash_model *m, uint32_t shard, const struct gd_status_broker *b,
                         int64_t now)
{
    struct dash_broker *d = &m->broker[shard];
    *d = (struct dash_broker){
        .seen = true,
        .at = b->at,
        .started_at = b->started_at,
        .received_at = now,
        .db_up = b->db_up,
        .active = b->active,
        .open_incidents = b->open_incidents,
        .sessions = b->sessions,
        .commit_backlog = b->commit_backlog,
        .commit_p50_us = b->commit_p50_us,
        .commit_p99_us = b->commit_p99_us,
    };
    for (uint32_t i = 0; i < b->n_counters && i < GD_MAX_COUNTERS; i++) {
        copy_str(d->counters[i].name, sizeof(d->counters[i].name), b->counters[i].name);
        d->counters[i].value = b->counters[i].value;
        d->n_counters++;
    }
}

/* Which unit and sector a queue name stands for. */
static void queue_place(const struct dash_model *m, struct dash_queue *q)
{
    q->sector = DASH_OTHER;
    if (!strcmp(q->name, "triage")) {
        q->unit = m->root;
        return;
    }
    const char *dot = strchr(q->name, '.');
    if (dot) {
        int s = sector_parse(dot + 1, strlen(dot + 1));
        q->unit = unit_of(m, gd_str_make(q->name, (size_t)(dot - q->name)));
        if (s >= 0)
            q->sector = (enum dash_sector)s;
        return;
    }
    q->unit = unit_of(m, gd_str_c(q->name));
}

void dash_model_gauge(struct dash_model *m, uint32_t shard, const struct gd_gauge *g, int64_t now)
{
    if (g->queue.len == 0 || g->queue.len > GD_MAX_QUEUE || shard >= m->n_shards)
        return;
    m->gauges++;
    struct dash_queue *q = queue_find(m, shard, g->queue);
    if (!q) {
        if (m->n_queues >= DASH_MAX_QUEUES) {
            m->queues_dropped++;
            return;
        }
        q = calloc(1, sizeof(*q));
        if (!q) {
            m->queues_dropped++;
            return;
        }
        q->shard = shard;
        memcpy(q->name, g->queue.ptr, g->queue.len);
        queue_place(m, q);
        HASH_ADD(hh, m->queues, shard, QUEUE_KEY_LEN, q);
        m->n_queues++;
    }
    q->depth = g->depth;
    q->in_flight = g->in_flight;
    q->overdue = g->overdue;
    q->consumers = g->consumers;
    q->oldest_age_ms = g->oldest_age_ms;
    q->in_rate = g->in_rate;
    q->out_rate = g->out_rate;
    q->updated_at = now;
    m->version++;
}

bool dash_model_apply(struct dash_model *m, uint32_t shard, const char *topic, size_t topic_len,
                      const struct gd_status *st, int64_t now)
{
    if (shard >= m->n_shards)
        return false;
    dash_model_tick(m, now);
    switch (st->kind) {
    case GD_STATUS_TRANSITIONS:
        for (uint32_t i = 0; i < st->u.transitions.n_items; i++)
            apply_transition(m, shard, &st->u.transitions.items[i]);
        break;
    case GD_STATUS_GAUGES:
        for (uint32_t i = 0; i < st->u.gauges.n_items; i++)
            dash_model_gauge(m, shard, &st->u.gauges.items[i], now);
        return true;
    case GD_STATUS_BROKER:
        apply_broker(m, shard, &st->u.broker, now);
        break;
    case GD_STATUS_ALARM:
        apply_alarm(m, &st->u.alarm);
        break;
    case GD_STATUS_SLA:
        apply_sla(m, shard, topic, topic_len, &st->u.sla);
        break;
    default:
        return false;
    }
    m->version++;
    return true;
}

static bool in_subtree(const struct dash_unit *q, const struct dash_unit *u)
{
    for (; q; q = q->parent)
        if (q == u)
            return true;
    return false;
}

static void add_gauge(struct dash_queue *to, const struct dash_queue *q)
{
    to->depth += q->depth;
    to->in_flight += q->in_flight;
    to->overdue += q->overdue;
    to->consumers += q->consumers;
    to->in_rate += q->in_rate;
    to->out_rate += q->out_rate;
    if (q->oldest_age_ms > to->oldest_age_ms)
        to->oldest_age_ms = q->oldest_age_ms;
}

void dash_model_queue_totals(const struct dash_model *m, const struct dash_unit *u,
                             struct dash_queue out[DASH_SECTORS], struct dash_queue *ret_total)
{
    memset(out, 0, sizeof(*out) * DASH_SECTORS);
    memset(ret_total, 0, sizeof(*ret_total));
    for (const struct dash_queue *q = m->queues; q; q = q->hh.next) {
        if (!q->unit || !in_subtree(q->unit, u))
            continue;
        add_gauge(&out[q->sector], q);
        add_gauge(ret_total, q);
    }
}

uint64_t dash_broker_counter(const struct dash_broker *b, const char *name)
{
    for (uint32_t i = 0; i < b->n_counters; i++)
        if (!strcmp(b->counters[i].name, name))
            return b->counters[i].value;
    return 0;
}

bool dash_broker_up(const struct dash_broker *b, int64_t now)
{
    return b->seen && now - b->received_at <= 10000;
}

/* Adds `value` to the counter `name` of `to`, a new one when there is room. */
static void counter_add(struct dash_broker *to, const char *name, uint64_t value)
{
    for (uint32_t i = 0; i < to->n_counters; i++)
        if (!strcmp(to->counters[i].name, name)) {
            to->counters[i].value += value;
            return;
        }
    if (to->n_counters >= GD_MAX_COUNTERS)
        return;
    struct dash_counter *c = &to->counters[to->n_counters++];
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->value = value;
}

void dash_model_city_broker(const struct dash_model *m, struct dash_broker *ret)
{
    if (m->n_shards <= 1) {
        *ret = m->broker[0];
        return;
    }
    *ret = (struct dash_broker){.db_up = true, .active = true};
    for (uint32_t s = 0; s < m->n_shards; s++) {
        const struct dash_broker *b = &m->broker[s];
        if (!b->seen) { /* its figures are unknown, its database not known to be up */
            ret->db_up = ret->active = false;
            continue;
        }
        ret->db_up = ret->db_up && b->db_up;
        ret->active = ret->active && b->active;
        if (!ret->seen || b->at < ret->at)
            ret->at = b->at;
        if (!ret->seen || b->received_at < ret->received_at)
            ret->received_at = b->received_at;
        ret->seen = true;
        if (b->started_at > ret->started_at)
            ret->started_at = b->started_at;
        ret->open_incidents += b->open_incidents;
        ret->sessions += b->sessions;
        ret->commit_backlog += b->commit_backlog;
        if (b->commit_p50_us > ret->commit_p50_us)
            ret->commit_p50_us = b->commit_p50_us;
        if (b->commit_p99_us > ret->commit_p99_us)
            ret->commit_p99_us = b->commit_p99_us;
        for (uint32_t i = 0; i < b->n_counters; i++)
            counter_add(ret, b->counters[i].name, b->counters[i].value);
    }
}

void dash_model_feed_since(const struct dash_model *m, uint64_t after,
                           void (*fn)(const struct dash_feed_item *it, void *arg), void *arg)
{
    uint64_t first = m->feed_seq > DASH_FEED_LEN ? m->feed_seq - DASH_FEED_LEN + 1 : 1;
    if (after + 1 > first)
        first = after + 1;
    for (uint64_t s = first; s <= m->feed_seq; s++)
        fn(&m->feed[(s - 1) % DASH_FEED_LEN], arg);
}
