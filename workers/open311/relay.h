/* relay.h - hands gd-open311's SUBMITs from the HTTP threads to the one thread that owns the
 * broker's DEALER socket.
 *
 * ZeroMQ sockets are not thread-safe: only relay_run()'s thread touches the
 * socket. HTTP threads queue an encoded request with relay_call() and sleep
 * until its reply (matched by ref) or their timeout.
 */
#ifndef GD_OPEN311_RELAY_H
#define GD_OPEN311_RELAY_H

#include <stdint.h>

#include "gdp.h"
#include "svcnotify.h"

struct relay;

/* Connects the DEALER to `endpoint` in `zctx` (used only by relay_run()'s
 * thread afterwards). Returns 0 and *ret, or -errno. */
int relay_new(void *zctx, const char *endpoint, struct relay **ret);

/* Frees; call after relay_run() returned and no relay_call() is running. */
void relay_free(struct relay *r);

/* A fresh request ref (thread-safe). */
uint64_t relay_next_ref(struct relay *r);

/* Any thread: sends `body` (an encoded request of `type` whose ref is `ref`)
 * and waits up to timeout_ms for its reply, copied into *ret_type and
 * ret_body. Returns 1, 0 on timeout (the request may still be answered
 * later: the answer is dropped), or -errno. */
int relay_call(struct relay *r, uint64_t ref, enum gd_type type, const struct gd_buf *body,
               int timeout_ms, uint8_t *ret_type, struct gd_buf *ret_body);

/* The broker thread: moves requests and replies until `stop_fd` (a
 * signalfd or eventfd) is readable, feeding the systemd watchdog through
 * `notify` on every turn. Returns 0 or -errno. */
int relay_run(struct relay *r, int stop_fd, struct svcnotify *notify);

#endif
