/* bench-subscribers.c - N status subscribers (SUB, everything) draining a broker's XPUB, for the
 * fan-out benchmark.
 *
 * usage: bench-subscribers STATUS_EP N SECONDS [PREFIX,PREFIX... | towns:CODE,CODE...]
 *
 * Opens N SUB sockets subscribed to every topic (or to the given topic
 * prefixes) on one ZeroMQ context. With towns:, subscriber i follows one
 * town, as a town command centre's screens do: `inc.<town>`,
 * `queue.<town>`, `sla.`, `alarm.` and `broker`, the towns taken in turn;
 * reads everything they receive for SECONDS or until SIGTERM (epoll on their
 * ZMQ_FDs, then drain each socket that woke), and prints the messages and bytes received in total and per
 * subscriber. Used by run-subscriber-bench.sh: the subscribers must be
 * cheap so that what is measured is the broker's cost of fanning out.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>
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

struct counts {
    unsigned long long messages, bytes;
};

/* Reads what socket `s` has, until ZMQ_EVENTS says nothing more: ZMQ_FD is
 * edge-triggered, so stopping earlier could miss what is already queued. */
static void drain(void *s, zmq_msg_t *m, struct counts *c)
{
    for (;;) {
        while (zmq_msg_recv(m, s, ZMQ_DONTWAIT) >= 0) {
            c->bytes += zmq_msg_size(m);
            if (!zmq_msg_more(m))
                c->messages++;
        }
        int events = 0;
        size_t len = sizeof(events);
        if (zmq_getsockopt(s, ZMQ_EVENTS, &events, &len) < 0 || !(events & ZMQ_POLLIN))
            return;
    }
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
    void **socks = calloc((size_t)n, sizeof(*socks));
    if (!ctx || !socks)
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
        socks[i] = s;
    }
    /* Each socket's ZMQ_FD in one epoll set: a wakeup costs the sockets
     * that have something, not all N (zmq_poll would ask every one), so the
     * harness's own CPU stays small beside the broker's on a shared machine. */
    int ep = epoll_create1(0);
    if (ep < 0) {
        perror("bench-subscribers: epoll_create1");
        return 1;
    }
    for (int i = 0; i < n; i++) {
        int fd;
        size_t len = sizeof(fd);
        zmq_getsockopt(socks[i], ZMQ_FD, &fd, &len);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("bench-subscribers: epoll_ctl");
            return 1;
        }
    }
    struct counts c = {0, 0};
    double end = now_s() + seconds;
    zmq_msg_t m;
    zmq_msg_init(&m);
    /* SIGTERM ends the run early, figures printed */
    sigaction(SIGTERM, &(struct sigaction){.sa_handler = on_term}, NULL);
    for (int i = 0; i < n; i++)
        drain(socks[i], &m, &c); /* what came before the epoll set */
    struct epoll_event evs[64];
    while (!stop && now_s() < end) {
        int k = epoll_wait(ep, evs, 64, 100);
        for (int j = 0; j < k; j++)
            drain(socks[evs[j].data.u32], &m, &c);
    }
    close(ep);
    zmq_msg_close(&m);
    printf("subscribers %d, messages received %llu (%.0f each), %llu bytes (%.0f each)\n", n,
           c.messages, (double)c.messages / n, c.bytes, (double)c.bytes / n);
    for (int i = 0; i < n; i++)
        zmq_close(socks[i]);
    free(socks);
    zmq_ctx_term(ctx);
    return 0;
}
