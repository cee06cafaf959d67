/* status.h - the status endpoint: transitions, queue gauges, alarms and broker health on XPUB. */
#ifndef GD_BROKER_STATUS_H
#define GD_BROKER_STATUS_H

#include "broker.h"

/* Binds the status XPUB and starts the gauge timer. Returns 0 or a
 * negative errno with a message in err. */
int status_open(struct broker *b, char *err, size_t errlen);

/* Queues the transition recorded by `c` (never with reporter data) for
 * its town's batch on inc.<town>: published within --status-batch-ms,
 * before any other status message, or at once when the batch is full. */
void status_transition(struct broker *b, const struct incident *inc, const struct store_change *c);

/* Publishes an alarm on alarm.<kind>. `incident_id` 0 and `queue` NULL
 * when not about one. The message must not contain personal data. */
void status_alarm(struct broker *b, const char *kind, const char *severity, uint64_t incident_id,
                  const char *queue, const char *message);

/* Publishes a deadline warning (sla.warn.<town>.<community>.<grid>) or
 * breach (sla.breach...) of `inc`; `queue` is the queue that had it. */
void status_sla(struct broker *b, const struct incident *inc, bool breach,
                enum gd_deadline_kind kind, int64_t due, uint32_t version, enum gd_level level,
                const char *queue);

/* Fills g with the current gauges of q. */
void status_gauge(struct broker *b, const struct queue *q, int64_t now, struct gd_gauge *g);

/* Publishes every waiting batch of transitions now. */
void status_flush(struct broker *b);

void status_close(struct broker *b);

#endif
