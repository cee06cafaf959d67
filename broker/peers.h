/* peers.h - connections per endpoint, counted from socket monitors and refused beyond a limit.
 *
 * Every endpoint (intake, work, status) has a limit on the connections it
 * holds at once (--max-intake-clients, --max-workers, --max-subscribers).
 * The count is exact: ZeroMQ reports each accepted and each closed
 * connection with its file descriptor. A connection accepted beyond the
 * limit is shut down at once (shutdown(2) on its descriptor; ZeroMQ then
 * sees it end and closes it), before its handshake can finish: every
 * endpoint has a ZAP domain, so a handshake waits for the ZAP handler,
 * which first reads every pending connection event (peers_sync). The
 * client sees its connection end during the handshake, never a message,
 * and ZeroMQ reconnects it after its reconnect interval; once a
 * connection of the endpoint closes, the next one gets in.
 *
 * Refusals are counted per endpoint (broker counters
 * connections_refused_<endpoint>) and published as alarm.limit, at most
 * one per endpoint every PEERS_ALARM_MS.
 */
#ifndef GD_BROKER_PEERS_H
#define GD_BROKER_PEERS_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "zsock.h"

struct broker;

/* Descriptors kept free beside the endpoints' connections: database
 * connections, ZeroMQ's and libuv's own descriptors, the log, and
 * connections that are being refused. */
#define PEERS_RESERVED_FDS 128
#define PEERS_ALARM_MS     10000
#define PEERS_CHECK_NS     (1000 * 1000) /* subscribers' byte counts, at most this often */
#define PEERS_STATUS_RCVBUF 16384        /* bytes; a subscriber sends a few subscriptions */

enum peers_endpoint { PEERS_INTAKE = 0, PEERS_WORK, PEERS_STATUS, PEERS_ENDPOINTS };

struct peers_count {
    uint32_t live; /* connections held (accepted, not refused, not closed) */
    uint32_t max;
    uint64_t refused;    /* since start */
    uint64_t unreported; /* refusals not yet in an alarm */
    uint64_t alarmed_at; /* loop time of the last alarm.limit; 0: none yet */
};

struct peers {
    struct peers_count ep[PEERS_ENDPOINTS];
    uint64_t subscribers_cut;  /* status connections closed for their subscriptions */
    uint64_t cut_unreported;
    uint64_t cut_alarmed_at;
    uint64_t checked_at;       /* uv_hrtime() of the last byte-count check */
    bool checking;
    uint8_t *fds; /* by descriptor: 0, or 1 + endpoint (+ PEERS_ENDPOINTS when refused) */
    size_t n_fds;
    uv_timer_t alarm_timer; /* reports refusals held back by the alarm interval */
    bool timer_open;
};

/* Checks that the three limits plus PEERS_RESERVED_FDS fit in the open-file
 * limit (RLIMIT_NOFILE), raising its soft value up to the hard one when
 * they do not. Call before anything else opens descriptors. Returns 0
 * (after logging a raise), or -1 with the problem and the remedy in err. */
int peers_reserve_fds(const struct config *cfg, char *err, size_t errlen);

/* Takes the limits from the configuration and starts the alarm timer.
 * Returns 0, or -1 when out of memory. */
int peers_open(struct broker *b);

/* Sets `o` so that zsock_bind() reports the endpoint's connections here
 * (the endpoint is known by its zsock: b->intake, b->work or b->status). */
void peers_watch(struct zsock_options *o);

/* Reads every waiting connection event of every endpoint and refuses the
 * connections beyond their limits. The ZAP handler calls it before it
 * answers, so that no refused connection can finish its handshake. */
void peers_sync(struct broker *b);

/* Closes the status connections that have sent more than
 * --max-subscriber-bytes. Subscriptions are what a subscriber sends, and
 * ZeroMQ keeps every distinct one in memory for as long as the connection
 * lasts (tens of bytes of trie per byte of prefix), with no way to refuse
 * one; so the bytes received on the connection bound them. The kernel
 * counts them (TCP_INFO tcpi_bytes_received); ipc connections, local by
 * the socket file's permissions, have no such count and are not checked.
 * Counted as subscribers_cut and reported as alarm.limit.
 *
 * The XPUB applies waiting subscriptions whenever the broker uses the
 * socket (each send, each read), so the check comes as often: after a
 * status send that left new subscriptions to report, on the reports
 * (peers_check_subscribers_due(): at most every PEERS_CHECK_NS), and
 * every gauge period. A status connection's kernel receive buffer is made
 * small (PEERS_STATUS_RCVBUF) when it is accepted, so that a flood waits
 * in the sender's buffers rather than in ours between two checks. */
void peers_check_subscribers(struct broker *b);
void peers_check_subscribers_due(struct broker *b);

/* Name of an endpoint's refusal counter ("connections_refused_intake"...). */
const char *peers_counter_name(enum peers_endpoint e);

/* Stops the timer and frees the table; call after the endpoints closed. */
void peers_close(struct broker *b);

#endif
