/* orgload.h - start-up reads from PostgreSQL: the org tree, the category sectors and today's
 * counts. */
#ifndef GD_DASH_ORGLOAD_H
#define GD_DASH_ORGLOAD_H

#include <libpq-fe.h>
#include <stddef.h>

#include "model.h"

/* Loads every org unit (parents first) and every category's sector into
 * the empty model m. Returns the number of units, or a negative errno
 * with a message in err (the model may then hold part of the tree: free
 * it). At most DASH_MAX_UNITS units (-E2BIG beyond). */
int orgload_tree(PGconn *conn, struct dash_model *m, char *err, size_t errlen);

/* Seeds today's counts (local day of m) from the event log of shard
 * `shard`'s database (0 without a city), in one
 * REPEATABLE READ snapshot: per location unit, category and event kind;
 * remembers the (incident, version) of the events of the last
 * `overlap_s` seconds, and sets the cutoff before which every transition
 * was counted (dash_seed_set_cutoff), so that the transitions arriving on
 * the stream that the snapshot already saw are not counted twice.
 * Subscribe to the status endpoint before calling it. Returns 0 or a
 * negative errno with a message in err. */
int orgload_seed(PGconn *conn, struct dash_model *m, uint32_t shard, int overlap_s, char *err,
                 size_t errlen);

#endif
