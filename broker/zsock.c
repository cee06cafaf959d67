/* zsock.c - a ZeroMQ socket driven by the libuv loop (uv_poll on ZMQ_FD).
 *
 * ZMQ_FD only signals that ZMQ_EVENTS may have changed, and it is
 * edge-triggered: after a wakeup we must read until ZMQ_EVENTS no longer
 * reports POLLIN, and after every send (which also processes commands on
 * the socket) we must look at ZMQ_EVENTS again; sends only ask for that
 * look, done once per loop iteration. To keep one busy socket
 * from starving the rest of the loop, one pass reads at most
 * DRAIN_BUDGET messages and lets an idle handle continue on the next
 * iteration. */
#include "zsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DRAIN_BUDGET 512

bool zsock_readable(struct zsock *zs)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(zs->sock, ZMQ_EVENTS, &events, &len) < 0)
        return false;
    return events & ZMQ_POLLIN;
}

/* Reads one whole multipart message and hands it to the owner. Returns
 * false when nothing was waiting. */
static bool read_one(struct zsock *zs)
{
    zmq_msg_t frames[ZSOCK_MAX_FRAMES];
    size_t n = 0;
    bool overflow = false;
    for (;;) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < ZSOCK_MAX_FRAMES ? &frames[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, zs->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            if (n == 0)
                return false;
            break; /* cannot happen mid-message: ZeroMQ delivers messages whole */
        }
        bool more = zmq_msg_more(m);
        if (m == &scratch) {
            overflow = true;
            zmq_msg_close(m);
        } else {
            n++;
        }
        if (!more)
            break;
    }
    if (zs->on_message)
        zs->on_message(zs, frames, n, overflow);
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    return true;
}

static void on_idle(uv_idle_t *h);

/* Reads until nothing is waiting (or the budget is spent). Reading until
 * zmq_msg_recv says EAGAIN processes the socket's pending commands; one
 * ZMQ_EVENTS check at the end then re-arms the edge-triggered ZMQ_FD. */
static void drain(struct zsock *zs)
{
    for (int i = 0; i < DRAIN_BUDGET; i++) {
        if (!zs->open)
            break;
        if (read_one(zs))
            continue;
        if (!zsock_readable(zs)) {
            uv_idle_stop(&zs->idle);
            return;
        }
    }
    /* Budget spent (or a message raced in): go on next iteration, after
     * the rest of the loop. */
    if (zs->open)
        uv_idle_start(&zs->idle, on_idle);
}

static void on_idle(uv_idle_t *h)
{
    drain(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    drain(h->data);
}

/* ZMQ_ZAP_ENFORCE_DOMAIN is a draft option in libzmq 4.3; where the
 * library lacks it, binding the ZAP handler first is what protects us. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* A ZAP domain makes every handshake wait for the ZAP handler's answer,
 * with or without CURVE; a CURVE server also needs one. */
static int set_security(void *sock, const struct zsock_options *o, char *err, size_t errlen)
{
    int one = 1;
    bool ok = !o->zap_domain ||
              zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, o->zap_domain, strlen(o->zap_domain)) == 0;
    if (ok && o->curve_secret_key) {
        ok = zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) == 0 &&
             zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, 32) == 0;
        zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one));
    }
    if (ok)
        return 0;
    int e = errno;
    snprintf(err, errlen, "cannot secure %s: %s", o->endpoint, zmq_strerror(e));
    return -e;
}

static void on_monitor_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct zsock *zs = h->data;
    zs->on_events(zs);
}

/* Connection events come through an inproc PAIR whose receive queue is
 * unbounded (RCVHWM 0): with a bounded one, libzmq's I/O thread would
 * block on a full queue until we read, stalling every connection of the
 * process. Events are a few bytes and are read on every loop iteration.
 * Started before the bind, so that no connection goes unseen. */
static int start_monitor(struct zsock *zs, uv_loop_t *loop, void *zctx, const char *endpoint,
                         char *err, size_t errlen)
{
    char ep[64];
    snprintf(ep, sizeof(ep), "inproc://zsock-monitor-%p", (void *)zs);
    int zero = 0, fd, e;
    size_t len = sizeof(fd);
    if (zmq_socket_monitor(zs->sock, ep, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) < 0)
        goto failed;
    zs->monitor = zmq_socket(zctx, ZMQ_PAIR);
    if (!zs->monitor || zmq_setsockopt(zs->monitor, ZMQ_LINGER, &zero, sizeof(zero)) < 0 ||
        zmq_setsockopt(zs->monitor, ZMQ_RCVHWM, &zero, sizeof(zero)) < 0 ||
        zmq_connect(zs->monitor, ep) < 0 || zmq_getsockopt(zs->monitor, ZMQ_FD, &fd, &len) < 0)
        goto stop;
    uv_poll_init(loop, &zs->monitor_poll, fd);
    zs->monitor_poll.data = zs;
    uv_poll_start(&zs->monitor_poll, UV_READABLE, on_monitor_poll);
    return 0;
stop:
    e = errno;
    if (zs->monitor)
        zmq_close(zs->monitor);
    zs->monitor = NULL;
    zmq_socket_monitor(zs->sock, NULL, 0);
    errno = e;
failed:
    e = errno;
    snprintf(err, errlen, "cannot watch the connections of %s: %s", endpoint, zmq_strerror(e));
    return -e;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

/* Stops the monitor before its socket closes: libzmq must not report
 * into a PAIR that is gone. */
static void stop_monitor(struct zsock *zs)
{
    if (!zs->monitor)
        return;
    uv_poll_stop(&zs->monitor_poll);
    uv_close((uv_handle_t *)&zs->monitor_poll, on_closed);
    zmq_socket_monitor(zs->sock, NULL, 0);
    zmq_close(zs->monitor);
    zs->monitor = NULL;
}

int zsock_bind(struct zsock *zs, uv_loop_t *loop, void *zctx, const struct zsock_options *o,
               zsock_message_cb on_message, void *data, char *err, size_t errlen)
{
    *zs = (struct zsock){.on_message = on_message, .data = data, .on_events = o->on_events};
    zs->sock = zmq_socket(zctx, o->type);
    if (!zs->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -errno;
    }
    int zero = 0, one = 1, rc;
    zmq_setsockopt(zs->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(zs->sock, ZMQ_SNDHWM, &o->sndhwm, sizeof(o->sndhwm));
    zmq_setsockopt(zs->sock, ZMQ_RCVHWM, &o->rcvhwm, sizeof(o->rcvhwm));
    if (o->maxmsg > 0)
        zmq_setsockopt(zs->sock, ZMQ_MAXMSGSIZE, &o->maxmsg, sizeof(o->maxmsg));
    if (o->type == ZMQ_ROUTER)
        zmq_setsockopt(zs->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    if (o->handshake_ms > 0)
        zmq_setsockopt(zs->sock, ZMQ_HANDSHAKE_IVL, &o->handshake_ms, sizeof(o->handshake_ms));
    rc = set_security(zs->sock, o, err, errlen);
    if (rc < 0)
        goto close_socket;
    if (o->on_events) {
        rc = start_monitor(zs, loop, zctx, o->endpoint, err, errlen);
        if (rc < 0)
            goto close_socket;
    }
    if (zmq_bind(zs->sock, o->endpoint) < 0) {
        rc = -errno;
        snprintf(err, errlen, "cannot bind %s: %s", o->endpoint, zmq_strerror(-rc));
        stop_monitor(zs);
        goto close_socket;
    }
    int fd;
    size_t len = sizeof(fd);
    zmq_getsockopt(zs->sock, ZMQ_FD, &fd, &len);
    uv_poll_init(loop, &zs->poll, fd);
    uv_idle_init(loop, &zs->idle);
    zs->poll.data = zs;
    zs->idle.data = zs;
    uv_poll_start(&zs->poll, UV_READABLE, on_poll);
    zs->open = true;
    uv_idle_start(&zs->idle, on_idle);
    return 0;
close_socket:
    zmq_close(zs->sock);
    zs->sock = NULL;
    return rc;
}

int zsock_send(struct zsock *zs, const void *const *parts, const size_t *lens, size_t n)
{
    if (!zs->open)
        return -EBADF;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        int flags = ZMQ_DONTWAIT | (i + 1 < n ? ZMQ_SNDMORE : 0);
        if (zmq_send(zs->sock, parts[i], lens[i], flags) < 0) {
            /* Only the first frame can fail on a ROUTER (unknown peer) or
             * on a full pipe; ZeroMQ then accepts nothing of the message. */
            rc = -errno;
            break;
        }
    }
    /* A send also processes the socket's commands, which can swallow the
     * ZMQ_FD edge of an incoming message: look again on the next loop
     * iteration (once, however many sends happen until then). */
    uv_idle_start(&zs->idle, on_idle);
    return rc;
}

int zsock_last_endpoint(struct zsock *zs, char *buf, size_t size)
{
    size_t len = size;
    if (zmq_getsockopt(zs->sock, ZMQ_LAST_ENDPOINT, buf, &len) < 0)
        return -errno;
    return 0;
}

int zsock_next_event(struct zsock *zs, enum zsock_event *ret_event, int *ret_fd)
{
    while (zs->monitor) {
        /* [event: uint16, value: uint32][endpoint] (libzmq 4.x, version 1) */
        zmq_msg_t head, rest;
        zmq_msg_init(&head);
        if (zmq_msg_recv(&head, zs->monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&head);
            /* nothing left: one ZMQ_EVENTS check re-arms the edge of ZMQ_FD */
            int events = 0;
            size_t len = sizeof(events);
            if (zmq_getsockopt(zs->monitor, ZMQ_EVENTS, &events, &len) == 0 &&
                (events & ZMQ_POLLIN))
                continue;
            return 0;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&head) >= 6) {
            memcpy(&event, zmq_msg_data(&head), 2);
            memcpy(&value, (const uint8_t *)zmq_msg_data(&head) + 2, 4);
        }
        bool more = zmq_msg_more(&head);
        zmq_msg_close(&head);
        while (more) {
            zmq_msg_init(&rest);
            if (zmq_msg_recv(&rest, zs->monitor, ZMQ_DONTWAIT) < 0)
                more = false; /* cannot happen: messages arrive whole */
            else
                more = zmq_msg_more(&rest);
            zmq_msg_close(&rest);
        }
        if (event == ZMQ_EVENT_ACCEPTED || event == ZMQ_EVENT_DISCONNECTED) {
            *ret_event = event == ZMQ_EVENT_ACCEPTED ? ZSOCK_ACCEPTED : ZSOCK_CLOSED;
            *ret_fd = (int)value;
            return 1;
        }
    }
    return 0;
}

void zsock_close(struct zsock *zs)
{
    if (!zs->open)
        return;
    zs->open = false;
    stop_monitor(zs);
    uv_poll_stop(&zs->poll);
    uv_idle_stop(&zs->idle);
    uv_close((uv_handle_t *)&zs->poll, on_closed);
    uv_close((uv_handle_t *)&zs->idle, on_closed);
    zmq_close(zs->sock);
    zs->sock = NULL;
}
