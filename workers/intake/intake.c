/* intake.c - client of the broker's intake endpoint (one DEALER) for gd-open311, gd-hotline and
 * gdctl. */
#include "intake.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct intake {
    void *sock;
    uint64_t next_ref;
    struct gd_decoder *dec;
    struct gd_buf out; /* encoded request body */
    struct gd_buf in;  /* body of the last reply; decoded strings point here */
    enum gd_code encode_error;
};

struct keypair {
    char public[41], secret[41];
};

static int key_entry(void *user, const char *section, const char *name, const char *value)
{
    struct keypair *k = user;
    (void)section;
    if (strcmp(name, "public") == 0)
        snprintf(k->public, sizeof(k->public), "%s", value);
    else if (strcmp(name, "secret") == 0)
        snprintf(k->secret, sizeof(k->secret), "%s", value);
    return 1;
}

int intake_curve_from_env(void *sock)
{
    const char *server = getenv("GD_CURVE_SERVER_KEY");
    const char *file = getenv("GD_CURVE_KEY");
    if (!server || !*server || !file || !*file)
        return 0;
    struct keypair k = {{0}, {0}};
    if (ini_parse(file, key_entry, &k) != 0 || strlen(k.public) != 40 ||
        strlen(k.secret) != 40 || strlen(server) != 40)
        return -EINVAL;
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, k.public, 40) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, k.secret, 40) != 0)
        return -EINVAL;
    memset(&k, 0, sizeof(k));
    return 0;
}

int intake_open(void *zctx, const char *endpoint, struct intake **ret)
{
    struct intake *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    int rc = -ENOMEM;
    c->dec = gd_decoder_new();
    if (!c->dec)
        goto free_client;
    c->sock = zmq_socket(zctx, ZMQ_DEALER);
    if (!c->sock) {
        rc = -zmq_errno();
        goto free_decoder;
    }
    int linger = 0;
    int64_t maxsize = GD_MAX_BODY + 64;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize));
    rc = intake_curve_from_env(c->sock);
    if (rc < 0)
        goto close_socket;
    if (zmq_connect(c->sock, endpoint) != 0) {
        rc = -zmq_errno();
        goto close_socket;
    }
    c->next_ref = 1;
    *ret = c;
    return 0;

close_socket:
    zmq_close(c->sock);
free_decoder:
    gd_decoder_free(c->dec);
free_client:
    free(c);
    return rc;
}

void intake_close(struct intake *c)
{
    if (!c)
        return;
    zmq_close(c->sock);
    gd_decoder_free(c->dec);
    gd_buf_fini(&c->out);
    gd_buf_fini(&c->in);
    free(c);
}

void *intake_socket(struct intake *c)
{
    return c->sock;
}

uint64_t intake_next_ref(struct intake *c)
{
    return c->next_ref++;
}

uint64_t intake_msg_ref(const struct gd_msg *m)
{
    switch (m->type) {
    case GD_T_SUBMIT:
        return m->u.submit.ref;
    case GD_T_QUERY:
        return m->u.query.ref;
    case GD_T_FEEDBACK:
        return m->u.feedback.ref;
    case GD_T_SNAPSHOT:
        return m->u.snapshot.ref;
    case GD_T_DISPATCH:
        return m->u.dispatch.ref;
    case GD_T_APPROVE:
        return m->u.approve.ref;
    case GD_T_ACCEPTED:
        return m->u.accepted.ref;
    case GD_T_REJECTED:
        return m->u.error.ref;
    case GD_T_BUSY:
        return m->u.busy.ref;
    case GD_T_INCIDENT:
        return m->u.incident.ref;
    case GD_T_GAUGES:
        return m->u.gauges.ref;
    case GD_T_DONE:
        return m->u.done.ref;
    default:
        return 0;
    }
}

void intake_msg_set_ref(struct gd_msg *m, uint64_t ref)
{
    switch (m->type) {
    case GD_T_SUBMIT:
        m->u.submit.ref = ref;
        break;
    case GD_T_QUERY:
        m->u.query.ref = ref;
        break;
    case GD_T_FEEDBACK:
        m->u.feedback.ref = ref;
        break;
    case GD_T_SNAPSHOT:
        m->u.snapshot.ref = ref;
        break;
    case GD_T_DISPATCH:
        m->u.dispatch.ref = ref;
        break;
    case GD_T_APPROVE:
        m->u.approve.ref = ref;
        break;
    default:
        break;
    }
}

int intake_send_raw(struct intake *c, enum gd_type type, const void *body, size_t len)
{
    uint8_t header[GD_HEADER_LEN];
    gd_encode_header(type, header);
    if (zmq_send(c->sock, header, sizeof(header), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -zmq_errno();
    /* the first frame is queued, so the second cannot block */
    if (zmq_send(c->sock, body, len, 0) < 0)
        return -zmq_errno();
    return 0;
}

int intake_send(struct intake *c, const struct gd_msg *m)
{
    gd_buf_reset(&c->out);
    int rc = gd_encode(m, &c->out);
    if (rc < 0) {
        c->encode_error = (enum gd_code) - rc;
        return -EINVAL;
    }
    return intake_send_raw(c, m->type, c->out.data, c->out.len);
}

enum gd_code intake_encode_error(const struct intake *c)
{
    return c->encode_error;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the socket is readable: 1, 0 on timeout, or -errno. */
static int wait_readable(struct intake *c, int timeout_ms)
{
    zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
    int n = zmq_poll(&it, 1, timeout_ms);
    if (n < 0)
        return -zmq_errno();
    return n > 0;
}

/* Reads one multipart message: header into hdr (length in *hdr_len), body
 * into c->in. Extra frames make it -EPROTO. */
static int read_frames(struct intake *c, uint8_t *hdr, size_t *hdr_len, struct gd_buf *body)
{
    zmq_msg_t part;
    int frames = 0, rc = 0;
    body->len = 0;
    for (;;) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, c->sock, ZMQ_DONTWAIT) < 0) {
            int e = zmq_errno();
            zmq_msg_close(&part);
            return frames == 0 ? -e : -EPROTO;
        }
        size_t n = zmq_msg_size(&part);
        if (frames == 0) {
            *hdr_len = n;
            memcpy(hdr, zmq_msg_data(&part), n < GD_HEADER_LEN ? n : GD_HEADER_LEN);
        } else if (frames == 1) {
            if (n > body->cap) {
                char *p = realloc(body->data, n ? n : 1);
                if (!p) {
                    rc = -ENOMEM;
                } else {
                    body->data = p;
                    body->cap = n;
                }
            }
            if (rc == 0 && n)
                memcpy(body->data, zmq_msg_data(&part), n);
            body->len = rc == 0 ? n : 0;
        }
        frames++;
        bool more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more)
            break;
    }
    if (rc)
        return rc;
    if (frames != 2 || *hdr_len != GD_HEADER_LEN || memcmp(hdr, GD_SIGNATURE, GD_SIGNATURE_LEN))
        return -EPROTO;
    return 1;
}

int intake_recv_raw(struct intake *c, int timeout_ms, uint8_t *ret_type, struct gd_buf *body)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        uint8_t hdr[GD_HEADER_LEN];
        size_t hdr_len = 0;
        int rc = read_frames(c, hdr, &hdr_len, body);
        if (rc == 1) {
            *ret_type = hdr[4];
            return 1;
        }
        if (rc != -EAGAIN)
            return rc;
        int left = -1;
        if (deadline >= 0) {
            int64_t l = deadline - now_ms();
            if (l <= 0)
                return 0;
            left = (int)l;
        }
        rc = wait_readable(c, left);
        if (rc < 0)
            return rc;
        if (rc == 0)
            return 0;
    }
}

int intake_recv(struct intake *c, int timeout_ms, struct gd_msg *ret)
{
    uint8_t type;
    int rc = intake_recv_raw(c, timeout_ms, &type, &c->in);
    if (rc != 1)
        return rc;
    uint8_t hdr[GD_HEADER_LEN];
    gd_encode_header((enum gd_type)type, hdr);
    if (gd_decode(c->dec, hdr, sizeof(hdr), c->in.data, c->in.len, ret, NULL) < 0)
        return -EPROTO;
    return 1;
}

int intake_call(struct intake *c, struct gd_msg *m, int timeout_ms, struct gd_msg *ret)
{
    uint64_t ref = intake_next_ref(c);
    intake_msg_set_ref(m, ref);
    int rc = intake_send(c, m);
    if (rc == -EAGAIN) {
        /* the pipe is full (no broker yet): wait for room within the timeout */
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLOUT};
        if (zmq_poll(&it, 1, timeout_ms) <= 0)
            return 0;
        rc = intake_send(c, m);
    }
    if (rc < 0)
        return rc;
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int left = -1;
        if (deadline >= 0) {
            int64_t l = deadline - now_ms();
            left = l > 0 ? (int)l : 0;
        }
        rc = intake_recv(c, left, ret);
        if (rc == -EPROTO)
            continue;
        if (rc != 1)
            return rc;
        uint64_t got = intake_msg_ref(ret);
        if (got == ref || (ret->type == GD_T_REJECTED && got == 0))
            return 1;
        if (left == 0)
            return 0;
    }
}
