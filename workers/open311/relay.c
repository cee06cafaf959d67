/* relay.c - hands gd-open311's SUBMITs from the HTTP threads to the one thread that owns the
 * brokers' DEALER sockets (one per shard of the city). */
#include "relay.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "intake.h"
#include "olog.h"

/* One request, on the stack of the HTTP thread that waits for it. */
struct job {
    size_t shard;
    uint64_t ref;
    enum gd_type type;
    const struct gd_buf *body;
    bool sent, done;
    uint8_t reply_type;
    struct gd_buf *reply;
    struct job *next;
};

struct relay {
    size_t n_in;
    struct intake *in[RELAY_MAX_SHARDS];
    int wake_fd; /* eventfd: a job was queued */
    atomic_uint_fast64_t next_ref;
    pthread_mutex_t lock;
    pthread_cond_t answered;
    struct job *jobs; /* queued and sent, not yet answered or abandoned */
    struct gd_decoder *dec;
    struct gd_buf in_body;
    int log_level;
    atomic_uint_fast64_t failovers;
    /* since when requests have waited on shard i without a break (0: none
     * waits): an HTTP thread that gives up and asks again with a new job
     * does not restart the count */
    int64_t waiting_since[RELAY_MAX_SHARDS];
};

int relay_new(void *zctx, const char *const *endpoints, size_t n, unsigned failover_ms,
              int log_level, struct relay **ret)
{
    if (n < 1 || n > RELAY_MAX_SHARDS)
        return -EINVAL;
    struct relay *r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    int rc = -ENOMEM;
    r->dec = gd_decoder_new();
    if (!r->dec)
        goto free_relay;
    r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->wake_fd < 0) {
        rc = -errno;
        goto free_decoder;
    }
    for (; r->n_in < n; r->n_in++) {
        rc = intake_open(zctx, endpoints[r->n_in], &r->in[r->n_in]);
        if (rc < 0)
            goto close_intakes;
        intake_set_failover_ms(r->in[r->n_in], failover_ms);
    }
    r->log_level = log_level;
    atomic_init(&r->failovers, 0);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->answered, &ca);
    pthread_condattr_destroy(&ca);
    atomic_init(&r->next_ref, 1);
    *ret = r;
    return 0;

close_intakes:
    for (size_t i = 0; i < r->n_in; i++)
        intake_close(r->in[i]);
    close(r->wake_fd);
free_decoder:
    gd_decoder_free(r->dec);
free_relay:
    free(r);
    return rc;
}

void relay_free(struct relay *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_in; i++)
        intake_close(r->in[i]);
    close(r->wake_fd);
    gd_decoder_free(r->dec);
    gd_buf_fini(&r->in_body);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->answered);
    free(r);
}

uint64_t relay_failovers(struct relay *r)
{
    return atomic_load(&r->failovers);
}

uint64_t relay_next_ref(struct relay *r)
{
    return atomic_fetch_add(&r->next_ref, 1);
}

static void unlink_job(struct relay *r, struct job *j)
{
    for (struct job **p = &r->jobs; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            return;
        }
}

int relay_call(struct relay *r, size_t shard, uint64_t ref, enum gd_type type,
               const struct gd_buf *body, int timeout_ms, uint8_t *ret_type,
               struct gd_buf *ret_body)
{
    if (shard >= r->n_in)
        return -EINVAL;
    struct job j = {.shard = shard, .ref = ref, .type = type, .body = body, .reply = ret_body};
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&r->lock);
    j.next = r->jobs;
    r->jobs = &j;
    pthread_mutex_unlock(&r->lock);
    uint64_t one = 1;
    if (write(r->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN) {
        pthread_mutex_lock(&r->lock);
        unlink_job(r, &j);
        pthread_mutex_unlock(&r->lock);
        return -errno;
    }
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!j.done && rc == 0)
        rc = pthread_cond_timedwait(&r->answered, &r->lock, &until);
    bool done = j.done;
    if (!done)
        unlink_job(r, &j); /* the broker thread never sees it again */
    pthread_mutex_unlock(&r->lock);
    if (!done)
        return 0;
    *ret_type = j.reply_type;
    return 1;
}

/* Sends every queued job (under the lock: sends never block). A shard
 * whose broker is not there yet does not hold up the others. */
static void send_queued(struct relay *r)
{
    bool blocked[RELAY_MAX_SHARDS] = {false};
    pthread_mutex_lock(&r->lock);
    for (struct job *j = r->jobs; j; j = j->next) {
        if (j->sent || blocked[j->shard])
            continue;
        int rc = intake_send_raw(r->in[j->shard], j->type, j->body->data, j->body->len);
        if (rc == 0) {
            j->sent = true;
            if (r->waiting_since[j->shard] == 0)
                r->waiting_since[j->shard] = intake_now_ms();
        } else
            blocked[j->shard] = true; /* -EAGAIN: no broker yet; the caller's timeout decides */
    }
    pthread_mutex_unlock(&r->lock);
}

/* A reply of shard `shard` in r->in_body: to the job waiting for its ref. */
static void deliver_reply(struct relay *r, size_t shard, uint8_t type)
{
    uint8_t hdr[GD_HEADER_LEN];
    gd_encode_header((enum gd_type)type, hdr);
    struct gd_msg m;
    if (gd_decode(r->dec, hdr, sizeof(hdr), r->in_body.data, r->in_body.len, &m, NULL) < 0)
        return;
    uint64_t ref = intake_msg_ref(&m);
    pthread_mutex_lock(&r->lock);
    for (struct job *j = r->jobs; j; j = j->next) {
        if (j->ref != ref || j->shard != shard)
            continue;
        gd_buf_reset(j->reply);
        if (r->in_body.len > j->reply->cap) {
            char *p = realloc(j->reply->data, r->in_body.len);
            if (!p)
                break; /* the caller times out */
            j->reply->data = p;
            j->reply->cap = r->in_body.len;
        }
        memcpy(j->reply->data, r->in_body.data, r->in_body.len);
        j->reply->len = r->in_body.len;
        j->reply_type = type;
        j->done = true;
        unlink_job(r, j);
        pthread_cond_broadcast(&r->answered);
        break;
    }
    pthread_mutex_unlock(&r->lock);
}

/* Moves the client of a shard whose broker went silent while requests wait
 * on it to the next endpoint of its list; those requests go out again on the
 * next send_queued(). */
static void check_failover(struct relay *r)
{
    for (size_t i = 0; i < r->n_in; i++) {
        if (intake_n_endpoints(r->in[i]) < 2)
            continue;
        char was[INTAKE_MAX_ENDPOINT_LEN + 1];
        snprintf(was, sizeof(was), "%s", intake_endpoint(r->in[i]));
        pthread_mutex_lock(&r->lock);
        bool waiting = false;
        for (struct job *j = r->jobs; j && !waiting; j = j->next)
            waiting = j->shard == i && j->sent;
        if (!waiting)
            r->waiting_since[i] = 0;
        int rc = intake_failover_due(r->in[i], r->waiting_since[i]);
        size_t moved = 0;
        if (rc == 1)
            for (struct job *j = r->jobs; j; j = j->next)
                if (j->shard == i && j->sent) {
                    j->sent = false;
                    moved++;
                }
        if (rc == 1)
            r->waiting_since[i] = 0;
        pthread_mutex_unlock(&r->lock);
        if (rc < 0)
            olog(r->log_level, OLOG_WARN, "cannot connect to the next endpoint after %s: %s", was,
                 strerror(-rc));
        if (rc == 1) {
            atomic_fetch_add(&r->failovers, 1);
            olog(r->log_level, OLOG_WARN,
                 "broker %s silent while %zu requests waited: now %s, sending them again", was,
                 moved, intake_endpoint(r->in[i]));
        }
    }
}

int relay_run(struct relay *r, int stop_fd, struct svcnotify *notify)
{
    size_t n = r->n_in;
    for (;;) {
        svcnotify_watchdog(notify);
        zmq_pollitem_t items[RELAY_MAX_SHARDS + 2] = {
            {.fd = r->wake_fd, .events = ZMQ_POLLIN},
            {.fd = stop_fd, .events = ZMQ_POLLIN},
        };
        for (size_t i = 0; i < n; i++)
            items[2 + i] =
                (zmq_pollitem_t){.socket = intake_socket(r->in[i]), .events = ZMQ_POLLIN};
        /* a job that could not be sent (no broker yet) is tried again soon */
        if (zmq_poll(items, (int)(n + 2), svcnotify_wait_ms(notify, 100)) < 0 &&
            zmq_errno() != EINTR)
            return -zmq_errno();
        if (items[1].revents)
            return 0;
        if (items[0].revents) {
            uint64_t v;
            if (read(r->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                return -errno;
        }
        check_failover(r);
        send_queued(r);
        for (size_t i = 0; i < n; i++) {
            uint8_t type;
            int rc;
            while ((rc = intake_recv_raw(r->in[i], 0, &type, &r->in_body)) != 0) {
                if (rc == 1)
                    deliver_reply(r, i, type);
                else if (rc != -EPROTO)
                    return rc;
            }
        }
    }
}
