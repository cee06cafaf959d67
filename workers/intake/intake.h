/* intake.h - client of the broker's intake endpoint (one DEALER) for gd-open311, gd-hotline and
 * gdctl.
 *
 * One `struct intake` is one DEALER socket: use it from one thread only.
 * Requests carry a `ref` the caller picks (intake_next_ref()); replies are
 * matched by it. Several requests may be in flight (PROTOCOL.md §9).
 */
#ifndef GD_INTAKE_INTAKE_H
#define GD_INTAKE_INTAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "gdp.h"

struct intake;

/* Connects a DEALER in ZeroMQ context `zctx` to `endpoint` (tcp:// or
 * ipc://). Connecting never waits for the broker: a request sent before it
 * is up waits in the socket. Returns 0 and *ret, or -errno (-EINVAL for a
 * bad key setting below).
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

/* The DEALER, for zmq_poll() beside other sockets. */
void *intake_socket(struct intake *c);

/* A fresh request ref (1, 2, 3, ...; never 0). */
uint64_t intake_next_ref(struct intake *c);

/* The ref of a request or reply message; 0 for types without one. */
uint64_t intake_msg_ref(const struct gd_msg *m);

/* Sets the ref of a request message (SUBMIT ... APPROVE); others unchanged. */
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
 * could not read the request) also ends the wait. Returns 1 with *ret
 * (valid until the next receive), 0 on timeout, or a negative code as
 * intake_send()/intake_recv(). */
int intake_call(struct intake *c, struct gd_msg *m, int timeout_ms, struct gd_msg *ret);

#endif
