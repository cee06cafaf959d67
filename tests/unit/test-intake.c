/* test-intake.c - specification tests for the intake client's endpoint lists and its fail-over
 * (workers/intake/intake.h), against in-process "brokers" on inproc:// endpoints. */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include <cmocka.h>

#include "intake.h"

static void assert_list_refused(const char *list, const char *want)
{
    char err[256] = "";
    assert_int_equal(intake_check_endpoints(list, err, sizeof(err)), -EINVAL);
    if (!strstr(err, want))
        fail_msg("message '%s' for '%s' does not say '%s'", err, list ? list : "(null)", want);
}

static void test_an_endpoint_list_is_commas_with_blanks_around_entries(void **state)
{
    (void)state;
    char err[256];
    assert_int_equal(intake_check_endpoints("tcp://10.0.0.1:7701", err, sizeof(err)), 1);
    assert_int_equal(
        intake_check_endpoints("tcp://10.0.0.1:7701, tcp://10.0.0.2:7701", err, sizeof(err)), 2);
    assert_int_equal(intake_check_endpoints(" ipc:///a ,\tipc:///b , ipc:///c ", err, sizeof(err)),
                     3);
}

static void test_empty_overlong_and_too_many_entries_are_refused(void **state)
{
    (void)state;
    assert_list_refused("", "entry 1 is empty");
    assert_list_refused("tcp://a:1,", "entry 2 is empty");
    assert_list_refused(",tcp://a:1", "entry 1 is empty");
    assert_list_refused("tcp://a:1,  ,tcp://b:1", "entry 2 is empty");
    assert_list_refused(NULL, "no intake endpoint");
    char list[INTAKE_MAX_ENDPOINT_LEN + 32];
    memset(list, 'x', sizeof(list));
    memcpy(list, "ipc://a,ipc://", 14);
    list[8 + INTAKE_MAX_ENDPOINT_LEN + 1] = '\0'; /* entry 2 (from byte 8): one byte too long */
    assert_list_refused(list, "entry 2 is longer than 1024 bytes");
    list[8 + INTAKE_MAX_ENDPOINT_LEN] = '\0'; /* exactly the limit */
    char err[256];
    assert_int_equal(intake_check_endpoints(list, err, sizeof(err)), 2);
    char many[(INTAKE_MAX_ENDPOINTS + 1) * 16] = "";
    for (int i = 0; i <= INTAKE_MAX_ENDPOINTS; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sipc://e%d", i ? "," : "", i);
    assert_list_refused(many, "more than 16 endpoints");
    *strrchr(many, ',') = '\0';
    assert_int_equal(intake_check_endpoints(many, err, sizeof(err)), INTAKE_MAX_ENDPOINTS);
}

static void test_intake_open_refuses_a_bad_list(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    struct intake *c = NULL;
    assert_int_equal(intake_open(zctx, "inproc://a,,inproc://b", &c), -EINVAL);
    assert_null(c);
    intake_close(NULL);
    zmq_ctx_term(zctx);
}

/* A broker on `ep` that answers every SUBMIT ACCEPTED (incident 42, its
 * ref), or, when `silent`, only counts what it got. */
struct fake_broker {
    void *zctx;
    const char *ep;
    bool silent;
    int stop_after; /* messages to take before the thread ends */
    int got;
    char last_external_id[64];
    pthread_t thread;
    void *sock;
};

static void *fake_broker_run(void *arg)
{
    struct fake_broker *b = arg;
    struct gd_decoder *dec = gd_decoder_new();
    struct gd_buf out = {0};
    while (b->got < b->stop_after) {
        zmq_msg_t id, hdr, body;
        zmq_msg_init(&id);
        zmq_msg_init(&hdr);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&id, b->sock, 0) < 0 || zmq_msg_recv(&hdr, b->sock, 0) < 0 ||
            zmq_msg_recv(&body, b->sock, 0) < 0)
            break;
        struct gd_msg m;
        if (gd_decode(dec, zmq_msg_data(&hdr), zmq_msg_size(&hdr), zmq_msg_data(&body),
                      zmq_msg_size(&body), &m, NULL) == 0 &&
            m.type == GD_T_SUBMIT) {
            b->got++;
            snprintf(b->last_external_id, sizeof(b->last_external_id), "%.*s",
                     (int)m.u.submit.external_id.len, m.u.submit.external_id.ptr);
            if (!b->silent) {
                struct gd_msg a = {.type = GD_T_ACCEPTED};
                a.u.accepted = (struct gd_accepted){.ref = m.u.submit.ref,
                                                    .incident_id = 42,
                                                    .version = 1,
                                                    .state = GD_ST_QUEUED,
                                                    .queue = GD_STR("triage")};
                uint8_t h[GD_HEADER_LEN];
                gd_encode_header(GD_T_ACCEPTED, h);
                gd_buf_reset(&out);
                if (gd_encode(&a, &out) == 0) {
                    zmq_send(b->sock, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
                    zmq_send(b->sock, h, sizeof(h), ZMQ_SNDMORE);
                    zmq_send(b->sock, out.data, out.len, 0);
                }
            }
        }
        zmq_msg_close(&id);
        zmq_msg_close(&hdr);
        zmq_msg_close(&body);
    }
    gd_buf_fini(&out);
    gd_decoder_free(dec);
    return NULL;
}

static void fake_broker_start(struct fake_broker *b)
{
    b->sock = zmq_socket(b->zctx, ZMQ_ROUTER);
    assert_non_null(b->sock);
    assert_int_equal(zmq_bind(b->sock, b->ep), 0);
    assert_int_equal(pthread_create(&b->thread, NULL, fake_broker_run, b), 0);
}

static void fake_broker_join(struct fake_broker *b)
{
    pthread_join(b->thread, NULL);
    zmq_close(b->sock);
}

static struct gd_msg submit(const char *external_id)
{
    struct gd_msg m = {.type = GD_T_SUBMIT};
    m.u.submit.source = GD_STR("test");
    m.u.submit.external_id = gd_str_c(external_id);
    m.u.submit.category = GD_STR("LV-0001");
    m.u.submit.priority = GD_PRIO_NORMAL;
    m.u.submit.description = GD_STR("a lamp is out");
    return m;
}

static void test_a_silent_broker_makes_the_call_go_to_the_next_endpoint(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    struct fake_broker standby = {zctx, "inproc://standby", true, 1, 0, "", 0, NULL};
    struct fake_broker active = {zctx, "inproc://active", false, 1, 0, "", 0, NULL};
    fake_broker_start(&standby);
    fake_broker_start(&active);
    struct intake *c = NULL;
    assert_int_equal(intake_open(zctx, "inproc://standby, inproc://active", &c), 0);
    assert_int_equal(intake_n_endpoints(c), 2);
    assert_string_equal(intake_endpoint(c), "inproc://standby");
    intake_set_failover_ms(c, 100);
    struct gd_msg m = submit("ext-1"), r;
    assert_int_equal(intake_call(c, &m, 5000, &r), 1);
    assert_int_equal(r.type, GD_T_ACCEPTED);
    assert_int_equal(r.u.accepted.incident_id, 42);
    assert_int_equal(r.u.accepted.ref, m.u.submit.ref);
    assert_string_equal(intake_endpoint(c), "inproc://active");
    assert_int_equal(intake_failovers(c), 1);
    fake_broker_join(&standby);
    fake_broker_join(&active);
    /* the same SUBMIT went to both: first the silent one, then the next */
    assert_int_equal(standby.got, 1);
    assert_string_equal(standby.last_external_id, "ext-1");
    assert_int_equal(active.got, 1);
    assert_string_equal(active.last_external_id, "ext-1");
    intake_close(c);
    zmq_ctx_term(zctx);
}

static void test_a_call_times_out_when_every_endpoint_is_silent(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    struct intake *c = NULL;
    assert_int_equal(intake_open(zctx, "inproc://nobody-a,inproc://nobody-b", &c), 0);
    intake_set_failover_ms(c, 50);
    struct gd_msg m = submit("ext-2"), r;
    int64_t t0 = intake_now_ms();
    assert_int_equal(intake_call(c, &m, 300, &r), 0);
    int64_t took = intake_now_ms() - t0;
    assert_true(took >= 300 && took < 2000);
    /* it went round the list: a, b, a, ... (at least 5 moves in 300 ms) */
    assert_true(intake_failovers(c) >= 4);
    intake_close(c);
    zmq_ctx_term(zctx);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void test_failover_is_due_only_after_a_silence_while_a_request_waits(void **state)
{
    (void)state;
    void *zctx = zmq_ctx_new();
    struct intake *one = NULL, *pair = NULL;
    assert_int_equal(intake_open(zctx, "inproc://x", &one), 0);
    assert_int_equal(intake_open(zctx, "inproc://x,inproc://y", &pair), 0);
    intake_set_failover_ms(one, 30);
    intake_set_failover_ms(pair, 30);
    int64_t sent = intake_now_ms();
    assert_int_equal(intake_failover_due(pair, sent), 0); /* not silent long enough */
    sleep_ms(50);
    assert_int_equal(intake_failover_due(pair, 0), 0);   /* nothing waits */
    assert_int_equal(intake_failover_due(one, sent), 0); /* nowhere to go */
    assert_int_equal(intake_failover_due(pair, sent), 1);
    assert_string_equal(intake_endpoint(pair), "inproc://y");
    /* the new connection starts a new count, even for an old request */
    assert_int_equal(intake_failover_due(pair, sent), 0);
    sleep_ms(50);
    assert_int_equal(intake_failover_due(pair, sent), 1);
    assert_string_equal(intake_endpoint(pair), "inproc://x"); /* round the list */
    intake_set_failover_ms(pair, 0);
    sleep_ms(50);
    assert_int_equal(intake_failover_due(pair, sent), 0); /* 0: never */
    assert_int_equal(intake_failover(one), 0);
    assert_int_equal(intake_failovers(pair), 2);
    intake_close(one);
    intake_close(pair);
    zmq_ctx_term(zctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_an_endpoint_list_is_commas_with_blanks_around_entries),
        cmocka_unit_test(test_empty_overlong_and_too_many_entries_are_refused),
        cmocka_unit_test(test_intake_open_refuses_a_bad_list),
        cmocka_unit_test(test_a_silent_broker_makes_the_call_go_to_the_next_endpoint),
        cmocka_unit_test(test_a_call_times_out_when_every_endpoint_is_silent),
        cmocka_unit_test(test_failover_is_due_only_after_a_silence_while_a_request_waits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
