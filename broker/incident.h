/* incident.h - an incident in memory: building, freeing, indexing, finding and viewing it.
 *
 * The model under the lifecycle: plain data manipulation of struct
 * incident and struct waiter (broker.h), with no I/O and no clock.
 */
#ifndef GD_BROKER_INCIDENT_H
#define GD_BROKER_INCIDENT_H

#include "broker.h"

/* Builds an incident from a validated SUBMIT (strings are copied).
 * Returns NULL when out of memory. */
struct incident *incident_from_submit(const struct gd_submit *m, struct category *cat,
                                      struct unit *location, uint64_t id, int64_t now);

/* Frees an incident and its strings and waiters; accepts NULL. */
void incident_free(struct incident *inc);

/* Adds to / looks up in the broker's indexes by id and by
 * (source, external_id). */
void incident_index(struct broker *b, struct incident *inc);
struct incident *incident_by_id(struct broker *b, uint64_t id);
struct incident *incident_by_key(struct broker *b, struct gd_str source, struct gd_str external_id);

/* True for DELIVERED, SIGNED and IN_PROGRESS: in a worker's hands. */
bool incident_in_hand(enum gd_state s);

/* Allocates a waiter for an intake client / a work session. NULL when
 * out of memory. */
struct waiter *waiter_for_client(struct client *c, enum gd_type type, uint64_t ref);
struct waiter *waiter_for_session(uint64_t session_id, uint64_t ref);

/* The incident as sent to workers and intake clients; reporter data only
 * when `with_reporter`. Strings point into `inc`. */
void incident_view(const struct incident *inc, bool with_reporter, struct gd_incident *ret);

/* Takes `inc` out of its worker session's hands: unlinks it from the
 * session's deliveries and frees one credit. Returns the session, whose
 * queues may now take more work, or NULL when it was not delivered. */
struct session *incident_detach(struct incident *inc);

#endif
