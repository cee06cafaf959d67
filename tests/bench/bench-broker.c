/* bench-broker.c - durable intake throughput and SUBMIT-to-DELIVER latency of a running gd-broker,
 * beside the raw PostgreSQL rate for the same rows measured in the same run.
 *
 * usage: bench-broker DSN INTAKE_EP WORK_EP [total] [clients] [window] [rate] [seconds]
 *
 * 1. raw:      `clients` libpq connections insert incident + event rows
 *              (the columns the broker writes) in transactions of
 *              `window` rows, once with one multi-row (unnest) statement
 *              and once with COPY into each table: the better of the two
 *              is the best plain PostgreSQL can do with these rows
 *              (DESIGN §5), and the baseline.
 * 2. intake:   `clients` DEALER sockets each keep `window` SUBMITs in
 *              flight until `total` are ACCEPTED (each ACCEPTED means
 *              committed). Reported as accepted/s and as the ratio to raw.
 * 3. latency:  one worker (credit 256) on one grid queue that resolves
 *              what it gets, while one client submits at `rate`/s for
 *              `seconds`: SUBMIT -> DELIVER and SUBMIT -> ACCEPTED
 *              (durable), p50/p99/max. Its floor: one row per transaction
 *              straight to PostgreSQL from a plain libpq client at the
 *              same rate, alone (half the seconds before, half after) and
 *              beside it (the same seconds, at the same time, so that a
 *              slow spell of the shared disk hits both); printed as the
 *              ratios of the p99s, once to the commit's own time and once
 *              to the time from when the row was due (what a stall costs
 *              every row due while it lasts, as it costs the SUBMITs).
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
 * GD_BENCH_LATENCY_TRACE=FILE writes one line per SUBMIT of the latency
 * phase: ms since the phase began when it was sent, SUBMIT -> ACCEPTED
 * and SUBMIT -> DELIVER in ms (0: none came), to see when a stall happens.
 * GD_BENCH_CPU_PIDS=PID,PID... prints the CPU time (user + system, all
 * threads) each of these processes used during the intake phase, and the
 * machine's busy time over all cores in the same interval, per 1000
 * SUBMITs: a figure far less noisy than throughput on a shared machine.
 */
#include <errno.h>
#include <stdbool.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <math.h>
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

/* the description of every SUBMIT and raw row: DESC, or what GD_BENCH_SIZE makes of it */
static const char *bench_desc = DESC;
/* GD_BENCH_BATCH: SUBMITs per SUBMITS message in the intake phase (0: one SUBMIT each) */
static int bench_batch;

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

/* The rows are those the broker writes for a SUBMIT of the intake phase:
 * the same columns with the same kind of values (deadlines and warnings
 * set, located_by given), either with one multi-row (unnest) statement
 * or with COPY into each table, one transaction per batch. */
struct raw_job {
    const char *dsn;
    int id;
    int rows;
    int batch;
    bool copy;
    long long ticks; /* CPU of the job's backend, clock ticks (-1: unknown) */
};

static long long proc_ticks(long pid);

#define RAW_INCIDENT_COLUMNS                                                                \
    "id, source, external_id, category, priority, state, version, queue, owner_unit, "      \
    "owner_level, location_unit, description, reporter_name, reporter_phone, received_at, " \
    "updated_at, sign_due, resolve_due, sign_warn, resolve_warn, located_by"
#define RAW_EVENT_COLUMNS                                                                  \
    "incident_id, version, at, kind, to_state, queue, owner_unit, owner_level, sign_due, " \
    "resolve_due, location_unit, located_by"

static void raw_unnest_batch(PGconn *c, const struct raw_job *j, int done, int n, char *ids,
                             char *ext, size_t cap)
{
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
    const char *params[3] = {ids, ext, bench_desc};
    PGresult *r = PQexecParams(
        c,
        "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[]) AS r(id, ext)), "
        "ins AS (INSERT INTO incident (" RAW_INCIDENT_COLUMNS ") SELECT id, 'raw', ext, "
        "'" CATEGORY "', 'normal', 'QUEUED', 1, '" GRID "', '" GRID "', 'grid', '" GRID "', $3, "
        "'张三', '13800000000', now(), now(), now() + interval '1 day', "
        "now() + interval '3 days', now() + interval '19.2 hours', "
        "now() + interval '57.6 hours', 'given' FROM r RETURNING id, sign_due, resolve_due) "
        "INSERT INTO incident_event (" RAW_EVENT_COLUMNS ") SELECT id, 1, now(), 'receive', "
        "'QUEUED', '" GRID "', '" GRID "', 'grid', sign_due, resolve_due, '" GRID "', 'given' "
        "FROM ins",
        3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(PQresultErrorMessage(r));
    PQclear(r);
}

/* Sends `len` bytes of COPY data for `sql` and ends the COPY. */
static void copy_in(PGconn *c, const char *sql, const char *data, size_t len)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        die(PQresultErrorMessage(r));
    PQclear(r);
    if (PQputCopyData(c, data, (int)len) != 1 || PQputCopyEnd(c, NULL) != 1)
        die(PQerrorMessage(c));
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        die(PQresultErrorMessage(r));
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
}

/* `t` as timestamptz text, UTC. */
static void utc_text(char *buf, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%d %H:%M:%S+00", &tm);
}

static void raw_copy_batch(PGconn *c, const struct raw_job *j, int done, int n, struct gd_buf *inc,
                           struct gd_buf *ev)
{
    /* times as the unnest form makes them: now, and the deadlines after it */
    time_t now = time(NULL);
    char at[32], sign[32], resolve[32], sign_warn[32], resolve_warn[32];
    utc_text(at, sizeof(at), now);
    utc_text(sign, sizeof(sign), now + 86400);
    utc_text(resolve, sizeof(resolve), now + 3 * 86400);
    utc_text(sign_warn, sizeof(sign_warn), now + 69120);
    utc_text(resolve_warn, sizeof(resolve_warn), now + 207360);
    gd_buf_reset(inc);
    gd_buf_reset(ev);
    for (int k = 0; k < n; k++) {
        long long id = (long long)j->id * 100000000LL + done + k + 1;
        char line[2048];
        int len = snprintf(line, sizeof(line),
                           "%lld\traw\traw-%lld\t" CATEGORY "\tnormal\tQUEUED\t1\t" GRID "\t" GRID
                           "\tgrid\t" GRID "\t%s\t张三\t13800000000\t%s\t%s\t%s\t%s"
                           "\t%s\t%s\tgiven\n",
                           id, id, bench_desc, at, at, sign, resolve, sign_warn, resolve_warn);
        if (len < 0 || (size_t)len >= sizeof(line) || gd_buf_append(inc, line, (size_t)len) < 0)
            die("raw COPY row too long");
        len = snprintf(line, sizeof(line),
                       "%lld\t1\t%s\treceive\tQUEUED\t" GRID "\t" GRID "\tgrid\t%s\t%s\t" GRID
                       "\tgiven\n",
                       id, at, sign, resolve);
        if (len < 0 || (size_t)len >= sizeof(line) || gd_buf_append(ev, line, (size_t)len) < 0)
            die("raw COPY row too long");
    }
    exec_ok(c, "BEGIN");
    copy_in(c, "COPY incident (" RAW_INCIDENT_COLUMNS ") FROM STDIN", inc->data, inc->len);
    copy_in(c, "COPY incident_event (" RAW_EVENT_COLUMNS ") FROM STDIN", ev->data, ev->len);
    exec_ok(c, "COMMIT");
}

static void *raw_worker(void *arg)
{
    struct raw_job *j = arg;
    PGconn *c = PQconnectdb(j->dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    long long t0 = proc_ticks(PQbackendPID(c));
    size_t cap = (size_t)j->batch * 48 + 64;
    char *ids = malloc(cap), *ext = malloc(cap);
    struct gd_buf inc = {0}, ev = {0};
    if (!ids || !ext)
        die("out of memory");
    for (int done = 0; done < j->rows; done += j->batch) {
        int n = j->rows - done < j->batch ? j->rows - done : j->batch;
        if (j->copy)
            raw_copy_batch(c, j, done, n, &inc, &ev);
        else
            raw_unnest_batch(c, j, done, n, ids, ext, cap);
    }
    long long t1 = proc_ticks(PQbackendPID(c));
    j->ticks = t0 < 0 || t1 < 0 ? -1 : t1 - t0;
    gd_buf_fini(&inc);
    gd_buf_fini(&ev);
    free(ids);
    free(ext);
    PQfinish(c);
    return NULL;
}

/* Returns rows/s; *ret_cpu_us is the CPU time of the backends per row
 * (µs; -1 when PostgreSQL runs where /proc does not show it). */
static double bench_raw(const char *dsn, int total, int clients, int batch, bool copy,
                        double *ret_cpu_us)
{
    pthread_t t[64];
    struct raw_job jobs[64];
    double t0 = now_s();
    for (int i = 0; i < clients; i++) {
        jobs[i] = (struct raw_job){dsn, i + 1, total / clients, batch, copy, 0};
        pthread_create(&t[i], NULL, raw_worker, &jobs[i]);
    }
    long long ticks = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(t[i], NULL);
        ticks = ticks < 0 || jobs[i].ticks < 0 ? -1 : ticks + jobs[i].ticks;
    }
    int rows = total / clients * clients;
    *ret_cpu_us = ticks < 0 ? -1 : (double)ticks * 1e6 / (double)sysconf(_SC_CLK_TCK) / rows;
    return (double)rows / (now_s() - t0);
}

/* The latency of one durable row at a fixed rate, straight to PostgreSQL
 * (a plain libpq client, one INSERT of the incident and its event per
 * transaction): the floor under SUBMIT -> ACCEPTED. rate*seconds rows,
 * numbered from `first`; each commit's own time goes to commit[*n], and
 * the time from when the row was due (its place in the schedule) to its
 * commit to due[*n]: a SUBMIT is timed from when it is sent on its
 * schedule, so a slow commit delays every one due while it lasts, where a
 * client that waits for each commit before the next counts it once. */
struct raw_lat_job {
    const char *dsn;
    int rate, seconds, first;
    double *commit, *due;
    int n;
};

static void *raw_latency(void *arg)
{
    struct raw_lat_job *j = arg;
    PGconn *c = PQconnectdb(j->dsn);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    int total = j->rate * j->seconds;
    double t0 = now_s();
    for (int i = 0; i < total; i++) {
        double due = t0 + (double)i / j->rate, now = now_s();
        if (due > now) {
            struct timespec ts = {0, (long)((due - now) * 1e9)};
            nanosleep(&ts, NULL);
        }
        char id[32], ext[48];
        snprintf(id, sizeof(id), "%d", 900000000 + j->first + i);
        snprintf(ext, sizeof(ext), "rawlat-%d", j->first + i);
        const char *params[3] = {id, ext, bench_desc};
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
        double end = now_s();
        j->due[j->n] = end - due;
        j->commit[j->n++] = end - s0;
    }
    PQfinish(c);
    return NULL;
}

/* p50, p99 and max of v[0..n) in ms, sorting v. */
static void percentiles(double *v, int n, double ret[3])
{
    qsort(v, (size_t)n, sizeof(double), cmp_double);
    ret[0] = v[(n - 1) / 2] * 1e3;
    ret[1] = v[(n - 1) * 99 / 100] * 1e3;
    ret[2] = v[n - 1] * 1e3;
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
    s->description = gd_str_c(bench_desc);
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

/* Makes bench_desc such that an encoded SUBMIT is `size` bytes (header
 * frame not counted), as near as a description can make it: DESC repeated
 * or cut at a character boundary, then ASCII dots. */
static void size_submits(int size)
{
    size_t cap = (size_t)size + 1, len = 0;
    char *d = calloc(cap, 1);
    struct gd_buf buf = {0};
    struct gd_msg m;
    char ext[64];
    if (!d)
        die("out of memory");
    for (;;) {
        bench_desc = d;
        make_submit(&m, ext, sizeof(ext), "c1", 0, GRID);
        gd_buf_reset(&buf);
        if (gd_encode(&m, &buf) < 0)
            die("encode failed");
        if (buf.len >= (size_t)size || len + 1 >= cap)
            break;
        /* grow by one character: the next one of DESC while it fits, else a dot */
        size_t room = (size_t)size - buf.len, k = len % (sizeof(DESC) - 1), clen = 1;
        while (k + clen < sizeof(DESC) - 1 && ((unsigned char)DESC[k + clen] & 0xc0) == 0x80)
            clen++;
        if (clen > room || len + clen >= cap || ((unsigned char)DESC[k] & 0xc0) == 0x80)
            d[len++] = '.';
        else {
            memcpy(d + len, DESC + k, clen);
            len += clen;
        }
    }
    printf("submit    %zu bytes encoded (GD_BENCH_SIZE %d)\n", buf.len, size);
    gd_buf_fini(&buf);
}

struct intake_job {
    void *zctx;
    const char *endpoint;
    int id;
    int count;
    int window;
    int busy;
};

/* Sends the SUBMITs numbered nums[0..n) as one SUBMITS. */
static void send_submits(void *s, struct gd_submit *items, char (*ext)[64], const char *prefix,
                         const uint64_t *nums, int n, struct gd_buf *buf)
{
    struct gd_msg one, m = {.type = GD_T_SUBMITS};
    for (int i = 0; i < n; i++) {
        make_submit(&one, ext[i], sizeof(ext[i]), prefix, nums[i], GRID);
        items[i] = one.u.submit;
    }
    m.u.submits = (struct gd_submits){.n_items = (uint32_t)n, .items = items};
    send_msg(s, &m, buf);
}

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
    int batch = bench_batch > GD_MAX_SUBMITS ? GD_MAX_SUBMITS : bench_batch;
    struct gd_submit *items = batch ? calloc((size_t)batch, sizeof(*items)) : NULL;
    char(*exts)[64] = batch ? calloc((size_t)batch, sizeof(*exts)) : NULL;
    uint64_t *nums = batch ? calloc((size_t)batch, sizeof(*nums)) : NULL;
    if (batch && (!items || !exts || !nums))
        die("out of memory");
    int sent = 0, accepted = 0;
    zmq_msg_t h, b;
    zmq_msg_init(&h);
    zmq_msg_init(&b);
    while (accepted < j->count) {
        while (sent < j->count && sent - accepted < j->window) {
            if (batch) {
                int n = 0;
                while (n < batch && sent < j->count && sent - accepted < j->window)
                    nums[n++] = (uint64_t)sent++;
                send_submits(s, items, exts, prefix, nums, n, &buf);
            } else {
                make_submit(&m, ext, sizeof(ext), prefix, (uint64_t)sent++, GRID);
                send_msg(s, &m, &buf);
            }
        }
        if (!recv_msg(s, d, &h, &b, &m))
            die("intake: no answer within 30 s");
        if (m.type == GD_T_ACCEPTED) {
            accepted++;
        } else if (m.type == GD_T_SUBMITTED) {
            int again = 0;
            for (uint32_t i = 0; i < m.u.submitted.n_results; i++) {
                const struct gd_submit_result *r = &m.u.submitted.results[i];
                if (r->code == GD_OK)
                    accepted++;
                else if (r->code == GD_E_BUSY)
                    nums[again++] = r->ref; /* resent below: idempotent */
                else
                    die("intake: an item was refused");
            }
            if (again) {
                j->busy += again;
                struct timespec ts = {0, 1000000};
                nanosleep(&ts, NULL);
                send_submits(s, items, exts, prefix, nums, again, &buf);
            }
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
    free(items);
    free(exts);
    free(nums);
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

/* The CPU of process i of probe p since cpu_start, in µs per SUBMIT; -1 if gone. */
static double probe_us(const struct cpu_probe *p, int i, int submits)
{
    long long t = proc_ticks(p->pid[i]);
    if (t < 0 || p->t0[i] < 0)
        return -1;
    return (double)(t - p->t0[i]) * 1e6 / (double)sysconf(_SC_CLK_TCK) / submits;
}

/* Starts counting the CPU of the broker's PostgreSQL backends (found by
 * their application_name); none found: p->n is 0. */
static void backends_start(struct cpu_probe *p, const char *dsn)
{
    p->n = 0;
    PGconn *c = PQconnectdb(dsn);
    PGresult *r = PQstatus(c) == CONNECTION_OK
                      ? PQexec(c, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                  "'gd-broker' AND datname = current_database()")
                      : NULL;
    for (int i = 0;
         r && PQresultStatus(r) == PGRES_TUPLES_OK && i < PQntuples(r) && p->n < MAX_PIDS; i++)
        p->pid[p->n++] = strtol(PQgetvalue(r, i, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    for (int i = 0; i < p->n; i++)
        p->t0[i] = proc_ticks(p->pid[i]);
}

/* Their CPU since backends_start in µs per SUBMIT; -1 when unknown. */
static double backends_us(const struct cpu_probe *p, int submits)
{
    double sum = 0;
    for (int i = 0; i < p->n; i++) {
        double us = probe_us(p, i, submits);
        if (us < 0)
            return -1;
        sum += us;
    }
    return p->n ? sum : -1;
}

/* ---- 3. SUBMIT -> DELIVER latency at a fixed rate ---- */

/* Returns the p99 of SUBMIT -> ACCEPTED in seconds (0 when nothing was accepted). */
static double bench_latency(void *zctx, const char *intake_ep, const char *work_ep, int rate,
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
        /* wait for the next SUBMIT's time rounded up to a whole ms (what
         * zmq_poll takes): rounded down, every wait under 1 ms would be a
         * poll that returns at once, and the loop would spin a core that
         * the broker and PostgreSQL need */
        double next = t0 + (double)(n_sent) / rate;
        long wait_ms = n_sent < total ? (long)ceil((next - now_s()) * 1000) : 100;
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
    const char *trace = getenv("GD_BENCH_LATENCY_TRACE");
    FILE *tf = trace && *trace ? fopen(trace, "w") : NULL;
    if (tf) {
        struct timespec wall;
        clock_gettime(CLOCK_REALTIME, &wall);
        fprintf(tf, "# began at CLOCK_MONOTONIC %.6f s, %.6f s since the epoch\n", t0,
                (double)wall.tv_sec + (double)wall.tv_nsec * 1e-9 - (now_s() - t0));
    }
    for (int i = 0; tf && i < n_sent; i++)
        fprintf(tf, "%.3f %.3f %.3f\n", (sent_at[i] - t0) * 1e3, acc[i] * 1e3, lat[i] * 1e3);
    if (tf)
        fclose(tf);
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
    double p99 = na ? v[(na - 1) * 99 / 100] : 0;
    if (na)
        printf("latency   SUBMIT->ACCEPTED (durable) p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
               v[(na - 1) / 2] * 1e3, p99 * 1e3, v[na - 1] * 1e3);
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
    return p99;
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
    const char *batch = getenv("GD_BENCH_BATCH");
    if (batch && atoi(batch) > 0) {
        bench_batch = atoi(batch);
        printf("batch     %d SUBMITs per SUBMITS message\n", bench_batch);
    }
    const char *size = getenv("GD_BENCH_SIZE");
    if (size && atoi(size) > 0)
        size_submits(atoi(size));
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
    double raw = 0, raw_cpu = -1, multi_cpu, copy_cpu;
    if (!intake_only) {
        /* the baseline is the better of the two ways, each run once */
        empty_tables(dsn);
        double multi = bench_raw(dsn, total, clients, window, false, &multi_cpu);
        empty_tables(dsn);
        double copy = bench_raw(dsn, total, clients, window, true, &copy_cpu);
        raw = multi > copy ? multi : copy;
        raw_cpu = multi > copy ? multi_cpu : copy_cpu;
        printf("raw       %d rows (incident + event), %d connections, %d rows/transaction: "
               "%.0f rows/s (unnest %.0f, COPY %.0f)\n",
               total, clients, window, raw, multi, copy);
        if (raw_cpu > 0)
            printf("cpu       raw: PostgreSQL %.1f µs per row (unnest %.1f, COPY %.1f)\n", raw_cpu,
                   multi_cpu, copy_cpu);
        empty_tables(dsn);
    }

    void *zctx = zmq_ctx_new();
    int busy = 0;
    struct cpu_probe cpu, backends;
    cpu_start(&cpu);
    backends_start(&backends, dsn);
    double intake = bench_intake(zctx, argv[2], total, clients, window, &busy);
    printf("intake    %d SUBMITs, %d clients, %d in flight each: %.0f accepted/s "
           "(%d BUSY answers)\n",
           total, clients, window, intake, busy);
    cpu_report(&cpu, total / clients * clients);
    double backends_cpu = backends_us(&backends, total / clients * clients);
    if (intake_only) {
        zmq_ctx_term(zctx);
        return 0;
    }
    printf("ratio     broker / raw = %.2f\n", intake / raw);
    if (raw_cpu > 0 && backends_cpu > 0 && cpu.n > 0) {
        /* on a busy shared machine, steadier than the rates: what the two
         * ways cost per row where they run, all cores counted */
        double broker_cpu = probe_us(&cpu, 0, total / clients * clients);
        printf("cpu       intake: PostgreSQL %.1f µs, gd-broker %.1f µs per SUBMIT\n", backends_cpu,
               broker_cpu);
        printf("ratio     CPU per row: raw / (broker + its PostgreSQL) = %.2f\n",
               raw_cpu / (backends_cpu + broker_cpu));
    }
    /* The floor, twice: alone, in two halves before and after the
     * broker's phase, and beside it, at the same rate during the same
     * seconds, so that a slow spell of the shared disk or CPUs falls on
     * both alike. */
    int half = seconds > 1 ? seconds / 2 : 1;
    size_t cap = (size_t)rate * (size_t)(2 * half > seconds ? 2 * half : seconds);
    struct raw_lat_job alone = {dsn, rate, half, 0, calloc(cap, sizeof(double)),
                                calloc(cap, sizeof(double)), 0};
    struct raw_lat_job beside = {dsn, rate, seconds, 2 * rate * half, calloc(cap, sizeof(double)),
                                 calloc(cap, sizeof(double)), 0};
    if (!alone.commit || !beside.commit || !alone.due || !beside.due)
        die("out of memory");
    raw_latency(&alone);
    pthread_t bt;
    pthread_create(&bt, NULL, raw_latency, &beside);
    double p99 = bench_latency(zctx, argv[2], argv[3], rate, seconds);
    pthread_join(bt, NULL);
    alone.first = rate * half;
    raw_latency(&alone);
    double a[3], b[3], ad[3], bd[3];
    percentiles(alone.commit, alone.n, a);
    percentiles(beside.commit, beside.n, b);
    percentiles(alone.due, alone.n, ad);
    percentiles(beside.due, beside.n, bd);
    printf("raw-lat   one row per transaction at %d/s, %d s before and %d s after: commit "
           "p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
           rate, half, half, a[0], a[1], a[2]);
    printf("raw-lat   the same beside the latency phase (%d rows): commit p50 %.2f ms, p99 %.2f "
           "ms, max %.2f ms\n",
           beside.n, b[0], b[1], b[2]);
    if (p99 > 0)
        printf("ratio     SUBMIT->ACCEPTED p99 / one-row commit p99 = %.1f (alone), %.1f "
               "(beside)\n",
               p99 * 1e3 / a[1], p99 * 1e3 / b[1]);
    printf("raw-lat   from when each row was due to its commit: p50 %.2f ms, p99 %.2f ms, max "
           "%.2f ms alone; p50 %.2f ms, p99 %.2f ms, max %.2f ms beside\n",
           ad[0], ad[1], ad[2], bd[0], bd[1], bd[2]);
    if (p99 > 0)
        printf("ratio     SUBMIT->ACCEPTED p99 / one-row due-to-commit p99 = %.1f (alone), %.1f "
               "(beside)\n",
               p99 * 1e3 / ad[1], p99 * 1e3 / bd[1]);
    free(alone.commit);
    free(beside.commit);
    free(alone.due);
    free(beside.due);
    zmq_ctx_term(zctx);
    return 0;
}
