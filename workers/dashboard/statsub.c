/* statsub.c - SUB on the status endpoint and SNAPSHOT on intake, driven by uv_poll on ZMQ_FD.
 *
 * ZMQ_FD is edge-triggered: after a wakeup we read until ZMQ_EVENTS has no
 * POLLIN, and look at ZMQ_EVENTS again after every send. One pass reads at
 * most DRAIN_BUDGET messages; an idle handle continues on the next loop
 * iteration so the HTTP side is never starved. When the broker falls
 * silent the sockets are made anew: each one's poll handle is closed (and
 * freed by its close callback) before the socket, and the new socket gets
 * a poll handle of its own on its own ZMQ_FD. */
#include "statsub.h"

#include "intake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define DRAIN_BUDGET      1024
#define SNAPSHOT_RETRY_MS 3000
#define SUB_HWM           200000

static bool readable(void *sock)
{
    int events = 0;
    size_t len = sizeof(events);
    if (!sock || zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) < 0)
        return false;
    return events & ZMQ_POLLIN;
}

/* Reads one multipart message of up to 2 frames into f (more are
 * discarded). Returns the number of frames (0: nothing waiting), or -1 when
 * the message had more than 2 frames. */
static int recv_frames(void *sock, zmq_msg_t f[2])
{
    int n = 0;
    bool extra = false;
    for (;;) {
        zmq_msg_t scratch;
        zmq_msg_t *m = n < 2 ? &f[n] : &scratch;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            return n;
        }
        bool more = zmq_msg_more(m);
        if (m == &scratch) {
            zmq_msg_close(m);
            extra = true;
        } else {
            n++;
        }
        if (!more)
            break;
    }
    if (extra) {
        for (int i = 0; i < n; i++)
            zmq_msg_close(&f[i]);
        return -1;
    }
    return n;
}

static void on_silence(uv_timer_t *t);

static void on_sub_message(struct statsub *s, zmq_msg_t f[2])
{
    const char *topic = zmq_msg_data(&f[0]);
    size_t tlen = zmq_msg_size(&f[0]);
    struct gd_status st;
    struct gd_decode_error e;
    if (gd_decode_status(s->dec, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &st, &e) < 0) {
        if (s->cb.on_error)
            s->cb.on_error(s->cb.arg, topic, tlen, &e);
        return;
    }
    bool restarted = false, remade = false;
    if (st.kind == GD_STATUS_BROKER) {
        s->last_broker = uv_now(s->loop);
        remade = s->attempts > 0;
        s->attempts = 0;
        if (s->silence_ms)
            uv_timer_start(&s->silence_timer, on_silence, s->silence_ms, 0);
        /* a restarted broker has new queues: ask for the whole picture again */
        restarted = s->broker_started_at && st.u.broker.started_at != s->broker_started_at;
        s->broker_started_at = st.u.broker.started_at;
    }
    s->cb.on_status(s->cb.arg, topic, tlen, &st);
    if (restarted)
        statsub_snapshot(s);
    if ((remade || restarted) && s->cb.on_resumed)
        s->cb.on_resumed(s->cb.arg, remade, restarted);
}

static void on_req_message(struct statsub *s, zmq_msg_t f[2])
{
    struct gd_msg msg;
    struct gd_decode_error e;
    if (gd_decode(s->dec, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), zmq_msg_data(&f[1]),
                  zmq_msg_size(&f[1]), &msg, &e) < 0) {
        if (s->cb.on_error)
            s->cb.on_error(s->cb.arg, "GAUGES", 6, &e);
        return;
    }
    if (msg.type != GD_T_GAUGES || !s->snapshot_ref || msg.u.gauges.ref != s->snapshot_ref)
        return; /* REJECTED/BUSY (retried by the timer), or a stale reply */
    bool last = !msg.u.gauges.truncated;
    if (last) {
        s->snapshot_ref = 0;
        s->snapshots_done++;
        uv_timer_stop(&s->snapshot_timer);
    }
    if (s->cb.on_gauges)
        s->cb.on_gauges(s->cb.arg, &msg.u.gauges, last);
}

/* Reads up to the budget from both sockets. Returns true if more waits. */
static bool drain(struct statsub *s)
{
    for (int i = 0; i < DRAIN_BUDGET && s->open; i++) {
        bool any = false;
        zmq_msg_t f[2];
        if (readable(s->sub)) {
            int n = recv_frames(s->sub, f);
            if (n == 2)
                on_sub_message(s, f);
            for (int k = 0; k < n; k++)
                zmq_msg_close(&f[k]);
            any = any || n != 0;
        }
        if (s->open && readable(s->req)) {
            int n = recv_frames(s->req, f);
            if (n == 2)
                on_req_message(s, f);
            for (int k = 0; k < n; k++)
                zmq_msg_close(&f[k]);
            any = any || n != 0;
        }
        if (!any)
            return false;
    }
    return s->open && (readable(s->sub) || readable(s->req));
}

static void on_idle(uv_idle_t *h)
{
    struct statsub *s = h->data;
    if (!drain(s))
        uv_idle_stop(&s->idle);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    struct statsub *s = h->data;
    if (drain(s))
        uv_idle_start(&s->idle, on_idle);
}

static void on_snapshot_timeout(uv_timer_t *t)
{
    statsub_snapshot(t->data);
}

void statsub_snapshot(struct statsub *s)
{
    if (!s->open || !s->req)
        return;
    struct gd_msg m = {.type = GD_T_SNAPSHOT};
    m.u.snapshot.ref = s->snapshot_ref = ++s->next_ref;
    struct gd_buf body = {0};
    uint8_t hdr[GD_HEADER_LEN];
    gd_encode_header(GD_T_SNAPSHOT, hdr);
    if (gd_encode(&m, &body) == 0) {
        /* a DEALER with no peer yet queues; a full pipe drops (retried) */
        if (zmq_send(s->req, hdr, sizeof(hdr), ZMQ_DONTWAIT | ZMQ_SNDMORE) == (int)sizeof(hdr))
            zmq_send(s->req, body.data, body.len, ZMQ_DONTWAIT);
    }
    gd_buf_fini(&body);
    uv_timer_start(&s->snapshot_timer, on_snapshot_timeout, SNAPSHOT_RETRY_MS, 0);
    /* a send may have consumed the edge that announced incoming data */
    if (readable(s->req) || readable(s->sub))
        uv_idle_start(&s->idle, on_idle);
}

/* Creates and connects one socket; returns NULL with err filled in. */
static void *connect_socket(void *zctx, int type, const char *ep, char *err, size_t errlen)
{
    void *sock = zmq_socket(zctx, type);
    if (!sock) {
        snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int zero = 0, hwm = SUB_HWM;
    int64_t maxmsg = GD_MAX_BODY;
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg));
    if (type == ZMQ_SUB)
        zmq_setsockopt(sock, ZMQ_SUBSCRIBE, "", 0);
    if (intake_curve_from_env(sock) < 0) {
        snprintf(err, errlen, "bad CurveZMQ settings: GD_CURVE_SERVER_KEY must be the broker's "
                              "public key and GD_CURVE_KEY a key file (public = , secret = )");
        zmq_close(sock);
        return NULL;
    }
    if (zmq_connect(sock, ep) < 0) {
        snprintf(err, errlen, "cannot connect to %s: %s", ep, zmq_strerror(errno));
        zmq_close(sock);
        return NULL;
    }
    return sock;
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h);
}

/* Starts a poll handle of its own on sock's ZMQ_FD. Returns 0 or a
 * negative errno (nothing started). */
static int watch(struct statsub *s, void *sock, uv_poll_t **ret)
{
    int fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) < 0)
        return -errno;
    uv_poll_t *p = malloc(sizeof(*p));
    if (!p)
        return -ENOMEM;
    int rc = uv_poll_init(s->loop, p, fd);
    if (rc < 0) {
        free(p);
        return rc;
    }
    p->data = s;
    uv_poll_start(p, UV_READABLE, on_poll);
    *ret = p;
    return 0;
}

/* Closes both sockets, each after its poll handle: uv_close stops the
 * polling at once, so the fd is never polled after ZeroMQ lets it go. */
static void close_sockets(struct statsub *s)
{
    if (s->sub_poll)
        uv_close((uv_handle_t *)s->sub_poll, on_poll_closed);
    if (s->req_poll)
        uv_close((uv_handle_t *)s->req_poll, on_poll_closed);
    s->sub_poll = s->req_poll = NULL;
    if (s->sub)
        zmq_close(s->sub);
    if (s->req)
        zmq_close(s->req);
    s->sub = s->req = NULL;
}

/* Makes, connects and watches both sockets. Returns 0, or -1 with err
 * filled in and neither socket left open. */
static int open_sockets(struct statsub *s, char *err, size_t errlen)
{
    s->sub = connect_socket(s->zctx, ZMQ_SUB, s->status_ep, err, errlen);
    if (!s->sub)
        return -1;
    if (s->intake_ep) {
        s->req = connect_socket(s->zctx, ZMQ_DEALER, s->intake_ep, err, errlen);
        if (!s->req)
            goto close_opened;
    }
    if (watch(s, s->sub, &s->sub_poll) < 0 || (s->req && watch(s, s->req, &s->req_poll) < 0)) {
        snprintf(err, errlen, "cannot watch the ZeroMQ sockets");
        goto close_opened;
    }
    return 0;

close_opened:
    close_sockets(s);
    return -1;
}

/* No `broker` message for silence_ms: the subscription may be attached to
 * a broker that is gone without a word, or was never resent to the new
 * one. Make everything anew, and look again after another silence. */
static void on_silence(uv_timer_t *t)
{
    struct statsub *s = t->data;
    char err[512];
    close_sockets(s);
    int rc = open_sockets(s, err, sizeof(err));
    s->attempts++;
    s->resubscribes++;
    uv_timer_start(&s->silence_timer, on_silence, s->silence_ms, 0);
    if (rc == 0) {
        statsub_snapshot(s);
        uv_idle_start(&s->idle, on_idle);
    }
    if (s->cb.on_resubscribe)
        s->cb.on_resubscribe(s->cb.arg, uv_now(s->loop) - s->last_broker, s->attempts,
                             rc < 0 ? err : NULL);
}

int statsub_open(struct statsub *s, uv_loop_t *loop, void *zctx, const char *status_ep,
                 const char *intake_ep, uint32_t silence_ms, const struct statsub_callbacks *cb,
                 char *err, size_t errlen)
{
    *s = (struct statsub){.loop = loop,
                          .zctx = zctx,
                          .status_ep = status_ep,
                          .intake_ep = intake_ep,
                          .silence_ms = silence_ms,
                          .cb = *cb};
    s->dec = gd_decoder_new();
    if (!s->dec) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    if (open_sockets(s, err, errlen) < 0) {
        gd_decoder_free(s->dec);
        s->dec = NULL;
        return -EIO;
    }
    uv_idle_init(loop, &s->idle);
    s->idle.data = s;
    uv_timer_init(loop, &s->snapshot_timer);
    s->snapshot_timer.data = s;
    uv_timer_init(loop, &s->silence_timer);
    s->silence_timer.data = s;
    s->open = true;
    s->last_broker = uv_now(loop);
    if (silence_ms)
        uv_timer_start(&s->silence_timer, on_silence, silence_ms, 0);
    statsub_snapshot(s);
    return 0;
}

static void on_closed(uv_handle_t *h)
{
    (void)h;
}

void statsub_close(struct statsub *s)
{
    if (!s->open)
        return;
    s->open = false;
    uv_close((uv_handle_t *)&s->idle, on_closed);
    uv_close((uv_handle_t *)&s->snapshot_timer, on_closed);
    uv_close((uv_handle_t *)&s->silence_timer, on_closed);
    close_sockets(s);
    gd_decoder_free(s->dec);
    s->dec = NULL;
}
