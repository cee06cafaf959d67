/* lifecycle.h - the incident state machine: a command becomes a transition to commit, and its effects once durable.
 *
 * A transition changes the incident in memory at once and hands a
 * store_change to the commit effect (effects.h); whoever asked is answered,
 * the transition published and its deadlines streamed, all through the
 * effects, only when that change has committed. The lifecycle calls no
 * endpoint and reads the time only from the clock in struct broker. */
#ifndef GD_BROKER_LIFECYCLE_H
#define GD_BROKER_LIFECYCLE_H

#include "broker.h"
#include "incident.h"
#include "route.h"
#include "store-recover.h"

/* Takes `inc` out of the broker: out of its queue, its session and the
 * indexes; it is freed once its last pending change is durable. */
void incident_drop(struct broker *b, struct incident *inc);

/* Stores a new incident (first event RECEIVE, state QUEUED at `r`, with
 * `note`, may be NULL: why it was not located). It is indexed now and
 * enters its queue when the insert has committed; `w` (may be NULL) is
 * answered ACCEPTED then. Out of memory, `w` is answered REJECTED
 * (internal) at once and `inc` is freed. */
void lifecycle_receive(struct broker *b, struct incident *inc, const struct route *r,
                       const char *note, struct waiter *w);

/* Records one transition of an incident that is already durable: bumps
 * the version, sets `to`, moves it to `move` when not NULL (to the head
 * of the new queue's FIFO when `at_head`), detaches it from its worker
 * when it leaves the worker's hands, queues the change for commit, and
 * answers `w` (may be NULL) once it is durable. `actor` and `note` may be
 * NULL; they are copied. Returns 0, or -ENOMEM with nothing changed. */
int lifecycle_apply(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                    enum gd_state to, const struct route *move, bool at_head, const char *actor,
                    const char *note, struct waiter *w);

/* Same as lifecycle_apply, for callers that hold `note` as a view. */
int lifecycle_apply_str(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                        enum gd_state to, const struct route *move, bool at_head,
                        const char *actor, struct gd_str note, struct waiter *w);

/* The database went away: SUBMITs waiting for their first commit are
 * answered BUSY now (their incidents are still stored when it returns;
 * a retry then gets the same id). */
void lifecycle_db_down(struct broker *b);

/* Same as lifecycle_apply, for an event caused by deadline `kind` (due
 * at `due`): WARN, ESCALATE or FLAG from an SLA worker. */
int lifecycle_apply_sla(struct broker *b, struct incident *inc, enum gd_event_kind ev,
                        enum gd_state to, const struct route *move, const char *actor,
                        const char *note, struct waiter *w, enum gd_deadline_kind kind,
                        int64_t due);

/* Loads every open incident from the database into memory and queues
 * (start-up, blocking connection; store_recover). Items that were
 * DELIVERED go back to the head of their queue through a REQUEUE
 * transition. Returns 0, or -1 with a message in err. */
int lifecycle_recover(struct broker *b, PGconn *conn, char *err, size_t errlen);

#endif
