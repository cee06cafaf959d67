/* render.c - JSON documents for the page and the Prometheus exposition, from the dashboard model.
 */
#include "render.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tb_reset(struct tb *b)
{
    b->len = 0;
    b->failed = false;
}

void tb_fini(struct tb *b)
{
    if (!b)
        return;
    free(b->data);
    *b = (struct tb){0};
}

static bool tb_reserve(struct tb *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->limit && b->len + n > b->limit) {
        b->failed = true;
        return false;
    }
    if (b->len + n + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void tb_put(struct tb *b, const char *s, size_t n)
{
    if (!tb_reserve(b, n))
        return;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tb_puts(struct tb *b, const char *s)
{
    tb_put(b, s, strlen(s));
}

void tb_printf(struct tb *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        tb_put(b, small, (size_t)n);
        return;
    }
    if (!tb_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
    if (s[0] < 0x80)
        return 1;
    size_t n = s[0] >= 0xF0 && s[0] <= 0xF4  ? 4
               : s[0] >= 0xE0                ? 3
               : s[0] >= 0xC2 && s[0] < 0xE0 ? 2
                                             : 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

void tb_json_str(struct tb *b, const char *s)
{
    tb_put(b, "\"", 1);
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            tb_put(b, e, 2);
            p++;
        } else if (*p < 0x20) {
            tb_printf(b, "\\u%04x", *p);
            p++;
        } else if (*p == '<') {
            tb_puts(b, "\\u003c"); /* safe inside any HTML context */
            p++;
        } else {
            size_t n = utf8_len(p);
            if (n == 0) {
                tb_puts(b, "\\ufffd");
                p++;
            } else {
                tb_put(b, (const char *)p, n);
                p += n;
            }
        }
    }
    tb_put(b, "\"", 1);
}

static void unit_ref(struct tb *o, const struct dash_unit *u)
{
    tb_puts(o, "{\"code\":");
    tb_json_str(o, u->code);
    tb_puts(o, ",\"name\":");
    tb_json_str(o, u->name);
    tb_printf(o, ",\"level\":\"%s\"}", gd_level_name(u->level));
}

/* One cell: queue gauges and today's counts. */
static void cell(struct tb *o, const struct dash_queue *q, const struct dash_day *d)
{
    tb_printf(o,
              "{\"depth\":%u,\"in_flight\":%u,\"overdue\":%u,\"oldest_age_ms\":%lld,"
              "\"consumers\":%u,\"received\":%u,\"signed\":%u,\"resolved\":%u,"
              "\"resolved_on_time\":%u,\"escalated\":%u,\"returned\":%u,\"warned\":%u,"
              "\"breached\":%u,\"on_time_rate\":",
              q->depth, q->in_flight, q->overdue, (long long)q->oldest_age_ms, q->consumers,
              d->received, d->signed_, d->resolved, d->resolved_on_time, d->escalated, d->returned,
              d->warned, d->breached);
    if (d->resolved)
        tb_printf(o, "%.4f}", (double)d->resolved_on_time / d->resolved);
    else
        tb_puts(o, "null}");
}

static void day_add(struct dash_day *to, const struct dash_day *d)
{
    to->received += d->received;
    to->signed_ += d->signed_;
    to->resolved += d->resolved;
    to->resolved_on_time += d->resolved_on_time;
    to->escalated += d->escalated;
    to->returned += d->returned;
    to->warned += d->warned;
    to->breached += d->breached;
}

static void row(struct tb *o, const struct dash_model *m, const struct dash_unit *u)
{
    struct dash_queue qs[DASH_SECTORS], total;
    dash_model_queue_totals(m, u, qs, &total);
    struct dash_day all = {0};
    tb_puts(o, "{\"unit\":");
    unit_ref(o, u);
    tb_printf(o, ",\"drill\":%s,\"sectors\":[",
              u->level > GD_LEVEL_GRID && u->n_children ? "true" : "false");
    for (int s = 0; s < DASH_SECTORS; s++) {
        if (s)
            tb_puts(o, ",");
        cell(o, &qs[s], &u->day[s]);
        day_add(&all, &u->day[s]);
    }
    tb_puts(o, "],\"total\":");
    cell(o, &total, &all);
    tb_puts(o, "}");
}

void render_summary(struct tb *out, const struct dash_model *m, const struct dash_unit *u,
                    int64_t now)
{
    tb_printf(out, "{\"at\":%lld,\"day_start\":%lld,\"sectors\":[", (long long)now,
              (long long)m->day_start);
    for (int s = 0; s < DASH_SECTORS; s++)
        tb_printf(out, "%s\"%s\"", s ? "," : "", dash_sector_name(s));
    tb_puts(out, "],\"path\":[");
    const struct dash_unit *chain[GD_LEVEL_COUNT + 8];
    int n = 0;
    for (const struct dash_unit *p = u; p && n < (int)(sizeof(chain) / sizeof(*chain));
         p = p->parent)
        chain[n++] = p;
    for (int i = n - 1; i >= 0; i--) {
        unit_ref(out, chain[i]);
        if (i)
            tb_puts(out, ",");
    }
    tb_puts(out, "],\"self\":");
    row(out, m, u);
    tb_puts(out, ",\"rows\":[");
    if (u->level > GD_LEVEL_GRID) {
        bool first = true;
        for (const struct dash_unit *c = u->child; c; c = c->next) {
            if (!first)
                tb_puts(out, ",");
            first = false;
            row(out, m, c);
        }
    }
    tb_puts(out, "],\"broker\":");
    render_broker(out, m, now);
    tb_puts(out, "}");
}

void render_feed_item(struct tb *out, const struct dash_model *m, const struct dash_feed_item *it)
{
    static const char *const kinds[] = {"transition", "warn", "breach", "alarm"};
    tb_printf(out, "{\"seq\":%llu,\"type\":\"%s\",\"at\":%lld,\"incident_id\":%llu,\"version\":%u,",
              (unsigned long long)it->seq, kinds[it->kind], (long long)it->at,
              (unsigned long long)it->incident_id, it->version);
    tb_puts(out, "\"event\":");
    tb_json_str(out, it->event);
    tb_puts(out, ",\"from\":");
    tb_json_str(out, it->from);
    tb_puts(out, ",\"to\":");
    tb_json_str(out, it->to);
    tb_puts(out, ",\"unit\":");
    tb_json_str(out, it->unit);
    const struct dash_unit *u = it->unit[0] ? dash_model_unit(m, it->unit) : NULL;
    tb_puts(out, ",\"unit_name\":");
    tb_json_str(out, u ? u->name : "");
    tb_puts(out, ",\"queue\":");
    tb_json_str(out, it->queue);
    tb_puts(out, ",\"category\":");
    tb_json_str(out, it->category);
    tb_printf(out, ",\"sector\":\"%s\",\"late\":%s,\"severity\":", dash_sector_name(it->sector),
              it->late ? "true" : "false");
    tb_json_str(out, it->severity);
    tb_puts(out, ",\"message\":");
    tb_json_str(out, it->message);
    tb_puts(out, "}");
}

struct feed_ctx {
    struct tb *out;
    const struct dash_model *m;
    bool first;
};

static void feed_one(const struct dash_feed_item *it, void *arg)
{
    struct feed_ctx *c = arg;
    if (!c->first)
        tb_puts(c->out, ",");
    c->first = false;
    render_feed_item(c->out, c->m, it);
}

void render_feed(struct tb *out, const struct dash_model *m, uint64_t after)
{
    struct feed_ctx c = {out, m, true};
    tb_puts(out, "[");
    dash_model_feed_since(m, after, feed_one, &c);
    tb_puts(out, "]");
}

/* The fields of one broker's state, without braces. */
static void broker_fields(struct tb *out, const struct dash_broker *b, int64_t now)
{
    if (!b->seen) {
        tb_puts(out, "\"seen\":false");
        return;
    }
    tb_printf(out,
              "\"seen\":true,\"at\":%lld,\"age_ms\":%lld,\"started_at\":%lld,\"db_up\":%s,"
              "\"active\":%s,\"open_incidents\":%u,\"sessions\":%u,\"commit_backlog\":%u,"
              "\"commit_p50_us\":%u,\"commit_p99_us\":%u,\"counters\":{",
              (long long)b->at, (long long)(now - b->received_at), (long long)b->started_at,
              b->db_up ? "true" : "false", b->active ? "true" : "false", b->open_incidents,
              b->sessions, b->commit_backlog, b->commit_p50_us, b->commit_p99_us);
    for (uint32_t i = 0; i < b->n_counters; i++) {
        if (i)
            tb_puts(out, ",");
        tb_json_str(out, b->counters[i].name);
        tb_printf(out, ":%llu", (unsigned long long)b->counters[i].value);
    }
    tb_puts(out, "}");
}

void render_broker(struct tb *out, const struct dash_model *m, int64_t now)
{
    struct dash_broker city;
    dash_model_city_broker(m, &city);
    tb_puts(out, "{");
    broker_fields(out, &city, now);
    if (m->n_shards > 1) {
        tb_puts(out, ",\"shards\":[");
        for (uint32_t s = 0; s < m->n_shards; s++) {
            const struct dash_broker *b = &m->broker[s];
            tb_puts(out, s ? ",{\"name\":" : "{\"name\":");
            tb_json_str(out, m->shard_name[s]);
            tb_printf(out, ",\"up\":%s,", dash_broker_up(b, now) ? "true" : "false");
            broker_fields(out, b, now);
            tb_puts(out, "}");
        }
        tb_puts(out, "]");
    }
    tb_puts(out, "}");
}

/* ---- Prometheus ---- */

/* A metric name part: [a-zA-Z0-9_] kept, anything else '_'. */
static void metric_name(struct tb *o, const char *s)
{
    for (; *s; s++) {
        char c = *s;
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        tb_put(o, ok ? &c : "_", 1);
    }
}

static void label_value(struct tb *o, const char *s)
{
    tb_put(o, "\"", 1);
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            tb_printf(o, "\\%c", *s);
        else if (*s == '\n')
            tb_puts(o, "\\n");
        else
            tb_put(o, s, 1);
    }
    tb_put(o, "\"", 1);
}

static void head(struct tb *o, const char *name, const char *type, const char *help)
{
    tb_printf(o, "# HELP griddispatch_%s %s\n# TYPE griddispatch_%s %s\n", name, help, name, type);
}

static const double commit_bounds[] = {0.0005, 0.001, 0.002, 0.005, 0.01,
                                       0.025,  0.05,  0.1,   0.25,  1};
static const char *const commit_names[] = {
    "commit_le_500us", "commit_le_1ms",  "commit_le_2ms",   "commit_le_5ms",   "commit_le_10ms",
    "commit_le_25ms",  "commit_le_50ms", "commit_le_100ms", "commit_le_250ms", "commit_le_1s",
};
#define N_COMMIT_BOUNDS (sizeof(commit_bounds) / sizeof(*commit_bounds))

static bool is_histogram_counter(const char *name)
{
    return !strncmp(name, "commit_le_", 10) || !strcmp(name, "commit_sum_us");
}

static void queue_labels(struct tb *o, const struct dash_model *m, const struct dash_queue *q)
{
    const struct dash_unit *town = q->unit;
    while (town && town->level < GD_LEVEL_TOWN)
        town = town->parent;
    tb_puts(o, "{");
    if (m->n_shards > 1) {
        tb_puts(o, "shard=");
        label_value(o, m->shard_name[q->shard]);
        tb_puts(o, ",");
    }
    tb_puts(o, "queue=");
    label_value(o, q->name);
    tb_puts(o, ",town=");
    label_value(o, town && town->level == GD_LEVEL_TOWN ? town->code : "");
    tb_puts(o, ",sector=");
    label_value(o, q->sector == DASH_OTHER ? "" : dash_sector_name(q->sector));
    tb_puts(o, "}");
}

static void queue_metric(struct tb *o, const struct dash_model *m, const char *name,
                         const char *type, const char *help, int field)
{
    head(o, name, type, help);
    for (const struct dash_queue *q = m->queues; q; q = q->hh.next) {
        tb_printf(o, "griddispatch_%s", name);
        queue_labels(o, m, q);
        switch (field) {
        case 0:
            tb_printf(o, " %u\n", q->depth);
            break;
        case 1:
            tb_printf(o, " %u\n", q->in_flight);
            break;
        case 2:
            tb_printf(o, " %u\n", q->overdue);
            break;
        case 3:
            tb_printf(o, " %.3f\n", q->oldest_age_ms / 1000.0);
            break;
        case 4:
            tb_printf(o, " %u\n", q->consumers);
            break;
        case 5:
            tb_printf(o, " %.3f\n", q->in_rate);
            break;
        default:
            tb_printf(o, " %.3f\n", q->out_rate);
            break;
        }
    }
}

/* `{shard="NAME"}` (with a city), or nothing. */
static void shard_labels(struct tb *o, const struct dash_model *m, uint32_t s)
{
    if (m->n_shards <= 1)
        return;
    tb_puts(o, "{shard=");
    label_value(o, m->shard_name[s]);
    tb_puts(o, "}");
}

/* One gauge family with a line per shard whose broker was seen. */
static void broker_gauge(struct tb *o, const struct dash_model *m, const char *name,
                         const char *help, int field)
{
    head(o, name, "gauge", help);
    for (uint32_t s = 0; s < m->n_shards; s++) {
        const struct dash_broker *b = &m->broker[s];
        if (!b->seen)
            continue;
        tb_printf(o, "griddispatch_%s", name);
        shard_labels(o, m, s);
        switch (field) {
        case 0:
            tb_printf(o, " %d\n", b->db_up);
            break;
        case 1:
            tb_printf(o, " %u\n", b->open_incidents);
            break;
        case 2:
            tb_printf(o, " %u\n", b->sessions);
            break;
        case 3:
            tb_printf(o, " %u\n", b->commit_backlog);
            break;
        default:
            tb_printf(o, " %.3f\n", b->started_at / 1000.0);
            break;
        }
    }
}

/* True when counter `name` is in a seen broker before shard `s`. */
static bool counter_listed(const struct dash_model *m, uint32_t s, const char *name)
{
    for (uint32_t e = 0; e < s; e++)
        for (uint32_t i = 0; m->broker[e].seen && i < m->broker[e].n_counters; i++)
            if (!strcmp(m->broker[e].counters[i].name, name))
                return true;
    return false;
}

static void commit_histogram(struct tb *o, const struct dash_model *m, uint32_t s)
{
    const struct dash_broker *b = &m->broker[s];
    const char *sep = m->n_shards > 1 ? "," : "";
    uint64_t last = 0;
    for (size_t i = 0; i < N_COMMIT_BOUNDS; i++) {
        uint64_t v = dash_broker_counter(b, commit_names[i]);
        if (v < last)
            v = last; /* cumulative by definition */
        last = v;
        tb_puts(o, "griddispatch_commit_seconds_bucket{");
        if (m->n_shards > 1) {
            tb_puts(o, "shard=");
            label_value(o, m->shard_name[s]);
        }
        tb_printf(o, "%sle=\"%g\"} %llu\n", sep, commit_bounds[i], (unsigned long long)v);
    }
    uint64_t count = dash_broker_counter(b, "commits");
    if (count < last)
        count = last;
    tb_puts(o, "griddispatch_commit_seconds_bucket{");
    if (m->n_shards > 1) {
        tb_puts(o, "shard=");
        label_value(o, m->shard_name[s]);
    }
    tb_printf(o, "%sle=\"+Inf\"} %llu\n", sep, (unsigned long long)count);
    tb_puts(o, "griddispatch_commit_seconds_sum");
    shard_labels(o, m, s);
    tb_printf(o, " %.6f\n", dash_broker_counter(b, "commit_sum_us") / 1e6);
    tb_puts(o, "griddispatch_commit_seconds_count");
    shard_labels(o, m, s);
    tb_printf(o, " %llu\n", (unsigned long long)count);
}

/* Each broker's state and counters; with a city one line per shard, labelled
 * `shard`. A family is written only when some broker was seen. */
static void broker_metrics(struct tb *o, const struct dash_model *m, int64_t now)
{
    bool any = false;
    head(o, "broker_up", "gauge", "1 when a broker status message arrived within the last 10 s.");
    for (uint32_t s = 0; s < m->n_shards; s++) {
        tb_puts(o, "griddispatch_broker_up");
        shard_labels(o, m, s);
        tb_printf(o, " %d\n", dash_broker_up(&m->broker[s], now));
        any = any || m->broker[s].seen;
    }
    if (!any)
        return;
    broker_gauge(o, m, "db_up", "1 when the broker reaches its database.", 0);
    broker_gauge(o, m, "open_incidents", "Incidents not closed, as the broker counts them.", 1);
    broker_gauge(o, m, "sessions", "Worker and SLA sessions open at the broker.", 2);
    broker_gauge(o, m, "commit_backlog", "Changes waiting for a database commit.", 3);
    broker_gauge(o, m, "broker_start_time_seconds", "When the broker started (Unix time).", 4);
    for (uint32_t s = 0; s < m->n_shards; s++) {
        const struct dash_broker *b = &m->broker[s];
        for (uint32_t i = 0; b->seen && i < b->n_counters; i++) {
            const char *n = b->counters[i].name;
            if (is_histogram_counter(n) || counter_listed(m, s, n))
                continue;
            tb_puts(o, "# HELP griddispatch_");
            metric_name(o, n);
            tb_printf(o, "_total Broker counter %s (monotonic since the broker started).\n", n);
            tb_puts(o, "# TYPE griddispatch_");
            metric_name(o, n);
            tb_puts(o, "_total counter\n");
            for (uint32_t e = s; e < m->n_shards; e++) {
                if (!m->broker[e].seen)
                    continue;
                for (uint32_t k = 0; k < m->broker[e].n_counters; k++) {
                    if (strcmp(m->broker[e].counters[k].name, n))
                        continue;
                    tb_puts(o, "griddispatch_");
                    metric_name(o, n);
                    tb_puts(o, "_total");
                    shard_labels(o, m, e);
                    tb_printf(o, " %llu\n", (unsigned long long)m->broker[e].counters[k].value);
                    break;
                }
            }
        }
    }
    head(o, "commit_seconds", "histogram", "Latency of the broker's database commits.");
    for (uint32_t s = 0; s < m->n_shards; s++)
        if (m->broker[s].seen)
            commit_histogram(o, m, s);
}

void render_metrics(struct tb *o, const struct dash_model *m, const struct dash_http_stats *hs,
                    int64_t now)
{
    broker_metrics(o, m, now);

    queue_metric(o, m, "queue_depth", "gauge", "Items queued, not delivered.", 0);
    queue_metric(o, m, "queue_in_flight", "gauge", "Items delivered, not finished.", 1);
    queue_metric(o, m, "queue_overdue", "gauge", "Open items past a deadline.", 2);
    queue_metric(o, m, "queue_oldest_age_seconds", "gauge", "Age of the oldest queued item.", 3);
    queue_metric(o, m, "queue_consumers", "gauge", "Worker sessions serving the queue.", 4);
    queue_metric(o, m, "queue_in_rate", "gauge", "Items entering per second, last period.", 5);
    queue_metric(o, m, "queue_out_rate", "gauge", "Items finished per second, last period.", 6);

    const struct dash_histogram *h = &m->dispatch_latency;
    head(o, "dispatch_latency_seconds", "histogram",
         "Time from receipt to the first delivery of an incident, from the transitions seen.");
    for (int i = 0; i < DASH_LAT_BUCKETS; i++)
        tb_printf(o, "griddispatch_dispatch_latency_seconds_bucket{le=\"%g\"} %llu\n",
                  dash_latency_bounds[i], (unsigned long long)h->le[i]);
    tb_printf(o, "griddispatch_dispatch_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
              (unsigned long long)h->count);
    tb_printf(o, "griddispatch_dispatch_latency_seconds_sum %.6f\n", h->sum);
    tb_printf(o, "griddispatch_dispatch_latency_seconds_count %llu\n",
              (unsigned long long)h->count);

    head(o, "dashboard_status_messages_total", "counter",
         "Status messages applied by this dashboard, by kind.");
    tb_printf(o, "griddispatch_dashboard_status_messages_total{kind=\"transition\"} %llu\n",
              (unsigned long long)m->transitions);
    tb_printf(o, "griddispatch_dashboard_status_messages_total{kind=\"gauge\"} %llu\n",
              (unsigned long long)m->gauges);
    tb_printf(o, "griddispatch_dashboard_status_messages_total{kind=\"sla\"} %llu\n",
              (unsigned long long)m->sla_events);
    tb_printf(o, "griddispatch_dashboard_status_messages_total{kind=\"alarm\"} %llu\n",
              (unsigned long long)m->alarms);
    head(o, "dashboard_decode_errors_total", "counter", "Status messages this dashboard refused.");
    tb_printf(o, "griddispatch_dashboard_decode_errors_total %llu\n",
              (unsigned long long)m->decode_errors);
    head(o, "dashboard_resubscribes_total", "counter",
         "Status subscriptions made anew because no broker status came for --broker-silence-ms.");
    tb_printf(o, "griddispatch_dashboard_resubscribes_total %llu\n",
              (unsigned long long)m->resubscribes);
    head(o, "dashboard_reseeds_total", "counter",
         "Times today's counts were read again from the event log after a gap in the status "
         "stream (a new subscription or a new broker).");
    tb_printf(o, "griddispatch_dashboard_reseeds_total %llu\n", (unsigned long long)m->reseeds);
    head(o, "dashboard_sse_clients", "gauge", "Browsers connected to the event stream.");
    tb_printf(o, "griddispatch_dashboard_sse_clients %u\n", hs->sse_clients);
    head(o, "dashboard_http_requests_total", "counter", "HTTP requests answered.");
    tb_printf(o, "griddispatch_dashboard_http_requests_total %llu\n",
              (unsigned long long)hs->requests);
    head(o, "dashboard_http_refused_total", "counter",
         "HTTP requests refused by a limit (event-stream clients, size, method).");
    tb_printf(o, "griddispatch_dashboard_http_refused_total %llu\n",
              (unsigned long long)(hs->requests_refused + hs->sse_refused));
    head(o, "dashboard_map_views", "gauge",
         "Units with a drill-down map (their children's outlines).");
    tb_printf(o, "griddispatch_dashboard_map_views %u\n", hs->map_views);
    head(o, "dashboard_map_shapes", "gauge", "Outlines on the drill-down maps.");
    tb_printf(o, "griddispatch_dashboard_map_shapes %u\n", hs->map_shapes);
    head(o, "dashboard_map_bytes", "gauge", "Bytes of simplified outline path data kept.");
    tb_printf(o, "griddispatch_dashboard_map_bytes %llu\n", (unsigned long long)hs->map_bytes);
    head(o, "dashboard_map_loads_total", "counter",
         "Boundary reads from the database that succeeded.");
    tb_printf(o, "griddispatch_dashboard_map_loads_total %llu\n",
              (unsigned long long)hs->map_loads);
    head(o, "dashboard_map_load_failures_total", "counter", "Boundary reads that failed.");
    tb_printf(o, "griddispatch_dashboard_map_load_failures_total %llu\n",
              (unsigned long long)hs->map_load_failures);
    head(o, "dashboard_map_load_seconds", "gauge", "Duration of the last good boundary read.");
    tb_printf(o, "griddispatch_dashboard_map_load_seconds %.3f\n", hs->map_load_seconds);
}
