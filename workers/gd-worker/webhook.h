/* webhook.h - POSTs incidents to an HTTP handler with libcurl's multi interface on the libuv loop.
 *
 * Why on the loop and not on a worker thread: the job table, the broker
 * session and the transfers then share one thread and need no locks;
 * libcurl's socket API tells the loop which sockets to watch and when to
 * time out, so a slow endpoint never blocks the broker session; at most
 * `credit` (<= 1024) transfers run at once, which one thread drives
 * easily; and libcurl resolves names on its own threaded resolver.
 */
#ifndef GD_WORKER_WEBHOOK_H
#define GD_WORKER_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "outcome.h"

/* Largest response body read; a longer one is a failure. */
#define WEBHOOK_MAX_RESPONSE (64 * 1024)

struct webhook;

/* Sets up a client for `url` on `loop` (curl_global_init must have run).
 * Returns 0 and the client in *ret, or -ENOMEM / -EIO. */
int webhook_new(uv_loop_t *loop, const char *url, struct webhook **ret);

/* POSTs `json` (Content-Type: application/json) with a whole-request
 * timeout. The outcome: a 2xx answer whose body is a JSON object
 * {"action": "resolve"|"return"|"progress"|"retry", "text": "..."} gives
 * that action ("retry" is leave) with the text cleaned as handler output;
 * any other status, an unreadable body, a refused connection or the
 * timeout is leave with the reason in `detail`. `cb` is called once from
 * the loop. Returns 0, or -ENOMEM / -EIO (`cb` is not called). */
int webhook_post(struct webhook *w, const char *json, size_t len, uint32_t timeout_ms,
                 outcome_cb cb, void *arg);

/* Number of transfers under way. */
size_t webhook_active(const struct webhook *w);

/* Aborts every transfer (their callbacks get leave, "aborted"), closes the
 * handles and frees the client once they are closed. Accepts NULL. */
void webhook_close(struct webhook *w);

#endif
