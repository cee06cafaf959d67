/* test-lifecycle.c - specification tests for the incident state machine (broker/lifecycle.h), with no sockets and no database.
 *
 * The broker's clock and effects are the test's own: commits are held
 * until the test lets them finish (as the store would once PostgreSQL
 * has committed), and every answer, kick, publication and alarm is
 * recorded.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "district.h"
#include "lifecycle.h"
#include "tally.h"

#define MAX_SEEN 32

struct seen {
    struct broker b;
    int64_t now;
    struct store_change *pending[MAX_SEEN];
    size_t n_pending;
    struct gd_msg answers[MAX_SEEN]; /* to clients and sessions, in order */
    uint64_t answer_session[MAX_SEEN]; /* 0 for a client */
    size_t n_answers;
    struct queue *kicked[MAX_SEEN];
    size_t n_kicked;
    size_t n_published, n_deadlines;
    enum gd_state published_to;
    char alarm[32];
    struct client client;
};

static int64_t test_now(void *ctx)
{
    return ((struct seen *)ctx)->now;
}

static void fx_commit(void *ctx, struct store_change *c)
{
    struct seen *s = ctx;
    assert_true(s->n_pending < MAX_SEEN);
    s->pending[s->n_pending++] = c;
}

static void record_answer(struct seen *s, uint64_t session_id, const struct gd_msg *m)
{
    assert_true(s->n_answers < MAX_SEEN);
    s->answer_session[s->n_answers] = session_id;
    s->answers[s->n_answers++] = *m;
}

static void fx_answer_client(void *ctx, struct waiter *w, const struct gd_msg *m)
{
    assert_non_null(w->client);
    record_answer(ctx, 0, m);
}

static void fx_answer_session(void *ctx, uint64_t session_id, const struct gd_msg *m)
{
    record_answer(ctx, session_id, m);
}

static void fx_kick(void *ctx, struct queue *q)
{
    struct seen *s = ctx;
    assert_true(s->n_kicked < MAX_SEEN);
    s->kicked[s->n_kicked++] = q;
}

static void fx_publish(void *ctx, const struct incident *inc, const struct store_change *c)
{
    struct seen *s = ctx;
    (void)inc;
    s->n_published++;
    s->published_to = c->to;
}

static void fx_deadlines(void *ctx, struct incident *inc, const struct store_change *c)
{
    (void)inc;
    (void)c;
    ((struct seen *)ctx)->n_deadlines++;
}

static void fx_alarm(void *ctx, const char *kind, const char *severity, uint64_t incident_id,
                     const char *queue, const char *message)
{
    struct seen *s = ctx;
    (void)severity, (void)incident_id, (void)queue, (void)message;
    strncpy(s->alarm, kind, sizeof(s->alarm) - 1);
}

static int setup(void **state)
{
    struct seen *s = calloc(1, sizeof(*s));
    if (!s || district_build(&s->b) < 0)
        return -1;
    s->now = 1700000000000;
    s->b.clock = (struct broker_clock){.now = test_now, .ctx = s};
    s->b.fx = (struct effects){
        .commit = fx_commit,
        .answer_client = fx_answer_client,
        .answer_session = fx_answer_session,
        .kick = fx_kick,
        .publish = fx_publish,
        .deadlines = fx_deadlines,
        .alarm = fx_alarm,
        .ctx = s,
    };
    s->b.cfg.busy_retry_ms = 250;
    s->b.next_id = 1;
    *state = s;
    return 0;
}

static int teardown(void **state)
{
    struct seen *s = *state;
    incident_free_all(&s->b);
    for (size_t i = 0; i < s->n_pending; i++)
        store_change_free(s->pending[i]);
    tally_free(&s->b);
    district_free(&s->b);
    free(s);
    return 0;
}

/* Lets the oldest held change finish with `result`, as the store does. */
static void finish(struct seen *s, enum store_result result)
{
    assert_true(s->n_pending > 0);
    struct store_change *c = s->pending[0];
    memmove(s->pending, s->pending + 1, --s->n_pending * sizeof(s->pending[0]));
    c->done(c->ctx, c, result);
}

static bool kicked(const struct seen *s, const struct queue *q)
{
    for (size_t i = 0; i < s->n_kicked; i++)
        if (s->kicked[i] == q)
            return true;
    return false;
}

/* A road incident at the grid, received now and waiting for its commit;
 * the SUBMIT (ref 7) waits for ACCEPTED. */
static struct incident *receive_road(struct seen *s, const char *external_id)
{
    struct broker *b = &s->b;
    struct gd_submit m = {
        .source = GD_STR("hotline"),
        .external_id = gd_str_c(external_id),
        .category = GD_STR("road"),
        .priority = GD_PRIO_NORMAL,
        .location = {.unit = GD_STR(D_GRID)},
        .description = GD_STR("pothole"),
    };
    struct category *cat = org_category(&b->org, "road", 4);
    struct unit *grid = org_unit(&b->org, D_GRID, strlen(D_GRID));
    struct incident *inc = incident_from_submit(&m, cat, grid, b->next_id++, broker_now(b));
    assert_non_null(inc);
    struct route r;
    assert_int_equal(route_resolve(b, cat, grid, &r), 0);
    struct waiter *w = waiter_for_client(&s->client, GD_T_ACCEPTED, 7);
    assert_non_null(w);
    lifecycle_receive(b, inc, &r, NULL, w);
    return inc;
}

static void test_a_submit_is_accepted_and_queued_only_after_its_commit(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a1");
    assert_int_equal(s->n_pending, 1);
    assert_int_equal(s->pending[0]->kind, STORE_NEW);
    assert_int_equal(s->pending[0]->event, GD_EV_RECEIVE);
    assert_int_equal(s->pending[0]->to, GD_ST_QUEUED);
    assert_string_equal(s->pending[0]->queue, D_GRID);
    assert_ptr_equal(incident_by_id(&s->b, inc->id), inc);
    assert_false(inc->queued);
    assert_int_equal(s->n_answers, 0);
    assert_int_equal(s->n_published, 0);

    finish(s, STORE_COMMITTED);
    assert_true(inc->durable);
    assert_true(inc->queued);
    assert_int_equal(inc->queue->depth, 1);
    assert_int_equal(s->n_answers, 1);
    assert_int_equal(s->answers[0].type, GD_T_ACCEPTED);
    assert_int_equal(s->answers[0].u.accepted.ref, 7);
    assert_int_equal(s->answers[0].u.accepted.incident_id, inc->id);
    assert_int_equal(s->answers[0].u.accepted.version, 1);
    assert_int_equal(s->n_published, 1);
    assert_int_equal(s->n_deadlines, 1);
    assert_true(kicked(s, inc->queue));
}

static void test_the_clocks_start_at_receipt_on_the_clock_passed_in(void **state)
{
    struct seen *s = *state;
    int64_t t0 = s->now;
    struct incident *inc = receive_road(s, "a2");
    assert_int_equal(inc->received_at, t0);
    assert_int_equal(inc->sign_due, t0 + 3600 * 1000);
    assert_int_equal(inc->sign_warn, t0 + 3600 * 800);
    assert_int_equal(inc->resolve_due, t0 + 86400 * 1000);
    assert_int_equal(s->pending[0]->at, t0);
    assert_int_equal(s->pending[0]->sign_due, inc->sign_due);
}

static void test_a_worker_command_is_answered_once_durable_with_the_new_version(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a3");
    finish(s, STORE_COMMITTED);
    s->n_answers = 0;

    s->now += 1000;
    assert_int_equal(lifecycle_apply(&s->b, inc, GD_EV_DELIVER, GD_ST_DELIVERED, NULL, false,
                                     "w1", NULL, NULL),
                     0);
    assert_int_equal(inc->state, GD_ST_DELIVERED);
    assert_int_equal(inc->version, 2);
    assert_false(inc->queued);
    assert_int_equal(inc->queue->in_flight, 1);
    struct waiter *w = waiter_for_session(42, 9);
    assert_non_null(w);
    assert_int_equal(lifecycle_apply(&s->b, inc, GD_EV_SIGN, GD_ST_SIGNED, NULL, false, "w1",
                                     NULL, w),
                     0);
    assert_int_equal(inc->version, 3);
    assert_int_equal(s->n_pending, 2);
    finish(s, STORE_COMMITTED);
    assert_int_equal(s->n_answers, 0); /* DELIVER had no waiter */
    finish(s, STORE_COMMITTED);
    assert_int_equal(s->n_answers, 1);
    assert_int_equal(s->answer_session[0], 42);
    assert_int_equal(s->answers[0].type, GD_T_OK);
    assert_int_equal(s->answers[0].u.ok.ref, 9);
    assert_int_equal(s->answers[0].u.ok.version, 3);
    assert_true(s->answers[0].u.ok.applied);
    assert_int_equal(s->published_to, GD_ST_SIGNED);
}

static void test_an_escalation_moves_one_level_up_and_restarts_both_clocks(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a4");
    finish(s, STORE_COMMITTED);
    struct queue *grid_queue = inc->queue;
    s->now += 3600 * 1000;
    s->n_kicked = 0;
    struct route up;
    assert_int_equal(route_parent(&s->b, inc, &up), 0);
    assert_int_equal(lifecycle_apply_sla(&s->b, inc, GD_EV_ESCALATE, GD_ST_QUEUED, &up, "sla",
                                         "sign-for deadline passed", NULL, GD_DL_SIGN,
                                         inc->sign_due),
                     0);
    assert_string_equal(inc->queue->name, D_COMMUNITY);
    assert_int_equal(inc->level, GD_LEVEL_COMMUNITY);
    assert_int_equal(grid_queue->depth, 0);
    assert_int_equal(inc->queue->depth, 1);
    assert_true(kicked(s, inc->queue));
    assert_int_equal(inc->sign_due, s->now + 3600 * 1000);
    assert_int_equal(inc->resolve_due, s->now + 86400 * 1000);
    struct store_change *c = s->pending[0];
    assert_int_equal(c->event, GD_EV_ESCALATE);
    assert_string_equal(c->from_queue, D_GRID);
    assert_string_equal(c->queue, D_COMMUNITY);
    assert_int_equal(c->deadline_kind, GD_DL_SIGN);
}

static void test_a_change_the_database_refuses_is_answered_and_raises_an_alarm(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a5");
    finish(s, STORE_COMMITTED);
    uint64_t id = inc->id;
    s->n_answers = 0;
    struct waiter *w = waiter_for_session(5, 11);
    assert_int_equal(lifecycle_apply(&s->b, inc, GD_EV_RESOLVE, GD_ST_RESOLVED, NULL, false, "w1",
                                     "done", w),
                     0);
    finish(s, STORE_FAILED);
    assert_int_equal(s->n_answers, 1);
    assert_int_equal(s->answers[0].type, GD_T_ERR);
    assert_int_equal(s->answers[0].u.error.code, GD_E_INTERNAL);
    assert_string_equal(s->alarm, "store_refused");
    assert_null(incident_by_id(&s->b, id));
}

static void test_submits_waiting_when_the_database_goes_down_are_answered_busy(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a6");
    lifecycle_db_down(&s->b);
    assert_int_equal(s->n_answers, 1);
    assert_int_equal(s->answers[0].type, GD_T_BUSY);
    assert_int_equal(s->answers[0].u.busy.ref, 7);
    assert_int_equal(s->answers[0].u.busy.retry_ms, 250);
    /* the insert still commits when the database returns; nobody is answered twice */
    finish(s, STORE_COMMITTED);
    assert_true(inc->durable);
    assert_int_equal(s->n_answers, 1);
}

static void test_a_closed_incident_leaves_memory_after_its_commit(void **state)
{
    struct seen *s = *state;
    struct incident *inc = receive_road(s, "a7");
    finish(s, STORE_COMMITTED);
    uint64_t id = inc->id;
    assert_int_equal(lifecycle_apply(&s->b, inc, GD_EV_RESOLVE, GD_ST_RESOLVED, NULL, false, "w1",
                                     NULL, NULL),
                     0);
    assert_int_equal(lifecycle_apply(&s->b, inc, GD_EV_CLOSE, GD_ST_CLOSED, NULL, false, NULL,
                                     NULL, NULL),
                     0);
    finish(s, STORE_COMMITTED);
    assert_ptr_equal(incident_by_id(&s->b, id), inc);
    finish(s, STORE_COMMITTED);
    assert_null(incident_by_id(&s->b, id));
    assert_int_equal(s->published_to, GD_ST_CLOSED);
    assert_int_equal(s->b.n_open, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_submit_is_accepted_and_queued_only_after_its_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_the_clocks_start_at_receipt_on_the_clock_passed_in, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_worker_command_is_answered_once_durable_with_the_new_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_an_escalation_moves_one_level_up_and_restarts_both_clocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_change_the_database_refuses_is_answered_and_raises_an_alarm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_submits_waiting_when_the_database_goes_down_are_answered_busy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_closed_incident_leaves_memory_after_its_commit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
