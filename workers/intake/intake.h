/* intake.h - client of the broker's intake endpoint (one DEALER) for gd-open311, gd-hotline and
 * gdctl.
 *
 * One `struct intake` is one DEALER socket: use it from one thread only.
 * Requests carry a `ref` the caller picks (intake_next_ref()); replies are
 * matched by it. Several requests may be in flight (PROTOCOL.md §9).
 *
 * Fail-over: the endpoint given may be a list (an active/standby pair:
 * "tcp://10.0.0.1:7701, tcp://10.0.0.2:7701"). The client talks to one
 * endpoint at a time; when that broker says nothing for failover_ms while a
 * request waits for its answer, it closes the socket and connects to the
 * next endpoint of the list (after the last, the first again). A standby
 * binds nothing, so it is silent too: the client moves on until it finds the
 * active one. Requests in flight are dropped with the old socket: the caller
 * sends again what still waits (a SUBMIT again is safe: the broker answers a
 * repeated source + external_id with the first incident, `duplicate`).
 */
#ifndef GD_INTAKE_INTAKE_H
#define GD_INTAKE_INTAKE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gdp.h"

struct intake;

/* Most endpoints in a list, and the longest one in bytes. */
#define INTAKE_MAX_ENDPOINTS    16
#define INTAKE_MAX_ENDPOINT_LEN 1024

/* Default silence after which the client moves to the next endpoint. */
#define INTAKE_FAILOVER_MS 1000

/* Checks an endpoint list: endpoints separated by commas, blanks around
 * each ignored (the syntax of gd-worker's `endpoints` and gd-sla's --work),
 * 1..INTAKE_MAX_ENDPOINTS entries of 1..INTAKE_MAX_ENDPOINT_LEN bytes.
 * Returns the number of entries, or -EINVAL with a message in `err` (an
 * empty entry, as in "a,,b" or "a,"; an entry too long; too many). */
int intake_check_endpoints(const char *list, char *err, size_t errlen);

/* Connects a DEALER in ZeroMQ context `zctx` to the first endpoint of the
 * list `endpoints` (tcp:// or ipc://; see intake_check_endpoints()).
 * Connecting never waits for the broker: a request sent before it is up
 * waits in the socket. Returns 0 and *ret, or -errno (-EINVAL for a bad
 * list or a bad key setting below).
 *
 * CurveZMQ: when the environment has GD_CURVE_SERVER_KEY (the broker's
 * public key, 40 Z85 characters) and GD_CURVE_KEY (a key pair file from
 * `gdctl keygen`: lines `public = …` and `secret = …`), the connection is
 * a CURVE client with that key pair. */
int intake_open(void *zctx, const char *endpoint, struct intake **ret);

/* Makes `sock` (not yet connected) a CURVE client when the environment
 * says so (GD_CURVE_SERVER_KEY and GD_CURVE_KEY, as above); for other
 * programs' sockets to the broker (status subscribers). Returns 0 (also
 * when the variables are not set), or -EINVAL for a bad setting. */
int intake_curve_from_env(void *sock);

/* Closes the socket (pending sends are dropped) and frees; accepts NULL. */
void intake_close(struct intake *c);

/* The DEALER, for zmq_poll() beside other sockets. It changes when the
 * client fails over: ask for it again before every poll. */
void *intake_socket(struct intake *c);

/* The number of endpoints of the list, and the one in use now. */
size_t intake_n_endpoints(const struct intake *c);
const char *intake_endpoint(const struct intake *c);

/* How many times the client moved to another endpoint. */
uint64_t intake_failovers(const struct intake *c);

/* Sets the silence after which the client moves on [INTAKE_FAILOVER_MS];
 * 0 never moves. */
void intake_set_failover_ms(struct intake *c, uint32_t ms);

/* CLOCK_MONOTONIC in milliseconds: the clock of intake_failover_due(). */
int64_t intake_now_ms(void);

/* For callers that keep requests in flight themselves: `waiting_since_ms`
 * is when the oldest request still waiting for its answer was sent (0 or
 * less: none waits). When the broker has sent nothing since then, nor since
 * its last reply or the connection was opened, for failover_ms, moves to the
 * next endpoint (intake_failover()). Returns 1 when it moved (the caller
 * sends again everything that waits: the new socket has none of it), 0 when
 * not (one endpoint, failover_ms 0, or not silent long enough), or -errno
 * (no new socket: the old one stays; try again later). */
int intake_failover_due(struct intake *c, int64_t waiting_since_ms);

/* Moves to the next endpoint of the list now: closes the socket (requests in
 * flight and unread replies are dropped) and connects to the next one.
 * Returns 1, 0 with a one-endpoint list (nothing changes), or -errno. */
int intake_failover(struct intake *c);

/* A fresh request ref (1, 2, 3, ...; never 0). */
uint64_t intake_next_ref(struct intake *c);

/* The ref of a request or reply message; 0 for types without one. */
uint64_t intake_msg_ref(const struct gd_msg *m);

/* Sets the ref of a request message (SUBMIT ... SUBMITS); others unchanged. */
void intake_msg_set_ref(struct gd_msg *m, uint64_t ref);

/* Encodes `m` and sends it without blocking. Returns 0; -EAGAIN when the
 * socket cannot take it now (high-water mark); -EINVAL when `m` does not
 * encode (a value beyond the protocol: intake_encode_error() says which
 * rule); or another -errno. */
int intake_send(struct intake *c, const struct gd_msg *m);

/* The gd_code of the last -EINVAL from intake_send(). */
enum gd_code intake_encode_error(const struct intake *c);

/* Sends an already encoded body of `type`. Same returns as intake_send(). */
int intake_send_raw(struct intake *c, enum gd_type type, const void *body, size_t len);

/* Waits up to `timeout_ms` (-1: for ever) for one reply and decodes it into
 * *ret (valid until the next receive on `c`). Returns 1 with *ret, 0 on
 * timeout, -EPROTO for a reply that does not decode (it is dropped; the
 * caller may go on), -EINTR when a signal interrupted the wait, or -errno. */
int intake_recv(struct intake *c, int timeout_ms, struct gd_msg *ret);

/* Receives one reply without decoding: its type byte into *ret_type and its
 * body into `body` (replacing the contents). Same returns as intake_recv();
 * -EPROTO for a message that is not two frames with a GDP/1 header. */
int intake_recv_raw(struct intake *c, int timeout_ms, uint8_t *ret_type, struct gd_buf *body);

/* Sends request `m` with a fresh ref and waits up to `timeout_ms` for its
 * reply, dropping replies to other refs. A REJECTED with ref 0 (the broker
 * could not read the request) also ends the wait. With a list of endpoints,
 * a broker silent for failover_ms makes it move to the next endpoint and
 * send `m` again there (with a fresh ref), within the same `timeout_ms`: use
 * it for requests that are safe to repeat (SUBMIT, QUERY, SNAPSHOT, and the
 * commands that carry the incident's version). Returns 1 with *ret
 * (valid until the next receive), 0 on timeout, or a negative code as
 * intake_send()/intake_recv(). */
int intake_call(struct intake *c, struct gd_msg *m, int timeout_ms, struct gd_msg *ret);

#endif
