/* session.h - the SLA worker's session with gd-broker: HELLO, the deadline stream, WARN/ESCALATE.
 */
#ifndef GD_SLA_SESSION_H
#define GD_SLA_SESSION_H

/* One session object runs the whole protocol of PROTOCOL.md §9 "SLA
 * stream" on the caller's libuv loop:
 *
 *   connect DEALER to endpoint i -> HELLO {role sla, name, shard}
 *   WELCOME -> DEADLINE* (full set) -> SYNCED -> DEADLINE/CLEAR as they happen
 *   WARN/ESCALATE when due (once per incident, kind and version) -> OK/ERR
 *
 * The broker is dead when it says nothing for liveness x heartbeat_ms
 * (or no WELCOME comes within hello_timeout_ms, or it says BYE): the
 * session then drops its socket and every deadline, waits a backoff
 * (doubling from backoff_min_ms to backoff_max_ms, with jitter), and says
 * HELLO to the next endpoint of the list. DENIED (e.g. `overlap`) waits
 * denied_retry_ms, or ends the session with SESSION_EXIT_DENIED.
 * ERR busy/internal to a WARN or ESCALATE resends it after retry_ms; ERR
 * no_session reconnects. */

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "deadline.h"
#include "gdp.h"
#include "log.h"
#include "ticker.h"

/* Exit statuses a session can end with (session.exit_status). */
enum session_exit {
    SESSION_EXIT_OK = 0,     /* stopped by session_stop */
    SESSION_EXIT_FAILED = 1, /* out of memory or a ZeroMQ/libuv failure */
    SESSION_EXIT_DENIED = 3, /* DENIED with exit_on_denied */
};

enum session_state {
    SESSION_WAITING, /* backoff before the next connect */
    SESSION_HELLO,   /* HELLO sent, WELCOME awaited */
    SESSION_SYNCING, /* WELCOME received, full set streaming */
    SESSION_LIVE,    /* SYNCED received */
    SESSION_STOPPED,
};

/* Counters since the last activity report. */
struct session_stats {
    uint64_t deadlines, clears, ignored; /* stream messages applied / stale */
    uint64_t warns, escalations;         /* sent */
    uint64_t applied, not_applied, errors, retries;
};

struct session_conn; /* the DEALER and its poll handle, one per connection */
struct session_request;

struct session {
    uv_loop_t *loop;
    const struct config *cfg;
    const struct logger *log;
    void *zctx;
    struct session_conn *conn;
    enum session_state state;
    int exit_status;   /* enum session_exit, valid once stopped */
    uint32_t endpoint; /* index of the endpoint in use / next */
    uint32_t failures; /* consecutive failed connections */
    uint64_t rng;      /* backoff jitter */

    uint64_t session_id; /* from WELCOME */
    uint32_t heartbeat_ms;
    uint32_t liveness;
    uint64_t last_recv; /* uv_now of the last message from the broker */
    uint64_t last_send; /* uv_now of the last message sent */
    uint64_t hello_at;
    uint32_t sync_count;   /* DEADLINEs received before SYNCED */
    uint64_t sync_started; /* uv_now at WELCOME */

    uint64_t next_ref;
    struct session_request *requests; /* WARN/ESCALATE awaiting OK/ERR (uthash by ref) */
    uint32_t n_requests;

    struct deadline_table table;
    struct ticker ticker;
    uv_timer_t beat;    /* heartbeats and liveness */
    uv_timer_t backoff; /* reconnect delay */
    uv_timer_t report;  /* activity summary */
    uv_idle_t drain;    /* continues reading after a full budget */
    struct gd_decoder *decoder;
    struct gd_buf out;
    struct session_stats stats;
    uint32_t open_handles; /* handles whose close callback is pending */
};

/* Sets up the session on `loop` and starts connecting to the first
 * endpoint of cfg->endpoints. `cfg` and `log` must outlive the session.
 * Returns 0, or a negative errno/libuv code with nothing left to free. */
int session_start(struct session *s, uv_loop_t *loop, const struct config *cfg,
                  const struct logger *log);

/* Says BYE (if a session is open), closes the socket and every handle.
 * The loop then runs out; call session_fini after uv_run returns. Safe
 * to call twice. `status` becomes exit_status unless one is set. */
void session_stop(struct session *s, int status);

/* Frees what the session still holds, after its loop ran out. */
void session_fini(struct session *s);

#endif
