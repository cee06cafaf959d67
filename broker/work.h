/* work.h - the work endpoint: worker sessions, deliveries, heartbeats and worker commands. */
#ifndef GD_BROKER_WORK_H
#define GD_BROKER_WORK_H

#include "broker.h"

/* Prepares what recovery needs before the endpoint opens (the dispatch
 * pass that queues can be kicked into). Call once, first. */
void work_init(struct broker *b);

/* Binds the work ROUTER and starts the heartbeat timer. Returns 0 or a
 * negative errno with a message in err. */
int work_open(struct broker *b, char *err, size_t errlen);

/* Takes `inc` out of its worker's hands (credit is freed and the session
 * may get more work at the next dispatch). No-op when not delivered. */
void work_detach(struct broker *b, struct incident *inc);

/* Asks for a dispatch pass over `q` on the next loop iteration: it
 * delivers from q to its consumers while both have something (nothing
 * happens while the database is down or the broker is stopping). */
void work_kick(struct broker *b, struct queue *q);

/* Kicks every queue: after the database comes back. */
void work_kick_all(struct broker *b);

/* Sends `m` to session `s`. Returns 0, -EAGAIN when its pipe is full,
 * -EHOSTUNREACH when it is gone, or another negative errno. */
int work_send(struct broker *b, struct session *s, const struct gd_msg *m);

/* Ends session `s` as lost (its unsigned deliveries go back). */
void work_session_lost(struct broker *b, struct session *s, const char *why);

/* Sends `m` to session `session_id` if it still exists. */
void work_answer(struct broker *b, uint64_t session_id, const struct gd_msg *m);

/* Says BYE to every session and forgets them (shutdown). */
void work_close(struct broker *b);

#endif
