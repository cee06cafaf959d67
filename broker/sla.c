/* sla.c - the deadline stream to SLA-timer workers, and WARN/ESCALATE from them. */
#include "sla.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <time.h>

#include "deadline.h"
#include "lifecycle.h"
#include "log.h"
#include "route.h"
#include "status.h"

#define SYNC_CHUNK 2000      /* DEADLINEs sent per timer tick during a sync */
#define SLA_TICK_MS 10

/* ---- who serves what ---- */

static struct unit *town_of(const struct incident *inc)
{
    return inc->location ? inc->location->town : NULL;
}

static struct session *session_for(const struct broker *b, const struct incident *inc)
{
    struct unit *town = town_of(inc);
    if (town)
        return town->sla ? town->sla : b->sla_all;
    return b->sla_no_town ? b->sla_no_town : b->sla_all;
}

static bool serves(const struct broker *b, const struct session *s, const struct incident *inc)
{
    return session_for(b, inc) == s;
}

/* ---- the stream ---- */

static int send_deadline(struct broker *b, struct session *s, const struct incident *inc,
                         enum gd_deadline_kind kind, uint32_t version, int64_t due, int64_t warn)
{
    struct unit *town = town_of(inc);
    struct gd_msg m = {.type = GD_T_DEADLINE};
    m.u.deadline = (struct gd_deadline){
        .incident_id = inc->id,
        .version = version,
        .kind = kind,
        .town = gd_str_c(town ? town->code : ""),
        .level = inc->level,
        .warn_at = inc->warned & (1u << kind) ? 0 : warn,
        .due_at = due,
    };
    return b->fx.send(b->fx.ctx, s, &m);
}

static int send_clear(struct broker *b, struct session *s, const struct incident *inc,
                      enum gd_deadline_kind kind, uint32_t version)
{
    struct gd_msg m = {.type = GD_T_CLEAR};
    m.u.clear = (struct gd_clear){.incident_id = inc->id, .version = version, .kind = kind};
    return b->fx.send(b->fx.ctx, s, &m);
}

void sla_committed(struct broker *b, struct incident *inc, const struct store_change *c)
{
    struct session *s = session_for(b, inc);
    for (int k = 0; k < GD_DL_COUNT; k++) {
        enum gd_deadline_kind kind = (enum gd_deadline_kind)k;
        int64_t due = kind == GD_DL_SIGN ? c->sign_due : c->resolve_due;
        int64_t warn = kind == GD_DL_SIGN ? c->sign_warn : c->resolve_warn;
        int rc = 0;
        if (deadline_applies(kind, c->to, c->flagged, due)) {
            inc->announced |= (uint8_t)(1u << k);
            if (s)
                rc = send_deadline(b, s, inc, kind, c->version, due, warn);
        } else if (inc->announced & (1u << k)) {
            inc->announced &= (uint8_t) ~(1u << k);
            if (s)
                rc = send_clear(b, s, inc, kind, c->version);
        }
        if (rc < 0) {
            /* a timer worker that cannot keep up would miss deadlines:
             * drop it; it reconnects and gets the full set again */
            b->fx.session_lost(b->fx.ctx, s, "not reading the deadline stream");
            s = NULL;
        }
    }
    if (c->event == GD_EV_WARN || c->event == GD_EV_ESCALATE || c->event == GD_EV_FLAG) {
        if (c->deadline_kind < 0)
            return; /* an escalation for repeated failed deliveries */
        enum gd_deadline_kind kind = (enum gd_deadline_kind)c->deadline_kind;
        status_sla(b, inc, c->event != GD_EV_WARN, kind, c->deadline_due, c->version,
                   c->owner_level, c->from_queue ? c->from_queue : c->queue);
        if (c->event == GD_EV_FLAG) {
            char msg[192];
            snprintf(msg, sizeof(msg),
                     "incident %llu is overdue at the top level (%s deadline) and is flagged "
                     "(挂账)",
                     (unsigned long long)inc->id, gd_deadline_kind_name(kind));
            status_alarm(b, "flagged", "critical", inc->id, c->queue, msg);
        }
    }
}

/* ---- sessions ---- */

int sla_hello(struct broker *b, struct session *s, const struct gd_hello *h, char *msg,
              size_t msglen)
{
    if (h->n_shard == 0) {
        bool taken = b->sla_all || b->sla_no_town;
        for (struct unit *u = b->org.units; u && !taken; u = u->hh.next)
            taken = u->level == GD_LEVEL_TOWN && u->sla;
        if (taken) {
            snprintf(msg, msglen,
                     "another SLA worker already serves some towns; a worker for all towns "
                     "must be the only one");
            return -GD_E_OVERLAP;
        }
        s->all_towns = true;
        b->sla_all = s;
        return 0;
    }
    if (b->sla_all) {
        snprintf(msg, msglen, "an SLA worker for all towns is connected already");
        return -GD_E_OVERLAP;
    }
    s->towns = calloc(h->n_shard, sizeof(*s->towns));
    if (!s->towns) {
        snprintf(msg, msglen, "out of memory");
        return -GD_E_INTERNAL;
    }
    for (uint32_t i = 0; i < h->n_shard; i++) {
        struct gd_str code = h->shard[i];
        struct unit *u = org_unit(&b->org, code.ptr, code.len);
        if (u && u == b->org.district) {
            if (b->sla_no_town) {
                snprintf(msg, msglen, "incidents without a town are served by another SLA "
                                      "worker already");
                goto refuse_overlap;
            }
            s->no_town = true;
            continue;
        }
        if (!u || u->level != GD_LEVEL_TOWN) {
            snprintf(msg, msglen, "'%.*s' is not a town code (or the district code)",
                     (int)code.len, code.ptr);
            free(s->towns);
            s->towns = NULL;
            s->no_town = false;
            return -GD_E_NOT_FOUND;
        }
        if (u->sla && u->sla != s) {
            snprintf(msg, msglen, "town %s is served by another SLA worker (%s)", u->code,
                     u->sla->name);
            goto refuse_overlap;
        }
        bool dup = false;
        for (uint32_t j = 0; j < s->n_towns; j++)
            dup = dup || s->towns[j] == u;
        if (!dup)
            s->towns[s->n_towns++] = u;
    }
    for (uint32_t i = 0; i < s->n_towns; i++)
        s->towns[i]->sla = s;
    if (s->no_town)
        b->sla_no_town = s;
    return 0;

refuse_overlap:
    free(s->towns);
    s->towns = NULL;
    s->n_towns = 0;
    s->no_town = false;
    return -GD_E_OVERLAP;
}

void sla_session_gone(struct broker *b, struct session *s)
{
    for (uint32_t i = 0; i < s->n_towns; i++)
        if (s->towns[i]->sla == s)
            s->towns[i]->sla = NULL;
    if (b->sla_all == s)
        b->sla_all = NULL;
    if (b->sla_no_town == s)
        b->sla_no_town = NULL;
    free(s->towns);
    s->towns = NULL;
    free(s->sync_ids);
    s->sync_ids = NULL;
}

static void on_sync_tick(uv_timer_t *t);

void sla_start_sync(struct broker *b, struct session *s)
{
    uint32_t n = 0;
    for (struct incident *inc = b->open; inc; inc = inc->onext)
        n += deadline_live(inc) && serves(b, s, inc);
    s->sync_ids = malloc(sizeof(uint64_t) * (n ? n : 1));
    s->sync_len = s->sync_pos = s->sync_sent = 0;
    if (s->sync_ids) {
        for (struct incident *inc = b->open; inc && s->sync_len < n; inc = inc->onext)
            if (deadline_live(inc) && serves(b, s, inc))
                s->sync_ids[s->sync_len++] = inc->id;
    }
    log_info("sla", "session %llu (%s): streaming %u incidents with live deadlines",
             (unsigned long long)s->id, s->name, s->sync_len);
    if (!uv_is_active((uv_handle_t *)&b->sla_sync_timer))
        uv_timer_start(&b->sla_sync_timer, on_sync_tick, 0, SLA_TICK_MS);
}

/* Sends the next part of a session's initial set; SYNCED after the last.
 * Returns false when the session was dropped. */
static bool pump_sync(struct broker *b, struct session *s)
{
    for (int i = 0; i < SYNC_CHUNK && s->sync_pos < s->sync_len; i++) {
        struct incident *inc = incident_by_id(b, s->sync_ids[s->sync_pos]);
        /* An incident with a change still on its way to the database is
         * left out: its version and deadlines in memory are not durable
         * yet, and the commit sends them (sla_committed) with the version
         * that then is. Sent now, the worker would hold that version
         * early, fire on it, be told it is stale (the change is pending),
         * and then drop the commit's DEADLINE as a repeat of one it has:
         * a deadline that never fires again. */
        if (inc && deadline_live(inc) && serves(b, s, inc) && !inc->pending_changes) {
            for (int k = 0; k < GD_DL_COUNT; k++) {
                enum gd_deadline_kind kind = (enum gd_deadline_kind)k;
                int64_t due = kind == GD_DL_SIGN ? inc->sign_due : inc->resolve_due;
                int64_t warn = kind == GD_DL_SIGN ? inc->sign_warn : inc->resolve_warn;
                if (!deadline_applies(kind, inc->state, inc->flagged, due))
                    continue;
                int rc = send_deadline(b, s, inc, kind, inc->version, due, warn);
                if (rc == -EAGAIN)
                    return true; /* its pipe is full: go on at the next tick */
                if (rc < 0) {
                    b->fx.session_lost(b->fx.ctx, s, "gone during the initial deadline stream");
                    return false;
                }
                s->sync_sent++;
            }
        }
        s->sync_pos++;
    }
    if (s->sync_pos < s->sync_len)
        return true;
    struct gd_msg m = {.type = GD_T_SYNCED};
    m.u.synced.count = s->sync_sent;
    if (b->fx.send(b->fx.ctx, s, &m) == -EAGAIN)
        return true;
    s->synced = true;
    free(s->sync_ids);
    s->sync_ids = NULL;
    log_info("sla", "session %llu (%s): initial set sent (%u deadlines)",
             (unsigned long long)s->id, s->name, s->sync_sent);
    return true;
}

/* The towns with live deadlines that no SLA worker serves, as an alarm. */
static void check_unserved(struct broker *b)
{
    uint32_t unserved = 0, towns = 0;
    char list[256] = "";
    size_t len = 0;
    /* the towns' counts are kept as incidents change (tally.c) */
    for (struct unit *t = b->org.units; t; t = t->hh.next) {
        if (t->level != GD_LEVEL_TOWN || !t->live_deadlines || (t->sla ? t->sla : b->sla_all))
            continue;
        unserved += t->live_deadlines;
        towns++;
        if (len + strlen(t->code) + 2 < sizeof(list))
            len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? " " : "",
                                    t->code);
    }
    bool no_town = b->live_deadlines_no_town && !(b->sla_no_town ? b->sla_no_town : b->sla_all);
    if (no_town)
        unserved += b->live_deadlines_no_town;
    if (!unserved)
        return;
    char msg[512];
    snprintf(msg, sizeof(msg),
             "%u open incidents have deadlines that no SLA worker watches (towns: %s%s%s): "
             "start gd-sla for them",
             unserved, towns ? list : "", no_town && towns ? ", " : "",
             no_town ? "incidents without a town" : "");
    status_alarm(b, "no_sla_worker", "critical", 0, NULL, msg);
}

/* Runs while some session has part of its initial set to receive. */
static void on_sync_tick(uv_timer_t *t)
{
    struct broker *b = t->data;
    bool more = false;
    struct session *s, *tmp;
    HASH_ITER(hh, b->sessions, s, tmp) {
        if (s->role == GD_ROLE_SLA && !s->synced && s->sync_ids && pump_sync(b, s))
            more = more || !s->synced;
    }
    if (!more)
        uv_timer_stop(t);
}

static void on_alarm_tick(uv_timer_t *t)
{
    check_unserved(t->data);
}

void sla_open(struct broker *b)
{
    uv_timer_init(b->loop, &b->sla_timer);
    uv_timer_init(b->loop, &b->sla_sync_timer);
    b->sla_timer.data = b->sla_sync_timer.data = b;
    /* the first check waits one period: SLA workers need time to connect */
    uv_timer_start(&b->sla_timer, on_alarm_tick, b->cfg.sla_alarm_ms, b->cfg.sla_alarm_ms);
}

void sla_close(struct broker *b)
{
    uv_timer_stop(&b->sla_timer);
    uv_timer_stop(&b->sla_sync_timer);
    uv_close((uv_handle_t *)&b->sla_timer, NULL);
    uv_close((uv_handle_t *)&b->sla_sync_timer, NULL);
}

/* ---- WARN and ESCALATE ---- */

static void answer_ok(struct broker *b, struct session *s, const struct gd_command *c,
                      const struct incident *inc, bool applied)
{
    struct gd_msg m = {.type = GD_T_OK};
    m.u.ok = (struct gd_ok){.ref = c->ref,
                            .incident_id = c->incident_id,
                            .version = inc ? inc->version : c->version,
                            .applied = applied};
    b->fx.send(b->fx.ctx, s, &m);
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void sla_command(struct broker *b, struct session *s, enum gd_type type,
                 const struct gd_command *c)
{
    struct incident *inc = incident_by_id(b, c->incident_id);
    if (!inc || !inc->durable || inc->doomed) {
        b->counters.sla_stale++;
        answer_ok(b, s, c, NULL, false); /* closed meanwhile: nothing to do */
        return;
    }
    if (!serves(b, s, inc)) {
        struct gd_msg m = {.type = GD_T_ERR};
        m.u.error = (struct gd_error_reply){
            .ref = c->ref,
            .code = GD_E_DENIED,
            .message = GD_STR("this incident is not in your shard"),
            .field = GD_STR("incident_id"),
        };
        b->fx.send(b->fx.ctx, s, &m);
        return;
    }
    enum gd_deadline_kind kind = c->kind;
    int64_t due = kind == GD_DL_SIGN ? inc->sign_due : inc->resolve_due;
    int64_t warn = kind == GD_DL_SIGN ? inc->sign_warn : inc->resolve_warn;
    int64_t now = broker_now(b);
    bool current = c->version == inc->version && !inc->pending_changes &&
                   deadline_applies(kind, inc->state, inc->flagged, due);
    bool is_warn = type == GD_T_WARN;
    if (!current || (is_warn && (!warn || warn > now || inc->warned & (1u << kind))) ||
        (!is_warn && due > now)) {
        /* stale (the incident moved on), early (clocks differ), or a
         * repeat: the broker's own check decides, and nothing happens */
        b->counters.sla_stale++;
        answer_ok(b, s, c, inc, false);
        return;
    }
    char when[32], note[256];
    format_time(due, when, sizeof(when));
    struct waiter *w = waiter_for_session(s->id, c->ref);
    if (!w) {
        answer_ok(b, s, c, inc, false);
        return;
    }
    int rc;
    const char *kname = kind == GD_DL_SIGN ? "sign-for" : "resolve";
    if (is_warn) {
        inc->warned |= (uint8_t)(1u << kind);
        snprintf(note, sizeof(note), "%s deadline %s approaching", kname, when);
        rc = lifecycle_apply_sla(b, inc, GD_EV_WARN, inc->state, NULL, s->name, note, w, kind,
                                 due);
        b->counters.warned++;
    } else {
        struct route up;
        int top = route_parent(b, inc, &up);
        if (top < 0) {
            free(w);
            answer_ok(b, s, c, inc, false);
            return;
        }
        if (top == 1) {
            inc->flagged = true;
            snprintf(note, sizeof(note), "%s deadline %s passed at the top level: flagged",
                     kname, when);
            rc = lifecycle_apply_sla(b, inc, GD_EV_FLAG, inc->state, NULL, s->name, note, w,
                                     kind, due);
            b->counters.flagged++;
        } else {
            snprintf(note, sizeof(note), "%s deadline %s passed at %s; escalated to %s", kname,
                     when, inc->queue->name, up.queue->name);
            inc->escalations++;
            inc->attempts = 0;
            rc = lifecycle_apply_sla(b, inc, GD_EV_ESCALATE, GD_ST_QUEUED, &up, s->name, note,
                                     w, kind, due);
            b->counters.escalated++;
        }
    }
    if (rc < 0) {
        free(w);
        answer_ok(b, s, c, inc, false);
    }
}
