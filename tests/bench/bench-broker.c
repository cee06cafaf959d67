/* bench-broker.c - durable intake throughput and SUBMIT-to-DELIVER latency of a running gd-broker,
 * beside the raw PostgreSQL rate for the same rows measured in the same run.
 *
 * usage: bench-broker DSN INTAKE_EP WORK_EP [total] [clients] [window] [rate] [seconds]
 *
 * 1. raw:      `clients` libpq connections insert incident + event rows
 *              with one multi-row (unnest) statement per table per
 *              transaction of `window` rows: the best plain PostgreSQL
 *              can do with these rows (DESIGN §5).
 * 2. intake:   `clients` DEALER sockets each keep `window` SUBMITs in
 *              flight until `total` are ACCEPTED (each ACCEPTED means
 *              committed). Reported as accepted/s and as the ratio to raw.
 * 3. latency:  first the floor, one row per transaction straight to
 *              PostgreSQL at `rate`/s; then one worker (credit 256) on one
 *              grid queue that resolves what it gets, while one client
 *              submits at `rate`/s for `seconds`: SUBMIT -> DELIVER and
 *              SUBMIT -> ACCEPTED (durable), p50/p99/max.
 * The database must hold the demo org tree and categories; tables
 * incident/incident_event are emptied between phases.
 *
 * GD_BENCH_SPREAD=1 spreads the intake phase's SUBMITs over every grid
 * and category in the database and three sources, as a district's real
 * stream is (the default sends them all to one grid queue): the status
 * fan-out benchmark needs transitions that differ as real ones do.
 * GD_BENCH_INTAKE_ONLY=1 runs the intake phase alone.
 * GD_BENCH_GEO=given or GD_BENCH_GEO=position runs one intake phase over
 * points spread across every grid that has a boundary (8 per grid,
 * ST_GeneratePoints), each SUBMIT with its point's grid code given or with
 * only its lat/lon (the broker places it: point in polygon), and checks in
 * the database that every one was located so. The boundaries must be in
 * unit_boundary before the broker starts; run-broker-bench.sh with
 * GD_BENCH_GEO=1 runs the phases ABBA, each on a newly started broker, and
 * prints the ratio.
 * GD_BENCH_CPU_PIDS=PID,PID... prints the CPU time (user + system, all
 * threads) each of these processes used during the intake phase, and the
 * machine's busy time over all cores in the same interval, per 1000
 * SUBMITs: a figure far less noisy than throughput on a shared machine.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "gdp.h"

#define GRID "500113001001001"
#define LATENCY_GRID "500113001001002" /* a queue the intake phase left empty */
#define CATEGORY "LH-0101" /* admitted at grid level */
#define DESC                                                                                       \
    "龙洲湾街道龙海大道幸福小区三栋二单元门口的垃圾堆放点已经三天没有清运，气味很大，"             \
    "夏天蚊蝇多，居民希望尽快清理并增加清运频次。"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-broker: %s\n", what);
    exit(1);
}

static void exec_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench-broker: %s: %s", sql, PQresultErrorMessage(r));
        exit(1);
    }
    PQclear(r);
}

static void empty_tables(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    exec_ok(c, "TRUNCATE incident_event, incident");
    PQfinish(c);
}

/* ---- 1. raw PostgreSQL ---- */

struct raw_job {
    const char *dsn;
    int id;
    int rows;
    int batch;
};

static void *raw_worker(void *arg)
{
    struct raw_job *j = arg;
    PGconn *c = PQconnectdb(j->dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    size_t cap = (size_t)j->batch * 48 + 64;
    char *ids = malloc(cap), *ext = malloc(cap);
    for (int done = 0; done < j->rows; done += j->batch) {
        int n = j->rows - done < j->batch ? j->rows - done : j->batch;
        size_t li = 0, le = 0;
        ids[li++] = '{';
        ext[le++] = '{';
        for (int k = 0; k < n; k++) {
            long long id = (long long)j->id * 100000000LL + done + k + 1;
            li += (size_t)snprintf(ids + li, cap - li, "%s%lld", k ? "," : "", id);
            le += (size_t)snprintf(ext + le, cap - le, "%s\"raw-%lld\"", k ? "," : "", id);
        }
        ids[li++] = '}';
        ids[li] = '\0';
        ext[le++] = '}';
        ext[le] = '\0';
        const char *params[3] = {ids, ext, DESC};
        PGresult *r = PQexecParams(
            c,
            "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS r(id, ext)), "
            "ins AS (INSERT INTO incident (id, source, external_id, category, priority, state, "
            "version, queue, owner_unit, owner_level, location_unit, description, reporter_name, "
            "reporter_phone, received_at, updated_at) SELECT id, 'raw', ext, '" CATEGORY "', "
            "'normal', 'QUEUED', 1, '" GRID "', '" GRID "', 'grid', '" GRID "', $3, '张三', "
            "'13800000000', now(), now() FROM r RETURNING id) "
            "INSERT INTO incident_event (incident_id, version, at, kind, to_state, queue) "
            "SELECT id, 1, now(), 'receive', 'QUEUED', '" GRID "' FROM ins",
            3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die(PQresultErrorMessage(r));
        PQclear(r);
    }
    free(ids);
    free(ext);
    PQfinish(c);
    return NULL;
}

static double bench_raw(const char *dsn, int total, int clients, int batch)
{
    pthread_t t[64];
    struct raw_job jobs[64];
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (struct raw_job){dsn, i + 1, total / clients, batch};
        pthread_create(&t[i], NULL, raw_worker, &jobs[i]);
    }
    for (int i = 0; i < clients; i++)
        pthread_join(t[i], NULL);
    return (double)(total / clients * clients) / (now_s() - t0);
}

/* The latency of one durable row at a fixed rate, straight to PostgreSQL:
 * the floor under SUBMIT -> ACCEPTED. */
static void bench_raw_latency(const char *dsn, int rate, int seconds)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    int total = rate * seconds;
    double *v = calloc((size_t)total, sizeof(double));
    double t0 = now_s();
    for (int i = 0; i < total; i++) {
        double due = t0 + (double)i / rate, now = now_s();
        if (due > now) {
            struct timespec ts = {0, (long)((due - now) * 1e9)};
            nanosleep(&ts, NULL);
        }
        char id[32], ext[48];
        snprintf(id, sizeof(id), "%d", 900000000 + i);
        snprintf(ext, sizeof(ext), "rawlat-%d", i);
        const char *params[3] = {id, ext, DESC};
        double s0 = now_s();
        PGresult *r = PQexecParams(
            c,
            "WITH ins AS (INSERT INTO incident (id, source, external_id, category, priority, "
            "state, version, queue, owner_unit, owner_level, location_unit, description, "
            "received_at, updated_at) VALUES ($1::bigint, 'raw', $2, '" CATEGORY "', 'normal', "
            "'QUEUED', 1, '" GRID "', '" GRID "', 'grid', '" GRID "', $3, now(), now()) "
            "RETURNING id) INSERT INTO incident_event (incident_id, version, at, kind, "
            "to_state, queue) SELECT id, 1, now(), 'receive', 'QUEUED', '" GRID "' FROM ins",
            3, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) != PGRES_COMMAND_OK)
            die(PQresultErrorMessage(r));
        PQclear(r);
        v[i] = now_s() - s0;
    }
    qsort(v, (size_t)total, sizeof(double), cmp_double);
    printf("raw-lat   one row per transaction at %d/s for %d s: commit p50 %.2f ms, p99 %.2f ms, "
           "max %.2f ms\n",
           rate, seconds, v[(total - 1) / 2] * 1e3, v[(total - 1) * 99 / 100] * 1e3,
           v[total - 1] * 1e3);
    free(v);
    PQfinish(c);
}

/* CurveZMQ, as the clients of a secured broker use it: the broker's public
 * key in $GD_BENCH_SERVER_KEY, and a principal's key pair (Z85) in
 * $GD_BENCH_PUBLIC_intake / $GD_BENCH_SECRET_intake (role intake) or
 * ..._worker. Nothing set: plain connections. */
static void maybe_curve(void *sock, const char *who)
{
    const char *server = getenv("GD_BENCH_SERVER_KEY");
    char pv[64], sv[64];
    snprintf(pv, sizeof(pv), "GD_BENCH_PUBLIC_%s", who);
    snprintf(sv, sizeof(sv), "GD_BENCH_SECRET_%s", who);
    const char *pub = getenv(pv), *sec = getenv(sv);
    if (!server || !pub || !sec)
        return;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, pub, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, sec, 40) != 0)
        die("bad CURVE keys in the environment");
}

/* ---- 2. durable intake through the broker ---- */

static void send_msg(void *sock, const struct gd_msg *m, struct gd_buf *buf)
{
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(m->type, header);
    gd_buf_reset(buf);
    if (gd_encode(m, buf) < 0)
        die("encode failed");
    zmq_send(sock, header, sizeof(header), ZMQ_SNDMORE);
    zmq_send(sock, buf->data, buf->len, 0);
}

/* Receives one message into m (decoded with d); returns false on timeout. */
static bool recv_msg(void *sock, struct gd_decoder *d, zmq_msg_t *h, zmq_msg_t *b,
                     struct gd_msg *m)
{
    if (zmq_msg_recv(h, sock, 0) < 0)
        return false;
    if (zmq_msg_recv(b, sock, 0) < 0)
        return false;
    struct gd_decode_error err;
    if (gd_decode(d, zmq_msg_data(h), zmq_msg_size(h), zmq_msg_data(b), zmq_msg_size(b), m,
                  &err) < 0)
        die("undecodable reply");
    return true;
}

/* GD_BENCH_SPREAD: the grids and categories to spread SUBMITs over */
static char **spread_grids, **spread_cats;
static int n_spread_grids, n_spread_cats;

static char **load_codes(PGconn *c, const char *sql, int *n)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0)
        die("cannot read the org tree or categories for GD_BENCH_SPREAD");
    *n = PQntuples(r);
    char **v = calloc((size_t)*n, sizeof(*v));
    for (int i = 0; v && i < *n; i++)
        v[i] = strdup(PQgetvalue(r, i, 0));
    PQclear(r);
    if (!v)
        die("out of memory");
    return v;
}

static void load_spread(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    spread_grids = load_codes(c, "SELECT code FROM org_unit WHERE level = 'grid' ORDER BY code",
                              &n_spread_grids);
    spread_cats = load_codes(c, "SELECT code FROM category ORDER BY code", &n_spread_cats);
    PQfinish(c);
}

/* GD_BENCH_GEO: points inside the grids' boundaries, and the phase's way
 * of saying where (set before an intake phase starts its threads) */
struct geo_point {
    char *grid;
    double lat, lon;
};
static struct geo_point *geo_points;
static int n_geo_points;
static bool geo_by_position;

static void load_geo_points(const char *dsn)
{
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    PGresult *r = PQexec(c, "SELECT unit, ST_Y(p.geom), ST_X(p.geom) FROM (SELECT b.unit, "
                            "(ST_Dump(ST_GeneratePoints(b.geom, 8, 15))).geom FROM unit_boundary b "
                            "JOIN org_unit o ON o.code = b.unit AND o.level = 'grid') p "
                            "ORDER BY random()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0)
        die("GD_BENCH_GEO: no grid boundaries in unit_boundary");
    n_geo_points = PQntuples(r);
    geo_points = calloc((size_t)n_geo_points, sizeof(*geo_points));
    for (int i = 0; geo_points && i < n_geo_points; i++)
        geo_points[i] = (struct geo_point){.grid = strdup(PQgetvalue(r, i, 0)),
                                           .lat = strtod(PQgetvalue(r, i, 1), NULL),
                                           .lon = strtod(PQgetvalue(r, i, 2), NULL)};
    if (!geo_points)
        die("out of memory");
    PGresult *g = PQexec(c, "SELECT count(*), sum(ST_NPoints(geom)) FROM unit_boundary");
    printf("geo       %s boundaries, %s vertices; %d points (8 in each grid)\n",
           PQgetvalue(g, 0, 0), PQgetvalue(g, 0, 1), n_geo_points);
    PQclear(g);
    PQclear(r);
    PQfinish(c);
}

static void make_submit(struct gd_msg *m, char *ext, size_t extlen, const char *prefix,
                        uint64_t n, const char *unit)
{
    snprintf(ext, extlen, "%s-%" PRIu64, prefix, n);
    memset(m, 0, sizeof(*m));
    m->type = GD_T_SUBMIT;
    struct gd_submit *s = &m->u.submit;
    s->ref = n;
    s->source = GD_STR("bench");
    s->external_id = gd_str_c(ext);
    s->category = GD_STR(CATEGORY);
    s->location.unit = gd_str_c(unit);
    if (n_spread_grids) {
        /* a fixed pseudo-random choice per (prefix, n): a resend is the same SUBMIT */
        uint64_t h = n * 0x9e3779b97f4a7c15u;
        for (const char *p = prefix; *p; p++)
            h = (h ^ (uint8_t)*p) * 0x100000001b3u;
        static const char *const sources[] = {"hotline", "app", "patrol"};
        s->location.unit = gd_str_c(spread_grids[h % (uint64_t)n_spread_grids]);
        s->category = gd_str_c(spread_cats[(h >> 20) % (uint64_t)n_spread_cats]);
        s->source = gd_str_c(sources[(h >> 40) % 3]);
    }
    s->description = GD_STR(DESC);
    s->reporter = (struct gd_reporter){.name = GD_STR("张三"), .phone = GD_STR("13800000000")};
    if (n_geo_points) {
        const struct geo_point *p = &geo_points[n % (uint64_t)n_geo_points];
        if (geo_by_position) {
            s->location = (struct gd_location){.has_coords = true, .lat = p->lat, .lon = p->lon};
        } else {
            s->location = (struct gd_location){.unit = gd_str_c(p->grid)};
        }
    }
}

struct intake_job {
    void *zctx;
    const char *endpoint;
    int id;
    int count;
    int window;
    int busy;
};

static void *intake_worker(void *arg)
{
    struct intake_job *j = arg;
    void *s = zmq_socket(j->zctx, ZMQ_DEALER);
    maybe_curve(s, "intake");
    int timeout = 30000, hwm = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_connect(s, j->endpoint);
    struct gd_decoder *d = gd_decoder_new();
    struct gd_buf buf = {0};
    struct gd_msg m;
    char ext[64], prefix[32];
    snprintf(prefix, sizeof(prefix), "c%d", j->id);
    int sent = 0, accepted = 0;
    zmq_msg_t h, b;
    zmq_msg_init(&h);
    zmq_msg_init(&b);
    while (accepted < j->count) {
        while (sent < j->count && sent - accepted < j->window) {
            make_submit(&m, ext, sizeof(ext), prefix, (uint64_t)sent++, GRID);
            send_msg(s, &m, &buf);
        }
        if (!recv_msg(s, d, &h, &b, &m))
            die("intake: no answer within 30 s");
        if (m.type == GD_T_ACCEPTED) {
            accepted++;
        } else if (m.type == GD_T_BUSY) {
            /* resend the same one later: idempotent */
            j->busy++;
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
            make_submit(&m, ext, sizeof(ext), prefix, m.u.busy.ref, GRID);
            send_msg(s, &m, &buf);
        } else {
            die("intake: unexpected answer");
        }
    }
    zmq_msg_close(&h);
    zmq_msg_close(&b);
    gd_buf_fini(&buf);
    gd_decoder_free(d);
    zmq_close(s);
    return NULL;
}

static double bench_intake(void *zctx, const char *ep, int total, int clients, int window,
                           int *busy)
{
    pthread_t t[64];
    struct intake_job jobs[64];
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (struct intake_job){zctx, ep, i + 1, total / clients, window, 0};
        pthread_create(&t[i], NULL, intake_worker, &jobs[i]);
    }
    *busy = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        *busy += jobs[i].busy;
    }
    return (double)(total / clients * clients) / (now_s() - t0);
}

/* ---- CPU time of the processes under test ---- */

#define MAX_PIDS 8

/* User + system clock ticks of process `pid` (every thread); -1 when gone. */
static long long proc_ticks(long pid)
{
    char path[64], line[1024];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(line, 1, sizeof(line) - 1, f);
    fclose(f);
    line[n] = 0;
    /* the command name may hold spaces and ')': the fields start after the last ')' */
    char *p = strrchr(line, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut,
                     &st) != 2)
        return -1;
    return (long long)(ut + st);
}

/* Busy clock ticks of the machine, summed over all cores. */
static long long machine_ticks(void)
{
    FILE *f = fopen("/proc/stat", "r");
    unsigned long long v[8] = {0};
    if (!f)
        return -1;
    int k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                   &v[3], &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (k != 8)
        return -1;
    return (long long)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]); /* not idle, not iowait */
}

struct cpu_probe {
    int n;
    long pid[MAX_PIDS];
    long long t0[MAX_PIDS], m0;
};

static void cpu_start(struct cpu_probe *p)
{
    const char *env = getenv("GD_BENCH_CPU_PIDS");
    p->n = 0;
    for (const char *s = env; s && *s && p->n < MAX_PIDS;) {
        char *end;
        long pid = strtol(s, &end, 10);
        if (end == s)
            break;
        p->pid[p->n++] = pid;
        s = *end == ',' ? end + 1 : end;
    }
    for (int i = 0; i < p->n; i++)
        p->t0[i] = proc_ticks(p->pid[i]);
    p->m0 = machine_ticks();
}

/* "cpu  intake: pid 123 14.2 ms, pid 456 3.1 ms, machine 71.0 ms per 1000 SUBMITs" */
static void cpu_report(const struct cpu_probe *p, int submits)
{
    if (!p->n)
        return;
    double ms = 1000.0 / (double)sysconf(_SC_CLK_TCK) * 1000.0 / submits;
    printf("cpu       intake:");
    for (int i = 0; i < p->n; i++) {
        long long t = proc_ticks(p->pid[i]);
        if (t < 0 || p->t0[i] < 0)
            printf(" pid %ld gone,", p->pid[i]);
        else
            printf(" pid %ld %.1f ms,", p->pid[i], (double)(t - p->t0[i]) * ms);
    }
    printf(" machine %.1f ms per 1000 SUBMITs\n", (double)(machine_ticks() - p->m0) * ms);
}

/* ---- 3. SUBMIT -> DELIVER latency at a fixed rate ---- */


static void bench_latency(void *zctx, const char *intake_ep, const char *work_ep, int rate,
                          int seconds)
{
    void *w = zmq_socket(zctx, ZMQ_DEALER);
    void *c = zmq_socket(zctx, ZMQ_DEALER);
    maybe_curve(w, "worker");
    maybe_curve(c, "intake");
    zmq_connect(w, work_ep);
    zmq_connect(c, intake_ep);
    struct gd_decoder *d = gd_decoder_new();
    struct gd_buf buf = {0};
    struct gd_msg m = {.type = GD_T_HELLO};
    m.u.hello.role = GD_ROLE_WORKER;
    m.u.hello.name = GD_STR("bench-worker");
    m.u.hello.credit = 256;
    m.u.hello.n_queues = 1;
    m.u.hello.queues[0] = GD_STR(LATENCY_GRID);
    send_msg(w, &m, &buf);
    zmq_msg_t h, b;
    zmq_msg_init(&h);
    zmq_msg_init(&b);
    if (!recv_msg(w, d, &h, &b, &m) || m.type != GD_T_WELCOME)
        die("latency: worker not welcomed");

    int total = rate * seconds;
    double *sent_at = calloc((size_t)total, sizeof(double));
    double *lat = calloc((size_t)total, sizeof(double));
    double *acc = calloc((size_t)total, sizeof(double)); /* SUBMIT -> ACCEPTED */
    int n_sent = 0, n_got = 0;
    double t0 = now_s(), deadline = t0 + seconds + 30;
    char ext[64];
    zmq_pollitem_t items[2] = {{w, 0, ZMQ_POLLIN, 0}, {c, 0, ZMQ_POLLIN, 0}};
    while (n_got < total && now_s() < deadline) {
        double now = now_s();
        int due = (int)((now - t0) * rate);
        while (n_sent < total && n_sent <= due) {
            make_submit(&m, ext, sizeof(ext), "lat", (uint64_t)n_sent, LATENCY_GRID);
            sent_at[n_sent++] = now_s();
            send_msg(c, &m, &buf);
        }
        double next = t0 + (double)(n_sent) / rate;
        long wait_ms = n_sent < total ? (long)((next - now_s()) * 1000) : 100;
        zmq_poll(items, 2, wait_ms < 0 ? 0 : wait_ms);
        while (zmq_msg_recv(&h, c, ZMQ_DONTWAIT) >= 0) {
            zmq_msg_recv(&b, c, 0);
            struct gd_decode_error err;
            if (gd_decode(d, zmq_msg_data(&h), zmq_msg_size(&h), zmq_msg_data(&b),
                          zmq_msg_size(&b), &m, &err) == 0 &&
                m.type == GD_T_ACCEPTED && m.u.accepted.ref < (uint64_t)total &&
                acc[m.u.accepted.ref] == 0)
                acc[m.u.accepted.ref] = now_s() - sent_at[m.u.accepted.ref];
        }
        while (zmq_msg_recv(&h, w, ZMQ_DONTWAIT) >= 0) {
            zmq_msg_recv(&b, w, 0);
            struct gd_decode_error err;
            if (gd_decode(d, zmq_msg_data(&h), zmq_msg_size(&h), zmq_msg_data(&b),
                          zmq_msg_size(&b), &m, &err) < 0)
                die("latency: undecodable message");
            if (m.type != GD_T_DELIVER)
                continue;
            struct gd_str e = m.u.deliver.incident.external_id;
            int k = atoi(e.ptr + 4); /* "lat-N" */
            if (k >= 0 && k < total && lat[k] == 0) {
                lat[k] = now_s() - sent_at[k];
                n_got++;
            }
            /* free the credit: resolve it straight away */
            struct gd_msg r = {.type = GD_T_RESOLVE};
            r.u.command.incident_id = m.u.deliver.incident.id;
            r.u.command.version = m.u.deliver.incident.version;
            r.u.command.text = GD_STR("bench");
            send_msg(w, &r, &buf);
        }
    }
    double *v = calloc((size_t)(total ? total : 1), sizeof(double));
    int k = 0;
    for (int i = 0; i < total; i++)
        if (lat[i] > 0)
            v[k++] = lat[i];
    qsort(v, (size_t)k, sizeof(double), cmp_double);
    if (k)
        printf("latency   %d/s for %d s: %d delivered of %d; SUBMIT->DELIVER p50 %.2f ms, "
               "p99 %.2f ms, max %.2f ms\n",
               rate, seconds, k, total, v[(k - 1) / 2] * 1e3, v[(k - 1) * 99 / 100] * 1e3,
               v[k - 1] * 1e3);
    else
        printf("latency   nothing delivered\n");
    /* the commit alone: SUBMIT -> ACCEPTED (ACCEPTED is sent after COMMIT) */
    int na = 0;
    for (int i = 0; i < total; i++)
        if (acc[i] > 0)
            v[na++] = acc[i];
    qsort(v, (size_t)na, sizeof(double), cmp_double);
    if (na)
        printf("latency   SUBMIT->ACCEPTED (durable) p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               v[(na - 1) / 2] * 1e3, v[(na - 1) * 99 / 100] * 1e3, v[na - 1] * 1e3);
    free(acc);
    free(v);
    free(lat);
    free(sent_at);
    zmq_msg_close(&h);
    zmq_msg_close(&b);
    gd_buf_fini(&buf);
    gd_decoder_free(d);
    zmq_close(w);
    zmq_close(c);
}

/* GD_BENCH_GEO=given|position: one intake phase over the grids' points,
 * each SUBMIT with its grid code given or with only its position. */
static int bench_geo(const char *dsn, const char *ep, bool by_position, int total, int clients,
                     int window)
{
    void *zctx = zmq_ctx_new();
    int busy = 0;
    geo_by_position = by_position;
    struct cpu_probe cpu;
    cpu_start(&cpu);
    double rate = bench_intake(zctx, ep, total, clients, window, &busy);
    printf("intake    %s: %d SUBMITs, %d clients, %d in flight each: %.0f accepted/s "
           "(%d BUSY answers)\n",
           by_position ? "position (lat/lon, placed by the broker)"
                       : "grid code given                        ",
           total, clients, window, rate, busy);
    cpu_report(&cpu, total / clients * clients);
    zmq_ctx_term(zctx);
    /* what was measured is what was meant: every SUBMIT located as meant */
    PGconn *c = PQconnectdb(dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    PGresult *r = PQexec(c, by_position
                                ? "SELECT count(*) FILTER (WHERE located_by = 'position' AND "
                                  "queue <> 'triage'), count(*) FROM incident"
                                : "SELECT count(*) FILTER (WHERE located_by = 'given'), count(*) "
                                  "FROM incident");
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        die(PQresultErrorMessage(r));
    long located = atol(PQgetvalue(r, 0, 0)), all = atol(PQgetvalue(r, 0, 1));
    PQclear(r);
    PQfinish(c);
    printf("stored    %ld of %ld located %s\n", located, all,
           by_position ? "by position in a grid" : "with the grid code given");
    if (located != all || all != (long)(total / clients * clients))
        die("GD_BENCH_GEO: not every SUBMIT was located as its phase meant");
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr,
                "usage: bench-broker DSN INTAKE_EP WORK_EP [total] [clients] [window] [rate] "
                "[seconds]\n");
        return 2;
    }
    const char *dsn = argv[1];
    int total = argc > 4 ? atoi(argv[4]) : 100000;
    int clients = argc > 5 ? atoi(argv[5]) : 4;
    int window = argc > 6 ? atoi(argv[6]) : 500;
    int rate = argc > 7 ? atoi(argv[7]) : 1000;
    int seconds = argc > 8 ? atoi(argv[8]) : 10;
    if (clients < 1 || clients > 64 || window < 1 || total < clients)
        die("bad arguments");

    const char *spread = getenv("GD_BENCH_SPREAD");
    if (spread && strcmp(spread, "0") != 0)
        load_spread(dsn);
    const char *only = getenv("GD_BENCH_INTAKE_ONLY");
    bool intake_only = only && strcmp(only, "0") != 0;
    const char *geo = getenv("GD_BENCH_GEO");
    if (geo && strcmp(geo, "0") != 0) {
        if (strcmp(geo, "given") != 0 && strcmp(geo, "position") != 0)
            die("GD_BENCH_GEO is given or position");
        load_geo_points(dsn);
        empty_tables(dsn);
        return bench_geo(dsn, argv[2], strcmp(geo, "position") == 0, total, clients, window);
    }
    double raw = 0;
    if (!intake_only) {
        empty_tables(dsn);
        raw = bench_raw(dsn, total, clients, window);
        printf("raw       %d rows (incident + event), %d connections, %d rows/transaction: "
               "%.0f rows/s\n",
               total, clients, window, raw);
        empty_tables(dsn);
    }

    void *zctx = zmq_ctx_new();
    int busy = 0;
    struct cpu_probe cpu;
    cpu_start(&cpu);
    double intake = bench_intake(zctx, argv[2], total, clients, window, &busy);
    printf("intake    %d SUBMITs, %d clients, %d in flight each: %.0f accepted/s "
           "(%d BUSY answers)\n",
           total, clients, window, intake, busy);
    cpu_report(&cpu, total / clients * clients);
    if (intake_only) {
        zmq_ctx_term(zctx);
        return 0;
    }
    printf("ratio     broker / raw = %.2f\n", intake / raw);
    bench_raw_latency(dsn, rate, seconds);
    bench_latency(zctx, argv[2], argv[3], rate, seconds);
    zmq_ctx_term(zctx);
    return 0;
}
