/* queue.h - queues of incidents: priority FIFO, consumers, and how names map to org units. */
#ifndef GD_BROKER_QUEUE_H
#define GD_BROKER_QUEUE_H

#include "broker.h"

#define QUEUE_TRIAGE "triage"

/* Finds a queue by name, or creates it if `name` is a valid queue name:
 * "triage", the code of a grid, special grid, community or the district,
 * or "<town code>.<sector>". Returns NULL when the name is not valid (or
 * out of memory). */
struct queue *queue_lookup(struct broker *b, const char *name, size_t len);

/* The queue of `unit` for an item of `sector` (only towns have sector
 * queues; other units have one queue). NULL if `unit` has no queue
 * (micro-grid) or out of memory. */
struct queue *queue_of_unit(struct broker *b, struct unit *unit, enum sector sector);

/* Appends (or, for items put back, prepends) `inc` to its priority's
 * FIFO in `q`, and makes q its queue. */
void queue_push(struct queue *q, struct incident *inc, bool at_head, int64_t now);

/* Unlinks `inc` from the FIFO it is in; no-op if it is in none. */
void queue_unlink(struct incident *inc);

/* The next item to deliver: the head of the most urgent non-empty FIFO. */
struct incident *queue_peek(const struct queue *q);

/* Adds/removes a consumer session. Adding returns 0 or -ENOMEM. */
int queue_add_consumer(struct queue *q, struct session *s);
void queue_remove_consumer(struct queue *q, struct session *s);

/* How many queues the org tree allows (queues are created when first
 * used): one per grid, special grid, community and the district, one per
 * sector of each town, and triage. */
uint32_t queue_possible(const struct broker *b);

/* Frees every queue; incidents must be gone already. */
void queue_free_all(struct broker *b);

#endif
