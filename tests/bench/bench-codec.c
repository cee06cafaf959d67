/* bench-codec.c - GDP/1 encode/decode throughput on one core vs raw msgpack_unpack. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <msgpack.h>

#include "gdp.h"

/* A realistic 12345-hotline report: ~100 CJK characters (~300 bytes). */
#define DESC_ZH                                                                                                                         \
    "龙洲湾街道龙海大道幸福小区三栋二单元门口的下水道井盖破损，已有一位老人夜间散步时险些"    \
    "跌倒。井盖周围没有任何警示标志，夜间照明也不足，居民担心再次发生危险，希望有关部门尽快" \
    "派人更换井盖并设置临时围挡。"

struct bench {
    struct gd_decoder *d;
    struct gd_buf buf;
    struct gd_msg msg;
    struct gd_msg out;
    uint8_t header[GD_HEADER_LEN];
    volatile uint64_t sink; /* keeps the compiler from dropping work */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_submit(struct gd_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = GD_T_SUBMIT;
    struct gd_submit *s = &m->u.submit;
    s->ref = 918273;
    s->source = GD_STR("hotline");
    s->external_id = GD_STR("12345-20240601-000123");
    s->category = GD_STR("road.manhole");
    s->priority = GD_PRIO_URGENT;
    s->location = (struct gd_location){.unit = GD_STR("500113002001001"),
                                       .address = GD_STR("重庆市巴南区龙海大道18号幸福小区"),
                                       .has_coords = true,
                                       .lat = 29.402,
                                       .lon = 106.541};
    s->description = GD_STR(DESC_ZH);
    s->reporter = (struct gd_reporter){.name = GD_STR("张三"),
                                       .phone = GD_STR("13800000000"),
                                       .address = GD_STR("幸福小区3栋2单元501")};
    s->reported_at = 1717200000000;
}

static void make_deliver(struct gd_msg *m)
{
    struct gd_msg sub;
    make_submit(&sub);
    memset(m, 0, sizeof(*m));
    m->type = GD_T_DELIVER;
    m->u.deliver.delivery_id = 5550001;
    m->u.deliver.attempt = 1;
    struct gd_incident *in = &m->u.deliver.incident;
    in->id = 20240601000123;
    in->version = 2;
    in->state = GD_ST_DELIVERED;
    in->priority = GD_PRIO_URGENT;
    in->level = GD_LEVEL_GRID;
    in->source = sub.u.submit.source;
    in->external_id = sub.u.submit.external_id;
    in->category = sub.u.submit.category;
    in->queue = GD_STR("500113002001001");
    in->owner = GD_STR("500113002001001");
    in->location = sub.u.submit.location;
    in->description = sub.u.submit.description;
    in->has_reporter = true;
    in->reporter = sub.u.submit.reporter;
    in->reported_at = 1717200000000;
    in->received_at = 1717200001234;
    in->sign_due = 1717203601234;
    in->resolve_due = 1717804801234;
}

enum op { OP_ENCODE, OP_DECODE, OP_ROUND_TRIP, OP_BASELINE };

/* Runs `iters` operations; returns the elapsed seconds. */
static double run(struct bench *b, enum op op, const struct gd_buf *body, long iters)
{
    double t0 = now_s();
    for (long i = 0; i < iters; i++) {
        switch (op) {
        case OP_ENCODE:
            gd_buf_reset(&b->buf);
            if (gd_encode(&b->msg, &b->buf) != 0)
                abort();
            b->sink += b->buf.len;
            break;
        case OP_DECODE:
            if (gd_decode(b->d, b->header, GD_HEADER_LEN, body->data, body->len, &b->out, NULL))
                abort();
            b->sink += b->out.type;
            break;
        case OP_ROUND_TRIP:
            gd_buf_reset(&b->buf);
            if (gd_encode(&b->msg, &b->buf) != 0 ||
                gd_decode(b->d, b->header, GD_HEADER_LEN, b->buf.data, b->buf.len, &b->out, NULL))
                abort();
            b->sink += b->out.type;
            break;
        case OP_BASELINE: {
            /* the raw library: unpack into a fresh zone, no validation */
            msgpack_zone z;
            msgpack_object o;
            size_t off = 0;
            if (!msgpack_zone_init(&z, MSGPACK_ZONE_CHUNK_SIZE))
                abort();
            if (msgpack_unpack(body->data, body->len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS)
                abort();
            b->sink += o.via.map.size;
            msgpack_zone_destroy(&z);
            break;
        }
        }
    }
    return now_s() - t0;
}

/* Best of 5 runs of ~0.3 s each, in operations per second. */
static double rate(struct bench *b, enum op op, const struct gd_buf *body)
{
    long iters = 1000;
    while (run(b, op, body, iters) < 0.05)
        iters *= 2;
    iters *= 6;
    double best = 0;
    for (int r = 0; r < 5; r++) {
        double per_s = (double)iters / run(b, op, body, iters);
        if (per_s > best)
            best = per_s;
    }
    return best;
}

static int bench_one(struct bench *b, const char *name)
{
    struct gd_buf body = {0};
    gd_encode_header(b->msg.type, b->header);
    if (gd_encode(&b->msg, &body) != 0)
        return -1;

    double enc = rate(b, OP_ENCODE, &body);
    double dec = rate(b, OP_DECODE, &body);
    double rt = rate(b, OP_ROUND_TRIP, &body);
    double base = rate(b, OP_BASELINE, &body);

    printf("%-8s body %4zu B  encode %9.0f msg/s  decode %9.0f msg/s  round trip %9.0f msg/s\n",
           name, body.len, enc, dec, rt);
    printf("%-8s baseline (msgpack_unpack, fresh zone, no validation) %9.0f msg/s;"
           " decode costs %.2fx the baseline, round trip %.2fx\n",
           name, base, base / dec, base / rt);
    gd_buf_fini(&body);
    return 0;
}

int main(void)
{
    struct bench b = {0};
    cpu_set_t one;

    /* one core: the broker's loop is single-threaded */
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu() >= 0 ? sched_getcpu() : 0, &one);
    (void)sched_setaffinity(0, sizeof(one), &one);

    b.d = gd_decoder_new();
    if (b.d == NULL)
        return 1;
    make_submit(&b.msg);
    if (bench_one(&b, "SUBMIT") != 0)
        return 1;
    make_deliver(&b.msg);
    if (bench_one(&b, "DELIVER") != 0)
        return 1;
    gd_decoder_free(b.d);
    gd_buf_fini(&b.buf);
    return 0;
}
