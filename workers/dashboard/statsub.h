/* statsub.h - the status-endpoint subscription (SUB) and SNAPSHOT requests (DEALER) on a libuv
 * loop. */
#ifndef GD_DASH_STATSUB_H
#define GD_DASH_STATSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gdp.h"

/* One decoded status message. `topic` is not NUL-terminated; both are
 * valid only during the call. */
typedef void (*statsub_status_cb)(void *arg, const char *topic, size_t topic_len,
                                  const struct gd_status *st);
/* One part of a GAUGES reply to our SNAPSHOT (`last` on the final part). */
typedef void (*statsub_gauges_cb)(void *arg, const struct gd_gauges *g, bool last);
/* A status message that could not be decoded (counted, not fatal). */
typedef void (*statsub_error_cb)(void *arg, const char *topic, size_t topic_len,
                                 const struct gd_decode_error *e);

struct statsub_callbacks {
    statsub_status_cb on_status;
    statsub_gauges_cb on_gauges;
    statsub_error_cb on_error;
    void *arg;
};

struct statsub {
    uv_loop_t *loop;
    void *sub; /* SUB on the status endpoint */
    void *req; /* DEALER on the intake endpoint; NULL without one */
    uv_poll_t sub_poll, req_poll;
    uv_idle_t idle;            /* resumes a drain that hit its budget */
    uv_timer_t snapshot_timer; /* resends an unanswered SNAPSHOT */
    struct gd_decoder *dec;
    struct statsub_callbacks cb;
    uint64_t next_ref;
    uint64_t snapshot_ref; /* of the SNAPSHOT waiting for its GAUGES; 0 = none */
    uint64_t snapshots_done;
    bool open;
    int handles_open; /* handles still to be closed by libuv */
};

/* Connects a SUB socket to `status_ep` subscribed to every topic and, when
 * `intake_ep` is not NULL, a DEALER to `intake_ep`, and sends SNAPSHOT
 * (resent every 3 s until answered). Frames over GD_MAX_BODY / topics over
 * GD_MAX_TOPIC are dropped by ZeroMQ (ZMQ_MAXMSGSIZE). Everything runs on
 * `loop`'s thread. Returns 0, or a negative errno with a message in err and
 * nothing left open. */
int statsub_open(struct statsub *s, uv_loop_t *loop, void *zctx, const char *status_ep,
                 const char *intake_ep, const struct statsub_callbacks *cb, char *err,
                 size_t errlen);

/* Sends a new SNAPSHOT (e.g. after the broker restarted); a reply to an
 * older one is then ignored. Does nothing without an intake endpoint. */
void statsub_snapshot(struct statsub *s);

/* Stops and closes everything; `s` must stay allocated until the loop has
 * run once more. Accepts a closed statsub. */
void statsub_close(struct statsub *s);

#endif
