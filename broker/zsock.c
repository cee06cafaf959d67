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

static bool readable(struct zsock *zs)
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
        if (!readable(zs)) {
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

static int set_curve(void *sock, const struct zsock_curve *curve, char *err, size_t errlen)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, curve->secret_key, 32) < 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, curve->zap_domain, strlen(curve->zap_domain)) < 0) {
        snprintf(err, errlen, "cannot make a CURVE server: %s", zmq_strerror(errno));
        return -errno;
    }
    zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof(one));
    return 0;
}

int zsock_bind(struct zsock *zs, uv_loop_t *loop, void *zctx, int type, const char *endpoint,
               int64_t maxmsg, const struct zsock_curve *curve, zsock_message_cb on_message,
               void *data, char *err, size_t errlen)
{
    *zs = (struct zsock){.on_message = on_message, .data = data};
    zs->sock = zmq_socket(zctx, type);
    if (!zs->sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return -errno;
    }
    int zero = 0, one = 1, hwm = 100000;
    zmq_setsockopt(zs->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(zs->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(zs->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    if (maxmsg > 0)
        zmq_setsockopt(zs->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(zs->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    if (curve) {
        int rc = set_curve(zs->sock, curve, err, errlen);
        if (rc < 0) {
            zmq_close(zs->sock);
            zs->sock = NULL;
            return rc;
        }
    }
    if (zmq_bind(zs->sock, endpoint) < 0) {
        int e = errno;
        snprintf(err, errlen, "cannot bind %s: %s", endpoint, zmq_strerror(e));
        zmq_close(zs->sock);
        zs->sock = NULL;
        return -e;
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

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void zsock_close(struct zsock *zs)
{
    if (!zs->open)
        return;
    zs->open = false;
    uv_poll_stop(&zs->poll);
    uv_idle_stop(&zs->idle);
    uv_close((uv_handle_t *)&zs->poll, on_closed);
    uv_close((uv_handle_t *)&zs->idle, on_closed);
    zmq_close(zs->sock);
    zs->sock = NULL;
}
