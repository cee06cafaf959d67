/* test-proto.c - specification tests for the GDP/1 codec: round trips, limits, every error. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>
#include <msgpack.h>

#include "gd-samples.h"
#include "gdp.h"

/* ---- fixtures ---- */

struct fx {
    struct gd_decoder *d;
    struct gd_buf buf;
    struct gd_buf buf2;
    msgpack_sbuffer sb;
    msgpack_packer pk;
};

static int setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    if (fx == NULL)
        return -1;
    fx->d = gd_decoder_new();
    if (fx->d == NULL) {
        free(fx);
        return -1;
    }
    msgpack_sbuffer_init(&fx->sb);
    msgpack_packer_init(&fx->pk, &fx->sb, msgpack_sbuffer_write);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    struct fx *fx = *state;
    gd_decoder_free(fx->d);
    gd_buf_fini(&fx->buf);
    gd_buf_fini(&fx->buf2);
    msgpack_sbuffer_destroy(&fx->sb);
    free(fx);
    return 0;
}

/* Restarts the hand-built body. */
static msgpack_packer *raw(struct fx *fx)
{
    msgpack_sbuffer_clear(&fx->sb);
    return &fx->pk;
}

static void key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str_with_body(pk, k, strlen(k));
}

static void kstr(msgpack_packer *pk, const char *k, const char *v)
{
    key(pk, k);
    msgpack_pack_str_with_body(pk, v, strlen(v));
}

static void kuint(msgpack_packer *pk, const char *k, uint64_t v)
{
    key(pk, k);
    msgpack_pack_uint64(pk, v);
}

static int decode_raw(struct fx *fx, enum gd_type type, const void *body, size_t len,
                      struct gd_msg *m, struct gd_decode_error *err)
{
    uint8_t h[GD_HEADER_LEN];
    gd_encode_header(type, h);
    return gd_decode(fx->d, h, sizeof(h), body, len, m, err);
}

/* Decodes the hand-built body as `type` and expects failure `code` on `field`. */
static void expect_error(struct fx *fx, enum gd_type type, enum gd_code code, const char *field)
{
    struct gd_msg m;
    struct gd_decode_error err = {.code = GD_OK};
    int r = decode_raw(fx, type, fx->sb.data, fx->sb.size, &m, &err);
    if (r != -(int)code || (field != NULL && strcmp(err.field, field) != 0))
        fail_msg("%s: expected %s on \"%s\", got %s (%d) on \"%s\"", gd_type_name(type),
                 gd_code_name(code), field ? field : "*", r < 0 ? gd_code_name(-r) : "success", r,
                 err.field ? err.field : "(null)");
    assert_int_equal(err.code, code);
}

static void expect_ok(struct fx *fx, enum gd_type type, struct gd_msg *m)
{
    struct gd_decode_error err = {.code = GD_OK};
    int r = decode_raw(fx, type, fx->sb.data, fx->sb.size, m, &err);
    if (r != 0)
        fail_msg("%s: expected success, got %s on \"%s\"", gd_type_name(type), gd_code_name(-r),
                 err.field);
}

/* Number of keys in the top-level map of an encoded body. */
static unsigned top_keys(const struct gd_buf *b)
{
    const uint8_t *p = (const uint8_t *)b->data;
    assert_true(b->len >= 1);
    if (p[0] >= 0x80 && p[0] <= 0x8f)
        return p[0] & 0x0f;
    assert_int_equal(p[0], 0xde);
    return (unsigned)p[1] << 8 | p[2];
}

static bool body_has_key(const struct gd_buf *b, const char *k)
{
    size_t n = strlen(k);
    for (size_t i = 0; i + n + 1 <= b->len; i++)
        if ((uint8_t)b->data[i] == (0xa0 | n) && memcmp(b->data + i + 1, k, n) == 0)
            return true;
    return false;
}

/* Encodes m, decodes it, re-encodes the result: both encodings must be the
 * same bytes and carry `keys` top-level keys. Leaves the decoded message in
 * *out (valid while fx->buf is untouched). */
static void round_trip(struct fx *fx, const struct gd_msg *m, unsigned keys, struct gd_msg *out)
{
    struct gd_decode_error err = {.code = GD_OK};
    uint8_t h[GD_HEADER_LEN];

    gd_buf_reset(&fx->buf);
    gd_buf_reset(&fx->buf2);
    int r = gd_encode(m, &fx->buf);
    if (r != 0)
        fail_msg("%s: encode failed: %s", gd_type_name(m->type), gd_code_name(-r));
    if (top_keys(&fx->buf) != keys)
        fail_msg("%s: %u keys on the wire, expected %u", gd_type_name(m->type), top_keys(&fx->buf),
                 keys);
    gd_encode_header(m->type, h);
    r = gd_decode(fx->d, h, sizeof(h), fx->buf.data, fx->buf.len, out, &err);
    if (r != 0)
        fail_msg("%s: decode failed: %s on \"%s\"", gd_type_name(m->type), gd_code_name(-r),
                 err.field);
    assert_int_equal(out->type, m->type);
    assert_int_equal(gd_encode(out, &fx->buf2), 0);
    assert_int_equal(fx->buf2.len, fx->buf.len);
    assert_memory_equal(fx->buf2.data, fx->buf.data, fx->buf.len);
}

static void assert_str(struct gd_str a, struct gd_str b)
{
    if (!gd_str_eq(a, b))
        fail_msg("\"%.*s\" != \"%.*s\"", (int)a.len, a.ptr ? a.ptr : "", (int)b.len,
                 b.ptr ? b.ptr : "");
}

static void assert_location(const struct gd_location *a, const struct gd_location *b)
{
    assert_str(a->unit, b->unit);
    assert_str(a->address, b->address);
    assert_int_equal(a->has_coords, b->has_coords);
    if (a->has_coords) {
        assert_true(a->lat == b->lat);
        assert_true(a->lon == b->lon);
    }
}

static void assert_incident(const struct gd_incident *a, const struct gd_incident *b)
{
    assert_int_equal(a->id, b->id);
    assert_int_equal(a->version, b->version);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->priority, b->priority);
    assert_int_equal(a->level, b->level);
    assert_str(a->source, b->source);
    assert_str(a->external_id, b->external_id);
    assert_str(a->category, b->category);
    assert_str(a->queue, b->queue);
    assert_str(a->owner, b->owner);
    assert_location(&a->location, &b->location);
    assert_str(a->located_by, b->located_by);
    assert_str(a->description, b->description);
    assert_int_equal(a->has_reporter, b->has_reporter);
    assert_str(a->reporter.name, b->reporter.name);
    assert_str(a->reporter.phone, b->reporter.phone);
    assert_str(a->reporter.address, b->reporter.address);
    assert_int_equal(a->reported_at, b->reported_at);
    assert_int_equal(a->received_at, b->received_at);
    assert_int_equal(a->sign_due, b->sign_due);
    assert_int_equal(a->resolve_due, b->resolve_due);
    assert_int_equal(a->extension_pending, b->extension_pending);
    assert_int_equal(a->attempts, b->attempts);
    assert_int_equal(a->escalations, b->escalations);
    assert_int_equal(a->flagged, b->flagged);
    assert_int_equal(a->n_attachments, b->n_attachments);
    for (uint32_t i = 0; i < a->n_attachments; i++)
        assert_str(a->attachments[i], b->attachments[i]);
}

/* ---- round trips ---- */

static void test_every_message_type_round_trips_with_all_fields_set(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    for (size_t i = 0; i < GD_SAMPLE_N_TYPES; i++) {
        unsigned keys = gd_sample_full(gd_sample_types[i], &m);
        round_trip(fx, &m, keys, &out);
    }
}

static void test_every_message_type_round_trips_with_only_required_fields(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    for (size_t i = 0; i < GD_SAMPLE_N_TYPES; i++) {
        unsigned keys = gd_sample_min(gd_sample_types[i], &m);
        round_trip(fx, &m, keys, &out);
    }
}

static void test_submit_round_trips_every_field(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    round_trip(fx, &m, gd_sample_full(GD_T_SUBMIT, &m), &out);
    const struct gd_submit *a = &m.u.submit, *b = &out.u.submit;
    assert_int_equal(b->ref, a->ref);
    assert_str(b->source, a->source);
    assert_str(b->external_id, a->external_id);
    assert_str(b->category, a->category);
    assert_int_equal(b->priority, GD_PRIO_EMERGENCY);
    assert_location(&b->location, &a->location);
    assert_str(b->description, a->description);
    assert_str(b->reporter.name, a->reporter.name);
    assert_str(b->reporter.phone, a->reporter.phone);
    assert_str(b->reporter.address, a->reporter.address);
    assert_int_equal(b->reported_at, a->reported_at);
    assert_int_equal(b->n_attachments, 2);
    assert_str(b->attachments[1], a->attachments[1]);
}

static void test_deliver_and_incident_reply_round_trip_the_whole_incident(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    round_trip(fx, &m, gd_sample_full(GD_T_DELIVER, &m), &out);
    assert_int_equal(out.u.deliver.delivery_id, 99);
    assert_int_equal(out.u.deliver.attempt, 2);
    assert_incident(&out.u.deliver.incident, &m.u.deliver.incident);

    round_trip(fx, &m, gd_sample_full(GD_T_INCIDENT, &m), &out);
    assert_incident(&out.u.incident.incident, &m.u.incident.incident);
    assert_int_equal(out.u.incident.n_events, 3);
    assert_true(out.u.incident.truncated);
    for (int i = 0; i < 3; i++) {
        const struct gd_event *a = &gd_sample_events[i], *b = &out.u.incident.events[i];
        assert_int_equal(b->version, a->version);
        assert_int_equal(b->at, a->at);
        assert_int_equal(b->kind, a->kind);
        assert_int_equal(b->from, a->from);
        assert_int_equal(b->to, a->to);
        assert_str(b->queue, a->queue);
        assert_str(b->actor, a->actor);
        assert_str(b->note, a->note);
    }
}

static void test_submits_and_submitted_round_trip_item_by_item(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    round_trip(fx, &m, gd_sample_full(GD_T_SUBMITS, &m), &out);
    assert_int_equal(out.u.submits.ref, 6);
    assert_int_equal(out.u.submits.n_items, 2);
    for (int i = 0; i < 2; i++) {
        const struct gd_submit *a = &gd_sample_submits[i], *b = &out.u.submits.items[i];
        assert_int_equal(b->ref, a->ref);
        assert_str(b->source, a->source);
        assert_str(b->external_id, a->external_id);
        assert_str(b->description, a->description);
        assert_int_equal(b->priority, a->priority);
    }
    assert_str(out.u.submits.items[0].location.unit, gd_sample_submits[0].location.unit);

    round_trip(fx, &m, gd_sample_full(GD_T_SUBMITTED, &m), &out);
    assert_int_equal(out.u.submitted.n_results, 3);
    const struct gd_submit_result *r = out.u.submitted.results;
    assert_int_equal(r[0].code, GD_OK);
    assert_int_equal(r[0].incident_id, 78);
    assert_int_equal(r[0].state, GD_ST_QUEUED);
    assert_str(r[0].queue, gd_sample_results[0].queue);
    assert_int_equal(r[1].code, GD_E_BUSY);
    assert_int_equal(r[1].retry_ms, 200);
    assert_str(r[1].reason, gd_sample_results[1].reason);
    assert_int_equal(r[2].code, GD_E_BAD_VALUE);
    assert_str(r[2].field, gd_sample_results[2].field);
}

/* One bad item refuses the whole SUBMITS, and the refusal names it. */
static void test_submits_refusal_names_the_item(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "ref", 5);
    key(pk, "items");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 2);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "x1");
    msgpack_pack_map(pk, 2);
    kstr(pk, "source", "App!");
    kstr(pk, "external_id", "x2");
    expect_error(fx, GD_T_SUBMITS, GD_E_BAD_VALUE, "items[1].source");
    struct gd_msg m;
    struct gd_decode_error err = {0};
    decode_raw(fx, GD_T_SUBMITS, fx->sb.data, fx->sb.size, &m, &err);
    assert_int_equal(err.ref, 5);

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "items");
    msgpack_pack_array(pk, 0);
    expect_error(fx, GD_T_SUBMITS, GD_E_BAD_VALUE, "items");

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "ref", 5);
    expect_error(fx, GD_T_SUBMITS, GD_E_MISSING_FIELD, "items");

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "items");
    msgpack_pack_array(pk, GD_MAX_SUBMITS + 1);
    for (int i = 0; i < GD_MAX_SUBMITS + 1; i++)
        msgpack_pack_map(pk, 0);
    expect_error(fx, GD_T_SUBMITS, GD_E_TOO_MANY, "items");
}

/* SUBMITS from SUBMIT bodies encoded one by one: the bytes gd_encode
 * writes for the same items, for any ref. */
static void test_submits_from_encoded_items_are_the_bytes_gd_encode_writes(void **state)
{
    struct fx *fx = *state;
    struct gd_buf one[2] = {{0}};
    const struct gd_buf *items[2] = {&one[0], &one[1]};
    for (int i = 0; i < 2; i++) {
        struct gd_msg m = {.type = GD_T_SUBMIT, .u.submit = gd_sample_submits[i]};
        assert_int_equal(gd_encode(&m, &one[i]), 0);
    }
    const uint64_t refs[] = {0, 6, UINT64_C(1) << 63 | 5, UINT64_MAX};
    for (size_t k = 0; k < sizeof(refs) / sizeof(refs[0]); k++) {
        struct gd_msg m = {.type = GD_T_SUBMITS};
        m.u.submits = (struct gd_submits){.ref = refs[k], .n_items = 2, .items = gd_sample_submits};
        gd_buf_reset(&fx->buf);
        gd_buf_reset(&fx->buf2);
        assert_int_equal(gd_encode(&m, &fx->buf), 0);
        assert_int_equal(gd_encode_submits(refs[k], 2, items, &fx->buf2), 0);
        assert_int_equal(fx->buf2.len, fx->buf.len);
        assert_memory_equal(fx->buf2.data, fx->buf.data, fx->buf.len);
        assert_true(fx->buf2.len <= one[0].len + one[1].len + GD_SUBMITS_OVERHEAD);
    }

    /* no items, or too many: refused, and the buffer keeps what it held */
    size_t held = fx->buf2.len;
    assert_int_equal(gd_encode_submits(1, 0, items, &fx->buf2), -GD_E_TOO_MANY);
    assert_int_equal(gd_encode_submits(1, GD_MAX_SUBMITS + 1, items, &fx->buf2), -GD_E_TOO_MANY);
    assert_int_equal(fx->buf2.len, held);
    gd_buf_fini(&one[0]);
    gd_buf_fini(&one[1]);
}

/* GD_SUBMITS_OVERHEAD is the worst case: the most items and the largest
 * ref make items of GD_MAX_BODY - GD_SUBMITS_OVERHEAD bytes a body of
 * exactly GD_MAX_BODY, which decodes; one byte more is too large. */
static void test_submits_overhead_is_exactly_the_worst_case(void **state)
{
    struct fx *fx = *state;
    enum { N = GD_MAX_SUBMITS };
    static char text[GD_MAX_DESCRIPTION];
    memset(text, 'x', sizeof(text));
    struct gd_buf *bufs = calloc(N, sizeof(*bufs));
    const struct gd_buf **items = calloc(N, sizeof(*items));
    assert_non_null(bufs);
    assert_non_null(items);
    const size_t target = GD_MAX_BODY - GD_SUBMITS_OVERHEAD;
    size_t total = 0;
    for (int i = 0; i < N; i++) {
        struct gd_msg m;
        gd_sample_min(GD_T_SUBMIT, &m);
        m.u.submit.ref = UINT64_MAX;
        /* every item but the last a fixed size; the last one makes up the rest */
        size_t len = i < N - 1 ? 200 : 300;
        for (int pass = 0; pass < 2; pass++) {
            m.u.submit.description = gd_str_make(text, len);
            gd_buf_reset(&bufs[i]);
            assert_int_equal(gd_encode(&m, &bufs[i]), 0);
            if (i < N - 1)
                break;
            len += target - (total + bufs[i].len); /* str16 header either way: one step */
        }
        total += bufs[i].len;
        items[i] = &bufs[i];
    }
    assert_int_equal(total, target);
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode_submits(UINT64_MAX, N, items, &fx->buf), 0);
    assert_int_equal(fx->buf.len, GD_MAX_BODY);
    struct gd_msg out;
    uint8_t h[GD_HEADER_LEN];
    gd_encode_header(GD_T_SUBMITS, h);
    assert_int_equal(gd_decode(fx->d, h, sizeof(h), fx->buf.data, fx->buf.len, &out, NULL), 0);
    assert_int_equal(out.u.submits.n_items, N);
    assert_int_equal(out.u.submits.ref, UINT64_MAX);

    assert_int_equal(gd_buf_append(&bufs[N - 1], " ", 1), 0); /* not a valid item: never read */
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode_submits(UINT64_MAX, N, items, &fx->buf), -GD_E_TOO_LARGE);
    assert_int_equal(fx->buf.len, 0);
    for (int i = 0; i < N; i++)
        gd_buf_fini(&bufs[i]);
    free(bufs);
    free(items);
}

/* A result says one outcome: accepted names an incident, refused says why. */
static void test_submitted_results_are_one_outcome_each(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m = {.type = GD_T_SUBMITTED};
    struct gd_submit_result r[1] = {{.code = GD_OK}};
    m.u.submitted = (struct gd_submitted){.n_results = 1, .results = r};
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_MISSING_FIELD); /* no incident_id */
    r[0] = (struct gd_submit_result){.code = GD_OK, .incident_id = 1, .retry_ms = 5};
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    r[0] = (struct gd_submit_result){.code = GD_E_DENIED};
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_MISSING_FIELD); /* no message */
    r[0] = (struct gd_submit_result){.code = GD_E_DENIED, .message = GD_STR("no"),
                                     .incident_id = 3};
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    assert_int_equal(fx->buf.len, 0);

    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "results");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 2);
    kstr(pk, "code", "busy");
    kuint(pk, "incident_id", 9);
    expect_error(fx, GD_T_SUBMITTED, GD_E_BAD_VALUE, "results[0].incident_id");
}

static void test_gauges_round_trip_with_rates(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    round_trip(fx, &m, gd_sample_full(GD_T_GAUGES, &m), &out);
    assert_int_equal(out.u.gauges.n_gauges, 2);
    const struct gd_gauge *g = &out.u.gauges.gauges[0];
    assert_str(g->queue, gd_sample_gauges[0].queue);
    assert_int_equal(g->depth, 12);
    assert_int_equal(g->in_flight, 3);
    assert_int_equal(g->oldest_age_ms, 60000);
    assert_int_equal(g->overdue, 1);
    assert_int_equal(g->consumers, 2);
    assert_true(g->in_rate == 0.25 && g->out_rate == 0.5);
    assert_str(out.u.gauges.gauges[1].queue, gd_sample_gauges[1].queue);
}

static void test_sla_hello_carries_shard_and_no_queues(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m = {.type = GD_T_HELLO}, out;
    m.u.hello.role = GD_ROLE_SLA;
    m.u.hello.name = GD_STR("gd-sla-1");
    m.u.hello.n_shard = 2;
    m.u.hello.shard[0] = GD_STR("500113002");
    m.u.hello.shard[1] = GD_STR("500113003");
    round_trip(fx, &m, 3, &out);
    assert_int_equal(out.u.hello.role, GD_ROLE_SLA);
    assert_int_equal(out.u.hello.n_shard, 2);
    assert_str(out.u.hello.shard[1], m.u.hello.shard[1]);
    assert_int_equal(out.u.hello.n_queues, 0);
}

static void test_query_by_source_and_external_id_round_trips(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m = {.type = GD_T_QUERY}, out;
    m.u.query =
        (struct gd_query){.source = GD_STR("app"), .external_id = GD_STR("e-1"), .events = true};
    round_trip(fx, &m, 2, &out);
    assert_str(out.u.query.source, m.u.query.source);
    assert_int_equal(out.u.query.incident_id, 0);
    assert_true(out.u.query.events);
}

static void test_command_text_travels_under_the_key_of_its_message(void **state)
{
    struct fx *fx = *state;
    static const struct {
        enum gd_type type;
        const char *key;
    } cases[] = {{GD_T_PROGRESS, "note"},
                 {GD_T_EXTEND, "reason"},
                 {GD_T_RETURN, "reason"},
                 {GD_T_RESOLVE, "result"}};
    struct gd_msg m, out;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        round_trip(fx, &m, gd_sample_full(cases[i].type, &m), &out);
        assert_true(body_has_key(&fx->buf, cases[i].key));
        assert_false(body_has_key(&fx->buf, "text"));
        assert_str(out.u.command.text, m.u.command.text);
    }
    round_trip(fx, &m, gd_sample_full(GD_T_RETURN, &m), &out);
    assert_true(body_has_key(&fx->buf, "rule"));
    assert_str(out.u.command.rule, m.u.command.rule);

    /* a PROGRESS carrying a "reason" is not a PROGRESS */
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "reason", "x");
    expect_error(fx, GD_T_PROGRESS, GD_E_UNKNOWN_FIELD, "reason");
    /* WARN carries no text at all */
    pk = raw(fx);
    msgpack_pack_map(pk, 4);
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "kind", "sign");
    kstr(pk, "note", "x");
    expect_error(fx, GD_T_WARN, GD_E_UNKNOWN_FIELD, "note");
}

static void test_heartbeat_body_is_an_empty_map(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m = {.type = GD_T_HEARTBEAT};
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&m, &fx->buf), 0);
    assert_int_equal(fx->buf.len, 1);
    assert_int_equal((uint8_t)fx->buf.data[0], 0x80);
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "ref", 1);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_UNKNOWN_FIELD, "ref");
}

static void test_header_frame_is_gdp1_and_the_type_byte(void **state)
{
    (void)state;
    uint8_t h[GD_HEADER_LEN];
    gd_encode_header(GD_T_DELIVER, h);
    assert_memory_equal(h, "GDP1\x32", 5);
}

static void test_absent_optional_fields_take_their_defaults(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    expect_ok(fx, GD_T_SUBMIT, &m);
    assert_int_equal(m.u.submit.priority, GD_PRIO_NORMAL);
    assert_int_equal(m.u.submit.ref, 0);
    assert_int_equal(m.u.submit.category.len, 0);
    assert_false(m.u.submit.location.has_coords);
    assert_int_equal(m.u.submit.n_attachments, 0);

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "incident_id", 5);
    expect_ok(fx, GD_T_QUERY, &m);
    assert_true(m.u.query.events);

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "incident");
    msgpack_pack_map(pk, 5);
    kuint(pk, "id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "state", "QUEUED");
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    expect_ok(fx, GD_T_INCIDENT, &m);
    assert_false(m.u.incident.incident.has_reporter);
    assert_int_equal(m.u.incident.incident.priority, GD_PRIO_NORMAL);
    assert_int_equal(m.u.incident.n_events, 0);
    assert_null(m.u.incident.events);
}

static void test_decoded_strings_point_into_the_body_buffer(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    gd_sample_full(GD_T_SUBMIT, &m);
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&m, &fx->buf), 0);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, fx->buf.data, fx->buf.len, &out, NULL), 0);
    const char *lo = fx->buf.data, *hi = fx->buf.data + fx->buf.len;
    assert_true(out.u.submit.description.ptr > lo && out.u.submit.description.ptr < hi);
    assert_true(out.u.submit.reporter.name.ptr > lo && out.u.submit.reporter.name.ptr < hi);
    assert_true(out.u.submit.attachments[1].ptr > lo && out.u.submit.attachments[1].ptr < hi);
}

static void test_integers_may_use_any_msgpack_width(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    /* 0xcf (uint 64) carrying 5, and a float lat given as an integer */
    const uint8_t body[] = {0x82, 0xab, 'i',  'n',  'c', 'i', 'd', 'e', 'n', 't',
                            '_',  'i',  'd',  0xcf, 0,   0,   0,   0,   0,   0,
                            0,    5,    0xa6, 'e',  'v', 'e', 'n', 't', 's', 0xc2};
    assert_int_equal(decode_raw(fx, GD_T_QUERY, body, sizeof(body), &m, NULL), 0);
    assert_int_equal(m.u.query.incident_id, 5);
    assert_false(m.u.query.events);

    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "location");
    msgpack_pack_map(pk, 2);
    key(pk, "lat");
    msgpack_pack_int(pk, -30);
    key(pk, "lon");
    msgpack_pack_float(pk, 106.5f);
    expect_ok(fx, GD_T_SUBMIT, &m);
    assert_true(m.u.submit.location.has_coords);
    assert_true(m.u.submit.location.lat == -30.0);
    assert_true(m.u.submit.location.lon == 106.5);
}

/* ---- status messages ---- */

static void status_round_trip(struct fx *fx, const struct gd_status *s, unsigned keys,
                              struct gd_status *out)
{
    struct gd_decode_error err = {.code = GD_OK};
    gd_buf_reset(&fx->buf);
    gd_buf_reset(&fx->buf2);
    int r = gd_encode_status(s, &fx->buf);
    if (r != 0)
        fail_msg("%s: encode failed: %s", gd_status_kind_name(s->kind), gd_code_name(-r));
    assert_int_equal(top_keys(&fx->buf), keys);
    r = gd_decode_status(fx->d, fx->buf.data, fx->buf.len, out, &err);
    if (r != 0)
        fail_msg("%s: decode failed: %s on \"%s\"", gd_status_kind_name(s->kind), gd_code_name(-r),
                 err.field);
    assert_int_equal(out->kind, s->kind);
    assert_int_equal(gd_encode_status(out, &fx->buf2), 0);
    assert_int_equal(fx->buf2.len, fx->buf.len);
    assert_memory_equal(fx->buf2.data, fx->buf.data, fx->buf.len);
}

static void test_every_status_kind_round_trips_full_and_minimal(void **state)
{
    struct fx *fx = *state;
    struct gd_status s, out;
    for (int k = 0; k < GD_STATUS_COUNT; k++) {
        status_round_trip(fx, &s, gd_sample_status_full((enum gd_status_kind)k, &s), &out);
        status_round_trip(fx, &s, gd_sample_status_min((enum gd_status_kind)k, &s), &out);
    }
    gd_sample_status_full(GD_STATUS_BROKER, &s);
    status_round_trip(fx, &s, 11, &out);
    assert_int_equal(out.u.broker.n_counters, 2);
    assert_int_equal(out.u.broker.counters[0].value, 1ull << 40);
    assert_str(out.u.broker.counters[1].name, s.u.broker.counters[1].name);
    assert_true(out.u.broker.db_up && out.u.broker.active);

    gd_sample_status_full(GD_STATUS_ALARM, &s);
    status_round_trip(fx, &s, 7, &out);
    assert_true(body_has_key(&fx->buf, "alarm")); /* the alarm's own kind */
    assert_str(out.u.alarm.kind, s.u.alarm.kind);

    gd_sample_status_full(GD_STATUS_SLA, &s);
    status_round_trip(fx, &s, 9, &out);
    assert_true(body_has_key(&fx->buf, "deadline"));
    assert_int_equal(out.u.sla.kind, GD_DL_RESOLVE);
    assert_true(out.u.sla.breach);
}

/* A batch built item by item is byte for byte what gd_encode_status
 * writes for the same transitions, and decodes to them. */
static void test_transitions_built_item_by_item(void **state)
{
    struct fx *fx = *state;
    struct gd_status s, out;
    gd_sample_status_full(GD_STATUS_TRANSITIONS, &s);
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode_status(&s, &fx->buf), 0);

    struct gd_buf items = {0};
    for (uint32_t i = 0; i < s.u.transitions.n_items; i++)
        assert_int_equal(gd_encode_transition(&s.u.transitions.items[i], &items), 0);
    gd_buf_reset(&fx->buf2);
    assert_int_equal(gd_encode_transitions(s.u.transitions.n_items, &items, &fx->buf2), 0);
    assert_int_equal(fx->buf2.len, fx->buf.len);
    assert_memory_equal(fx->buf2.data, fx->buf.data, fx->buf.len);

    assert_int_equal(gd_decode_status(fx->d, fx->buf2.data, fx->buf2.len, &out, NULL), 0);
    assert_int_equal(out.u.transitions.n_items, 2);
    assert_str(out.u.transitions.items[0].topic, gd_sample_transitions[0].topic);
    assert_int_equal(out.u.transitions.items[0].sign_due, gd_sample_transitions[0].sign_due);
    assert_str(out.u.transitions.items[0].located_by, GD_STR("address"));
    assert_int_equal(out.u.transitions.items[1].located_by.len, 0);
    assert_true(out.u.transitions.items[0].flagged);
    assert_str(out.u.transitions.items[1].topic, GD_STR("inc.triage"));

    /* an empty batch, one past the limit, an item without its topic */
    size_t len = fx->buf2.len;
    assert_int_equal(gd_encode_transitions(0, &items, &fx->buf2), -GD_E_TOO_MANY);
    assert_int_equal(gd_encode_transitions(GD_MAX_BATCH + 1, &items, &fx->buf2), -GD_E_TOO_MANY);
    assert_int_equal(fx->buf2.len, len);
    struct gd_status_transition bad = gd_sample_transitions[1];
    bad.topic = GD_STR_NULL;
    assert_true(gd_encode_transition(&bad, &items) < 0);
    gd_buf_fini(&items);
}

/* Gauges the same way: one period's gauges of a town in one body. */
static void test_gauges_built_item_by_item(void **state)
{
    struct fx *fx = *state;
    struct gd_status s, out;
    gd_sample_status_full(GD_STATUS_GAUGES, &s);
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode_status(&s, &fx->buf), 0);
    struct gd_buf items = {0};
    for (uint32_t i = 0; i < s.u.gauges.n_items; i++)
        assert_int_equal(gd_encode_gauge(&s.u.gauges.items[i], &items), 0);
    gd_buf_reset(&fx->buf2);
    assert_int_equal(gd_encode_gauges(s.u.gauges.n_items, &items, &fx->buf2), 0);
    assert_int_equal(fx->buf2.len, fx->buf.len);
    assert_memory_equal(fx->buf2.data, fx->buf.data, fx->buf.len);
    assert_int_equal(gd_decode_status(fx->d, fx->buf2.data, fx->buf2.len, &out, NULL), 0);
    assert_int_equal(out.kind, GD_STATUS_GAUGES);
    assert_int_equal(out.u.gauges.n_items, 2);
    assert_str(out.u.gauges.items[1].queue, gd_sample_gauges[1].queue);
    assert_int_equal(out.u.gauges.items[0].depth, gd_sample_gauges[0].depth);
    assert_int_equal(gd_encode_gauges(0, &items, &fx->buf2), -GD_E_TOO_MANY);
    assert_int_equal(gd_encode_gauges(GD_MAX_GAUGES + 1, &items, &fx->buf2), -GD_E_TOO_MANY);
    gd_buf_fini(&items);
}

/* More items than GD_MAX_BATCH are refused, naming the array. */
static void test_transitions_batch_is_bounded(void **state)
{
    struct fx *fx = *state;
    struct gd_buf items = {0};
    for (int i = 0; i <= GD_MAX_BATCH; i++)
        assert_int_equal(gd_encode_transition(&gd_sample_transitions[1], &items), 0);
    /* by hand: gd_encode_transitions refuses to write it */
    gd_buf_reset(&fx->buf);
    static const uint8_t head[] = {0x82, 0xa4, 'k', 'i', 'n', 'd', 0xab, 't', 'r', 'a', 'n',
                                   's', 'i', 't', 'i', 'o', 'n', 's', 0xa5, 'i', 't', 'e',
                                   'm', 's', 0xdc, (GD_MAX_BATCH + 1) >> 8,
                                   (GD_MAX_BATCH + 1) & 0xff};
    assert_int_equal(gd_buf_append(&fx->buf, head, sizeof(head)), 0);
    assert_int_equal(gd_buf_append(&fx->buf, items.data, items.len), 0);
    struct gd_status out;
    struct gd_decode_error err;
    assert_int_equal(gd_decode_status(fx->d, fx->buf.data, fx->buf.len, &out, &err),
                     -GD_E_TOO_MANY);
    assert_string_equal(err.field, "items");
    gd_buf_fini(&items);
}

/* A zstd-compressed body decodes as the plain one; the frame's declared
 * size is checked before anything is decompressed. */
static void test_compressed_status_body(void **state)
{
    struct fx *fx = *state;
    struct gd_status s, plain, packed;
    gd_sample_status_full(GD_STATUS_TRANSITIONS, &s);
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode_status(&s, &fx->buf), 0);
    assert_int_equal(gd_decode_status(fx->d, fx->buf.data, fx->buf.len, &plain, NULL), 0);
    uint64_t id = plain.u.transitions.items[0].incident_id;

    char z[1024];
    size_t zn = ZSTD_compress(z, sizeof(z), fx->buf.data, fx->buf.len, 1);
    assert_false(ZSTD_isError(zn));
    assert_memory_equal(z, GD_ZSTD_MAGIC, 4);
    struct gd_decoder *d2 = gd_decoder_new();
    assert_int_equal(gd_decode_status(d2, z, zn, &packed, NULL), 0);
    assert_int_equal(packed.u.transitions.n_items, 2);
    assert_int_equal(packed.u.transitions.items[0].incident_id, id);
    assert_str(packed.u.transitions.items[0].topic, gd_sample_transitions[0].topic);

    struct gd_decode_error err;
    /* truncated frame */
    assert_int_equal(gd_decode_status(d2, z, zn - 3, &packed, &err), -GD_E_MALFORMED);
    assert_int_equal(err.code, GD_E_MALFORMED);
    /* a frame that does not say how big it is */
    ZSTD_CCtx *cc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
    size_t un = ZSTD_compress2(cc, z, sizeof(z), fx->buf.data, fx->buf.len);
    assert_false(ZSTD_isError(un));
    assert_int_equal(gd_decode_status(d2, z, un, &packed, NULL), -GD_E_MALFORMED);
    /* a frame that would inflate beyond GD_MAX_BODY: refused unread */
    size_t big_len = GD_MAX_BODY + 1;
    char *big = calloc(1, big_len);
    big[0] = (char)0x81; /* a map, then zeros */
    ZSTD_CCtx_reset(cc, ZSTD_reset_session_and_parameters);
    size_t bn = ZSTD_compress2(cc, z, sizeof(z), big, big_len);
    assert_false(ZSTD_isError(bn));
    assert_int_equal(gd_decode_status(d2, z, bn, &packed, NULL), -GD_E_TOO_LARGE);
    /* a compressed body that is not a status body */
    static const char notkind[] = {(char)0x81, (char)0xa4, 'k', 'i', 'n', 'd', (char)0xa3, 'b', 'a', 'd'};
    size_t nn = ZSTD_compress(z, sizeof(z), notkind, sizeof(notkind), 1);
    assert_int_equal(gd_decode_status(d2, z, nn, &packed, &err), -GD_E_BAD_VALUE);
    assert_string_equal(err.field, "kind");
    free(big);
    ZSTD_freeCCtx(cc);
    gd_decoder_free(d2);
}

static void expect_status_error(struct fx *fx, enum gd_code code, const char *field)
{
    struct gd_status s;
    struct gd_decode_error err = {.code = GD_OK};
    int r = gd_decode_status(fx->d, fx->sb.data, fx->sb.size, &s, &err);
    if (r != -(int)code || strcmp(err.field, field) != 0)
        fail_msg("status: expected %s on \"%s\", got %d on \"%s\"", gd_code_name(code), field, r,
                 err.field ? err.field : "(null)");
}

static void test_status_body_needs_a_known_kind(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "at", 1);
    expect_status_error(fx, GD_E_MISSING_FIELD, "kind");

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kstr(pk, "kind", "weather");
    expect_status_error(fx, GD_E_BAD_VALUE, "kind");

    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "kind", 1);
    expect_status_error(fx, GD_E_WRONG_TYPE, "kind");

    /* a gauge's fields are not a broker's */
    pk = raw(fx);
    msgpack_pack_map(pk, 5);
    kstr(pk, "kind", "broker");
    kuint(pk, "at", 1);
    key(pk, "db_up");
    msgpack_pack_true(pk);
    key(pk, "active");
    msgpack_pack_false(pk);
    kuint(pk, "depth", 3);
    expect_status_error(fx, GD_E_UNKNOWN_FIELD, "depth");

    pk = raw(fx);
    msgpack_pack_map(pk, 4);
    kstr(pk, "kind", "alarm");
    kuint(pk, "at", 1);
    kstr(pk, "alarm", "poison");
    kstr(pk, "severity", "apocalyptic");
    expect_status_error(fx, GD_E_BAD_VALUE, "severity");

    pk = raw(fx);
    msgpack_pack_map(pk, 5);
    kstr(pk, "kind", "broker");
    kuint(pk, "at", 1);
    key(pk, "db_up");
    msgpack_pack_true(pk);
    key(pk, "active");
    msgpack_pack_false(pk);
    key(pk, "counters");
    msgpack_pack_map(pk, 2);
    kuint(pk, "a", 1);
    kuint(pk, "a", 2);
    expect_status_error(fx, GD_E_DUPLICATE_FIELD, "counters");
}

/* ---- frame-level errors ---- */

static void test_header_that_is_not_gdp1_plus_type_is_bad_header(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    struct gd_decode_error err;
    const uint8_t body[] = {0x80};
    assert_int_equal(gd_decode(fx->d, "GDP1", 4, body, 1, &m, &err), -GD_E_BAD_HEADER);
    assert_int_equal(err.code, GD_E_BAD_HEADER);
    assert_string_equal(err.field, "");
    assert_int_equal(gd_decode(fx->d, "GDP1\x40\x00", 6, body, 1, &m, &err), -GD_E_BAD_HEADER);
    assert_int_equal(gd_decode(fx->d, "GDP2\x40", 5, body, 1, &m, &err), -GD_E_BAD_HEADER);
    assert_int_equal(gd_decode(fx->d, "gdp1\x40", 5, body, 1, &m, &err), -GD_E_BAD_HEADER);
    assert_int_equal(gd_decode(fx->d, "", 0, body, 1, &m, &err), -GD_E_BAD_HEADER);
    assert_int_equal(gd_decode(fx->d, "GDP1\x40", 5, body, 1, &m, &err), 0);
}

static void test_type_byte_outside_the_enum_is_unknown_type(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    struct gd_decode_error err;
    const uint8_t body[] = {0x80};
    unsigned known = 0;
    for (unsigned t = 0; t < 256; t++) {
        uint8_t h[5] = {'G', 'D', 'P', '1', (uint8_t)t};
        int r = gd_decode(fx->d, h, 5, body, 1, &m, &err);
        if (gd_type_name((enum gd_type)t) == NULL) {
            assert_int_equal(r, -GD_E_UNKNOWN_TYPE);
            assert_int_equal(err.code, GD_E_UNKNOWN_TYPE);
        } else {
            known++;
            assert_int_not_equal(r, -GD_E_UNKNOWN_TYPE);
        }
    }
    assert_int_equal(known, GD_SAMPLE_N_TYPES);
}

static void test_body_larger_than_max_body_is_too_large(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    struct gd_decode_error err;
    size_t len = GD_MAX_BODY + 1;
    uint8_t *body = calloc(1, len);
    assert_non_null(body);
    body[0] = 0x80;
    assert_int_equal(decode_raw(fx, GD_T_HEARTBEAT, body, len, &m, &err), -GD_E_TOO_LARGE);
    assert_int_equal(err.code, GD_E_TOO_LARGE);
    free(body);
}

static void every_prefix_is_truncated(struct fx *fx, const struct gd_msg *m)
{
    struct gd_msg out;
    struct gd_decode_error err;
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(m, &fx->buf), 0);
    for (size_t n = 0; n < fx->buf.len; n++) {
        /* a private copy of exactly n bytes, so valgrind/ASan see overreads */
        char *cut = malloc(n ? n : 1);
        assert_non_null(cut);
        memcpy(cut, fx->buf.data, n);
        int r = decode_raw(fx, m->type, cut, n, &out, &err);
        free(cut);
        if (r != -GD_E_TRUNCATED)
            fail_msg("%s cut at %zu of %zu: got %d", gd_type_name(m->type), n, fx->buf.len, r);
    }
    assert_int_equal(decode_raw(fx, m->type, fx->buf.data, fx->buf.len, &out, &err), 0);
}

static void test_every_prefix_of_a_valid_body_is_truncated(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    gd_sample_full(GD_T_SUBMIT, &m);
    every_prefix_is_truncated(fx, &m);
    gd_sample_full(GD_T_DELIVER, &m);
    every_prefix_is_truncated(fx, &m);
    gd_sample_full(GD_T_INCIDENT, &m);
    every_prefix_is_truncated(fx, &m);
    gd_sample_full(GD_T_GAUGES, &m);
    every_prefix_is_truncated(fx, &m);
}

static void test_bytes_after_the_body_map_are_malformed(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 0);
    msgpack_pack_nil(pk);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_MALFORMED, "");
    pk = raw(fx);
    msgpack_pack_map(pk, 0);
    msgpack_pack_map(pk, 0);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_MALFORMED, "");
}

static void test_reserved_byte_c1_is_malformed(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "reason");
    msgpack_sbuffer_write(&fx->sb, "\xc1", 1);
    expect_error(fx, GD_T_BYE, GD_E_MALFORMED, "");
    raw(fx);
    msgpack_sbuffer_write(&fx->sb, "\xc1", 1);
    expect_error(fx, GD_T_BYE, GD_E_MALFORMED, "");
}

static void test_body_that_is_not_a_map_is_not_map(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_array(pk, 0);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_NOT_MAP, "");
    pk = raw(fx);
    msgpack_pack_str_with_body(pk, "hello", 5);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_NOT_MAP, "");
    pk = raw(fx);
    msgpack_pack_nil(pk);
    expect_error(fx, GD_T_HEARTBEAT, GD_E_NOT_MAP, "");
}

static void test_nesting_beyond_max_depth_is_too_deep(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    /* body map (1) > location map (2) > array (3) > array (4) > array (5) */
    msgpack_pack_map(pk, 1);
    key(pk, "location");
    msgpack_pack_map(pk, 1);
    key(pk, "unit");
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 0);
    expect_error(fx, GD_T_SUBMIT, GD_E_TOO_DEEP, "");

    /* depth 4 passes the scan and fails on the field's type instead */
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "location");
    msgpack_pack_map(pk, 1);
    key(pk, "unit");
    msgpack_pack_array(pk, 1);
    msgpack_pack_array(pk, 0);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "location.unit");
}

static void test_array_header_claiming_huge_count_is_refused_before_allocation(void **state)
{
    struct fx *fx = *state;
    /* {"attachments": array32 of 4294967295}: 18 bytes that would make
     * msgpack-c ask for ~100 GB */
    const uint8_t huge_array[] = {0x81, 0xab, 'a', 't', 't',  'a',  'c',  'h',  'm',
                                  'e',  'n',  't', 's', 0xdd, 0xff, 0xff, 0xff, 0xff};
    const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    const uint8_t plausible_array[] = {0x81, 0xa1, 'x', 0xdc, 0x03, 0xe8, 0xc0, 0xc0};
    const uint8_t plausible_map[] = {0x81, 0xa1, 'x', 0x8f, 0xc0};
    const uint8_t huge_str[] = {0x81, 0xa1, 'x', 0xdb, 0xff, 0xff, 0xff, 0xff, 'a'};
    const uint8_t huge_bin[] = {0x81, 0xa1, 'x', 0xc6, 0x7f, 0xff, 0xff, 0xff};
    const uint8_t huge_ext[] = {0x81, 0xa1, 'x', 0xc9, 0x00, 0x01, 0x00, 0x00, 0x05};
    struct gd_msg m;
    struct gd_decode_error err;

    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, huge_array, sizeof(huge_array), &m, &err),
                     -GD_E_TOO_MANY);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, huge_map, sizeof(huge_map), &m, &err),
                     -GD_E_TOO_MANY);
    /* within the per-container limit, but more elements than bytes left */
    assert_int_equal(
        decode_raw(fx, GD_T_SUBMIT, plausible_array, sizeof(plausible_array), &m, &err),
        -GD_E_TRUNCATED);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, plausible_map, sizeof(plausible_map), &m, &err),
                     -GD_E_TRUNCATED);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, huge_str, sizeof(huge_str), &m, &err),
                     -GD_E_TRUNCATED);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, huge_bin, sizeof(huge_bin), &m, &err),
                     -GD_E_TRUNCATED);
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, huge_ext, sizeof(huge_ext), &m, &err),
                     -GD_E_TRUNCATED);
}

static void test_map_with_more_than_max_keys_is_too_many(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, GD_MAX_MAP_KEYS + 1);
    for (int i = 0; i <= GD_MAX_MAP_KEYS; i++) {
        char k[8];
        snprintf(k, sizeof(k), "k%d", i);
        kuint(pk, k, 1);
    }
    expect_error(fx, GD_T_SUBMIT, GD_E_TOO_MANY, "");
}

static void pack_str_array(msgpack_packer *pk, const char *k, unsigned n, const char *item)
{
    key(pk, k);
    msgpack_pack_array(pk, n);
    for (unsigned i = 0; i < n; i++)
        msgpack_pack_str_with_body(pk, item, strlen(item));
}

static void test_arrays_beyond_their_field_limit_are_too_many(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    pack_str_array(pk, "attachments", GD_MAX_ATTACHMENTS + 1, "u");
    expect_error(fx, GD_T_SUBMIT, GD_E_TOO_MANY, "attachments");

    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "role", "worker");
    kuint(pk, "credit", 1);
    pack_str_array(pk, "queues", GD_MAX_QUEUES + 1, "q");
    expect_error(fx, GD_T_HELLO, GD_E_TOO_MANY, "queues");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "role", "sla");
    pack_str_array(pk, "shard", GD_MAX_SHARD + 1, "t");
    expect_error(fx, GD_T_HELLO, GD_E_TOO_MANY, "shard");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    key(pk, "incident");
    msgpack_pack_map(pk, 5);
    kuint(pk, "id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "state", "QUEUED");
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "events");
    msgpack_pack_array(pk, GD_MAX_EVENTS + 1);
    for (int i = 0; i <= GD_MAX_EVENTS; i++)
        msgpack_pack_map(pk, 0);
    expect_error(fx, GD_T_INCIDENT, GD_E_TOO_MANY, "events");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "at", 1);
    key(pk, "gauges");
    msgpack_pack_array(pk, GD_MAX_GAUGES + 1);
    for (int i = 0; i <= GD_MAX_GAUGES; i++)
        msgpack_pack_nil(pk);
    expect_error(fx, GD_T_GAUGES, GD_E_TOO_MANY, "");
}

static void test_string_beyond_its_field_limit_is_too_long(void **state)
{
    struct fx *fx = *state;
    char big[GD_MAX_DESCRIPTION + 2];
    memset(big, 'a', sizeof(big));
    big[sizeof(big) - 1] = '\0';
    static const struct {
        const char *key;
        size_t max;
    } top[] = {{"external_id", GD_MAX_EXTERNAL_ID},
               {"category", GD_MAX_CODE},
               {"description", GD_MAX_DESCRIPTION}};
    for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++) {
        for (int over = 0; over <= 1; over++) {
            msgpack_packer *pk = raw(fx);
            msgpack_pack_map(pk, 3);
            kstr(pk, "source", "app");
            if (strcmp(top[i].key, "external_id") != 0)
                kstr(pk, "external_id", "1");
            else
                kstr(pk, "category", "c");
            key(pk, top[i].key);
            msgpack_pack_str_with_body(pk, big, top[i].max + (size_t)over);
            if (over) {
                expect_error(fx, GD_T_SUBMIT, GD_E_TOO_LONG, top[i].key);
            } else {
                struct gd_msg m;
                expect_ok(fx, GD_T_SUBMIT, &m);
            }
        }
    }
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "reporter");
    msgpack_pack_map(pk, 1);
    key(pk, "phone");
    msgpack_pack_str_with_body(pk, big, GD_MAX_PHONE + 1);
    expect_error(fx, GD_T_SUBMIT, GD_E_TOO_LONG, "reporter.phone");

    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "attachments");
    msgpack_pack_array(pk, 2);
    msgpack_pack_str_with_body(pk, big, 3);
    msgpack_pack_str_with_body(pk, big, GD_MAX_URL + 1);
    expect_error(fx, GD_T_SUBMIT, GD_E_TOO_LONG, "attachments[1]");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "code", "denied");
    key(pk, "message");
    msgpack_pack_str_with_body(pk, big, GD_MAX_TEXT + 1);
    expect_error(fx, GD_T_REJECTED, GD_E_TOO_LONG, "message");
}

/* One field of SUBMIT given a value of the wrong msgpack type. */
static void submit_with(struct fx *fx, const char *k, void (*pack)(msgpack_packer *))
{
    msgpack_packer *pk = raw(fx);
    bool own_source = strcmp(k, "source") == 0, own_ext = strcmp(k, "external_id") == 0;
    msgpack_pack_map(pk, 1 + !own_source + !own_ext);
    if (!own_source)
        kstr(pk, "source", "app");
    if (!own_ext)
        kstr(pk, "external_id", "1");
    key(pk, k);
    pack(pk);
}

static void pack_str_x(msgpack_packer *pk)
{
    msgpack_pack_str_with_body(pk, "x", 1);
}
static void pack_int_1(msgpack_packer *pk)
{
    msgpack_pack_int(pk, 1);
}
static void pack_true(msgpack_packer *pk)
{
    msgpack_pack_true(pk);
}
static void pack_nil(msgpack_packer *pk)
{
    msgpack_pack_nil(pk);
}
static void pack_float(msgpack_packer *pk)
{
    msgpack_pack_double(pk, 1.5);
}
static void pack_bin(msgpack_packer *pk)
{
    msgpack_pack_bin_with_body(pk, "x", 1);
}
static void pack_empty_array(msgpack_packer *pk)
{
    msgpack_pack_array(pk, 0);
}
static void pack_empty_map(msgpack_packer *pk)
{
    msgpack_pack_map(pk, 0);
}

static void test_field_of_the_wrong_msgpack_type_is_wrong_type(void **state)
{
    struct fx *fx = *state;
    /* uint64 */
    submit_with(fx, "ref", pack_str_x);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "ref");
    submit_with(fx, "ref", pack_float);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "ref");
    /* time */
    submit_with(fx, "reported_at", pack_true);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "reported_at");
    /* string */
    submit_with(fx, "source", pack_int_1);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "source");
    submit_with(fx, "description", pack_bin);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "description");
    submit_with(fx, "category", pack_nil);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "category");
    /* enum */
    submit_with(fx, "priority", pack_int_1);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "priority");
    /* map */
    submit_with(fx, "location", pack_empty_array);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "location");
    /* array of strings */
    submit_with(fx, "attachments", pack_empty_map);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "attachments");
    submit_with(fx, "attachments", pack_str_x);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "attachments");

    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "attachments");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 3);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "attachments[0]");
    /* float */
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "location");
    msgpack_pack_map(pk, 2);
    kstr(pk, "lat", "29.4");
    key(pk, "lon");
    msgpack_pack_double(pk, 106.5);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "location.lat");
    /* bool */
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "incident_id", 1);
    kuint(pk, "satisfied", 1);
    expect_error(fx, GD_T_FEEDBACK, GD_E_WRONG_TYPE, "satisfied");
    /* uint32 */
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kstr(pk, "credit", "5");
    expect_error(fx, GD_T_CREDIT, GD_E_WRONG_TYPE, "credit");
    /* array of records, and a record that is not a map */
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "at", 1);
    kstr(pk, "gauges", "all");
    expect_error(fx, GD_T_GAUGES, GD_E_WRONG_TYPE, "gauges");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "at", 1);
    key(pk, "gauges");
    msgpack_pack_array(pk, 1);
    msgpack_pack_int(pk, 1);
    expect_error(fx, GD_T_GAUGES, GD_E_WRONG_TYPE, "gauges[0]");
    /* a key that is not a string */
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    msgpack_pack_int(pk, 1);
    msgpack_pack_int(pk, 1);
    expect_error(fx, GD_T_SUBMIT, GD_E_WRONG_TYPE, "");
}

static void test_unknown_field_is_refused_and_named(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    kstr(pk, "colour", "red");
    expect_error(fx, GD_T_SUBMIT, GD_E_UNKNOWN_FIELD, "colour");

    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "location");
    msgpack_pack_map(pk, 1);
    kuint(pk, "altitude", 300);
    expect_error(fx, GD_T_SUBMIT, GD_E_UNKNOWN_FIELD, "location.altitude");

    /* a key from the peer is cleaned before it is reported */
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "bad key\n", 1);
    expect_error(fx, GD_T_SUBMIT, GD_E_UNKNOWN_FIELD, "bad?key?");

    /* however long the key, the reported path fits a REJECTED reply */
    char longkey[101];
    memset(longkey, 'k', 100);
    longkey[100] = '\0';
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "delivery_id", 1);
    key(pk, "incident");
    msgpack_pack_map(pk, 1);
    key(pk, "location");
    msgpack_pack_map(pk, 1);
    kuint(pk, longkey, 1);
    struct gd_msg m;
    struct gd_decode_error err;
    assert_int_equal(decode_raw(fx, GD_T_DELIVER, fx->sb.data, fx->sb.size, &m, &err),
                     -GD_E_UNKNOWN_FIELD);
    assert_true(strncmp(err.field, "incident.location.kkkk", 22) == 0);
    assert_true(strlen(err.field) <= GD_MAX_NAME);
    struct gd_msg reply = {.type = GD_T_ERR};
    reply.u.error = (struct gd_error_reply){
        .code = err.code, .message = GD_STR("unknown field"), .field = gd_str_c(err.field)};
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&reply, &fx->buf), 0);

    /* a SUBMIT-only field in FEEDBACK */
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kuint(pk, "incident_id", 1);
    key(pk, "satisfied");
    msgpack_pack_true(pk);
    kstr(pk, "source", "app");
    expect_error(fx, GD_T_FEEDBACK, GD_E_UNKNOWN_FIELD, "source");
}

static void test_duplicate_field_is_refused(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    kstr(pk, "source", "app");
    expect_error(fx, GD_T_SUBMIT, GD_E_DUPLICATE_FIELD, "source");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    key(pk, "incident");
    msgpack_pack_map(pk, 6);
    kuint(pk, "id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "state", "QUEUED");
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    kuint(pk, "id", 2);
    kuint(pk, "delivery_id", 1);
    expect_error(fx, GD_T_DELIVER, GD_E_DUPLICATE_FIELD, "incident.id");
}

/* Removes one required key from a minimal message and expects it named. */
static void test_missing_required_field_is_named(void **state)
{
    struct fx *fx = *state;
    static const struct {
        enum gd_type type;
        const char *field;
    } cases[] = {
        {GD_T_SUBMIT, "source"},        {GD_T_SUBMIT, "external_id"},
        {GD_T_QUERY, "incident_id"},    {GD_T_FEEDBACK, "incident_id"},
        {GD_T_FEEDBACK, "satisfied"},   {GD_T_DISPATCH, "incident_id"},
        {GD_T_DISPATCH, "version"},     {GD_T_DISPATCH, "unit"},
        {GD_T_APPROVE, "incident_id"},  {GD_T_APPROVE, "version"},
        {GD_T_APPROVE, "approve"},
        {GD_T_ACCEPTED, "incident_id"}, {GD_T_ACCEPTED, "version"},
        {GD_T_ACCEPTED, "state"},       {GD_T_REJECTED, "code"},
        {GD_T_REJECTED, "message"},     {GD_T_ERR, "code"},
        {GD_T_DENIED, "message"},       {GD_T_BUSY, "retry_ms"},
        {GD_T_INCIDENT, "incident"},    {GD_T_GAUGES, "at"},
        {GD_T_DONE, "incident_id"},     {GD_T_DONE, "version"},
        {GD_T_HELLO, "role"},           {GD_T_HELLO, "queues"},
        {GD_T_HELLO, "credit"},         {GD_T_CREDIT, "credit"},
        {GD_T_SIGN, "incident_id"},     {GD_T_SIGN, "delivery_id"},
        {GD_T_PROGRESS, "version"},     {GD_T_RESOLVE, "incident_id"},
        {GD_T_EXTEND, "until"},         {GD_T_EXTEND, "reason"},
        {GD_T_RETURN, "reason"},        {GD_T_WARN, "kind"},
        {GD_T_ESCALATE, "version"},     {GD_T_WELCOME, "session"},
        {GD_T_WELCOME, "heartbeat_ms"}, {GD_T_WELCOME, "liveness"},
        {GD_T_DELIVER, "delivery_id"},  {GD_T_DELIVER, "incident"},
        {GD_T_OK, "incident_id"},       {GD_T_OK, "version"},
        {GD_T_DEADLINE, "kind"},        {GD_T_DEADLINE, "due_at"},
        {GD_T_CLEAR, "kind"},           {GD_T_SYNCED, "count"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct gd_msg m, out;
        struct gd_decode_error err = {.code = GD_OK};
        gd_sample_min(cases[i].type, &m);
        gd_buf_reset(&fx->buf);
        assert_int_equal(gd_encode(&m, &fx->buf), 0);

        /* rebuild the body without the key, copying every other entry */
        msgpack_zone z;
        msgpack_object o;
        size_t off = 0;
        assert_true(msgpack_zone_init(&z, 4096));
        assert_int_equal(msgpack_unpack(fx->buf.data, fx->buf.len, &off, &z, &o),
                         MSGPACK_UNPACK_SUCCESS);
        msgpack_packer *pk = raw(fx);
        uint32_t kept = 0;
        for (uint32_t j = 0; j < o.via.map.size; j++) {
            const msgpack_object_str *k = &o.via.map.ptr[j].key.via.str;
            if (k->size != strlen(cases[i].field) || memcmp(k->ptr, cases[i].field, k->size))
                kept++;
        }
        /* SIGN: "delivery_id" is required only without "version"; drop both */
        bool sign = cases[i].type == GD_T_SIGN && strcmp(cases[i].field, "delivery_id") == 0;
        msgpack_pack_map(pk, kept);
        for (uint32_t j = 0; j < o.via.map.size; j++) {
            const msgpack_object_str *k = &o.via.map.ptr[j].key.via.str;
            if (k->size == strlen(cases[i].field) && !memcmp(k->ptr, cases[i].field, k->size))
                continue;
            msgpack_pack_object(pk, o.via.map.ptr[j].key);
            msgpack_pack_object(pk, o.via.map.ptr[j].val);
        }
        msgpack_zone_destroy(&z);
        assert_true(kept < o.via.map.size);
        int r = decode_raw(fx, cases[i].type, fx->sb.data, fx->sb.size, &out, &err);
        const char *want = sign ? "version" : cases[i].field;
        if (r != -GD_E_MISSING_FIELD || strcmp(err.field, want) != 0)
            fail_msg("%s without %s: got %d on \"%s\"", gd_type_name(cases[i].type), cases[i].field,
                     r, err.field);
    }
}

static void test_lat_without_lon_is_missing_lon(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "location");
    msgpack_pack_map(pk, 1);
    key(pk, "lat");
    msgpack_pack_double(pk, 29.5);
    expect_error(fx, GD_T_SUBMIT, GD_E_MISSING_FIELD, "location.lon");
}

/* located_by names a way of locating or is absent; anything else is
 * refused by both the encoder and the decoder. */
static void test_located_by_is_given_position_address_or_absent(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    gd_sample_full(GD_T_INCIDENT, &m);
    m.u.incident.incident.located_by = GD_STR("guessed");
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);

    struct gd_status_transition t = gd_sample_transitions[1];
    t.located_by = GD_STR("Position");
    struct gd_buf items = {0};
    assert_int_equal(gd_encode_transition(&t, &items), -GD_E_BAD_VALUE);
    gd_buf_fini(&items);

    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "kind", "transitions");
    key(pk, "items");
    msgpack_pack_array(pk, 1);
    msgpack_pack_map(pk, 8);
    kstr(pk, "topic", "inc.triage");
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1);
    kuint(pk, "at", 1);
    kstr(pk, "event", "receive");
    kstr(pk, "from", "RECEIVED");
    kstr(pk, "to", "QUEUED");
    kstr(pk, "located_by", "gps");
    expect_status_error(fx, GD_E_BAD_VALUE, "items[0].located_by");
}

static void test_refusal_carries_the_ref_of_a_readable_body(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    struct gd_decode_error err = {.code = GD_OK};
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "ref", 4242);
    kstr(pk, "source", "app");
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, fx->sb.data, fx->sb.size, &m, &err),
                     -GD_E_MISSING_FIELD);
    assert_int_equal(err.ref, 4242);
    /* a truncated body has no readable ref */
    err.ref = 7;
    assert_int_equal(decode_raw(fx, GD_T_SUBMIT, fx->sb.data, fx->sb.size - 1, &m, &err),
                     -GD_E_TRUNCATED);
    assert_int_equal(err.ref, 0);
}

static void test_query_names_an_incident_one_way(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kstr(pk, "source", "app");
    expect_error(fx, GD_T_QUERY, GD_E_MISSING_FIELD, "external_id");
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kstr(pk, "external_id", "x");
    expect_error(fx, GD_T_QUERY, GD_E_MISSING_FIELD, "source");
    pk = raw(fx);
    msgpack_pack_map(pk, 0);
    expect_error(fx, GD_T_QUERY, GD_E_MISSING_FIELD, "incident_id");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "incident_id", 4);
    kstr(pk, "source", "app");
    expect_error(fx, GD_T_QUERY, GD_E_BAD_VALUE, "source");
}

static void test_hello_rules_depend_on_the_role(void **state)
{
    struct fx *fx = *state;
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "role", "worker");
    kuint(pk, "credit", 0);
    pack_str_array(pk, "queues", 1, "q");
    expect_error(fx, GD_T_HELLO, GD_E_MISSING_FIELD, "credit");

    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "role", "worker");
    kuint(pk, "credit", GD_MAX_CREDIT + 1);
    pack_str_array(pk, "queues", 1, "q");
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "credit");

    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "role", "worker");
    kuint(pk, "credit", 1);
    pack_str_array(pk, "queues", 0, "q");
    expect_error(fx, GD_T_HELLO, GD_E_MISSING_FIELD, "queues");

    pk = raw(fx);
    msgpack_pack_map(pk, 4);
    kstr(pk, "role", "worker");
    kuint(pk, "credit", 1);
    pack_str_array(pk, "queues", 1, "q");
    pack_str_array(pk, "shard", 1, "t");
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "shard");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "role", "sla");
    pack_str_array(pk, "queues", 1, "q");
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "queues");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "role", "sla");
    kuint(pk, "credit", 3);
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "credit");

    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "role", "worker");
    pack_str_array(pk, "queues", 1, "");
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "queues[0]");
}

static void test_bad_values_are_refused(void **state)
{
    struct fx *fx = *state;
    static const struct {
        const char *key;
        const char *value;
    } submit_strs[] = {
        {"source", "Hotline"},                           /* upper case */
        {"source", "hot line"},                          /* space */
        {"source", ""},                                  /* required and empty */
        {"source", "abcdefghijklmnopqrstuvwxyz0123456"}, /* 33 > 32: too long, see below */
        {"priority", "critical"},                        /* not a priority */
        {"priority", "NORMAL"},                          /* names are case-sensitive */
        {"description", "\xc3\x28"},                     /* invalid UTF-8 */
        {"description", "\xe0\x80\xaf"},                 /* overlong */
        {"description", "\xed\xa0\x80"},                 /* surrogate */
        {"category", "\xf4\x90\x80\x80"},                /* beyond U+10FFFF */
        {"external_id", "\xe4\xb8"},                     /* cut sequence */
    };
    for (size_t i = 0; i < sizeof(submit_strs) / sizeof(submit_strs[0]); i++) {
        msgpack_packer *pk = raw(fx);
        bool src = strcmp(submit_strs[i].key, "source") == 0;
        bool ext = strcmp(submit_strs[i].key, "external_id") == 0;
        msgpack_pack_map(pk, 1 + !src + !ext);
        if (!src)
            kstr(pk, "source", "app");
        if (!ext)
            kstr(pk, "external_id", "1");
        kstr(pk, submit_strs[i].key, submit_strs[i].value);
        expect_error(fx, GD_T_SUBMIT,
                     strlen(submit_strs[i].value) > GD_MAX_CODE ? GD_E_TOO_LONG : GD_E_BAD_VALUE,
                     submit_strs[i].key);
    }

    /* a NUL byte inside a string */
    msgpack_packer *pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "description");
    msgpack_pack_str_with_body(pk, "a\0b", 3);
    expect_error(fx, GD_T_SUBMIT, GD_E_BAD_VALUE, "description");

    /* negative and out-of-range integers never wrap */
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    key(pk, "incident_id");
    msgpack_pack_int64(pk, -1);
    expect_error(fx, GD_T_QUERY, GD_E_BAD_VALUE, "incident_id");
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "incident_id", 0);
    expect_error(fx, GD_T_QUERY, GD_E_MISSING_FIELD, "incident_id");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "incident_id", 0);
    kuint(pk, "version", 1);
    expect_error(fx, GD_T_OK, GD_E_BAD_VALUE, "incident_id");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1ull << 32);
    expect_error(fx, GD_T_OK, GD_E_BAD_VALUE, "version");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kuint(pk, "incident_id", 1);
    key(pk, "version");
    msgpack_pack_int(pk, -3);
    expect_error(fx, GD_T_OK, GD_E_BAD_VALUE, "version");
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "reported_at");
    msgpack_pack_int64(pk, -1000);
    expect_error(fx, GD_T_SUBMIT, GD_E_BAD_VALUE, "reported_at");
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    kuint(pk, "reported_at", UINT64_MAX);
    expect_error(fx, GD_T_SUBMIT, GD_E_BAD_VALUE, "reported_at");
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kuint(pk, "credit", GD_MAX_CREDIT + 1);
    expect_error(fx, GD_T_CREDIT, GD_E_BAD_VALUE, "credit");
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kuint(pk, "session", 1);
    kuint(pk, "heartbeat_ms", 0);
    kuint(pk, "liveness", 3);
    expect_error(fx, GD_T_WELCOME, GD_E_BAD_VALUE, "heartbeat_ms");

    /* enum names of every kind */
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "code", "ok"); /* success is not an error code */
    kstr(pk, "message", "m");
    expect_error(fx, GD_T_ERR, GD_E_BAD_VALUE, "code");
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    kstr(pk, "code", "TOO_LONG");
    kstr(pk, "message", "m");
    expect_error(fx, GD_T_ERR, GD_E_BAD_VALUE, "code");
    pk = raw(fx);
    msgpack_pack_map(pk, 1);
    kstr(pk, "role", "admin");
    expect_error(fx, GD_T_HELLO, GD_E_BAD_VALUE, "role");
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "kind", "lunch");
    expect_error(fx, GD_T_ESCALATE, GD_E_BAD_VALUE, "kind");
    pk = raw(fx);
    msgpack_pack_map(pk, 3);
    kuint(pk, "incident_id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "state", "DONE");
    expect_error(fx, GD_T_ACCEPTED, GD_E_BAD_VALUE, "state");

    /* coordinates: range and finiteness */
    static const double bad_lat[] = {90.0001, -91, NAN, INFINITY};
    for (size_t i = 0; i < sizeof(bad_lat) / sizeof(bad_lat[0]); i++) {
        pk = raw(fx);
        msgpack_pack_map(pk, 3);
        kstr(pk, "source", "app");
        kstr(pk, "external_id", "1");
        key(pk, "location");
        msgpack_pack_map(pk, 2);
        key(pk, "lat");
        msgpack_pack_double(pk, bad_lat[i]);
        key(pk, "lon");
        msgpack_pack_double(pk, 0);
        expect_error(fx, GD_T_SUBMIT, GD_E_BAD_VALUE, "location.lat");
    }

    /* an event inside an INCIDENT reply */
    pk = raw(fx);
    msgpack_pack_map(pk, 2);
    key(pk, "incident");
    msgpack_pack_map(pk, 5);
    kuint(pk, "id", 1);
    kuint(pk, "version", 1);
    kstr(pk, "state", "QUEUED");
    kstr(pk, "source", "app");
    kstr(pk, "external_id", "1");
    key(pk, "events");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 5);
    kuint(pk, "version", 1);
    kuint(pk, "at", 1);
    kstr(pk, "kind", "receive");
    kstr(pk, "from", "RECEIVED");
    kstr(pk, "to", "QUEUED");
    msgpack_pack_map(pk, 5);
    kuint(pk, "version", 2);
    kuint(pk, "at", 2);
    kstr(pk, "kind", "teleport");
    kstr(pk, "from", "QUEUED");
    kstr(pk, "to", "QUEUED");
    expect_error(fx, GD_T_INCIDENT, GD_E_BAD_VALUE, "events[1].kind");
}

/* ---- encoder ---- */

static void test_encoder_refuses_what_the_decoder_would_refuse_and_keeps_the_buffer(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m;
    char big[GD_MAX_TEXT + 1];
    memset(big, 'x', sizeof(big));

    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&(struct gd_msg){.type = GD_T_HEARTBEAT}, &fx->buf), 0);
    size_t before = fx->buf.len;

    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.source = GD_STR("Bad Source");
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    assert_int_equal(fx->buf.len, before);

    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.description = GD_STR("\xff");
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.reporter.name = gd_str_make(big, GD_MAX_NAME + 1);
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_TOO_LONG);
    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.n_attachments = GD_MAX_ATTACHMENTS + 1;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_TOO_MANY);
    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.priority = (enum gd_priority)7;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.location.lat = 200;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_SUBMIT, &m);
    m.u.submit.reported_at = -5;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_RETURN, &m);
    m.u.command.text = GD_STR_NULL; /* reason is required */
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_SIGN, &m);
    m.u.command.version = 0;
    m.u.command.delivery_id = 0;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_MISSING_FIELD);
    gd_sample_full(GD_T_HELLO, &m);
    m.u.hello.credit = GD_MAX_CREDIT + 1;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_REJECTED, &m);
    m.u.error.code = GD_OK;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    gd_sample_full(GD_T_INCIDENT, &m);
    m.u.incident.events = NULL;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_BAD_VALUE);
    m.type = (enum gd_type)99;
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_UNKNOWN_TYPE);
    assert_int_equal(fx->buf.len, before);
    assert_int_equal((uint8_t)fx->buf.data[0], 0x80);
}

static void test_encoder_fails_too_large_beyond_max_body_and_keeps_the_buffer(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m = {.type = GD_T_GAUGES};
    size_t n = GD_MAX_GAUGES;
    struct gd_gauge *g = calloc(n, sizeof(*g));
    assert_non_null(g);
    for (size_t i = 0; i < n; i++)
        g[i] = (struct gd_gauge){
            .queue = GD_STR("500113002001001.livelihood"), .depth = 100000, .in_rate = 1.5};
    m.u.gauges = (struct gd_gauges){.at = 1, .n_gauges = (uint32_t)n, .gauges = g};
    gd_buf_reset(&fx->buf);
    gd_buf_fini(&fx->buf);
    assert_int_equal(gd_encode(&m, &fx->buf), -GD_E_TOO_LARGE);
    assert_int_equal(fx->buf.len, 0);
    assert_true(fx->buf.cap <= GD_MAX_BODY);

    /* the limit applies to the body, not to what the buffer held before */
    m.u.gauges.n_gauges = 100;
    char prefix[100] = {0};
    gd_buf_reset(&fx->buf);
    assert_int_equal(gd_encode(&(struct gd_msg){.type = GD_T_HEARTBEAT}, &fx->buf), 0);
    (void)prefix;
    assert_int_equal(gd_encode(&m, &fx->buf), 0);
    assert_true(fx->buf.len > 1);
    free(g);
}

static void test_decoder_is_reusable_across_many_messages(void **state)
{
    struct fx *fx = *state;
    struct gd_msg m, out;
    for (int round = 0; round < 200; round++) {
        enum gd_type t = gd_sample_types[(size_t)round % GD_SAMPLE_N_TYPES];
        round_trip(fx, &m, gd_sample_full(t, &m), &out);
        /* and a failure between successes leaves the decoder usable */
        assert_int_equal(decode_raw(fx, t, "\x81", 1, &out, NULL), -GD_E_TRUNCATED);
    }
}

/* ---- names and strings ---- */

static void test_every_enum_value_has_a_wire_name_that_parses_back(void **state)
{
    (void)state;
    for (int i = 0; i < GD_PRIO_COUNT; i++)
        assert_int_equal(gd_priority_parse(gd_str_c(gd_priority_name((enum gd_priority)i))), i);
    for (int i = 0; i < GD_LEVEL_COUNT; i++)
        assert_int_equal(gd_level_parse(gd_str_c(gd_level_name((enum gd_level)i))), i);
    for (int i = 0; i < GD_ST_COUNT; i++)
        assert_int_equal(gd_state_parse(gd_str_c(gd_state_name((enum gd_state)i))), i);
    for (int i = 0; i < GD_CODE_COUNT; i++) {
        const char *n = gd_code_name((enum gd_code)i);
        assert_non_null(n);
        for (const char *p = n; *p; p++)
            assert_true((*p >= 'a' && *p <= 'z') || *p == '_');
        assert_non_null(gd_code_message((enum gd_code)i));
    }
    for (int i = 0; i < GD_EV_COUNT; i++)
        assert_non_null(gd_event_kind_name((enum gd_event_kind)i));
    assert_string_equal(gd_code_name(GD_E_STALE_VERSION), "stale_version");
    assert_string_equal(gd_code_name(GD_E_TOO_LONG), "too_long");
    assert_string_equal(gd_type_name(GD_T_SUBMIT), "SUBMIT");
    assert_string_equal(gd_priority_name(GD_PRIO_URGENT), "urgent");
    assert_string_equal(gd_level_name(GD_LEVEL_MICRO_GRID), "micro_grid");
    assert_string_equal(gd_state_name(GD_ST_IN_PROGRESS), "IN_PROGRESS");
    assert_string_equal(gd_role_name(GD_ROLE_SLA), "sla");
    assert_string_equal(gd_deadline_kind_name(GD_DL_RESOLVE), "resolve");
    assert_string_equal(gd_event_kind_name(GD_EV_ESCALATE), "escalate");
    assert_string_equal(gd_status_kind_name(GD_STATUS_TRANSITIONS), "transitions");
    assert_null(gd_code_name(GD_CODE_COUNT));
    assert_null(gd_state_name(GD_ST_COUNT));
    assert_null(gd_type_name((enum gd_type)8));
    assert_int_equal(gd_priority_parse(GD_STR("normal\0")), -1);
    assert_int_equal(gd_level_parse(GD_STR("")), -1);
    assert_int_equal(gd_state_parse(GD_STR_NULL), -1);
}

static void test_utf8_validation(void **state)
{
    (void)state;
    assert_true(gd_utf8_valid(GD_STR("")));
    assert_true(gd_utf8_valid(GD_STR("plain ascii, long enough for the word loop")));
    assert_true(gd_utf8_valid(GD_STR(GD_SAMPLE_DESC_ZH)));
    assert_true(gd_utf8_valid(GD_STR("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf")));
    assert_true(gd_utf8_valid(GD_STR("\xf0\x90\x80\x80 \xf4\x8f\xbf\xbf 😀")));
    assert_false(gd_utf8_valid(GD_STR("\x80")));
    assert_false(gd_utf8_valid(GD_STR("\xc0\xaf"))); /* overlong '/' */
    assert_false(gd_utf8_valid(GD_STR("\xc1\xbf")));
    assert_false(gd_utf8_valid(GD_STR("\xe0\x9f\xbf")));     /* overlong */
    assert_false(gd_utf8_valid(GD_STR("\xed\xbf\xbf")));     /* surrogate */
    assert_false(gd_utf8_valid(GD_STR("\xf0\x8f\xbf\xbf"))); /* overlong */
    assert_false(gd_utf8_valid(GD_STR("\xf4\x90\x80\x80"))); /* > U+10FFFF */
    assert_false(gd_utf8_valid(GD_STR("\xf5\x80\x80\x80")));
    assert_false(gd_utf8_valid(GD_STR("\xff")));
    assert_false(gd_utf8_valid(GD_STR("abc\xe4\xb8"))); /* cut at the end */
    assert_false(gd_utf8_valid(GD_STR("abc\xe4\xb8x")));
    assert_false(gd_utf8_valid(GD_STR("0123456789abcde\0"))); /* NUL in the word loop */
    assert_false(gd_utf8_valid(GD_STR("a\0")));
    assert_true(gd_str_eq(GD_STR("ab"), gd_str_c("ab")));
    assert_true(gd_str_eq(GD_STR_NULL, GD_STR("")));
    assert_false(gd_str_eq_c(GD_STR("ab"), "abc"));
    assert_true(gd_str_eq_c(GD_STR_NULL, NULL));
}

/* An independent, obviously-correct validator: decode each code point and
 * check it against the Unicode rules. */
static bool reference_utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint32_t c = p[i], cp;
        size_t len;
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += len;
    }
    return true;
}

/* Strings of every length up to 100 built from valid characters and
 * random bytes, at every alignment: the vectorised path (32 bytes and up)
 * and the byte loop must both agree with the reference. */
static void test_utf8_validation_agrees_with_a_reference_on_random_input(void **state)
{
    (void)state;
    static const char *const pieces[] = {"a",
                                         "~",
                                         "\xc2\xa9",
                                         "\xdf\xbf",
                                         "\xe4\xb8\xad",
                                         "\xef\xbf\xbd",
                                         "\xf0\x9f\x98\x80",
                                         "\xf4\x8f\xbf\xbf",
                                         "\xed\x9f\xbf",
                                         "\xee\x80\x80"};
    static const uint8_t bad[] = {0x00, 0x80, 0xbf, 0xc0, 0xc1, 0xe0, 0xed, 0xf0,
                                  0xf4, 0xf5, 0xf8, 0xff, 0xa0, 0x90, 0x8f, 0xc2};
    /* each breaks exactly one rule: overlongs, surrogates, beyond U+10FFFF */
    static const char *const bad_pieces[] = {
        "\xc0\x80",         "\xc1\xbf",         "\xe0\x80\x80",
        "\xe0\x9f\xbf",     "\xed\xa0\x80",     "\xed\xbf\xbf",
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf4\x90\x80\x80",
        "\xf4\xbf\xbf\xbf", "\xf5\x80\x80\x80", "\xe4\xb8\xad\x80",
        "\xe4\xb8",         "\xf0\x9f\x98",     "\xc2",
        "\x80\x80"};
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    uint8_t buf[140];
    unsigned valid = 0, invalid = 0;

    for (int round = 0; round < 60000; round++) {
        size_t target = (size_t)(round % 101), n = 0;
        while (n < target) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(seed >> 33);
            if (round % 3 != 0 && r % 97 == 0) {
                buf[n++] = bad[(r >> 8) % sizeof(bad)]; /* a stray byte */
            } else {
                const char *pc = pieces[(r >> 8) % (sizeof(pieces) / sizeof(pieces[0]))];
                if (round % 3 == 1 && r % 89 == 0)
                    pc = bad_pieces[(r >> 8) % (sizeof(bad_pieces) / sizeof(bad_pieces[0]))];
                size_t l = strlen(pc);
                if (n + l > sizeof(buf))
                    break;
                memcpy(buf + n, pc, l);
                n += l;
            }
        }
        if (round % 5 == 0 && n > 0)
            n--; /* cut the last character */
        bool want = reference_utf8_valid(buf, n);
        bool got = gd_utf8_valid(gd_str_make((const char *)buf, n));
        if (want != got)
            fail_msg("round %d, %zu bytes: reference says %d, gd_utf8_valid %d", round, n, want,
                     got);
        want ? valid++ : invalid++;
    }
    /* the generator must exercise both outcomes */
    assert_true(valid > 10000 && invalid > 10000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_frame_is_gdp1_and_the_type_byte),
        cmocka_unit_test(test_every_message_type_round_trips_with_all_fields_set),
        cmocka_unit_test(test_every_message_type_round_trips_with_only_required_fields),
        cmocka_unit_test(test_submit_round_trips_every_field),
        cmocka_unit_test(test_deliver_and_incident_reply_round_trip_the_whole_incident),
        cmocka_unit_test(test_submits_and_submitted_round_trip_item_by_item),
        cmocka_unit_test(test_gauges_round_trip_with_rates),
        cmocka_unit_test(test_sla_hello_carries_shard_and_no_queues),
        cmocka_unit_test(test_query_by_source_and_external_id_round_trips),
        cmocka_unit_test(test_command_text_travels_under_the_key_of_its_message),
        cmocka_unit_test(test_heartbeat_body_is_an_empty_map),
        cmocka_unit_test(test_absent_optional_fields_take_their_defaults),
        cmocka_unit_test(test_decoded_strings_point_into_the_body_buffer),
        cmocka_unit_test(test_integers_may_use_any_msgpack_width),
        cmocka_unit_test(test_every_status_kind_round_trips_full_and_minimal),
        cmocka_unit_test(test_status_body_needs_a_known_kind),
        cmocka_unit_test(test_transitions_built_item_by_item),
        cmocka_unit_test(test_located_by_is_given_position_address_or_absent),
        cmocka_unit_test(test_transitions_batch_is_bounded),
        cmocka_unit_test(test_gauges_built_item_by_item),
        cmocka_unit_test(test_compressed_status_body),
        cmocka_unit_test(test_header_that_is_not_gdp1_plus_type_is_bad_header),
        cmocka_unit_test(test_type_byte_outside_the_enum_is_unknown_type),
        cmocka_unit_test(test_body_larger_than_max_body_is_too_large),
        cmocka_unit_test(test_every_prefix_of_a_valid_body_is_truncated),
        cmocka_unit_test(test_bytes_after_the_body_map_are_malformed),
        cmocka_unit_test(test_reserved_byte_c1_is_malformed),
        cmocka_unit_test(test_body_that_is_not_a_map_is_not_map),
        cmocka_unit_test(test_nesting_beyond_max_depth_is_too_deep),
        cmocka_unit_test(test_array_header_claiming_huge_count_is_refused_before_allocation),
        cmocka_unit_test(test_map_with_more_than_max_keys_is_too_many),
        cmocka_unit_test(test_arrays_beyond_their_field_limit_are_too_many),
        cmocka_unit_test(test_string_beyond_its_field_limit_is_too_long),
        cmocka_unit_test(test_field_of_the_wrong_msgpack_type_is_wrong_type),
        cmocka_unit_test(test_unknown_field_is_refused_and_named),
        cmocka_unit_test(test_duplicate_field_is_refused),
        cmocka_unit_test(test_missing_required_field_is_named),
        cmocka_unit_test(test_submits_refusal_names_the_item),
        cmocka_unit_test(test_submitted_results_are_one_outcome_each),
        cmocka_unit_test(test_submits_from_encoded_items_are_the_bytes_gd_encode_writes),
        cmocka_unit_test(test_submits_overhead_is_exactly_the_worst_case),
        cmocka_unit_test(test_lat_without_lon_is_missing_lon),
        cmocka_unit_test(test_refusal_carries_the_ref_of_a_readable_body),
        cmocka_unit_test(test_query_names_an_incident_one_way),
        cmocka_unit_test(test_hello_rules_depend_on_the_role),
        cmocka_unit_test(test_bad_values_are_refused),
        cmocka_unit_test(test_encoder_refuses_what_the_decoder_would_refuse_and_keeps_the_buffer),
        cmocka_unit_test(test_encoder_fails_too_large_beyond_max_body_and_keeps_the_buffer),
        cmocka_unit_test(test_decoder_is_reusable_across_many_messages),
        cmocka_unit_test(test_every_enum_value_has_a_wire_name_that_parses_back),
        cmocka_unit_test(test_utf8_validation),
        cmocka_unit_test(test_utf8_validation_agrees_with_a_reference_on_random_input),
    };
    return cmocka_run_group_tests_name("proto", tests, setup, teardown);
}
