/* gdworker.h - GDP/1 worker client library: one work-endpoint session driven by a libuv loop.
 *
 * A gdw_client keeps one worker session (role "worker") with a gd-broker:
 * it connects a ZeroMQ DEALER to the first of its endpoints, says HELLO
 * with the queues it serves and its credit, hands every DELIVER to the
 * caller's callback, sends the caller's commands (SIGN, PROGRESS, EXTEND,
 * RETURN, RESOLVE) and reports each one's OK or ERR through a completion
 * callback. It heartbeats, notices a dead broker and reconnects (next
 * endpoint, exponential backoff with jitter) and says HELLO again.
 *
 * Conventions (as libuv's uv.h):
 * - Functions return 0 or a negative errno. If a function that takes a
 *   callback fails, the callback is never called. Callbacks are never
 *   called from inside the library function that was given them: they run
 *   from the loop.
 * - Completion callbacks get `status`: 0 for OK, GDW_ERR (a positive
 *   value) when the broker answered ERR (the code and message are in the
 *   result), or a negative errno: -ETIMEDOUT (no answer within
 *   request_timeout_ms), -ECONNRESET (the session was lost before the
 *   answer came: the command may or may not have been applied), or
 *   -ECANCELED (gdw_close()).
 * - The library does not log. It reports what happens to its connection
 *   through the optional event callback; the caller logs.
 * - Every string passed in is copied or used before the call returns;
 *   every pointer handed to a callback is valid only during that callback.
 *
 * Delivery guarantee: AT LEAST ONCE. An incident whose DELIVER was not
 * signed for is delivered again (to this or another worker) when the
 * session is lost, the worker says BYE or HELLO again, or the broker
 * restarts; a command whose answer was lost may have been applied. So a
 * handler MUST be idempotent by (incident id, version): seeing an
 * incident again with the same or a newer version must do no harm.
 * Retrying a command is safe (PROTOCOL.md §9): a retry of an applied
 * command is answered OK with applied = false, never applied twice; when
 * the incident has moved on since, or (with the current broker) when the
 * retry comes on a new session after a reconnect, the answer is ERR
 * stale_version, which after a retry means "probably applied before".
 *
 * Threads: a client belongs to the thread running its loop; nothing here
 * may be called from another thread.
 */
#ifndef GD_WORKERS_GDWORKER_H
#define GD_WORKERS_GDWORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "gdp.h"

/* Completion status meaning "the broker answered ERR"; see gdw_result. */
#define GDW_ERR 1

/* Most endpoints a client fails over between. */
#define GDW_MAX_ENDPOINTS 16

/* Length of a CURVE key in Z85 text (a 32-byte key). */
#define GDW_CURVE_KEY_LEN 40

struct gdw_client;

/* What happened to the connection; passed to gdw_event_cb. */
enum gdw_event {
    GDW_EV_CONNECTING, /* a new DEALER is connecting to `endpoint`; HELLO is sent */
    GDW_EV_READY,      /* WELCOME received: the session is open */
    GDW_EV_LOST,       /* the session (or the attempt) ended: `reason`; a reconnect
                          follows after `retry_ms` */
    GDW_EV_DENIED,     /* the broker refused HELLO with `code` and `message`; a
                          reconnect follows after `retry_ms` (the caller may
                          gdw_close() instead, e.g. for not_found or denied) */
    GDW_EV_PROTOCOL,   /* the broker sent something this client cannot use (an
                          undecodable message, an ERR with no request, e.g. for a
                          CREDIT above its maximum): `code`, `message` */
};

struct gdw_event_info {
    const char *endpoint;  /* the endpoint concerned */
    uint64_t session;      /* READY: the session id */
    uint32_t heartbeat_ms; /* READY: the interval both sides keep */
    uint32_t liveness;     /* READY: heartbeats missed before a peer is dead */
    uint32_t retry_ms;     /* LOST, DENIED: delay before the next attempt */
    enum gd_code code;     /* DENIED, PROTOCOL: the code (GD_OK if none) */
    const char *reason;    /* LOST: why, for a log line; DENIED, PROTOCOL: the
                              broker's message (never personal data) */
};

/* The answer to a command. On status 0 (OK): incident_id, version (after
 * the command) and applied (false: it had been applied already, this was a
 * retry). On GDW_ERR: code and message (and field, may be ""). Otherwise
 * only incident_id is meaningful. */
struct gdw_result {
    uint64_t incident_id;
    uint32_t version;
    bool applied;
    enum gd_code code;
    const char *message;
    const char *field;
};

/* Called for every DELIVER. `d` and everything it points to (strings,
 * reporter data) are views into the received frame, valid only during the
 * callback: copy what you keep (the ids and version as values, strings
 * with their lengths; or encode the incident to JSON right away). The
 * incident carries reporter contact data (personal data): do not log it.
 * The delivery counts against the credit until the caller signs it with
 * gdw_sign() (or RETURNs or RESOLVEs it unsigned), or the session ends:
 * signed work holds no credit, however long it takes to resolve. */
typedef void (*gdw_deliver_cb)(struct gdw_client *c, const struct gd_deliver *d, void *data);

/* Called when the connection changes; see enum gdw_event. `info` is valid
 * during the call. */
typedef void (*gdw_event_cb)(struct gdw_client *c, enum gdw_event ev,
                             const struct gdw_event_info *info, void *data);

/* Completion of a command; `res` is valid during the call. */
typedef void (*gdw_done_cb)(struct gdw_client *c, int status, const struct gdw_result *res,
                            void *arg);

/* Called once gdw_close() has finished and the client is freed. */
typedef void (*gdw_close_cb)(void *data);

struct gdw_options {
    const char *const *endpoints; /* 1..GDW_MAX_ENDPOINTS ZeroMQ endpoints, tried in order */
    size_t n_endpoints;
    const char *const *queues; /* 1..GD_MAX_QUEUES queue names served */
    size_t n_queues;
    uint32_t credit;  /* initial credit, 0..GD_MAX_CREDIT (0: HELLO says 1 and a
                         CREDIT 0 follows at once) */
    const char *name; /* worker name for the broker's logs and events; may be NULL */
    /* CurveZMQ: all three Z85 keys (GDW_CURVE_KEY_LEN characters), or all NULL. */
    const char *curve_server_key; /* the broker's public key */
    const char *curve_public_key; /* this worker's key pair */
    const char *curve_secret_key;
    uint32_t hello_timeout_ms;   /* no WELCOME within this: try the next endpoint [3000] */
    uint32_t request_timeout_ms; /* no OK/ERR within this: -ETIMEDOUT [10000] */
    uint32_t reconnect_min_ms;   /* first reconnect delay [100] */
    uint32_t reconnect_max_ms;   /* backoff cap [10000] */
    uint32_t max_pending;        /* commands awaiting an answer at once [4096] */
    gdw_deliver_cb on_deliver;   /* required */
    gdw_event_cb on_event;       /* optional */
    void *data;                  /* handed to on_deliver and on_event */
};

/* Creates a client on `loop` with a copy of `opt` (zero fields take the
 * defaults in brackets). Nothing is connected until gdw_start(). Returns
 * 0 and the client in *ret_client, or -EINVAL (no endpoint or queue, too
 * many, a queue name or worker name beyond the protocol's limits, credit
 * above GD_MAX_CREDIT, CURVE keys incomplete or not 40 characters, no
 * on_deliver), -ENOMEM, or another negative errno from ZeroMQ. */
int gdw_new(uv_loop_t *loop, const struct gdw_options *opt, struct gdw_client **ret_client);

/* Starts connecting (to the first endpoint, at once). Returns 0, -EALREADY
 * when started before, -ESHUTDOWN after gdw_close(), or a negative errno. */
int gdw_start(struct gdw_client *c);

/* Ends the client: says BYE when a session is open (the broker then puts
 * unsigned deliveries back in their queues at once), fails every pending
 * command with -ECANCELED, closes the socket and its handles and frees the
 * client; then calls `cb` (may be NULL) from the loop. No other callback is
 * called after gdw_close() returns, except those -ECANCELED completions.
 * Calling it twice is a no-op. */
void gdw_close(struct gdw_client *c, gdw_close_cb cb, void *data);

/* True while a session is open (between READY and LOST). Commands fail
 * with -ENOTCONN otherwise. */
bool gdw_ready(const struct gdw_client *c);

/* The session id of the open session, 0 if none. It changes on every
 * reconnect; callers use it to tell deliveries of an old session apart. */
uint64_t gdw_session(const struct gdw_client *c);

/* Sets the credit (0..GD_MAX_CREDIT): sent as CREDIT now when a session is
 * open and the value changed, and used by every later HELLO. Lowering it
 * recalls nothing. Returns 0, -EINVAL, or a negative errno from the send
 * (the value is kept and sent with the next HELLO). */
int gdw_set_credit(struct gdw_client *c, uint32_t credit);

/* Commands. Each sends one message carrying `incident_id` and `version`
 * (the version from DELIVER or from the last OK) and calls `cb` exactly
 * once with the outcome (see the file comment). Strings are copied; a
 * string beyond GD_MAX_TEXT bytes, or not valid UTF-8, is -EINVAL.
 * Return 0, or: -ENOTCONN (no session open: retry after GDW_EV_READY),
 * -EINVAL (an id of 0, a missing required text, a value beyond the
 * protocol), -ENOBUFS (max_pending commands already wait for an answer),
 * -EAGAIN (the socket's send queue is full), -ENOMEM. */

/* SIGN (签收): take the delivery. Give the delivery_id from DELIVER (or 0
 * and the version). */
int gdw_sign(struct gdw_client *c, uint64_t incident_id, uint32_t version, uint64_t delivery_id,
             gdw_done_cb cb, void *arg);
/* PROGRESS: a note on a signed incident (it becomes IN_PROGRESS). */
int gdw_progress(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *note,
                 gdw_done_cb cb, void *arg);
/* EXTEND (延期): ask for a later resolve deadline `until_ms` (ms since the
 * epoch) with a non-empty reason. */
int gdw_extend(struct gdw_client *c, uint64_t incident_id, uint32_t version, int64_t until_ms,
               const char *reason, gdw_done_cb cb, void *arg);
/* RETURN (退单): not ours; it goes to the parent level or triage. `reason`
 * must not be empty; `rule` may be NULL. */
int gdw_return(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *reason,
               const char *rule, gdw_done_cb cb, void *arg);
/* RESOLVE (办结) with what was done; `result` may be NULL. */
int gdw_resolve(struct gdw_client *c, uint64_t incident_id, uint32_t version, const char *result,
                gdw_done_cb cb, void *arg);

#endif
