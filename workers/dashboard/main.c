/* main.c - gd-dashboard: wires the status subscription, the model, the start-up load and the HTTP
 * server. */
#include <errno.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include <zmq.h>

#include "city.h"
#include "config.h"
#include "geomap.h"
#include "http.h"
#include "model.h"
#include "orgload.h"
#include "statsub.h"
#include "svcnotify.h"

#define SEED_OVERLAP_S 30 /* events this recent at start are deduplicated by id */
#define SEED_FORGET_MS (2 * SEED_OVERLAP_S * 1000)
#define MAP_RETRY_MS   30000 /* a failed first read of the boundaries is tried again */

/* One read of the boundaries, on a libuv pool thread with a connection of
 * its own: the loop goes on serving meanwhile. */
struct map_load {
    uv_work_t work;
    struct dashboard *owner;
    const char *dsn;
    struct geomap *result; /* on success */
    int rc;
    char err[512];
    uv_mutex_t lock;  /* guards cancel and stop, shared with the pool thread */
    PGcancel *cancel; /* of the connection while the read runs */
    bool stop;        /* the dashboard stops: do not start, cancel what runs */
};

_Static_assert(CITY_MAX_SHARDS <= DASH_MAX_SHARDS, "a model combines every shard of a city");

/* One broker whose status the dashboard follows: the only one, or a shard
 * of the city. */
struct shard_link {
    struct dashboard *owner;
    uint32_t index;   /* in the model: 0 without a city, else the city file's order */
    const char *name; /* the shard's; NULL without a city */
    const char *status_ep, *intake_ep, *db;
    struct statsub sub;
};

struct dashboard {
    struct dash_config cfg;
    uv_loop_t loop;
    void *zctx;
    struct dash_model model;
    struct shard_link link[DASH_MAX_SHARDS];
    uint32_t n_links;
    const char *org_db; /* the org tree, categories and maps: the default shard's db */
    char source[128];   /* where the status comes from, for STATUS lines */
    struct http http;
    uv_signal_t sigterm, sigint, sighup;
    uv_timer_t seed_timer;
    uv_timer_t map_retry;
    struct map_load map_load;
    struct geomap *map; /* served by http; replaced as a whole */
    bool map_loading;   /* map_load is queued or running */
    bool map_again;     /* a SIGHUP came during it: read again after it */
    bool stopping;
    struct svcnotify notify;
    char url[300]; /* http://host:port/ once serving, for STATUS lines */
};

static void logf_(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(const char *level, const char *fmt, ...)
{
    /* the same "<N>level program: message" lines as every other program */
    const char *prio = level[0] == 'e' ? "<3>" : level[0] == 'w' ? "<4>" : "<6>";
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s%s gd-dashboard: ", prio, level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void reseed(struct dashboard *d, const char *why);

/* "shard NAME: " before a log line about one shard of a city; "" without. */
static const char *shard_tag(const struct shard_link *l, char *buf, size_t size)
{
    if (!l->name)
        return "";
    snprintf(buf, size, "shard %s: ", l->name);
    return buf;
}

static void on_status(void *arg, const char *topic, size_t topic_len, const struct gd_status *st)
{
    struct shard_link *l = arg;
    dash_model_apply(&l->owner->model, l->index, topic, topic_len, st, now_ms());
}

/* Transitions published while the subscription was away, or while a new
 * broker started, never reach us (PROTOCOL §12.3): now that the status
 * stream is live again, today's counts are taken from the event log. The
 * counts are kept per unit, not per shard, so with a city they are read
 * again from every shard's event log, the resumed one's included. */
static void on_resumed(void *arg, bool remade, bool restarted)
{
    struct shard_link *l = arg;
    struct dashboard *d = l->owner;
    char tag[64], why[128];
    (void)restarted; /* not remade: restarted */
    if (remade) {
        logf_("info", "%sbroker status again", shard_tag(l, tag, sizeof(tag)));
        svcnotify_status("serving HTTP at %s; broker status from %s", d->url, d->source);
    }
    snprintf(why, sizeof(why), "%s%s", shard_tag(l, tag, sizeof(tag)),
             remade ? "the status subscription was made anew" : "a new broker");
    reseed(d, why);
}

static void on_gauges(void *arg, const struct gd_gauges *g, bool last)
{
    struct shard_link *l = arg;
    struct dashboard *d = l->owner;
    char tag[64];
    int64_t now = now_ms();
    for (uint32_t i = 0; i < g->n_gauges; i++)
        dash_model_gauge(&d->model, l->index, &g->gauges[i], now);
    if (last && d->cfg.verbose)
        logf_("info", "%ssnapshot applied (%u queues known)", shard_tag(l, tag, sizeof(tag)),
              d->model.n_queues);
}

static void on_decode_error(void *arg, const char *topic, size_t topic_len,
                            const struct gd_decode_error *e)
{
    struct shard_link *l = arg;
    struct dashboard *d = l->owner;
    char tag[64];
    d->model.decode_errors++;
    if (d->cfg.verbose)
        logf_("warn", "%sstatus message on %.*s refused: %s (%s)", shard_tag(l, tag, sizeof(tag)),
              (int)topic_len, topic, gd_code_name(e->code), e->field);
}

static void on_resubscribe(void *arg, uint64_t silent_ms, uint32_t attempt, const char *err)
{
    struct shard_link *l = arg;
    struct dashboard *d = l->owner;
    char tag[64];
    const char *who = shard_tag(l, tag, sizeof(tag));
    d->model.resubscribes++;
    if (attempt == 1)
        svcnotify_status("serving HTTP at %s; %sbroker status silent for %.1f s, subscribed anew",
                         d->url, who, (double)silent_ms / 1000.0);
    if (err)
        logf_("warn", "%scannot make the status subscription anew: %s", who, err);
    else if (attempt == 1 || d->cfg.verbose) /* once per silence, not every few seconds */
        logf_("warn", "%sno broker status for %.1f s: status subscription made anew", who,
              (double)silent_ms / 1000.0);
}

static void on_seed_timer(uv_timer_t *t)
{
    struct dashboard *d = t->data;
    dash_seed_done(&d->model);
}

/* ---- the drill-down maps ---- */

static void map_read(uv_work_t *w)
{
    struct map_load *ml = w->data;
    const char *const keys[] = {"dbname", "connect_timeout", "options", "application_name", NULL};
    const char *const values[] = {ml->dsn, "5",
                                  "-c default_transaction_read_only=on -c statement_timeout=60000",
                                  "gd-dashboard map", NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    bool stop = true;
    if (PQstatus(c) == CONNECTION_OK) {
        uv_mutex_lock(&ml->lock);
        stop = ml->stop;
        if (!stop)
            ml->cancel = PQgetCancel(c);
        uv_mutex_unlock(&ml->lock);
    }
    if (PQstatus(c) != CONNECTION_OK || stop) {
        snprintf(ml->err, sizeof(ml->err), "%s", stop ? "stopping" : PQerrorMessage(c));
        ml->err[strcspn(ml->err, "\n")] = '\0';
        ml->rc = -EIO;
    } else {
        ml->rc = geomap_load(c, &ml->result, ml->err, sizeof(ml->err));
    }
    uv_mutex_lock(&ml->lock);
    PQfreeCancel(ml->cancel);
    ml->cancel = NULL;
    uv_mutex_unlock(&ml->lock);
    PQfinish(c);
}

/* At a stop: a read that waits (on a lock, a slow database) is cancelled,
 * so the loop does not wait for it. */
static void map_read_stop(struct map_load *ml)
{
    char err[256];
    uv_mutex_lock(&ml->lock);
    ml->stop = true;
    if (ml->cancel)
        PQcancel(ml->cancel, err, sizeof(err));
    uv_mutex_unlock(&ml->lock);
}

static void map_start(struct dashboard *d);

static void on_map_retry(uv_timer_t *t)
{
    map_start(t->data);
}

static void map_read_done(uv_work_t *w, int status)
{
    struct map_load *ml = w->data;
    struct dashboard *d = ml->owner;
    d->map_loading = false;
    if (d->stopping || status == UV_ECANCELED) {
        geomap_free(ml->result);
        ml->result = NULL;
        return;
    }
    if (ml->rc < 0) {
        d->http.stats.map_load_failures++;
        logf_("warn", "cannot read the boundaries for the maps: %s%s", ml->err,
              d->map ? " (the maps read before stay)" : "; trying again in 30 s");
        if (!d->map && !d->map_again)
            uv_timer_start(&d->map_retry, on_map_retry, MAP_RETRY_MS, 0);
    } else {
        struct geomap *g = ml->result;
        ml->result = NULL;
        http_set_map(&d->http, g);
        geomap_free(d->map);
        d->map = g;
        d->http.stats.map_loads++;
        d->http.stats.map_load_seconds = g->load_ms / 1000.0;
        logf_("info", "maps: %u units with a map, %u outlines, %zu bytes, read in %.0f ms",
              g->n_views, g->n_shapes, g->bytes, g->load_ms);
        if (g->n_dropped)
            logf_("warn",
                  "maps: %u units not drawn, their children's outlines over %u bytes after "
                  "simplification (%s among them)",
                  g->n_dropped, GEOMAP_MAX_VIEW_BYTES, g->first_dropped);
    }
    if (d->map_again) {
        d->map_again = false;
        map_start(d);
    }
}

/* Reads the boundaries in the background, or once more after the read
 * under way. */
static void map_start(struct dashboard *d)
{
    if (d->stopping)
        return;
    if (d->map_loading) {
        d->map_again = true;
        return;
    }
    uv_timer_stop(&d->map_retry);
    d->map_load.owner = d;
    d->map_load.dsn = d->org_db;
    d->map_load.result = NULL; /* also when the read is cancelled before it ran */
    d->map_load.work.data = &d->map_load;
    int rc = uv_queue_work(&d->loop, &d->map_load.work, map_read, map_read_done);
    if (rc < 0) {
        logf_("warn", "cannot read the boundaries: %s", uv_strerror(rc));
        return;
    }
    d->map_loading = true;
}

static void on_sighup(uv_signal_t *s, int signum)
{
    (void)signum;
    struct dashboard *d = s->data;
    logf_("info", "SIGHUP: reading the boundaries for the maps again");
    map_start(d);
}

static void shutdown_all(struct dashboard *d)
{
    d->stopping = true;
    if (d->map_loading && uv_cancel((uv_req_t *)&d->map_load.work) < 0)
        map_read_stop(&d->map_load); /* it runs: cancel its query */
    http_close(&d->http);
    for (uint32_t i = 0; i < d->n_links; i++)
        statsub_close(&d->link[i].sub);
    uv_timer_stop(&d->seed_timer);
    uv_close((uv_handle_t *)&d->seed_timer, NULL);
    uv_timer_stop(&d->map_retry);
    uv_close((uv_handle_t *)&d->map_retry, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sighup, NULL);
    svcnotify_close(&d->notify);
}

static void on_signal(uv_signal_t *s, int signum)
{
    struct dashboard *d = s->data;
    logf_("info", "signal %d: stopping", signum);
    svcnotify_stopping("stopping: closing the HTTP connections");
    shutdown_all(d);
}

/* Connects to `dsn`, retrying for cfg.db_wait_s. */
static PGconn *connect_db(const struct dash_config *cfg, const char *dsn)
{
    for (uint32_t waited = 0;; waited++) {
        PGconn *c = PQconnectdb(dsn);
        if (PQstatus(c) == CONNECTION_OK)
            return c;
        if (waited >= cfg->db_wait_s) {
            logf_("error", "cannot reach the database: %s", PQerrorMessage(c));
            PQfinish(c);
            return NULL;
        }
        PQfinish(c);
        sleep(1);
    }
}

/* One attempt (connect_timeout 3 s); NULL with the reason in err. */
static PGconn *connect_once(const char *dsn, char *err, size_t errlen)
{
    const char *const keys[] = {"dbname", "connect_timeout", NULL};
    const char *const values[] = {dsn, "3", NULL};
    PGconn *c = PQconnectdbParams(keys, values, 1);
    if (PQstatus(c) == CONNECTION_OK)
        return c;
    snprintf(err, errlen, "%s", PQerrorMessage(c));
    err[strcspn(err, "\n")] = '\0';
    PQfinish(c);
    return NULL;
}

/* Today's counts again from the event log, the status stream being live:
 * what the stream brings from now on is deduplicated against them as at
 * start. With a city, from every shard's database: all are reached first,
 * and if one cannot be (one attempt each, connect_timeout 3 s), nothing is
 * reset and the counts go on from what the streams brought. */
static void reseed(struct dashboard *d, const char *why)
{
    char err[512], tag[64];
    PGconn *conn[DASH_MAX_SHARDS] = {0};
    uint32_t n = 0;
    for (; n < d->n_links; n++) {
        conn[n] = connect_once(d->link[n].db, err, sizeof(err));
        if (!conn[n]) {
            logf_("warn", "%s, but today's counts cannot be read again: %s%s", why,
                  shard_tag(&d->link[n], tag, sizeof(tag)), err);
            goto finish;
        }
    }
    dash_model_reset_day(&d->model);
    bool ok = true;
    for (uint32_t i = 0; i < n; i++)
        if (orgload_seed(conn[i], &d->model, i, SEED_OVERLAP_S, err, sizeof(err)) < 0) {
            logf_("warn", "%s, but today's counts cannot be read again: %s%s", why,
                  shard_tag(&d->link[i], tag, sizeof(tag)), err);
            ok = false;
        }
    if (ok)
        logf_("info", "%s: today's counts read again from the event log%s", why,
              d->n_links > 1 ? "s of every shard" : "");
    d->model.reseeds++;
    uv_timer_start(&d->seed_timer, on_seed_timer, SEED_FORGET_MS, 0);
finish:
    for (uint32_t i = 0; i < n; i++)
        PQfinish(conn[i]);
}

/* The org tree from org_db and today's counts from every shard's database;
 * the subscriptions are already open so nothing published meanwhile is
 * missed. A shard's database other than org_db that cannot be reached
 * (one attempt) leaves its counts at zero until a reseed. */
static int load(struct dashboard *d)
{
    char err[512], tag[64];
    PGconn *org = connect_db(&d->cfg, d->org_db);
    if (!org)
        return -1;
    int rc = orgload_tree(org, &d->model, err, sizeof(err));
    if (rc < 0) {
        logf_("error", "cannot load the org tree: %s", err);
        goto finish;
    }
    logf_("info", "org tree: %d units", rc);
    for (uint32_t i = 0; i < d->n_links; i++) {
        const struct shard_link *l = &d->link[i];
        PGconn *c = strcmp(l->db, d->org_db) ? connect_once(l->db, err, sizeof(err)) : org;
        if (!c || orgload_seed(c, &d->model, i, SEED_OVERLAP_S, err, sizeof(err)) < 0)
            logf_("warn", "%stoday's counts start from zero: %s", shard_tag(l, tag, sizeof(tag)),
                  err); /* not fatal */
        if (c != org)
            PQfinish(c);
    }
    rc = 0;
finish:
    PQfinish(org);
    return rc;
}

/* The brokers to follow: the one of --status/--intake/--db, or every shard
 * of the city; the org tree and maps come from the default shard's
 * database (the first shard's when the file names no default). Returns 0,
 * or -1 after logging. */
static int links_make(struct dashboard *d)
{
    const struct city *city = d->cfg.city;
    if (!city) {
        d->link[0] = (struct shard_link){.owner = d,
                                         .status_ep = d->cfg.status_ep,
                                         .intake_ep = d->cfg.intake_ep,
                                         .db = d->cfg.db};
        d->n_links = 1;
        d->org_db = d->cfg.db;
        snprintf(d->source, sizeof(d->source), "%s", d->cfg.status_ep);
        return 0;
    }
    const char *names[DASH_MAX_SHARDS];
    size_t n = city_n_shards(city);
    for (size_t i = 0; i < n; i++) {
        const struct city_shard *s = city_shard(city, i);
        d->link[i] = (struct shard_link){.owner = d,
                                         .index = (uint32_t)i,
                                         .name = s->name,
                                         .status_ep = s->status,
                                         .intake_ep = s->intake,
                                         .db = s->db};
        names[i] = s->name;
    }
    d->n_links = (uint32_t)n;
    if (dash_model_set_shards(&d->model, d->n_links, names) < 0) {
        logf_("error", "city: %zu shards, at most %d", n, DASH_MAX_SHARDS);
        return -1;
    }
    int def = city_default_shard(city);
    d->org_db = city_shard(city, def >= 0 ? (size_t)def : 0)->db;
    snprintf(d->source, sizeof(d->source), "%zu shards of %s", n, d->cfg.city_file);
    return 0;
}

/* Opens every link's status subscription. Returns 0, or -1 after logging
 * with every link closed again. */
static int links_open(struct dashboard *d)
{
    char err[512], tag[64];
    for (uint32_t i = 0; i < d->n_links; i++) {
        struct shard_link *l = &d->link[i];
        struct statsub_callbacks cb = {.on_status = on_status,
                                       .on_gauges = on_gauges,
                                       .on_error = on_decode_error,
                                       .on_resubscribe = on_resubscribe,
                                       .on_resumed = on_resumed,
                                       .arg = l};
        if (statsub_open(&l->sub, &d->loop, d->zctx, l->status_ep, l->intake_ep,
                         d->cfg.broker_silence_ms, &cb, err, sizeof(err)) < 0) {
            logf_("error", "%s%s", shard_tag(l, tag, sizeof(tag)), err);
            for (uint32_t k = 0; k < i; k++)
                statsub_close(&d->link[k].sub);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    int status = 1;
    char err[512];
    struct dashboard *d = calloc(1, sizeof(*d));
    if (!d || uv_mutex_init(&d->map_load.lock) < 0) {
        free(d);
        return 1;
    }
    int rc = dash_config_parse(&d->cfg, argc, argv, stdout, stderr);
    if (rc != 0) {
        status = rc > 0 ? 0 : 2;
        goto free_dashboard;
    }
    setvbuf(stderr, NULL, _IOLBF, 0);
    uv_loop_init(&d->loop);
    d->zctx = zmq_ctx_new();
    if (!d->zctx) {
        logf_("error", "zmq_ctx_new: %s", zmq_strerror(errno));
        goto close_loop;
    }
    dash_model_init(&d->model, d->cfg.utc_offset_min, now_ms());
    if (links_make(d) < 0)
        goto free_model;
    if (links_open(d) < 0) {
        uv_run(&d->loop, UV_RUN_NOWAIT); /* the links opened before are closed */
        goto free_model;
    }
    if (load(d) < 0)
        goto close_sub;
    if (http_open(&d->http, &d->loop, &d->cfg.http, &d->model, err, sizeof(err)) < 0) {
        logf_("error", "%s", err);
        goto close_sub;
    }
    uv_timer_init(&d->loop, &d->seed_timer);
    d->seed_timer.data = d;
    uv_timer_start(&d->seed_timer, on_seed_timer, SEED_FORGET_MS, 0);
    uv_timer_init(&d->loop, &d->map_retry);
    d->map_retry.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sighup);
    d->sigterm.data = d->sigint.data = d->sighup.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sighup, on_sighup, SIGHUP); /* the boundaries are read again */
    map_start(d);
    snprintf(d->url, sizeof(d->url), "http://%.*s:%u/",
             (int)(strrchr(d->cfg.http.listen, ':') - d->cfg.http.listen), d->cfg.http.listen,
             d->http.port);
    logf_("info", "ready: %s", d->url);
    svcnotify_init(&d->notify);
    if (svcnotify_watch_loop(&d->notify, &d->loop) < 0)
        logf_("warn", "cannot start the systemd watchdog timer");
    svcnotify_ready("serving HTTP at %s; broker status from %s", d->url, d->source);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    status = 0;
    goto free_model;

close_sub:
    for (uint32_t i = 0; i < d->n_links; i++)
        statsub_close(&d->link[i].sub);
    uv_run(&d->loop, UV_RUN_NOWAIT);
free_model:
    geomap_free(d->map);
    dash_model_fini(&d->model);
    zmq_ctx_term(d->zctx);
close_loop:
    uv_loop_close(&d->loop);
free_dashboard:
    dash_config_fini(&d->cfg);
    uv_mutex_destroy(&d->map_load.lock);
    free(d);
    return status;
}
