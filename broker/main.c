/* main.c - gd-broker: wires configuration, store, org tree and endpoints onto one libuv loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "calendar.h"
#include "incident.h"
#include "intake.h"
#include "lifecycle.h"
#include "log.h"
#include "peers.h"
#include "queue.h"
#include "sla.h"
#include "status.h"
#include "tally.h"
#include "work.h"

/* Longest a clean shutdown waits for the last commits. */
#define SHUTDOWN_FLUSH_MS 10000

/* The broker's clock: the system's real-time clock. */
static int64_t wall_clock_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the effects: what the lower layers ask of the endpoints (effects.h) ---- */

static void fx_commit(void *ctx, struct store_change *c)
{
    struct broker *b = ctx;
    store_append(b->store, c);
}

static void fx_answer_client(void *ctx, struct waiter *w, const struct gd_msg *m)
{
    intake_answer(ctx, w, m);
}

static void fx_answer_session(void *ctx, uint64_t session_id, const struct gd_msg *m)
{
    work_answer(ctx, session_id, m);
}

static void fx_kick(void *ctx, struct queue *q)
{
    work_kick(ctx, q);
}

static void fx_publish(void *ctx, const struct incident *inc, const struct store_change *c)
{
    status_transition(ctx, inc, c);
}

static void fx_deadlines(void *ctx, struct incident *inc, const struct store_change *c)
{
    sla_committed(ctx, inc, c);
}

static int fx_send(void *ctx, struct session *s, const struct gd_msg *m)
{
    return work_send(ctx, s, m);
}

static void fx_session_lost(void *ctx, struct session *s, const char *why)
{
    work_session_lost(ctx, s, why);
}

static void fx_alarm(void *ctx, const char *kind, const char *severity, uint64_t incident_id,
                     const char *queue, const char *message)
{
    status_alarm(ctx, kind, severity, incident_id, queue, message);
}

static void on_store_state(void *ctx, bool up)
{
    struct broker *b = ctx;
    if (up) {
        if (!b->ready) {
            /* endpoints bound and the database reachable: serving */
            b->ready = true;
            char intake[256] = "", work[256] = "", status[256] = "";
            zsock_last_endpoint(&b->intake, intake, sizeof(intake));
            zsock_last_endpoint(&b->work, work, sizeof(work));
            zsock_last_endpoint(&b->status, status, sizeof(status));
            log_info("broker", "ready: intake %s work %s status %s", intake, work, status);
            svcnotify_ready("active: serving intake %s, work %s, status %s; %u open incidents",
                         intake, work, status, b->n_open);
        } else {
            svcnotify_status("active: the database is back");
        }
        work_kick_all(b);
    } else {
        svcnotify_status("active, but the database is unreachable: new work is answered BUSY");
        lifecycle_db_down(b);
        status_alarm(b, "db_down", "critical", 0, NULL,
                     "the database is unreachable: new work is answered BUSY until it returns");
    }
}

static void finish(struct broker *b)
{
    log_info("broker", "stopping: %u changes not committed",
             b->store ? store_backlog(b->store) : 0);
    sla_close(b);
    work_close(b);
    intake_close(b);
    status_close(b);
    peers_close(b);
    store_close(b->store, NULL, NULL);
    b->store = NULL;
    auth_close(b);
    svcnotify_close(&b->notify);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sighup, NULL);
}

/* Waits until every accepted change is durable (or the database has been
 * away for too long), then closes everything. */
static void on_shutdown_tick(uv_timer_t *t)
{
    struct broker *b = t->data;
    int64_t waited = broker_now(b) - b->stop_started;
    if (store_backlog(b->store) == 0 || waited >= SHUTDOWN_FLUSH_MS) {
        uv_timer_stop(t);
        uv_close((uv_handle_t *)t, NULL);
        finish(b);
        return;
    }
    store_flush(b->store);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct broker *b = h->data;
    if (b->stopping) {
        log_warn("broker", "second signal: exiting without waiting for commits");
        _exit(1);
    }
    log_info("broker", "%s: no new work; committing what is in progress", strsignal(signum));
    svcnotify_stopping("stopping: committing what is in progress");
    b->stopping = true;
    b->stop_started = broker_now(b);
    uv_timer_init(b->loop, &b->shutdown_timer);
    b->shutdown_timer.data = b;
    store_flush(b->store);
    uv_timer_start(&b->shutdown_timer, on_shutdown_tick, 0, 10);
}

/* Reads the grid and micro-grid boundaries and the address table into
 * the locator; what was loaded before stays in force when that fails
 * (`what` says "loaded" or "reloaded"). Returns 0 or -1 (logged). */
static int load_locations(struct broker *b, PGconn *conn, const char *what)
{
    char err[512];
    struct locate_stats st;
    if (locate_load(b->locate, conn, &b->org, err, sizeof(err)) < 0) {
        locate_stats(b->locate, &st);
        log_error("broker",
                  "boundaries and addresses not %s: %s; the %u grid and %u micro-grid "
                  "boundaries and %u addresses in force stay",
                  what, err, st.grids, st.micro_grids, st.addresses);
        return -1;
    }
    locate_stats(b->locate, &st);
    log_info("broker",
             "boundaries and addresses %s: %u grids, %u micro-grids, %llu vertices, %u addresses",
             what, st.grids, st.micro_grids, (unsigned long long)st.vertices, st.addresses);
    if (st.skipped)
        log_warn("broker",
                 "%u boundaries or addresses skipped: unit not in the org tree, or "
                 "an address key longer than %d bytes",
                 st.skipped, LOCATE_MAX_NORM);
    if (st.grids + st.micro_grids == 0)
        log_warn("broker", "no grid boundaries: every SUBMIT with only a position or an address "
                           "goes to triage (outside_grids)");
    return 0;
}

/* SIGHUP: reload what can change without a restart: the org tree and
 * the category catalogue (merged: new units and categories, changed
 * limits; nothing removed), the working calendar, the grid boundaries
 * and the address table (replaced; incidents keep the unit they were
 * located at), and the principals.
 * Blocking reads: a reload is an operator's act, seldom and short. */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    struct broker *b = h->data;
    char err[512];
    bool ok = false;
    svcnotify_reloading("reloading the org tree, calendar, boundaries, addresses and principals");
    PGconn *conn = store_connect_blocking(b->cfg.db_dsn, err, sizeof(err));
    if (!conn) {
        log_error("broker", "reload: no database (%s); the org tree and calendar stay as they "
                            "were", err);
    } else {
        ok = true;
        if (org_reload(&b->org, conn, err, sizeof(err)) < 0) {
            log_error("broker", "reload of the org tree failed: %s", err);
            ok = false;
        } else {
            log_info("broker", "org tree reloaded: %zu units, %zu categories", b->org.n_units,
                     b->org.n_categories);
            tally_rebuild(b); /* a unit may now belong to another town */
        }
        struct calendar *cal = calendar_new(b->cfg.utc_offset_min);
        if (cal && calendar_load(cal, conn, err, sizeof(err)) == 0) {
            calendar_free(b->calendar);
            b->calendar = cal;
            log_info("broker", "working calendar reloaded");
        } else {
            log_error("broker", "reload of the calendar failed: %s", cal ? err : "out of memory");
            calendar_free(cal);
            ok = false;
        }
        if (load_locations(b, conn, "reloaded") < 0)
            ok = false;
        PQfinish(conn);
    }
    if (auth_reload(b, err, sizeof(err)) < 0) {
        log_error("broker", "reload failed, the previous principals stay in force: %s", err);
        ok = false;
    }
    svcnotify_ready("active: %s; %u open incidents",
                 ok ? "reloaded" : "reload failed, see the log; what failed stays as it was",
                 b->n_open);
}

/* Start-up work over a blocking connection: migrations, the org tree and
 * the open incidents. Waits for the database if it is not up yet. */
static void exit_before_start(int signum)
{
    (void)signum;
    _exit(0);
}

/* A blocking connection, retried until the database answers. */
static PGconn *connect_waiting(struct broker *b)
{
    char err[1024];
    for (int tries = 0;; tries++) {
        PGconn *conn = store_connect_blocking(b->cfg.db_dsn, err, sizeof(err));
        if (conn)
            return conn;
        if (tries % 10 == 0) {
            log_warn("broker", "waiting for the database: %s", err);
            svcnotify_status("starting: waiting for the database: %s", err);
        }
        svcnotify_watchdog(&b->notify);
        usleep(b->cfg.db_retry_ms * 1000);
        svcnotify_watchdog(&b->notify);
    }
}

/* Takes the active-broker lock on a connection of its own, waiting while
 * another broker holds it. If the database goes away while we wait (a
 * restart, a failover to another server), the active broker gets
 * --takeover-grace-ms, counted from when the database answers again, to
 * take its lock back before we try: an outage, however long, must not make
 * a standby active beside a live broker. */
static void on_standby(void *ctx)
{
    (void)ctx;
    log_info("broker", "standby: another broker is active; waiting for its lock");
    /* the process is up and doing its job: a standby is a ready service */
    svcnotify_ready("standby: waiting for the active broker's lock");
}

static void on_standby_tick(void *ctx)
{
    struct broker *b = ctx;
    svcnotify_watchdog(&b->notify);
}

static PGconn *become_active(struct broker *b)
{
    char err[1024];
    struct store_wait wait = {
        .standby = on_standby,
        .tick = on_standby_tick,
        .ctx = b,
        .tick_ms = b->notify.interval_ms / 4,
    };
    bool lost_before = false;
    for (;;) {
        PGconn *conn = connect_waiting(b);
        if (lost_before) {
            log_info("broker", "the database answers again; the active broker has %u ms to take "
                               "its lock back", b->cfg.takeover_grace_ms);
            svcnotify_watchdog(&b->notify);
            usleep(b->cfg.takeover_grace_ms * 1000);
            svcnotify_watchdog(&b->notify);
        }
        log_info("broker", "taking the active-broker lock (waits while another broker is active)");
        if (store_fence(conn, &wait, err, sizeof(err)) == 0) {
            svcnotify_status("active: loading the org tree and open incidents");
            return conn;
        }
        bool lost = PQstatus(conn) == CONNECTION_BAD;
        PQfinish(conn);
        if (!lost) {
            log_error("broker", "cannot become the active broker: %s", err);
            return NULL;
        }
        log_warn("broker", "the database went away while waiting for the lock (%s); trying again "
                           "%u ms after it answers again", err, b->cfg.takeover_grace_ms);
        lost_before = true;
    }
}

/* True when two connections reached the same server, as libpq reports it
 * (with a multi-host DSN: the host and port each settled on). */
static bool same_server(PGconn *a, PGconn *b)
{
    const char *ha = PQhost(a), *hb = PQhost(b), *pa = PQport(a), *pb = PQport(b);
    return ha && hb && pa && pb && strcmp(ha, hb) == 0 && strcmp(pa, pb) == 0;
}

/* Store hook, before a new database connection is used: this broker must
 * hold the active-broker lock, on the server that connection reached. The
 * lock lives in one session of one server: a database restart ends it, and
 * a failover (Patroni) leaves it on a server that is gone or is a standby
 * now. Then we take it again on the primary we reach now, before anything
 * is written, unless another broker took it meanwhile: that one is active,
 * and we stop at once. A connection that reached another server than the
 * one holding our lock (two servers both accepting writes) is refused. */
static int still_active(void *ctx, PGconn *conn)
{
    struct broker *b = ctx;
    PGresult *res = PQexec(b->lock_conn, "SELECT pg_is_in_recovery()");
    bool held = PQresultStatus(res) == PGRES_TUPLES_OK && PQgetvalue(res, 0, 0)[0] == 'f';
    PQclear(res);
    if (!held) {
        char err[512];
        PQfinish(b->lock_conn);
        b->lock_conn = store_connect_blocking(b->cfg.db_dsn, err, sizeof(err));
        if (!b->lock_conn)
            return -1; /* the lane that asked will fail too and try again */
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d)", STORE_ACTIVE_LOCK);
        res = PQexec(b->lock_conn, sql);
        bool answered = PQresultStatus(res) == PGRES_TUPLES_OK;
        bool ours = answered && PQgetvalue(res, 0, 0)[0] == 't';
        PQclear(res);
        if (!answered)
            return -1;
        if (!ours) {
            log_error("broker", "another broker took the active-broker lock while the database was "
                                "away: it is active now; stopping without writing anything");
            _exit(3);
        }
        log_info("broker", "the database came back; the active-broker lock is ours again "
                           "(server %s port %s)", PQhost(b->lock_conn), PQport(b->lock_conn));
    }
    if (!same_server(b->lock_conn, conn)) {
        log_warn("broker", "a database connection reached server %s port %s, but the "
                           "active-broker lock is held on server %s port %s: not using it",
                 PQhost(conn), PQport(conn), PQhost(b->lock_conn), PQport(b->lock_conn));
        return -1;
    }
    return 0;
}

/* Start-up work over a blocking connection: migrations, the org tree and
 * the open incidents, once this broker is the active one. */
static int load(struct broker *b)
{
    char err[1024];
    PGconn *conn = become_active(b);
    if (!conn)
        return -1;
    int rc = -1;
    if (b->cfg.migrations_dir && store_migrate(conn, b->cfg.migrations_dir, err, sizeof(err)) < 0) {
        log_error("broker", "migration failed: %s", err);
        goto out;
    }
    if (store_check_schema(conn, err, sizeof(err)) < 0) {
        log_error("broker", "%s", err);
        goto out;
    }
    if (org_load(&b->org, conn, b->cfg.district, err, sizeof(err)) < 0) {
        log_error("broker", "cannot load the org tree: %s", err);
        goto out;
    }
    log_info("broker", "org tree: %zu units, %zu categories", b->org.n_units, b->org.n_categories);
    b->calendar = calendar_new(b->cfg.utc_offset_min);
    if (!b->calendar || calendar_load(b->calendar, conn, err, sizeof(err)) < 0) {
        log_error("broker", "cannot load the working calendar: %s", b->calendar ? err : "out of memory");
        goto out;
    }
    /* a start without boundaries serves too: positions go to triage */
    load_locations(b, conn, "loaded");
    if (lifecycle_recover(b, conn, err, sizeof(err)) < 0) {
        log_error("broker", "cannot load open incidents: %s", err);
        goto out;
    }
    b->lock_conn = conn; /* holds the lock until we exit */
    return 0;
out:
    PQfinish(conn);
    return rc;
}

int main(int argc, char **argv)
{
    static struct broker broker;
    struct broker *b = &broker;
    b->clock = (struct broker_clock){.now = wall_clock_now};
    b->fx = (struct effects){
        .commit = fx_commit,
        .answer_client = fx_answer_client,
        .answer_session = fx_answer_session,
        .kick = fx_kick,
        .publish = fx_publish,
        .deadlines = fx_deadlines,
        .send = fx_send,
        .session_lost = fx_session_lost,
        .alarm = fx_alarm,
        .ctx = b,
    };
    int rc = config_parse(&b->cfg, argc, argv, stderr);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    log_set_level((enum log_level)b->cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    if (peers_reserve_fds(&b->cfg, err, sizeof(err)) < 0) {
        log_error("broker", "%s", err);
        return 2;
    }

    b->loop = uv_default_loop();
    /* WATCHDOG=1 from the loop; waits outside it (the standby's, recovery)
     * feed it themselves */
    if (svcnotify_init(&b->notify) && svcnotify_watch_loop(&b->notify, b->loop) == 0)
        log_info("broker", "systemd watchdog every %llu ms",
                 (unsigned long long)b->notify.interval_ms / 2);
    b->started_at = broker_now(b);
    b->zctx = zmq_ctx_new();
    b->decoder = gd_decoder_new();
    struct locate_limits ll = {.max_vertices = b->cfg.max_boundary_vertices,
                               .max_addresses = b->cfg.max_addresses};
    if (!b->zctx || !b->decoder || locate_new(&b->locate, &ll) < 0) {
        log_error("broker", "out of memory");
        return 1;
    }
    struct store_options so = {
        .dsn = b->cfg.db_dsn,
        .flush_ms = b->cfg.flush_ms,
        .batch_max = b->cfg.batch_max,
        .retry_ms = b->cfg.db_retry_ms,
        .lanes = (int)b->cfg.db_lanes,
        .pipeline = b->cfg.db_pipeline,
        .on_state = on_store_state,
        .verify = still_active,
        .ctx = b,
    };
    if (store_open(&b->store, b->loop, &so) < 0) {
        log_error("broker", "out of memory");
        return 1;
    }
    work_init(b);
    /* Until the loop runs, SIGTERM/SIGINT end a broker that has nothing to
     * flush yet (e.g. a standby waiting for the lock) cleanly. */
    signal(SIGTERM, exit_before_start);
    signal(SIGINT, exit_before_start);
    if (load(b) < 0)
        return 1;

    if (peers_open(b) < 0) {
        log_error("broker", "out of memory");
        return 1;
    }
    /* the ZAP handler first: libzmq lets every peer in while none is bound */
    if (auth_open(b, err, sizeof(err)) < 0 || status_open(b, err, sizeof(err)) < 0 ||
        intake_open(b, err, sizeof(err)) < 0 ||
        work_open(b, err, sizeof(err)) < 0) {
        log_error("broker", "%s", err);
        return 1;
    }
    sla_open(b);
    store_start(b->store);
    uv_signal_init(b->loop, &b->sigterm);
    uv_signal_init(b->loop, &b->sigint);
    b->sigterm.data = b->sigint.data = b;
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_init(b->loop, &b->sighup);
    b->sighup.data = b;
    uv_signal_start(&b->sighup, on_sighup, SIGHUP);

    log_info("broker", "endpoints bound; connecting to the database");
    uv_run(b->loop, UV_RUN_DEFAULT);

    incident_free_all(b);
    intake_free(b);
    tally_free(b);
    queue_free_all(b);
    locate_free(b->locate);
    org_clear(&b->org);
    calendar_free(b->calendar);
    PQfinish(b->lock_conn);
    gd_decoder_free(b->decoder);
    gd_buf_fini(&b->out);
    zmq_ctx_term(b->zctx);
    uv_loop_close(b->loop);
    log_info("broker", "stopped");
    return 0;
}
