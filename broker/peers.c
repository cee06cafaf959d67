/* peers.c - connections per endpoint, counted from socket monitors and refused beyond a limit. */
#include "peers.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "broker.h"
#include "log.h"

static const struct {
    const char *name;    /* in logs and alarms */
    const char *option;  /* the limit */
    const char *counter; /* refusals, in the broker status */
} info[PEERS_ENDPOINTS] = {
    [PEERS_INTAKE] = {"intake", "--max-intake-clients", "connections_refused_intake"},
    [PEERS_WORK] = {"work", "--max-workers", "connections_refused_work"},
    [PEERS_STATUS] = {"status", "--max-subscribers", "connections_refused_status"},
};

/* Values of peers.fds[fd]. */
#define FD_NONE       0
#define FD_HELD(e)    (1 + (e))
#define FD_REFUSED(e) (1 + PEERS_ENDPOINTS + (e))

int peers_reserve_fds(const struct config *cfg, char *err, size_t errlen)
{
    unsigned long long need = (unsigned long long)cfg->max_intake_clients + cfg->max_workers +
                              cfg->max_subscribers + PEERS_RESERVED_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "cannot read the open-file limit: %s", strerror(errno));
        return -1;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        snprintf(err, errlen,
                 "the connection limits need %llu open files (--max-intake-clients %u + "
                 "--max-workers %u + --max-subscribers %u + %d for the broker itself), but the "
                 "open-file limit is %llu (hard limit %llu): raise it (LimitNOFILE=, ulimit -n) "
                 "or lower the connection limits",
                 need, cfg->max_intake_clients, cfg->max_workers, cfg->max_subscribers,
                 PEERS_RESERVED_FDS, (unsigned long long)rl.rlim_cur,
                 (unsigned long long)rl.rlim_max);
        return -1;
    }
    unsigned long long was = rl.rlim_cur;
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        snprintf(err, errlen, "cannot raise the open-file limit from %llu to %llu: %s", was, need,
                 strerror(errno));
        return -1;
    }
    log_info("peers", "open-file limit raised from %llu to %llu for the connection limits", was,
             need);
    return 0;
}

/* ---- alarms, at most one per endpoint every PEERS_ALARM_MS ---- */

static void report(struct broker *b, enum peers_endpoint e, uint64_t now)
{
    struct peers_count *c = &b->peers.ep[e];
    char msg[256];
    snprintf(msg, sizeof(msg),
             "the %s endpoint holds its limit of %u connections (%s %u) and refused %llu more "
             "(reported at most every %d s)",
             info[e].name, c->max, info[e].option, c->max, (unsigned long long)c->unreported,
             PEERS_ALARM_MS / 1000);
    b->fx.alarm(b->fx.ctx, "limit", "warning", 0, NULL, msg);
    c->unreported = 0;
    c->alarmed_at = now;
}

static void on_alarm_timer(uv_timer_t *t);

/* Reports what is due now; arms the timer for what is held back. */
static void report_due(struct broker *b)
{
    uint64_t now = uv_now(b->loop), next = 0;
    for (int e = 0; e < PEERS_ENDPOINTS; e++) {
        struct peers_count *c = &b->peers.ep[e];
        if (!c->unreported)
            continue;
        uint64_t due = c->alarmed_at ? c->alarmed_at + PEERS_ALARM_MS : 0;
        if (due <= now)
            report(b, (enum peers_endpoint)e, now);
        else if (!next || due - now < next)
            next = due - now;
    }
    if (next)
        uv_timer_start(&b->peers.alarm_timer, on_alarm_timer, next, 0);
}

static void on_alarm_timer(uv_timer_t *t)
{
    report_due(t->data);
}

/* ---- the table of connections, by descriptor ---- */

/* Makes the table reach descriptor `fd`. Returns false when out of memory. */
static bool room_for(struct peers *p, int fd)
{
    if ((size_t)fd < p->n_fds)
        return true;
    size_t n = p->n_fds ? p->n_fds : 1024;
    while (n <= (size_t)fd)
        n *= 2;
    uint8_t *t = realloc(p->fds, n);
    if (!t)
        return false;
    memset(t + p->n_fds, FD_NONE, n - p->n_fds);
    p->fds = t;
    p->n_fds = n;
    return true;
}

/* Forgets descriptor `fd`, counting a held connection out. */
static void forget(struct broker *b, int fd)
{
    struct peers *p = &b->peers;
    uint8_t v = (size_t)fd < p->n_fds ? p->fds[fd] : FD_NONE;
    if (v == FD_NONE)
        return;
    /* 1 + endpoint, or 1 + PEERS_ENDPOINTS + endpoint when refused */
    p->fds[fd] = FD_NONE;
    if (v > PEERS_ENDPOINTS)
        return; /* a refused one */
    struct peers_count *c = &p->ep[v - 1];
    c->live--;
    log_debug("peers", "%s: connection closed (%u of %u)", info[v - 1].name, c->live, c->max);
}

static void refuse(struct broker *b, enum peers_endpoint e)
{
    struct peers_count *c = &b->peers.ep[e];
    c->refused++;
    c->unreported++;
    log_debug("peers", "%s: connection refused (%u of %u held)", info[e].name, c->live, c->max);
    report_due(b);
}

/* A connection of endpoint `e` closed. Each endpoint reports through
 * its own monitor, read in turn: a descriptor listed for another
 * endpoint was reused by that one, whose accept was read first (and
 * counted this close already). */
static void closed(struct broker *b, enum peers_endpoint e, int fd)
{
    struct peers *p = &b->peers;
    uint8_t v = (size_t)fd < p->n_fds ? p->fds[fd] : FD_NONE;
    if (v == FD_HELD(e) || v == FD_REFUSED(e))
        forget(b, fd);
}

/* A connection accepted on endpoint `e`. Returns true when it is to be
 * refused. */
static bool accepted(struct broker *b, enum peers_endpoint e, int fd)
{
    struct peers *p = &b->peers;
    struct peers_count *c = &p->ep[e];
    /* A descriptor still listed was closed, its close not read yet (it
     * comes through another endpoint's monitor): count it out now. */
    forget(b, fd);
    if (!room_for(p, fd) || c->live >= c->max) {
        if ((size_t)fd < p->n_fds)
            p->fds[fd] = FD_REFUSED(e);
        refuse(b, e);
        return true;
    }
    p->fds[fd] = FD_HELD(e);
    c->live++;
    if (e == PEERS_STATUS) {
        int rcvbuf = PEERS_STATUS_RCVBUF;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)); /* ipc too: harmless */
    }
    log_debug("peers", "%s: connection accepted (%u of %u)", info[e].name, c->live, c->max);
    return false;
}

static struct zsock *endpoint_sock(struct broker *b, enum peers_endpoint e)
{
    return e == PEERS_INTAKE ? &b->intake : e == PEERS_WORK ? &b->work : &b->status;
}

/* Reads every waiting event of endpoint `e`. Refused connections are shut
 * down only once all are read: a close already reported means that its
 * descriptor may belong to someone else by now. */
static void read_events(struct broker *b, enum peers_endpoint e)
{
    struct zsock *zs = endpoint_sock(b, e);
    struct peers *p = &b->peers;
    int refused[64];
    size_t n = 0;
    enum zsock_event ev;
    int fd;
    while (zs->open && zsock_next_event(zs, &ev, &fd) == 1) {
        if (fd < 0)
            continue;
        if (ev == ZSOCK_CLOSED) {
            closed(b, e, fd);
            continue;
        }
        if (!accepted(b, e, fd))
            continue;
        if (n == sizeof(refused) / sizeof(refused[0])) {
            /* a long batch: shut down what it holds so far */
            for (size_t i = 0; i < n; i++)
                if ((size_t)refused[i] < p->n_fds && p->fds[refused[i]] == FD_REFUSED(e))
                    shutdown(refused[i], SHUT_RDWR);
            n = 0;
        }
        refused[n++] = fd;
    }
    for (size_t i = 0; i < n; i++)
        if ((size_t)refused[i] >= p->n_fds || p->fds[refused[i]] == FD_REFUSED(e))
            shutdown(refused[i], SHUT_RDWR);
}

static void on_events(struct zsock *zs)
{
    struct broker *b = zs->data;
    for (int e = 0; e < PEERS_ENDPOINTS; e++)
        if (zs == endpoint_sock(b, (enum peers_endpoint)e))
            read_events(b, (enum peers_endpoint)e);
}

/* ---- public ---- */

int peers_open(struct broker *b)
{
    struct peers *p = &b->peers;
    p->ep[PEERS_INTAKE].max = b->cfg.max_intake_clients;
    p->ep[PEERS_WORK].max = b->cfg.max_workers;
    p->ep[PEERS_STATUS].max = b->cfg.max_subscribers;
    if (!room_for(p, 0))
        return -1;
    uv_timer_init(b->loop, &p->alarm_timer);
    p->alarm_timer.data = b;
    p->timer_open = true;
    return 0;
}

void peers_watch(struct zsock_options *o)
{
    o->on_events = on_events;
}

/* The bytes received so far on TCP connection `fd`; -1 when the kernel
 * does not count them (ipc). */
/* glibc's struct tcp_info stops at tcpi_total_retrans; the kernel's
 * (linux/tcp.h, which clashes with glibc's header) goes on, append-only,
 * with these: tcpi_bytes_received since Linux 4.1. */
struct tcp_info_41 {
    struct tcp_info base;
    uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
};
_Static_assert(offsetof(struct tcp_info_41, bytes_received) == 128,
               "tcpi_bytes_received is at offset 128 of the kernel's struct tcp_info");

static int64_t bytes_received(int fd)
{
    struct tcp_info_41 ti;
    socklen_t len = sizeof(ti);
    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 || len < sizeof(ti))
        return -1;
    return (int64_t)ti.bytes_received;
}

void peers_check_subscribers(struct broker *b)
{
    struct peers *p = &b->peers;
    uint64_t limit = b->cfg.max_subscriber_bytes;
    if (p->checking)
        return; /* the alarm below is a status send, which checks again */
    p->checking = true;
    p->checked_at = uv_hrtime();
    read_events(b, PEERS_STATUS); /* the descriptors must be current */
    for (size_t fd = 0; fd < p->n_fds; fd++) {
        if (p->fds[fd] != FD_HELD(PEERS_STATUS))
            continue;
        int64_t got = bytes_received((int)fd);
        if (got < 0 || (uint64_t)got <= limit)
            continue;
        /* counted out now; its close, when ZeroMQ reports it, is a refused one's */
        p->fds[fd] = FD_REFUSED(PEERS_STATUS);
        p->ep[PEERS_STATUS].live--;
        shutdown((int)fd, SHUT_RDWR);
        p->subscribers_cut++;
        p->cut_unreported++;
        log_warn("peers", "status: closed a subscriber's connection after %lld bytes of "
                 "subscriptions (--max-subscriber-bytes %llu)",
                 (long long)got, (unsigned long long)limit);
    }
    uint64_t now = uv_now(b->loop);
    if (p->cut_unreported && (!p->cut_alarmed_at || now >= p->cut_alarmed_at + PEERS_ALARM_MS)) {
        char msg[256];
        snprintf(msg, sizeof(msg),
                 "closed %llu status subscriber connection(s) that sent more than %llu bytes of "
                 "subscriptions (--max-subscriber-bytes); a dashboard subscribes to a few "
                 "topic prefixes",
                 (unsigned long long)p->cut_unreported, (unsigned long long)limit);
        p->cut_unreported = 0;
        p->cut_alarmed_at = now;
        b->fx.alarm(b->fx.ctx, "limit", "warning", 0, NULL, msg);
    }
    p->checking = false;
}

void peers_check_subscribers_due(struct broker *b)
{
    if (b->peers.ep[PEERS_STATUS].live && uv_hrtime() - b->peers.checked_at >= PEERS_CHECK_NS)
        peers_check_subscribers(b);
}

void peers_sync(struct broker *b)
{
    for (int e = 0; e < PEERS_ENDPOINTS; e++)
        read_events(b, (enum peers_endpoint)e);
}

const char *peers_counter_name(enum peers_endpoint e)
{
    return info[e].counter;
}

void peers_close(struct broker *b)
{
    struct peers *p = &b->peers;
    if (p->timer_open) {
        uv_timer_stop(&p->alarm_timer);
        uv_close((uv_handle_t *)&p->alarm_timer, NULL);
        p->timer_open = false;
    }
    free(p->fds);
    p->fds = NULL;
    p->n_fds = 0;
}
