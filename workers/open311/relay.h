/* relay.h - hands gd-open311's SUBMITs from the HTTP threads to the one thread that owns the
 * brokers' DEALER sockets (one per shard of the city; one when there is no city).
 *
 * ZeroMQ sockets are not thread-safe: only relay_run()'s thread touches the
 * sockets. HTTP threads queue an encoded request with relay_call() and sleep
 * until its reply (matched by ref) or their timeout.
 */
#ifndef GD_OPEN311_RELAY_H
#define GD_OPEN311_RELAY_H

#include <stdint.h>

#include "gdp.h"
#include "svcnotify.h"

struct relay;

#define RELAY_MAX_SHARDS 32

/* Connects one intake client to each of the `n` endpoints (1..RELAY_MAX_SHARDS;
 * a shard's index is its place in the list; each an endpoint or an HA
 * pair's comma list, intake.h) in `zctx`, used only by relay_run()'s thread
 * afterwards. A shard's broker silent for `failover_ms` (0: never) while
 * requests wait on it makes its client move to the next endpoint of its
 * list, where those requests are sent again at once; that is logged at
 * `log_level` (olog.h). Returns 0 and *ret, -EINVAL for a bad n or list, or
 * -errno. */
int relay_new(void *zctx, const char *const *endpoints, size_t n, unsigned failover_ms,
              int log_level, struct relay **ret);

/* How many times the shards' clients moved to another endpoint in all. */
uint64_t relay_failovers(struct relay *r);

/* Frees; call after relay_run() returned and no relay_call() is running. */
void relay_free(struct relay *r);

/* A fresh request ref (thread-safe). */
uint64_t relay_next_ref(struct relay *r);

/* Any thread: sends `body` (an encoded request of `type` whose ref is `ref`)
 * to shard `shard` (an index given to relay_new()) and waits up to
 * timeout_ms for its reply, copied into *ret_type and ret_body. Returns 1,
 * 0 on timeout (the request may still be answered later: the answer is
 * dropped), -EINVAL for a shard out of range, or -errno. */
int relay_call(struct relay *r, size_t shard, uint64_t ref, enum gd_type type,
               const struct gd_buf *body, int timeout_ms, uint8_t *ret_type,
               struct gd_buf *ret_body);

/* The broker thread: moves requests and replies until `stop_fd` (a
 * signalfd or eventfd) is readable, feeding the systemd watchdog through
 * `notify` on every turn. Returns 0 or -errno. */
int relay_run(struct relay *r, int stop_fd, struct svcnotify *notify);

#endif
