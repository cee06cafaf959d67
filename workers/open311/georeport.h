/* georeport.h - gd-open311's HTTP side: GeoReport v2 routes on libmicrohttpd, POSTs relayed to the
 * broker as SUBMITs. */
#ifndef GD_OPEN311_GEOREPORT_H
#define GD_OPEN311_GEOREPORT_H

#include <stdatomic.h>

#include "city.h"
#include "config.h"
#include "db.h"
#include "relay.h"

struct georeport {
    const struct config *cfg;
    const struct city *city; /* the shards, or NULL: one broker (relay shard 0) */
    struct relay *relay;
    struct db *db;                        /* the `db` of the configuration */
    struct db *shard_db[CITY_MAX_SHARDS]; /* with a city: shard i's own database */
    char sources[256];                    /* public_sources as a PostgreSQL array literal */
    atomic_uint active;                   /* requests being processed */
};

/* Starts the HTTP daemon (its own threads: one per connection, at most
 * cfg->max_connections). Returns the daemon, or NULL with `err` set. The
 * port actually bound goes to *ret_port. */
struct MHD_Daemon *georeport_start(struct georeport *g, unsigned *ret_port, char *err,
                                   size_t errlen);

#endif
