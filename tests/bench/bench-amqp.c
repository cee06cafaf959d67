/* bench-amqp.c - durable publish rate of an AMQP 0-9-1 broker (RabbitMQ) with publisher confirms:
 * the peer that tests/bench/run-peer-bench.sh compares gd-broker's durable intake with.
 *
 * usage: bench-amqp HOST PORT quorum|classic [total] [connections] [window] [size]
 *
 * Declares a durable queue of that type (deleting what an earlier run
 * left in it), then `connections` threads, each with its own connection
 * and a channel in confirm mode, publish persistent messages of `size`
 * bytes to it through the default exchange, keeping at most `window`
 * unconfirmed each, until `total` are confirmed. A confirm from RabbitMQ
 * means the message is on disk (classic: fsynced; quorum: fsynced by a
 * majority, here the one node), as an ACCEPTED from gd-broker means
 * committed. Prints the confirmed rate, and the publisher's own CPU time
 * per message, so that a reader can see the publisher was not the limit.
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

struct job {
    const char *host;
    int port;
    const char *queue;
    int count;
    int window;
    amqp_bytes_t body;
    pthread_barrier_t *start;
    int nacked;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-amqp: %s\n", what);
    exit(1);
}

static void check_reply(amqp_rpc_reply_t r, const char *what)
{
    if (r.reply_type == AMQP_RESPONSE_NORMAL)
        return;
    char msg[256];
    if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION)
        snprintf(msg, sizeof(msg), "%s: %s", what, amqp_error_string2(r.library_error));
    else
        snprintf(msg, sizeof(msg), "%s: refused by the server (method 0x%08x)", what,
                 (unsigned)r.reply.id);
    die(msg);
}

/* A logged-in connection with channel 1 open. */
static amqp_connection_state_t open_conn(const char *host, int port)
{
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *sock = conn ? amqp_tcp_socket_new(conn) : NULL;
    if (!sock)
        die("out of memory");
    if (amqp_socket_open(sock, host, port) != AMQP_STATUS_OK)
        die("cannot connect");
    check_reply(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"),
                "login");
    amqp_channel_open(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "channel.open");
    return conn;
}

static void close_conn(amqp_connection_state_t conn)
{
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
}

/* Marks delivery tags confirmed: `tag` alone, or with `multiple` every
 * tag up to it. Returns how many were not confirmed before. */
static int mark(bool *acked, uint64_t *lowest, uint64_t tag, bool multiple, uint64_t sent)
{
    if (tag > sent)
        die("confirm of a message never sent");
    int n = 0;
    for (uint64_t t = multiple ? *lowest : tag; t <= tag; t++) {
        if (!acked[t]) {
            acked[t] = true;
            n++;
        }
    }
    while (*lowest <= sent && acked[*lowest])
        (*lowest)++;
    return n;
}

/* Reads one frame (waiting at most 30 s) and counts the confirms in it;
 * returns how many messages it confirmed (acks and nacks). */
static int read_confirms(amqp_connection_state_t conn, bool *acked, uint64_t *lowest, uint64_t sent,
                         int *nacked)
{
    amqp_frame_t f;
    struct timeval tv = {30, 0};
    int rc = amqp_simple_wait_frame_noblock(conn, &f, &tv);
    if (rc == AMQP_STATUS_TIMEOUT)
        die("no confirm within 30 s");
    if (rc != AMQP_STATUS_OK)
        die(amqp_error_string2(rc));
    if (f.frame_type != AMQP_FRAME_METHOD)
        return 0;
    if (f.payload.method.id == AMQP_BASIC_ACK_METHOD) {
        const amqp_basic_ack_t *a = f.payload.method.decoded;
        return mark(acked, lowest, a->delivery_tag, a->multiple, sent);
    }
    if (f.payload.method.id == AMQP_BASIC_NACK_METHOD) {
        const amqp_basic_nack_t *k = f.payload.method.decoded;
        int n = mark(acked, lowest, k->delivery_tag, k->multiple, sent);
        *nacked += n;
        return n;
    }
    if (f.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD ||
        f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD)
        die("the server closed the channel");
    return 0;
}

static void *publisher(void *arg)
{
    struct job *j = arg;
    amqp_connection_state_t conn = open_conn(j->host, j->port);
    amqp_confirm_select(conn, 1);
    check_reply(amqp_get_rpc_reply(conn), "confirm.select");
    amqp_basic_properties_t props = {
        ._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG,
        .delivery_mode = AMQP_DELIVERY_PERSISTENT,
        .content_type = amqp_cstring_bytes("application/octet-stream"),
    };
    amqp_bytes_t key = amqp_cstring_bytes(j->queue);
    pthread_barrier_wait(j->start);
    int sent = 0, done = 0;
    uint64_t lowest = 1; /* delivery tags count from 1 */
    bool *acked = calloc((size_t)j->count + 1, sizeof(bool));
    if (!acked)
        die("out of memory");
    while (done < j->count) {
        while (sent < j->count && sent - done < j->window) {
            if (amqp_basic_publish(conn, 1, amqp_empty_bytes, key, 0, 0, &props, j->body) !=
                AMQP_STATUS_OK)
                die("publish failed");
            sent++;
        }
        done += read_confirms(conn, acked, &lowest, (uint64_t)sent, &j->nacked);
    }
    free(acked);
    close_conn(conn);
    return NULL;
}

/* Declares `queue` afresh: durable, of type `type`, empty. */
static void declare(const char *host, int port, const char *queue, const char *type)
{
    amqp_connection_state_t conn = open_conn(host, port);
    amqp_queue_delete(conn, 1, amqp_cstring_bytes(queue), 0, 0);
    check_reply(amqp_get_rpc_reply(conn), "queue.delete");
    amqp_table_entry_t arg = {
        .key = amqp_cstring_bytes("x-queue-type"),
        .value = {.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = amqp_cstring_bytes(type)},
    };
    amqp_table_t args = {.num_entries = 1, .entries = &arg};
    amqp_queue_declare(conn, 1, amqp_cstring_bytes(queue), 0, 1, 0, 0, args);
    check_reply(amqp_get_rpc_reply(conn), "queue.declare");
    close_conn(conn);
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

int main(int argc, char **argv)
{
    if (argc < 4 || (strcmp(argv[3], "quorum") != 0 && strcmp(argv[3], "classic") != 0)) {
        fprintf(stderr, "usage: bench-amqp HOST PORT quorum|classic [total] [connections] "
                        "[window] [size]\n");
        return 2;
    }
    const char *host = argv[1], *type = argv[3];
    int port = atoi(argv[2]);
    int total = argc > 4 ? atoi(argv[4]) : 100000;
    int conns = argc > 5 ? atoi(argv[5]) : 4;
    int window = argc > 6 ? atoi(argv[6]) : 1000;
    int size = argc > 7 ? atoi(argv[7]) : 512;
    if (conns < 1 || conns > 64 || window < 1 || total < conns || size < 1)
        die("bad arguments");
    char queue[64];
    snprintf(queue, sizeof(queue), "gd-peer-%s", type);
    declare(host, port, queue, type);

    char *payload = malloc((size_t)size);
    if (!payload)
        die("out of memory");
    for (int i = 0; i < size; i++)
        payload[i] = (char)('a' + i % 26);
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)conns + 1);
    pthread_t t[64];
    struct job jobs[64];
    for (int i = 0; i < conns; i++) {
        jobs[i] = (struct job){host,          port,   queue,
                               total / conns, window, (amqp_bytes_t){(size_t)size, payload},
                               &start,        0};
        pthread_create(&t[i], NULL, publisher, &jobs[i]);
    }
    pthread_barrier_wait(&start);
    double t0 = now_s(), c0 = cpu_s();
    int nacked = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(t[i], NULL);
        nacked += jobs[i].nacked;
    }
    double elapsed = now_s() - t0, cpu = cpu_s() - c0;
    int n = total / conns * conns;
    printf("amqp      %s queue, %d messages of %d bytes, %d connections, %d unconfirmed each: "
           "%.0f confirmed/s (%d nacked); publisher CPU %.1f µs per message, %.0f %% of one "
           "core\n",
           type, n, size, conns, window, n / elapsed, nacked, cpu / n * 1e6, cpu / elapsed * 100);
    free(payload);
    declare(host, port, queue, type); /* leave it empty */
    return nacked ? 1 : 0;
}
