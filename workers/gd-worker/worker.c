/* worker.c - gd-worker's core: a job per delivery, SIGN, handler run, result command, retries. */
#include "worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "gdworker.h"
#include "incident.h"
#include "run.h"
#include "svcnotify.h"
#include "webhook.h"
#include "wlog.h"

/* Jobs kept at once: in hand (<= credit) plus deliveries waiting for a
 * slot (<= the broker's credit for this session). */
#define MAX_JOBS      (2 * GD_MAX_CREDIT)
#define RETRY_TICK_MS 50
#define RETRY_BASE_MS 200
#define RETRY_MAX_MS  5000

enum phase {
    PH_WAITING,   /* delivered, no slot free yet; unsigned */
    PH_SIGNING,   /* SIGN sent */
    PH_RUNNING,   /* handler running */
    PH_REPORTING, /* RESOLVE/RETURN/PROGRESS sent */
    PH_RETRY,     /* a command failed for a passing reason; sent again at next_try */
};

struct job {
    UT_hash_handle hh;
    struct worker *w;
    uint64_t id;
    uint32_t version;
    uint64_t delivery_id;
    uint32_t attempt;
    uint64_t session; /* session the current delivery came on */
    enum phase phase;
    bool is_signed;
    bool handled; /* the handler has run; `outcome` holds its verdict */
    enum gd_type retry_type;
    uint32_t tries;
    uint64_t next_try;
    uint64_t started;
    char queue[GD_MAX_QUEUE + 1];
    char category[GD_MAX_CODE + 1];
    char *json;
    size_t json_len;
    char *env[INCIDENT_ENV_COUNT];
    struct run *run;
    struct outcome outcome;
    struct job *wait_next; /* FIFO of PH_WAITING jobs */
};

struct worker {
    uv_loop_t *loop;
    const struct config *cfg;
    struct gdw_client *client;
    struct webhook *webhook;
    uv_timer_t retry_timer;
    struct job *jobs; /* by incident id */
    struct job *wait_head, *wait_tail;
    uint32_t n_jobs, in_hand;
    /* Unsigned incidents this session left open on purpose (a failed
     * handler with sign = after): the broker counts them against the
     * credit until their sign-for deadline moves them on, so the credit we
     * ask for is raised by their number. Reset with every new session. */
    uint32_t held;
    uint64_t held_session;
    bool stopping, killing, closing, client_closed, timer_closed;
    int exit_status;
    worker_stopped_cb on_stopped;
    void *data;
};

#define LOG(w, lvl, ...) wlog((w)->cfg->log_level, (lvl), __VA_ARGS__)

static void job_next(struct job *j);
static void maybe_close(struct worker *w);
static void on_retry_tick(uv_timer_t *t);

/* ---- jobs ---- */

static void job_free(struct job *j)
{
    free(j->json);
    incident_env_free(j->env);
    free(j);
}

static void wait_remove(struct worker *w, struct job *j)
{
    struct job **pp = &w->wait_head;
    struct job *prev = NULL;
    while (*pp && *pp != j) {
        prev = *pp;
        pp = &(*pp)->wait_next;
    }
    if (!*pp)
        return;
    *pp = j->wait_next;
    if (w->wait_tail == j)
        w->wait_tail = prev;
    j->wait_next = NULL;
}

/* The credit the broker should give this session. The broker counts a
 * delivery against it until it is signed for, so: the configured credit,
 * less the slots taken by handlers it no longer counts (signed ones, and
 * those still running from an earlier session), plus the unsigned
 * incidents this session left open without a handler (see `held`; they
 * count at the broker until their sign-for deadline moves them on). When
 * the broker frees a held one on its own, it may deliver more than there
 * are free slots: the extra deliveries wait for a slot (start_waiting),
 * so handlers never exceed `credit`. */
static void update_credit(struct worker *w)
{
    if (w->stopping) {
        gdw_set_credit(w->client, 0);
        return;
    }
    uint64_t session = gdw_session(w->client);
    if (session != w->held_session) {
        w->held = 0;
        w->held_session = session;
    }
    uint32_t busy = 0;
    for (struct job *j = w->jobs; j; j = j->hh.next)
        if (j->phase != PH_WAITING && (j->is_signed || j->session != session))
            busy++;
    uint64_t credit = busy < w->cfg->credit ? w->cfg->credit - busy : 0;
    credit += w->held;
    gdw_set_credit(w->client, credit > GD_MAX_CREDIT ? GD_MAX_CREDIT : (uint32_t)credit);
}

/* `j` stays open on the broker without a handler of ours; an unsigned one
 * keeps counting against this session's credit. */
static void hold(struct job *j)
{
    struct worker *w = j->w;
    uint64_t session = gdw_session(w->client);
    if (!j->is_signed && session && j->session == session && w->held_session == session &&
        w->held < GD_MAX_CREDIT)
        w->held++;
}

static void start_waiting(struct worker *w)
{
    while (!w->stopping && w->wait_head && w->in_hand < w->cfg->credit) {
        struct job *j = w->wait_head;
        w->wait_head = j->wait_next;
        if (!w->wait_head)
            w->wait_tail = NULL;
        j->wait_next = NULL;
        w->in_hand++;
        j->phase = PH_SIGNING; /* out of PH_WAITING; job_next() picks the real step */
        j->started = uv_now(w->loop);
        job_next(j);
    }
}

/* Forgets a job without starting others. */
static void job_remove(struct job *j)
{
    struct worker *w = j->w;
    HASH_DEL(w->jobs, j);
    w->n_jobs--;
    if (j->phase == PH_WAITING)
        wait_remove(w, j);
    else
        w->in_hand--;
    job_free(j);
}

/* A job is over: its slot goes to the next waiting delivery. */
static void job_done(struct job *j)
{
    struct worker *w = j->w;
    job_remove(j);
    start_waiting(w);
    update_credit(w);
    maybe_close(w);
}

static bool transient(int status, const struct gdw_result *res)
{
    if (status == GDW_ERR)
        return res->code == GD_E_BUSY || res->code == GD_E_NO_SESSION;
    return status == -ETIMEDOUT || status == -ECONNRESET || status == -ENOTCONN ||
           status == -EAGAIN || status == -ENOBUFS;
}

static void schedule_retry(struct job *j, enum gd_type type)
{
    struct worker *w = j->w;
    uint32_t delay = RETRY_BASE_MS << (j->tries < 5 ? j->tries : 5);
    if (delay > RETRY_MAX_MS)
        delay = RETRY_MAX_MS;
    j->tries++;
    j->phase = PH_RETRY;
    j->retry_type = type;
    j->next_try = uv_now(w->loop) + delay;
    if (!uv_is_active((uv_handle_t *)&w->retry_timer))
        uv_timer_start(&w->retry_timer, on_retry_tick, RETRY_TICK_MS, RETRY_TICK_MS);
}

static const char *status_text(int status, const struct gdw_result *res, char *buf, size_t len)
{
    if (status == GDW_ERR)
        snprintf(buf, len, "ERR %s: %s", gd_code_name(res->code), res->message);
    else
        snprintf(buf, len, "%s", status == -ETIMEDOUT ? "no answer in time" : strerror(-status));
    return buf;
}

/* ---- commands ---- */

static void on_sign_done(struct gdw_client *c, int status, const struct gdw_result *res, void *arg);
static void on_command_done(struct gdw_client *c, int status, const struct gdw_result *res,
                            void *arg);

static int send_sign(struct job *j)
{
    j->phase = PH_SIGNING;
    return gdw_sign(j->w->client, j->id, 0, j->delivery_id, on_sign_done, j);
}

static enum gd_type command_type(enum outcome_action a)
{
    switch (a) {
    case OUTCOME_RESOLVE:
        return GD_T_RESOLVE;
    case OUTCOME_RETURN:
        return GD_T_RETURN;
    default:
        return GD_T_PROGRESS;
    }
}

static int send_command(struct job *j)
{
    struct worker *w = j->w;
    j->phase = PH_REPORTING;
    const char *text = j->outcome.text;
    switch (j->outcome.action) {
    case OUTCOME_RESOLVE:
        return gdw_resolve(w->client, j->id, j->version, text, on_command_done, j);
    case OUTCOME_RETURN:
        return gdw_return(w->client, j->id, j->version,
                          *text ? text : "returned by the town's handler (no reason given)", NULL,
                          on_command_done, j);
    default:
        return gdw_progress(w->client, j->id, j->version, text, on_command_done, j);
    }
}

/* Sends `type` (SIGN or the outcome's command); a passing failure to send
 * is retried like a lost answer. */
static void send_step(struct job *j, enum gd_type type)
{
    int rc = type == GD_T_SIGN ? send_sign(j) : send_command(j);
    if (rc == 0)
        return;
    if (rc == -ENOTCONN || rc == -EAGAIN || rc == -ENOBUFS) {
        schedule_retry(j, type);
        return;
    }
    LOG(j->w, WLOG_ERROR, "%s incident=%llu version=%u: cannot send: %s", gd_type_name(type),
        (unsigned long long)j->id, j->version, strerror(-rc));
    job_done(j);
}

static bool give_up(struct job *j)
{
    /* while stopping, nothing waits for a broker that is not there */
    return j->tries >= j->w->cfg->command_retries || (j->w->stopping && !gdw_ready(j->w->client));
}

static void on_sign_done(struct gdw_client *c, int status, const struct gdw_result *res, void *arg)
{
    (void)c;
    struct job *j = arg;
    struct worker *w = j->w;
    char why[GD_MAX_TEXT + 64];
    if (status == 0) {
        j->version = res->version;
        j->is_signed = true;
        j->tries = 0;
        LOG(w, WLOG_INFO, "signed incident=%llu version=%u queue=%s%s", (unsigned long long)j->id,
            j->version, j->queue, res->applied ? "" : " (already signed)");
        update_credit(w); /* the broker no longer counts it */
        job_next(j);
        return;
    }
    if (transient(status, res) && !give_up(j)) {
        LOG(w, WLOG_WARN, "SIGN incident=%llu: %s; retrying", (unsigned long long)j->id,
            status_text(status, res, why, sizeof(why)));
        schedule_retry(j, GD_T_SIGN);
        return;
    }
    /* not_owner, stale_version, bad_state...: the delivery was taken back
     * (the session was lost and the broker requeued it), or it moved on */
    LOG(w, WLOG_WARN, "SIGN incident=%llu delivery=%llu failed: %s; %s", (unsigned long long)j->id,
        (unsigned long long)j->delivery_id, status_text(status, res, why, sizeof(why)),
        j->handled ? "the handler's result is dropped (the incident went back to its queue)"
                   : "not handled here");
    job_done(j);
}

static void on_command_done(struct gdw_client *c, int status, const struct gdw_result *res,
                            void *arg)
{
    (void)c;
    struct job *j = arg;
    struct worker *w = j->w;
    const char *what = outcome_name(j->outcome.action);
    char why[GD_MAX_TEXT + 64];
    if (status == 0) {
        LOG(w, WLOG_INFO, "%s incident=%llu version=%u ok%s", what, (unsigned long long)j->id,
            res->version, res->applied ? "" : " (already applied)");
        if (j->outcome.action == OUTCOME_PROGRESS)
            hold(j);
        job_done(j);
        return;
    }
    if (transient(status, res) && !give_up(j)) {
        LOG(w, WLOG_WARN, "%s incident=%llu: %s; retrying", what, (unsigned long long)j->id,
            status_text(status, res, why, sizeof(why)));
        schedule_retry(j, command_type(j->outcome.action));
        return;
    }
    if (status == GDW_ERR && res->code == GD_E_STALE_VERSION && j->tries > 0)
        LOG(w, WLOG_WARN,
            "%s incident=%llu: %s (an earlier attempt whose answer was lost may have applied it)",
            what, (unsigned long long)j->id, status_text(status, res, why, sizeof(why)));
    else
        LOG(w, WLOG_ERROR, "%s incident=%llu version=%u failed: %s", what,
            (unsigned long long)j->id, j->version, status_text(status, res, why, sizeof(why)));
    job_done(j);
}

/* The first job whose retry is due now, or NULL; *ret_waiting tells
 * whether any job still waits for a retry. */
static struct job *due_retry(struct worker *w, bool *ret_waiting)
{
    uint64_t now = uv_now(w->loop);
    bool ready = gdw_ready(w->client);
    *ret_waiting = false;
    for (struct job *j = w->jobs; j; j = j->hh.next) {
        if (j->phase != PH_RETRY)
            continue;
        *ret_waiting = true;
        if ((ready && j->next_try <= now) || (w->stopping && !ready))
            return j;
    }
    return NULL;
}

static void on_retry_tick(uv_timer_t *t)
{
    struct worker *w = t->data;
    bool waiting = false;
    /* one job at a time: sending may end other jobs and start new ones */
    for (uint32_t n = 0; n <= MAX_JOBS; n++) {
        struct job *j = due_retry(w, &waiting);
        if (!j)
            break;
        if (!gdw_ready(w->client)) {
            LOG(w, WLOG_WARN, "%s incident=%llu: no broker while stopping; giving up",
                gd_type_name(j->retry_type), (unsigned long long)j->id);
            job_done(j);
            continue;
        }
        send_step(j, j->retry_type);
    }
    if (!waiting && !w->closing)
        uv_timer_stop(t);
}

/* ---- handler runs ---- */

static void on_handled(void *arg, const struct outcome *o)
{
    struct job *j = arg;
    struct worker *w = j->w;
    j->run = NULL;
    j->outcome = *o;
    j->handled = true;
    uint64_t ms = uv_now(w->loop) - j->started;
    enum wlog_level lvl = o->action == OUTCOME_LEAVE ? WLOG_WARN : WLOG_INFO;
    LOG(w, lvl, "handler incident=%llu: %s after %llu ms -> %s", (unsigned long long)j->id,
        o->detail, (unsigned long long)ms, outcome_name(o->action));
    job_next(j);
}

static void run_handler(struct job *j)
{
    struct worker *w = j->w;
    const struct config *cfg = w->cfg;
    j->phase = PH_RUNNING;
    j->started = uv_now(w->loop);
    int rc;
    if (cfg->webhook) {
        rc = webhook_post(w->webhook, j->json, j->json_len, cfg->handler_timeout_ms, on_handled, j);
    } else {
        struct run_params p = {.command = cfg->handler,
                               .input = j->json,
                               .input_len = j->json_len,
                               .env = j->env,
                               .n_env = INCIDENT_ENV_COUNT,
                               .timeout_ms = cfg->handler_timeout_ms,
                               .kill_grace_ms = cfg->kill_grace_ms};
        rc = run_start(w->loop, &p, on_handled, j, &j->run);
        if (rc == 0)
            LOG(w, WLOG_INFO, "handler incident=%llu version=%u started pid=%d",
                (unsigned long long)j->id, j->version, run_pid(j->run));
    }
    if (rc < 0) {
        struct outcome o = {.action = OUTCOME_LEAVE};
        snprintf(o.detail, sizeof(o.detail), "cannot start the handler: %s", strerror(-rc));
        on_handled(j, &o);
    }
}

/* Picks the job's next step from what has happened so far. */
static void job_next(struct job *j)
{
    struct worker *w = j->w;
    bool before = w->cfg->sign == SIGN_BEFORE;
    if (!j->handled) {
        if (before && !j->is_signed)
            send_step(j, GD_T_SIGN);
        else
            run_handler(j);
        return;
    }
    if (j->outcome.action == OUTCOME_LEAVE) {
        if (j->is_signed)
            LOG(w, WLOG_WARN,
                "left incident=%llu version=%u SIGNED: no command; the resolve deadline will "
                "escalate it",
                (unsigned long long)j->id, j->version);
        else
            LOG(w, WLOG_WARN,
                "left incident=%llu version=%u unsigned: no command; the sign-for deadline "
                "will escalate it",
                (unsigned long long)j->id, j->version);
        hold(j);
        job_done(j);
        return;
    }
    if (!j->is_signed)
        send_step(j, GD_T_SIGN);
    else
        send_step(j, command_type(j->outcome.action));
}

/* ---- the broker session ---- */

static int job_fill(struct job *j, const struct gd_deliver *d)
{
    const struct gd_incident *inc = &d->incident;
    size_t len = 0;
    char *json = incident_json(d, &len);
    char *env[INCIDENT_ENV_COUNT] = {0};
    if (!json || incident_env(d, j->w->cfg->name ? j->w->cfg->name : "", env) < 0) {
        free(json);
        return -ENOMEM;
    }
    free(j->json);
    incident_env_free(j->env);
    j->json = json;
    j->json_len = len;
    memcpy(j->env, env, sizeof(env));
    j->version = inc->version;
    j->delivery_id = d->delivery_id;
    j->attempt = d->attempt;
    snprintf(j->queue, sizeof(j->queue), "%.*s", (int)inc->queue.len, inc->queue.ptr);
    snprintf(j->category, sizeof(j->category), "%.*s", (int)inc->category.len, inc->category.ptr);
    return 0;
}

static void on_deliver(struct gdw_client *c, const struct gd_deliver *d, void *data)
{
    struct worker *w = data;
    const struct gd_incident *inc = &d->incident;
    uint64_t session = gdw_session(c);
    struct job *j = NULL;
    HASH_FIND(hh, w->jobs, &inc->id, sizeof(inc->id), j);
    if (j) {
        /* Delivered again while we still hold it: the old delivery was taken
         * back when a session was lost. Sign (or report) with the new one. */
        LOG(w, WLOG_INFO, "redelivered incident=%llu version=%u delivery=%llu attempt=%u while %s",
            (unsigned long long)inc->id, inc->version, (unsigned long long)d->delivery_id,
            d->attempt, j->phase == PH_WAITING ? "waiting" : "in hand");
        if (j->phase == PH_WAITING || !j->handled) {
            if (job_fill(j, d) < 0)
                LOG(w, WLOG_ERROR, "incident=%llu: out of memory", (unsigned long long)inc->id);
        } else {
            j->version = inc->version;
            j->delivery_id = d->delivery_id;
        }
        j->session = session;
        j->is_signed = false;
        update_credit(w);
        return;
    }
    if (w->n_jobs >= MAX_JOBS) {
        LOG(w, WLOG_ERROR, "incident=%llu: more than %d jobs; ignoring the delivery",
            (unsigned long long)inc->id, MAX_JOBS);
        return;
    }
    j = calloc(1, sizeof(*j));
    if (!j || (j->w = w, job_fill(j, d)) < 0) {
        LOG(w, WLOG_ERROR, "incident=%llu: out of memory; ignoring the delivery",
            (unsigned long long)inc->id);
        if (j)
            job_free(j);
        return;
    }
    j->id = inc->id;
    j->session = session;
    j->phase = PH_WAITING;
    HASH_ADD(hh, w->jobs, id, sizeof(j->id), j);
    w->n_jobs++;
    LOG(w, WLOG_INFO,
        "delivered incident=%llu version=%u delivery=%llu attempt=%u queue=%s category=%s "
        "priority=%s",
        (unsigned long long)j->id, j->version, (unsigned long long)j->delivery_id, j->attempt,
        j->queue, j->category[0] ? j->category : "-", gd_priority_name(inc->priority));
    if (w->wait_tail)
        w->wait_tail->wait_next = j;
    else
        w->wait_head = j;
    w->wait_tail = j;
    start_waiting(w);
}

/* Deliveries still waiting when a session ends were taken back by the
 * broker (unsigned): forget them. */
static void drop_waiting(struct worker *w)
{
    while (w->wait_head) {
        struct job *j = w->wait_head;
        LOG(w, WLOG_INFO, "dropped waiting incident=%llu (unsigned; the broker requeues it)",
            (unsigned long long)j->id);
        job_remove(j);
    }
    maybe_close(w);
}

static bool refusal_is_final(enum gd_code code)
{
    return code != GD_E_BUSY && code != GD_E_LIMIT && code != GD_E_INTERNAL;
}

static void on_event(struct gdw_client *c, enum gdw_event ev, const struct gdw_event_info *i,
                     void *data)
{
    (void)c;
    struct worker *w = data;
    switch (ev) {
    case GDW_EV_CONNECTING:
        LOG(w, WLOG_DEBUG, "connecting to %s", i->endpoint);
        if (!w->stopping)
            svcnotify_status("connecting to the broker at %s", i->endpoint);
        break;
    case GDW_EV_READY:
        LOG(w, WLOG_INFO, "session %llu open on %s (heartbeat %u ms, liveness %u)",
            (unsigned long long)i->session, i->endpoint, i->heartbeat_ms, i->liveness);
        if (!w->stopping)
            svcnotify_status("serving %zu queue(s) from the broker at %s (session %llu)",
                             w->cfg->n_queues, i->endpoint, (unsigned long long)i->session);
        update_credit(w);
        break;
    case GDW_EV_LOST:
        LOG(w, WLOG_WARN, "connection to %s lost: %s; retrying in %u ms", i->endpoint, i->reason,
            i->retry_ms);
        if (!w->stopping)
            svcnotify_status("connection to the broker at %s lost (%s); retrying in %u ms",
                             i->endpoint, i->reason, i->retry_ms);
        drop_waiting(w);
        update_credit(w);
        break;
    case GDW_EV_DENIED:
        LOG(w, WLOG_ERROR, "broker %s refused HELLO: %s: %s", i->endpoint, gd_code_name(i->code),
            i->reason);
        if (!w->stopping)
            svcnotify_status("the broker at %s refused HELLO: %s", i->endpoint,
                             gd_code_name(i->code));
        if (refusal_is_final(i->code)) {
            w->exit_status = 1;
            worker_stop(w);
        }
        break;
    case GDW_EV_PROTOCOL:
        LOG(w, WLOG_WARN, "broker %s: %s: %s", i->endpoint, gd_code_name(i->code), i->reason);
        break;
    }
}

/* ---- life cycle ---- */

static void on_timer_closed(uv_handle_t *h)
{
    struct worker *w = h->data;
    w->timer_closed = true;
    if (w->client_closed)
        w->on_stopped(w, w->exit_status, w->data);
}

static void on_client_closed(void *data)
{
    struct worker *w = data;
    w->client_closed = true;
    if (w->timer_closed)
        w->on_stopped(w, w->exit_status, w->data);
}

/* Once stopping and nothing is in hand: BYE and close. */
static void maybe_close(struct worker *w)
{
    if (!w->stopping || w->closing || w->n_jobs > 0)
        return;
    w->closing = true;
    LOG(w, WLOG_INFO, "stopped: saying BYE");
    webhook_close(w->webhook);
    w->webhook = NULL;
    uv_timer_stop(&w->retry_timer);
    uv_close((uv_handle_t *)&w->retry_timer, on_timer_closed);
    gdw_close(w->client, on_client_closed, w);
}

int worker_new(uv_loop_t *loop, const struct config *cfg, worker_stopped_cb on_stopped, void *data,
               struct worker **ret, char *err, size_t errlen)
{
    struct worker *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    w->loop = loop;
    w->cfg = cfg;
    w->on_stopped = on_stopped;
    w->data = data;
    struct gdw_options opt = {
        .endpoints = (const char *const *)cfg->endpoints,
        .n_endpoints = cfg->n_endpoints,
        .queues = (const char *const *)cfg->queues,
        .n_queues = cfg->n_queues,
        .credit = cfg->credit,
        .name = cfg->name,
        .curve_server_key = cfg->curve_server_key,
        .curve_public_key = cfg->curve_public_key,
        .curve_secret_key = cfg->curve_secret_key,
        .hello_timeout_ms = cfg->hello_timeout_ms,
        .request_timeout_ms = cfg->request_timeout_ms,
        .reconnect_min_ms = cfg->reconnect_min_ms,
        .reconnect_max_ms = cfg->reconnect_max_ms,
        .on_deliver = on_deliver,
        .on_event = on_event,
        .data = w,
    };
    int rc = gdw_new(loop, &opt, &w->client);
    if (rc < 0) {
        snprintf(err, errlen, "cannot create the broker client: %s", strerror(-rc));
        goto free_worker;
    }
    if (cfg->webhook) {
        rc = webhook_new(loop, cfg->webhook, &w->webhook);
        if (rc < 0) {
            snprintf(err, errlen, "cannot set up the webhook client: %s", strerror(-rc));
            goto close_client;
        }
    }
    uv_timer_init(loop, &w->retry_timer);
    w->retry_timer.data = w;
    *ret = w;
    return 0;

close_client:
    gdw_close(w->client, NULL, NULL);
free_worker:
    free(w);
    return rc;
}

int worker_start(struct worker *w)
{
    return gdw_start(w->client);
}

void worker_stop(struct worker *w)
{
    if (w->closing)
        return;
    if (w->stopping) {
        if (w->killing)
            return;
        w->killing = true;
        LOG(w, WLOG_WARN, "stopping now: killing running handlers");
        for (struct job *j = w->jobs; j; j = j->hh.next)
            if (j->run)
                run_kill(j->run);
        webhook_close(w->webhook); /* aborted transfers end as leave */
        w->webhook = NULL;
        return;
    }
    w->stopping = true;
    LOG(w, WLOG_INFO, "stopping: no new work; %u incident(s) in hand", w->in_hand);
    update_credit(w);
    drop_waiting(w);
    maybe_close(w);
}

void worker_free(struct worker *w)
{
    if (!w)
        return;
    struct job *j, *tmp;
    HASH_ITER(hh, w->jobs, j, tmp)
    {
        HASH_DEL(w->jobs, j);
        job_free(j);
    }
    free(w);
}
