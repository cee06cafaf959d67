/* lifecycle.c - incidents in memory and their transitions, made durable through the store.
 *
 * A transition changes the incident in memory at once (so the next
 * command sees the new version) and queues a store_change carrying the
 * event and the projection after it. Whoever asked is answered, and the
 * transition is published, only when that change has committed. An
 * incident stays allocated while it has uncommitted changes. */
#include "lifecycle.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "log.h"
#include "queue.h"
#include "tally.h"

/* A store_change plus what to do when it is durable. */
struct lc_change {
    struct store_change c;      /* first: the store frees it as a store_change */
    struct broker *b;
    struct waiter *waiters;
};

/* Takes `inc` out of its worker's hands; the freed credit may take work
 * from any of the worker's queues. */
static void detach(struct broker *b, struct incident *inc)
{
    struct session *s = incident_detach(inc);
    if (!s)
        return;
    for (uint32_t i = 0; i < s->n_queues; i++)
        b->fx.kick(b->fx.ctx, s->queues[i]);
}

static void release(struct incident *inc)
{
    if (inc->doomed && inc->pending_changes == 0)
        incident_free(inc);
}

void incident_drop(struct broker *b, struct incident *inc)
{
    if (inc->doomed)
        return;
    tally_forget(b, inc);
    detach(b, inc);
    if (inc->queue && incident_in_hand(inc->state))
        inc->queue->in_flight--;
    queue_unlink(inc);
    incident_unindex(b, inc);
    inc->doomed = true;
    release(inc);
}

/* Answers one waiter with the outcome of change `c` and frees it. */
static void answer(struct broker *b, struct waiter *w, const struct incident *inc,
                   const struct store_change *c, enum gd_code code)
{
    struct gd_msg m = {0};
    if (code == GD_E_BUSY && w->client) {
        m.type = GD_T_BUSY;
        m.u.busy = (struct gd_busy){.ref = w->ref,
                                    .retry_ms = b->cfg.busy_retry_ms,
                                    .reason = GD_STR("database_down")};
    } else if (code != GD_OK) {
        m.type = w->client ? GD_T_REJECTED : GD_T_ERR;
        m.u.error = (struct gd_error_reply){
            .ref = w->ref,
            .code = code,
            .message = gd_str_c(code == GD_E_INTERNAL
                                    ? "the database refused this change; it was not applied"
                                    : gd_code_message(code)),
        };
    } else if (w->type == GD_T_ACCEPTED) {
        m.type = GD_T_ACCEPTED;
        m.u.accepted = (struct gd_accepted){
            .ref = w->ref,
            .incident_id = inc->id,
            .version = c->version,
            .duplicate = w->duplicate,
            .state = c->to,
            .queue = gd_str_c(c->queue),
        };
    } else if (w->type == GD_T_DONE) {
        m.type = GD_T_DONE;
        m.u.done = (struct gd_done){
            .ref = w->ref,
            .incident_id = inc->id,
            .version = c->version,
            .state = c->to,
            .queue = gd_str_c(c->queue),
        };
    } else {
        m.type = GD_T_OK;
        m.u.ok = (struct gd_ok){
            .ref = w->ref,
            .incident_id = inc->id,
            .version = c->version,
            .applied = w->applied,
        };
    }
    if (w->client)
        b->fx.answer_client(b->fx.ctx, w, &m);
    else
        b->fx.answer_session(b->fx.ctx, w->session_id, &m);
    free(w);
}

static void answer_all(struct broker *b, struct waiter **list, const struct incident *inc,
                       const struct store_change *c, enum gd_code code)
{
    while (*list) {
        struct waiter *w = *list;
        *list = w->next;
        answer(b, w, inc, c, code);
    }
}

/* ---- duplicates found by the database ---- */

struct conflict_lookup {
    struct broker *b;
    struct incident *inc;   /* ours, never stored; dropped after the answer */
    struct waiter *waiters;
};

static void on_conflict_lookup(void *ctx, const PGresult *res)
{
    struct conflict_lookup *cl = ctx;
    struct broker *b = cl->b;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        struct incident shown = {.id = strtoull(PQgetvalue(res, 0, 0), NULL, 10)};
        struct store_change c = {
            .version = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10),
            .to = (enum gd_state)gd_state_parse(gd_str_c(PQgetvalue(res, 0, 2))),
            .queue = PQgetvalue(res, 0, 3),
        };
        for (struct waiter *w = cl->waiters; w; w = w->next)
            w->duplicate = w->duplicate || shown.id != cl->inc->id;
        answer_all(b, &cl->waiters, &shown, &c, GD_OK);
    } else {
        log_error("lifecycle", "lookup of the stored duplicate of incident %llu failed",
                  (unsigned long long)cl->inc->id);
        struct store_change c = {0};
        answer_all(b, &cl->waiters, cl->inc, &c, res ? GD_E_INTERNAL : GD_E_BUSY);
    }
    cl->inc->pending_changes--;
    release(cl->inc);
    free(cl);
}

/* Our insert met an existing (source, external_id) that was not in
 * memory (an incident closed before this broker started): answer with
 * the stored one's id. */
static void lookup_conflict(struct broker *b, struct incident *inc)
{
    struct conflict_lookup *cl = calloc(1, sizeof(*cl));
    struct waiter *waiters = inc->waiters;
    inc->waiters = NULL;
    incident_drop(b, inc);
    if (cl) {
        *cl = (struct conflict_lookup){.b = b, .inc = inc, .waiters = waiters};
        const char *params[2] = {inc->source, inc->external_id};
        inc->pending_changes++;
        if (store_query(b->store,
                        "SELECT id, version, state, queue FROM incident "
                        "WHERE source = $1 AND external_id = $2",
                        2, params, on_conflict_lookup, cl) == 0)
            return;
        inc->pending_changes--;
        free(cl);
    }
    struct store_change c = {0};
    answer_all(b, &waiters, inc, &c, GD_E_BUSY);
    release(inc);
}

/* ---- commit callbacks ---- */

static void on_done(void *ctx, struct store_change *sc, enum store_result result)
{
    struct lc_change *lc = (struct lc_change *)sc;
    struct broker *b = lc->b;
    struct incident *inc = sc->inc;

    if (result == STORE_COMMITTED) {
        if (sc->kind == STORE_NEW) {
            inc->durable = true;
            if (!inc->doomed) {
                queue_push(inc->queue, inc, false, broker_now(b));
                /* the first SUBMIT, and everyone who sent the same
                 * (source, external_id) meanwhile */
                answer_all(b, &inc->waiters, inc, sc, GD_OK);
            }
        } else {
            answer_all(b, &lc->waiters, inc, sc, GD_OK);
        }
        b->fx.publish(b->fx.ctx, inc, sc);
        tally_track(b, inc);
        if (!inc->doomed)
            b->fx.deadlines(b->fx.ctx, inc, sc);
        if (sc->to == GD_ST_CLOSED)
            incident_drop(b, inc);
        if (sc->kind == STORE_NEW && !inc->doomed)
            b->fx.kick(b->fx.ctx, inc->queue);
    } else if (result == STORE_CONFLICT) {
        /* the waiters of the first SUBMIT and of any repeats */
        struct waiter **tail = &inc->waiters;
        while (*tail)
            tail = &(*tail)->next;
        *tail = lc->waiters;
        lc->waiters = NULL;
        lookup_conflict(b, inc);
    } else {
        answer_all(b, &lc->waiters, inc, sc, GD_E_INTERNAL);
        answer_all(b, &inc->waiters, inc, sc, GD_E_INTERNAL);
        char msg[160];
        snprintf(msg, sizeof(msg),
                 "the database refused a change (%s, version %u); the incident was taken out "
                 "of memory and is recovered from the database on restart",
                 gd_event_kind_name(sc->event), sc->version);
        b->fx.alarm(b->fx.ctx, "store_refused", "critical", inc->id, sc->queue, msg);
        incident_drop(b, inc);
    }
    (void)ctx;
    store_change_free(sc);
    inc->pending_changes--;
    release(inc);
}

static struct lc_change *change_new(struct broker *b, struct incident *inc,
                                    enum store_change_kind kind, enum gd_event_kind ev,
                                    enum gd_state from, const char *actor, const char *note,
                                    size_t note_len)
{
    struct lc_change *lc = calloc(1, sizeof(*lc));
    if (!lc)
        return NULL;
    lc->b = b;
    lc->c.kind = kind;
    lc->c.inc = inc;
    lc->c.incident_id = inc->id;
    lc->c.event = ev;
    lc->c.from = from;
    lc->c.at = broker_now(b);
    lc->c.done = on_done;
    lc->c.deadline_kind = -1;
    lc->c.ctx = lc;
    lc->c.actor = strdup(actor ? actor : "");
    lc->c.note = strndup(note ? note : "", note ? note_len : 0);
    if (!lc->c.actor || !lc->c.note) {
        store_change_free(&lc->c);
        return NULL;
    }
    return lc;
}

/* Copies the incident's projection after a transition into its change. */
static void capture(struct lc_change *lc, const struct incident *inc)
{
    lc->c.version = inc->version;
    lc->c.to = inc->state;
    lc->c.queue = inc->queue->name;
    lc->c.owner_unit = inc->owner ? inc->owner->code : "";
    lc->c.owner_level = inc->level;
    lc->c.sign_due = inc->sign_due;
    lc->c.sign_warn = inc->sign_warn;
    lc->c.extension_pending = inc->extension_pending;
    lc->c.resolve_warn = inc->resolve_warn;
    lc->c.resolve_due = inc->resolve_due;
    lc->c.attempts = inc->attempts;
    lc->c.escalations = inc->escalations;
    lc->c.flagged = inc->flagged;
}

void lifecycle_receive(struct broker *b, struct incident *inc, const struct route *r,
                       const char *note, struct waiter *w)
{
    inc->queue = r->queue;
    inc->owner = r->owner;
    inc->level = r->level;
    inc->state = GD_ST_QUEUED;
    inc->version = 1;
    inc->last_event = GD_EV_RECEIVE;
    deadline_start(b, inc, true, true, inc->received_at);
    if (incident_index(b, inc) < 0) {
        /* cannot even find it again: refuse, as if the database had */
        if (w) {
            struct store_change c = {0};
            answer(b, w, inc, &c, GD_E_INTERNAL);
        }
        incident_free(inc);
        return;
    }
    struct lc_change *lc = change_new(b, inc, STORE_NEW, GD_EV_RECEIVE, GD_ST_RECEIVED, inc->source,
                                      note, note ? strlen(note) : 0);
    if (!lc) {
        /* cannot even record it: refuse, as if the database had */
        if (w) {
            struct store_change c = {0};
            answer(b, w, inc, &c, GD_E_INTERNAL);
        }
        incident_drop(b, inc);
        return;
    }
    capture(lc, inc);
    if (w) {
        w->next = inc->waiters;
        inc->waiters = w;
    }
    inc->pending_changes++;
    b->fx.commit(b->fx.ctx, &lc->c);
}

void lifecycle_db_down(struct broker *b)
{
    struct store_change none = {0};
    for (struct incident *inc = b->open; inc; inc = inc->onext)
        if (!inc->durable && inc->waiters)
            answer_all(b, &inc->waiters, inc, &none, GD_E_BUSY);
}

/* Which clocks an event starts: a new owner gets a new sign-for clock; an
 * escalation or a reopening starts both. */
static void restart_clocks(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                           int64_t now)
{
    switch (ev) {
    case GD_EV_RETURN:
    case GD_EV_DISPATCH: deadline_start(b, inc, true, false, now); break;
    case GD_EV_ESCALATE:
    case GD_EV_REOPEN: deadline_start(b, inc, true, true, now); break;
    default: break;
    }
}

static int apply(struct broker *b, struct incident *inc, enum gd_event_kind ev, enum gd_state to,
                 const struct route *move, bool at_head, const char *actor, struct gd_str note,
                 struct waiter *w, int deadline_kind, int64_t deadline_due)
{
    struct lc_change *lc =
        change_new(b, inc, STORE_TRANSITION, ev, inc->state, actor, note.ptr, note.len);
    if (!lc)
        return -ENOMEM;
    lc->c.deadline_kind = deadline_kind;
    lc->c.deadline_due = deadline_due;
    lc->c.from_queue = inc->queue->name;
    int64_t now = lc->c.at;
    struct queue *old_queue = inc->queue;
    bool was_in_hand = incident_in_hand(inc->state);
    bool moving = move && move->queue != inc->queue;

    /* A delivery holds its worker's credit until it is signed for (or
     * leaves the worker before that); signed work stays with the unit. */
    if (inc->session && (moving || to != GD_ST_DELIVERED))
        detach(b, inc);
    if (was_in_hand)
        old_queue->in_flight--;
    if (moving || to == GD_ST_RESOLVED || to == GD_ST_CLOSED)
        old_queue->finished++;
    if (move) {
        queue_unlink(inc);
        inc->queue = move->queue;
        inc->owner = move->owner;
        inc->level = move->level;
    }
    if (to != GD_ST_QUEUED)
        queue_unlink(inc);
    inc->state = to;
    inc->version++;
    inc->last_event = ev;
    if (incident_in_hand(to))
        inc->queue->in_flight++;
    if (to == GD_ST_QUEUED && (moving || !inc->queued)) {
        queue_push(inc->queue, inc, at_head, now);
        b->fx.kick(b->fx.ctx, inc->queue);
    }
    restart_clocks(b, inc, ev, now);
    capture(lc, inc);
    lc->waiters = w;
    inc->pending_changes++;
    log_debug("lifecycle", "incident %llu v%u %s -> %s (%s) on %s", (unsigned long long)inc->id,
              inc->version, gd_state_name(lc->c.from), gd_state_name(to),
              gd_event_kind_name(ev), inc->queue->name);
    b->fx.commit(b->fx.ctx, &lc->c);
    return 0;
}

int lifecycle_apply_str(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                        enum gd_state to, const struct route *move, bool at_head,
                        const char *actor, struct gd_str note, struct waiter *w)
{
    return apply(b, inc, ev, to, move, at_head, actor, note, w, -1, 0);
}

int lifecycle_apply_sla(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                        enum gd_state to, const struct route *move, const char *actor,
                        const char *note, struct waiter *w, enum gd_deadline_kind kind,
                        int64_t due)
{
    return apply(b, inc, ev, to, move, false, actor, gd_str_c(note), w, (int)kind, due);
}

int lifecycle_apply(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                    enum gd_state to, const struct route *move, bool at_head, const char *actor,
                    const char *note, struct waiter *w)
{
    return lifecycle_apply_str(b, inc, ev, to, move, at_head, actor,
                               note ? gd_str_c(note) : GD_STR_NULL, w);
}

/* ---- recovery ---- */

/* Nobody signed for `inc` before the broker stopped: it goes back to the
 * head of its queue (DESIGN §5). */
static void requeue_delivered(void *ctx, struct incident *inc)
{
    lifecycle_apply(ctx, inc, GD_EV_REQUEUE, GD_ST_QUEUED, NULL, true, NULL,
                    "broker restart before sign-for", NULL);
}

int lifecycle_recover(struct broker *b, PGconn *conn, char *err, size_t errlen)
{
    return store_recover(b, conn, requeue_delivered, b, err, errlen);
}
