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

/* Called once per whole multipart message read from the socket. `frames`
 * are owned by zsock and closed after the callback returns. `n` is the
 * number of frames kept (at most ZSOCK_MAX_FRAMES); `overflow` is true when
 * the message had more frames, which were discarded. */
typedef void (*zsock_message_cb)(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow);

/* Called when connection events of a monitored socket may be waiting:
 * the owner reads them with zsock_next_event() until it returns 0. */
typedef void (*zsock_events_cb)(struct zsock *zs);

/* How zsock_bind() sets a socket up. */
struct zsock_options {
    int type;                         /* ZMQ_ROUTER, ZMQ_XPUB, ZMQ_REP */
    const char *endpoint;
    int64_t maxmsg;                   /* ZMQ_MAXMSGSIZE; 0: no limit */
    int sndhwm, rcvhwm;               /* messages queued per peer, each way */
    const char *zap_domain;           /* names the endpoint to the ZAP handler,
                                         which every handshake then consults;
                                         NULL: no ZAP */
    const uint8_t *curve_secret_key;  /* 32 bytes: a CURVE server (needs
                                         zap_domain); NULL: no CURVE */
    int handshake_ms;                 /* ZMQ_HANDSHAKE_IVL: a connection that
                                         has not finished its handshake by
                                         then is closed; 0: ZeroMQ's 30 s */
    zsock_events_cb on_events;        /* report accepted and closed
                                         connections; NULL: do not */
};

/* A connection accepted or closed on a monitored socket. */
enum zsock_event {
    ZSOCK_ACCEPTED = 1,
    ZSOCK_CLOSED,
};

struct zsock {
    void *sock;
    uv_poll_t poll;
    uv_idle_t idle;      /* resumes draining when one pass hit its budget */
    zsock_message_cb on_message;
    void *data;          /* the owner's */
    bool open;
    /* connection events (ZeroMQ socket monitor), when asked for */
    void *monitor;       /* PAIR receiving them */
    uv_poll_t monitor_poll;
    zsock_events_cb on_events;
};

/* Creates a socket with the options `o` (linger 0; ROUTER_MANDATORY on
 * ROUTER sockets so that sends to vanished peers fail instead of
 * vanishing), binds it to o->endpoint and starts watching it on `loop`.
 * With o->on_events, a socket monitor reports every accepted and closed
 * connection from before the bind on. `on_message` may be NULL for a
 * socket that is never read (except XPUB subscriptions, which are read
 * and handed to it when set).
 * Returns 0, or a negative errno with nothing left open; `err` gets a
 * message naming the endpoint. */
int zsock_bind(struct zsock *zs, uv_loop_t *loop, void *zctx, const struct zsock_options *o,
               zsock_message_cb on_message, void *data, char *err, size_t errlen);

/* Sends a multipart message without blocking. Returns 0, -EAGAIN when the
 * peer's queue is full, -EHOSTUNREACH when a ROUTER peer is gone, or
 * another negative errno. Re-checks ZMQ_EVENTS afterwards so that no
 * incoming message is missed (ZMQ_FD is edge-triggered). */
int zsock_send(struct zsock *zs, const void *const *parts, const size_t *lens, size_t n);

/* Reads the next connection event of a socket bound with on_events.
 * Returns 1 with *ret_event and *ret_fd (the connection's descriptor,
 * owned by ZeroMQ), or 0 when none is waiting; each event is read once,
 * in the order ZeroMQ's I/O thread produced it. An event is produced
 * before anything else of its connection (for an accepted one, before its
 * handshake asks the ZAP handler), so reading until 0 after receiving a
 * ZAP request has read the ACCEPTED of the connection that asks. */
int zsock_next_event(struct zsock *zs, enum zsock_event *ret_event, int *ret_fd);

/* The endpoint actually bound (resolves tcp://...:* to the chosen port)
 * into buf. Returns 0 or a negative errno. */
int zsock_last_endpoint(struct zsock *zs, char *buf, size_t size);

/* True when a message is waiting (ZMQ_EVENTS has POLLIN). */
bool zsock_readable(struct zsock *zs);

/* Stops watching and closes the socket (and its monitor). The zsock must
 * stay allocated until the loop has run once more (libuv closes handles
 * asynchronously). */
void zsock_close(struct zsock *zs);

#endif
