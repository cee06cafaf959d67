/* statsub.h - the status-endpoint subscription (SUB) and SNAPSHOT requests (DEALER) on a libuv
 * loop. */
#ifndef GD_DASH_STATSUB_H
#define GD_DASH_STATSUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gdp.h"

/* How long without a `broker` status message (published every gauge
 * period, 1 s by default) before the broker counts as lost. */
#define STATSUB_SILENCE_MS 3000

/* One decoded status message. `topic` is not NUL-terminated; both are
 * valid only during the call. */
typedef void (*statsub_status_cb)(void *arg, const char *topic, size_t topic_len,
                                  const struct gd_status *st);
/* One part of a GAUGES reply to our SNAPSHOT (`last` on the final part). */
typedef void (*statsub_gauges_cb)(void *arg, const struct gd_gauges *g, bool last);
/* A status message that could not be decoded (counted, not fatal). */
typedef void (*statsub_error_cb)(void *arg, const char *topic, size_t topic_len,
                                 const struct gd_decode_error *e);
/* The sockets were made anew after `silent_ms` without a `broker` message;
 * `attempt` counts the remakes since the last one (1 for the first). `err`
 * is NULL, or why the new sockets could not be made (tried again after
 * another silence). */
typedef void (*statsub_resubscribe_cb)(void *arg, uint64_t silent_ms, uint32_t attempt,
                                       const char *err);
/* A `broker` message after a gap in the stream, just handed to on_status:
 * the first since the sockets were made anew (`remade`), or from a broker
 * with a new started_at (`restarted`). What was published during the gap
 * never came. */
typedef void (*statsub_resumed_cb)(void *arg, bool remade, bool restarted);

struct statsub_callbacks {
    statsub_status_cb on_status;
    statsub_gauges_cb on_gauges;
    statsub_error_cb on_error;
    statsub_resubscribe_cb on_resubscribe; /* may be NULL */
    statsub_resumed_cb on_resumed;         /* may be NULL */
    void *arg;
};

struct statsub {
    uv_loop_t *loop;
    void *zctx;
    const char *status_ep, *intake_ep; /* the caller's, outliving the statsub */
    void *sub;                      /* SUB on the status endpoint; NULL while it cannot be made */
    void *req;                      /* DEALER on the intake endpoint; NULL without one */
    uv_poll_t *sub_poll, *req_poll; /* on their ZMQ_FD; freed when closed */
    uv_idle_t idle;                 /* resumes a drain that hit its budget */
    uv_timer_t snapshot_timer;      /* resends an unanswered SNAPSHOT */
    uv_timer_t silence_timer;       /* fires when no `broker` came for silence_ms */
    struct gd_decoder *dec;
    struct statsub_callbacks cb;
    uint64_t next_ref;
    uint64_t snapshot_ref; /* of the SNAPSHOT waiting for its GAUGES; 0 = none */
    uint64_t snapshots_done;
    uint32_t silence_ms;
    uint64_t last_broker;      /* loop time (ms) of the last `broker` message, or of the open */
    int64_t broker_started_at; /* of the last `broker` message; 0 before the first */
    uint32_t attempts;         /* remakes since the last `broker` message */
    uint64_t resubscribes;     /* remakes ever */
    bool open;
};

/* Connects a SUB socket to `status_ep` subscribed to every topic and, when
 * `intake_ep` is not NULL, a DEALER to `intake_ep`, and sends SNAPSHOT
 * (resent every 3 s until answered, and again whenever `broker.started_at`
 * changes). Frames over GD_MAX_BODY / topics over GD_MAX_TOPIC are dropped
 * by ZeroMQ (ZMQ_MAXMSGSIZE). Everything runs on `loop`'s thread; the
 * endpoint strings must outlive the statsub.
 *
 * A ZeroMQ SUB resends its subscriptions when it reconnects, and it
 * reconnects only when it sees its connection break; a broker that hangs,
 * or whose address moved to another host, leaves it on a connection that
 * nothing comes through. So when no `broker` message
 * (the broker's heartbeat, every gauge period) has come for `silence_ms`,
 * both sockets are closed and made anew, subscribed and connected again,
 * and a new SNAPSHOT is sent; again every `silence_ms` while the silence
 * lasts. `silence_ms` 0: never. Returns 0, or a negative errno with a
 * message in err and nothing left open. */
int statsub_open(struct statsub *s, uv_loop_t *loop, void *zctx, const char *status_ep,
                 const char *intake_ep, uint32_t silence_ms, const struct statsub_callbacks *cb,
                 char *err, size_t errlen);

/* Sends a new SNAPSHOT; a reply to an older one is then ignored. Does
 * nothing without an intake endpoint. */
void statsub_snapshot(struct statsub *s);

/* Stops and closes everything; `s` must stay allocated until the loop has
 * run once more. Accepts a closed statsub. */
void statsub_close(struct statsub *s);

#endif
