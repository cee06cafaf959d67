/* worker.h - gd-worker's core: one broker session, a job per delivery, handler runs, commands.
 *
 * For each delivered incident (sign = before, the default):
 *   SIGN -> run the handler (command or webhook) -> by its outcome:
 *   resolve: RESOLVE with the text; return: RETURN with the text as the
 *   reason; progress: PROGRESS with the text as the note (it stays open
 *   with this unit); leave (exit 75, any other status, a signal, a
 *   timeout, a webhook failure): no command.
 * A left incident stays SIGNED with this unit and is not delivered again;
 * the broker keeps counting it (and every PROGRESSed one) in flight on
 * this session, so gd-worker raises the credit it asks for by the number
 * of such incidents (reset when the session changes). What moves it
 * is the resolve deadline: the SLA worker ESCALATEs it to the next level
 * when the deadline passes (and a person can still RESOLVE it). So a
 * handler should exit 0/3/4 whenever it can and treat 75 as rare.
 * A worker killed while its handler runs leaves the incident SIGNED
 * likewise: signing means the town took it.
 *
 * With sign = after, the handler runs on the unsigned delivery and SIGN
 * is sent only with its result (SIGN, then the command). If the worker
 * dies while the handler runs, the broker puts the delivery back in the
 * queue after its liveness timeout and another worker gets it (the
 * handler may then run twice: handlers are idempotent by incident id and
 * version). A left incident stays DELIVERED: the sign-for deadline
 * escalates it, and a reconnect of this worker redelivers it (counting an
 * attempt; after max_attempts it moves up as a poison item).
 *
 * At most `credit` incidents are in hand at once (signing, running,
 * reporting); deliveries beyond that (possible only right after a
 * reconnect) wait, unsigned, for a free slot. After a reconnect, handlers
 * still running from the old session keep their slots: the new session's
 * credit is lowered by their number until they finish.
 */
#ifndef GD_WORKER_WORKER_H
#define GD_WORKER_WORKER_H

#include <uv.h>

#include "config.h"

struct worker;

/* Called once when the worker has stopped and closed everything; the
 * caller then frees it with worker_free(). `status` is the process exit
 * status to use: 0 after a requested stop, 1 when the broker refused the
 * worker's HELLO for good (not_found, denied, a decoding code). */
typedef void (*worker_stopped_cb)(struct worker *w, int status, void *data);

/* Creates the worker on `loop` for `cfg` (which must outlive it and have
 * passed config_check()). Returns 0 and the worker, or a negative errno
 * with a message in err. */
int worker_new(uv_loop_t *loop, const struct config *cfg, worker_stopped_cb on_stopped, void *data,
               struct worker **ret, char *err, size_t errlen);

/* Connects to the broker and starts taking work. Returns 0 or a negative errno. */
int worker_start(struct worker *w);

/* First call: stop taking work (credit 0, waiting deliveries dropped:
 * BYE gives them back), let running handlers finish and report, then say
 * BYE and close. A second call kills the running handlers' process groups
 * and aborts webhook requests (their incidents are left as by a failure). */
void worker_stop(struct worker *w);

/* Frees a stopped worker; accepts NULL. */
void worker_free(struct worker *w);

#endif
