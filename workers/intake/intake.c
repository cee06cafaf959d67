/* intake.c - client of the broker's intake endpoint (one DEALER) for gd-open311, gd-hotline and
 * gdctl. */
#include "intake.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

struct intake {
    void *zctx;
    void *sock;
    char *endpoints[INTAKE_MAX_ENDPOINTS];
    size_t n_endpoints, current;
    uint32_t failover_ms;
    int64_t last_heard; /* last reply, or when the current socket was opened */
    uint64_t failovers;
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t intake_now_ms(void)
{
    return now_ms();
}

/* One entry of an endpoint list: [p, p + len) without the blanks around it. */
static void trim_entry(const char **p, size_t *len)
{
    while (*len && (**p == ' ' || **p == '\t')) {
        (*p)++;
        (*len)--;
    }
    while (*len && ((*p)[*len - 1] == ' ' || (*p)[*len - 1] == '\t'))
        (*len)--;
}

/* Splits `list` into its entries: on_entry(entry, len, user) for each, in
 * order. Returns the number of entries, or -EINVAL with err. */
static int split_endpoints(const char *list, char *err, size_t errlen,
                           int (*on_entry)(const char *, size_t, void *), void *user)
{
    if (!list) {
        snprintf(err, errlen, "no intake endpoint");
        return -EINVAL;
    }
    size_t n = 0;
    const char *p = list;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *e = p;
        trim_entry(&e, &len);
        if (len == 0) {
            snprintf(err, errlen, "endpoint list '%.80s': entry %zu is empty", list, n + 1);
            return -EINVAL;
        }
        if (len > INTAKE_MAX_ENDPOINT_LEN) {
            snprintf(err, errlen, "endpoint list: entry %zu is longer than %d bytes", n + 1,
                     INTAKE_MAX_ENDPOINT_LEN);
            return -EINVAL;
        }
        if (n == INTAKE_MAX_ENDPOINTS) {
            snprintf(err, errlen, "endpoint list: more than %d endpoints", INTAKE_MAX_ENDPOINTS);
            return -EINVAL;
        }
        if (on_entry) {
            int rc = on_entry(e, len, user);
            if (rc < 0) {
                snprintf(err, errlen, "out of memory");
                return rc;
            }
        }
        n++;
        if (!comma)
            return (int)n;
        p = comma + 1;
    }
}

int intake_check_endpoints(const char *list, char *err, size_t errlen)
{
    return split_endpoints(list, err, errlen, NULL, NULL);
}

static int add_endpoint(const char *e, size_t len, void *user)
{
    struct intake *c = user;
    c->endpoints[c->n_endpoints] = strndup(e, len);
    if (!c->endpoints[c->n_endpoints])
        return -ENOMEM;
    c->n_endpoints++;
    return 0;
}

/* Opens a DEALER to endpoint c->current in c->sock. Returns 0 or -errno. */
static int connect_current(struct intake *c)
{
    void *sock = zmq_socket(c->zctx, ZMQ_DEALER);
    if (!sock)
        return -zmq_errno();
    int linger = 0;
    int64_t maxsize = GD_MAX_BODY + 64;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize));
    int rc = intake_curve_from_env(sock);
    if (rc == 0 && zmq_connect(sock, c->endpoints[c->current]) != 0)
        rc = -zmq_errno();
    if (rc < 0) {
        zmq_close(sock);
        return rc;
    }
    c->sock = sock;
    c->last_heard = now_ms();
    return 0;
}

int intake_open(void *zctx, const char *endpoints, struct intake **ret)
{
    struct intake *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    char err[160];
    int rc = split_endpoints(endpoints, err, sizeof(err), add_endpoint, c);
    if (rc < 0)
        goto free_client;
    rc = -ENOMEM;
    c->dec = gd_decoder_new();
    if (!c->dec)
        goto free_client;
    c->zctx = zctx;
    c->failover_ms = INTAKE_FAILOVER_MS;
    rc = connect_current(c);
    if (rc < 0)
        goto free_decoder;
    c->next_ref = 1;
    *ret = c;
    return 0;

free_decoder:
    gd_decoder_free(c->dec);
free_client:
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    free(c);
    return rc;
}

void intake_close(struct intake *c)
{
    if (!c)
        return;
    zmq_close(c->sock);
    for (size_t i = 0; i < c->n_endpoints; i++)
        free(c->endpoints[i]);
    gd_decoder_free(c->dec);
    gd_buf_fini(&c->out);
    gd_buf_fini(&c->in);
    free(c);
}

size_t intake_n_endpoints(const struct intake *c)
{
    return c->n_endpoints;
}

const char *intake_endpoint(const struct intake *c)
{
    return c->endpoints[c->current];
}

uint64_t intake_failovers(const struct intake *c)
{
    return c->failovers;
}

void intake_set_failover_ms(struct intake *c, uint32_t ms)
{
    c->failover_ms = ms;
}

int intake_failover(struct intake *c)
{
    if (c->n_endpoints < 2)
        return 0;
    size_t was = c->current;
    void *old = c->sock;
    c->current = (c->current + 1) % c->n_endpoints;
    int rc = connect_current(c);
    if (rc < 0) {
        c->current = was; /* keep the old socket: the caller may try again */
        return rc;
    }
    zmq_close(old);
    c->failovers++;
    return 1;
}

int intake_failover_due(struct intake *c, int64_t waiting_since_ms)
{
    if (c->n_endpoints < 2 || c->failover_ms == 0 || waiting_since_ms <= 0)
        return 0;
    int64_t since = waiting_since_ms > c->last_heard ? waiting_since_ms : c->last_heard;
    if (now_ms() - since < (int64_t)c->failover_ms)
        return 0;
    return intake_failover(c);
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
    case GD_T_SUBMITS:
        return m->u.submits.ref;
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
    case GD_T_SUBMITTED:
        return m->u.submitted.ref;
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
    case GD_T_SUBMITS:
        m->u.submits.ref = ref;
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
        if (rc == 1 || rc == -EPROTO)
            c->last_heard = now_ms(); /* the broker is there, even when it says nonsense */
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

/* Milliseconds from now until `until` (-1: no limit), at least 0. */
static int ms_until(int64_t until)
{
    if (until < 0)
        return -1;
    int64_t l = until - now_ms();
    return l > 0 ? (l > INT32_MAX ? INT32_MAX : (int)l) : 0;
}

/* The earlier of two limits, -1 being none. */
static int64_t earlier(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

/* One attempt of intake_call() on the current endpoint, until `until`
 * (-1: for ever). Returns 1 with *ret, 0 when `until` passed, or -errno. */
static int call_once(struct intake *c, struct gd_msg *m, int64_t until, struct gd_msg *ret)
{
    uint64_t ref = intake_next_ref(c);
    intake_msg_set_ref(m, ref);
    int rc = intake_send(c, m);
    if (rc == -EAGAIN) {
        /* the pipe is full (no broker yet): wait for room within the attempt */
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLOUT};
        if (zmq_poll(&it, 1, ms_until(until)) <= 0)
            return 0;
        rc = intake_send(c, m);
    }
    if (rc < 0)
        return rc;
    for (;;) {
        int left = ms_until(until);
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

int intake_call(struct intake *c, struct gd_msg *m, int timeout_ms, struct gd_msg *ret)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    bool can_move = c->n_endpoints > 1 && c->failover_ms > 0;
    for (;;) {
        int64_t until = deadline;
        if (can_move)
            until = earlier(deadline, now_ms() + c->failover_ms);
        int rc = call_once(c, m, until, ret);
        if (rc != 0)
            return rc;
        if (deadline >= 0 && now_ms() >= deadline)
            return 0;
        /* the broker said nothing for failover_ms: the next of the list gets
         * the same request (again with a fresh ref) */
        rc = intake_failover(c);
        if (rc < 0)
            return rc;
    }
}
