/* bench-subscribers.c - N status subscribers (SUB, everything) draining a broker's XPUB, for the
 * fan-out benchmark.
 *
 * usage: bench-subscribers STATUS_EP N SECONDS [PREFIX,PREFIX... | towns:CODE,CODE...]
 *
 * Opens N SUB sockets subscribed to every topic (or to the given topic
 * prefixes) on one ZeroMQ context. With towns:, subscriber i follows one
 * town, as a town command centre's screens do: `inc.<town>`,
 * `queue.<town>`, `sla.`, `alarm.` and `broker`, the towns taken in turn;
 * reads everything they receive for SECONDS or until SIGTERM (zmq_poll, then drain each
 * readable socket), and prints the messages and bytes received in total and per
 * subscriber. Used by run-subscriber-bench.sh: the subscribers must be
 * cheap so that what is measured is the broker's cost of fanning out.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_SUBS 1000

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Subscribes `s` to the topics of the i-th town (in turn) of the
 * comma-separated `towns`, and to what every dashboard follows. */
static void subscribe_town(void *s, const char *towns, int i)
{
    int k = 0;
    for (const char *p = towns; *p; p += strcspn(p, ",") + (p[strcspn(p, ",")] == ','))
        k++;
    if (k == 0) {
        fprintf(stderr, "bench-subscribers: towns: needs at least one town code\n");
        exit(2);
    }
    const char *t = towns;
    for (int j = i % k; j > 0; j--)
        t += strcspn(t, ",") + 1;
    int len = (int)strcspn(t, ",");
    char topic[160];
    snprintf(topic, sizeof(topic), "inc.%.*s", len, t);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic));
    snprintf(topic, sizeof(topic), "queue.%.*s", len, t);
    zmq_setsockopt(s, ZMQ_SUBSCRIBE, topic, strlen(topic));
    static const char *const common[] = {"sla.", "alarm.", "broker"};
    for (size_t c = 0; c < sizeof(common) / sizeof(common[0]); c++)
        zmq_setsockopt(s, ZMQ_SUBSCRIBE, common[c], strlen(common[c]));
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: bench-subscribers STATUS_EP N SECONDS "
                        "[PREFIX,PREFIX... | towns:CODE,CODE...]\n");
        return 2;
    }
    int n = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (n < 1 || n > MAX_SUBS || seconds <= 0) {
        fprintf(stderr, "bench-subscribers: N must be 1..%d and SECONDS > 0\n", MAX_SUBS);
        return 2;
    }
    void *ctx = zmq_ctx_new();
    zmq_pollitem_t *items = calloc((size_t)n, sizeof(*items));
    if (!ctx || !items)
        return 1;
    int hwm = 100000, zero = 0;
    for (int i = 0; i < n; i++) {
        void *s = zmq_socket(ctx, ZMQ_SUB);
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm));
        zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
        if (argc == 5 && strncmp(argv[4], "towns:", 6) == 0) {
            subscribe_town(s, argv[4] + 6, i);
        } else if (argc == 5) {
            for (const char *p = argv[4]; *p;) {
                size_t len = strcspn(p, ",");
                zmq_setsockopt(s, ZMQ_SUBSCRIBE, p, len);
                p += len + (p[len] == ',');
            }
        } else {
            zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0);
        }
        if (zmq_connect(s, argv[1]) < 0) {
            fprintf(stderr, "bench-subscribers: connect %s: %s\n", argv[1],
                    zmq_strerror(zmq_errno()));
            return 1;
        }
        items[i] = (zmq_pollitem_t){.socket = s, .events = ZMQ_POLLIN};
    }
    unsigned long long received = 0, bytes = 0;
    double end = now_s() + seconds;
    zmq_msg_t m;
    zmq_msg_init(&m);
    /* SIGTERM ends the run early, figures printed */
    sigaction(SIGTERM, &(struct sigaction){.sa_handler = on_term}, NULL);
    while (!stop && now_s() < end) {
        if (zmq_poll(items, n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            while (zmq_msg_recv(&m, items[i].socket, ZMQ_DONTWAIT) >= 0) {
                bytes += zmq_msg_size(&m);
                if (!zmq_msg_more(&m))
                    received++;
            }
        }
    }
    zmq_msg_close(&m);
    printf("subscribers %d, messages received %llu (%.0f each), %llu bytes (%.0f each)\n", n,
           received, (double)received / n, bytes, (double)bytes / n);
    for (int i = 0; i < n; i++)
        zmq_close(items[i].socket);
    free(items);
    zmq_ctx_term(ctx);
    return 0;
}
