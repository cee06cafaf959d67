/* store-recover.h - reading incidents back from PostgreSQL: recovery at start-up and single rows.
 *
 * Part of the store layer: it reads with libpq and builds the model
 * (incident.h, queue.h, tally.h) from what it reads, never calling up.
 */
#ifndef GD_BROKER_STORE_RECOVER_H
#define GD_BROKER_STORE_RECOVER_H

#include <libpq-fe.h>

#include "broker.h"

/* The incident columns, in the order incident_from_row() reads them. */
#define INCIDENT_COLUMNS                                                                          \
    "i.id, i.source, i.external_id, i.category, i.priority, i.state, i.version, i.queue, "        \
    "i.owner_unit, i.owner_level, i.location_unit, i.address, i.lat, i.lon, i.description, "      \
    "i.reporter_name, i.reporter_phone, i.reporter_address, array_to_json(i.attachments)::text, " \
    "gd_ms(i.reported_at), gd_ms(i.received_at), gd_ms(i.sign_due), gd_ms(i.resolve_due), "       \
    "i.attempts, i.escalations, i.flagged, gd_ms(i.sign_warn), gd_ms(i.resolve_warn), "       \
    "gd_ms(i.extension_pending), i.located_by"
#define INCIDENT_NCOLUMNS 30

/* Builds an incident from row `row` of a result whose first columns are
 * INCIDENT_COLUMNS. Returns NULL when out of memory. */
struct incident *incident_from_row(struct broker *b, const PGresult *res, int row);

/* Loads every open incident over blocking connection `conn` (start-up)
 * into memory: indexes, queues, deadline state and tallies, and sets
 * b->next_id past the largest id stored. An incident whose queue no longer
 * exists goes to triage. QUEUED items enter their queue in stored order;
 * for each one that was DELIVERED (nobody signed for it before the broker
 * stopped) `delivered(ctx, inc)` is called, counted in flight, for the
 * caller to put it back. Returns 0, or -1 with a message in err. */
int store_recover(struct broker *b, PGconn *conn, void (*delivered)(void *ctx, struct incident *inc),
                  void *ctx, char *err, size_t errlen);

#endif
