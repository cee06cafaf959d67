/* zsock.h - a ZeroMQ socket driven by the libuv loop (uv_poll on ZMQ_FD). */
#ifndef GD_BROKER_ZSOCK_H
#define GD_BROKER_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#define ZSOCK_MAX_FRAMES 8

struct zsock;

/* CurveZMQ server settings of an endpoint. */
struct zsock_curve {
    const uint8_t *secret_key; /* 32 bytes */
    const char *zap_domain;    /* names the endpoint to the ZAP handler */
};

/* Called once per whole multipart message read from the socket. `frames`
 * are owned by zsock and closed after the callback returns. `n` is the
 * number of frames kept (at most ZSOCK_MAX_FRAMES); `overflow` is true when
 * the message had more frames, which were discarded. */
typedef void (*zsock_message_cb)(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow);

struct zsock {
    void *sock;
    uv_poll_t poll;
    uv_idle_t idle;      /* resumes draining when one pass hit its budget */
    zsock_message_cb on_message;
    void *data;          /* the owner's */
    bool open;
};

/* Creates a socket of `type` on context `zctx`, sets its options
 * (ZMQ_MAXMSGSIZE = maxmsg, linger 0, high-water marks, ROUTER_MANDATORY
 * on ROUTER sockets so that sends to vanished peers fail instead of
 * vanishing; with `curve`, a CURVE server whose peers the ZAP handler
 * checks), binds it to `endpoint` and starts watching it on `loop`.
 * `on_message` may be NULL for a socket that is never read (except XPUB
 * subscriptions, which are read and handed to it when set).
 * Returns 0, or a negative errno with nothing left open; `err` gets a
 * message naming the endpoint. */
int zsock_bind(struct zsock *zs, uv_loop_t *loop, void *zctx, int type, const char *endpoint,
               int64_t maxmsg, const struct zsock_curve *curve, zsock_message_cb on_message,
               void *data, char *err, size_t errlen);

/* Sends a multipart message without blocking. Returns 0, -EAGAIN when the
 * peer's queue is full, -EHOSTUNREACH when a ROUTER peer is gone, or
 * another negative errno. Re-checks ZMQ_EVENTS afterwards so that no
 * incoming message is missed (ZMQ_FD is edge-triggered). */
int zsock_send(struct zsock *zs, const void *const *parts, const size_t *lens, size_t n);

/* The endpoint actually bound (resolves tcp://...:* to the chosen port)
 * into buf. Returns 0 or a negative errno. */
int zsock_last_endpoint(struct zsock *zs, char *buf, size_t size);

/* Stops watching and closes the socket. The zsock must stay allocated
 * until the loop has run once more (libuv closes handles asynchronously). */
void zsock_close(struct zsock *zs);

#endif
