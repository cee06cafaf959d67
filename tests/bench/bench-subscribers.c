/* bench-subscribers.c - N status subscribers (SUB, everything) draining a broker's XPUB, for the
 * fan-out benchmark.
 *
 * usage: bench-subscribers STATUS_EP N SECONDS [PREFIX,PREFIX...]
 *
 * Opens N SUB sockets subscribed to every topic (or to the given topic
 * prefixes) on one ZeroMQ context,
 * reads everything they receive for SECONDS (zmq_poll, then drain each
 * readable socket), and prints the messages received in total and per
 * subscriber. Used by run-subscriber-bench.sh: the subscribers must be
 * cheap so that what is measured is the broker's cost of fanning out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define MAX_SUBS 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: bench-subscribers STATUS_EP N SECONDS [PREFIX,PREFIX...]\n");
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
        if (argc == 5) {
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
    unsigned long long received = 0;
    double end = now_s() + seconds;
    zmq_msg_t m;
    zmq_msg_init(&m);
    while (now_s() < end) {
        if (zmq_poll(items, n, 100) <= 0)
            continue;
        for (int i = 0; i < n; i++) {
            if (!(items[i].revents & ZMQ_POLLIN))
                continue;
            while (zmq_msg_recv(&m, items[i].socket, ZMQ_DONTWAIT) >= 0)
                if (!zmq_msg_more(&m))
                    received++;
        }
    }
    zmq_msg_close(&m);
    printf("subscribers %d, messages received %llu (%.0f each)\n", n, received,
           (double)received / n);
    for (int i = 0; i < n; i++)
        zmq_close(items[i].socket);
    free(items);
    zmq_ctx_term(ctx);
    return 0;
}
