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

/* Makes `inc` open: adds it to the broker's indexes by id and by
 * (source, external_id) and to the end of b->open, and counts it in
 * b->n_open. Returns 0, or -ENOMEM with `inc` in none of them. */
int incident_index(struct broker *b, struct incident *inc);

/* Undoes incident_index(): takes an indexed `inc` out of the indexes and
 * b->open and uncounts it. Never fails; does not free it. */
void incident_unindex(struct broker *b, struct incident *inc);

/* The indexed incident with `id` / with (source, external_id), or NULL. */
struct incident *incident_by_id(struct broker *b, uint64_t id);
struct incident *incident_by_key(struct broker *b, struct gd_str source, struct gd_str external_id);

/* Frees every indexed incident and the indexes themselves (at exit);
 * incidents already taken out of them are their owners' to free. */
void incident_free_all(struct broker *b);

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
