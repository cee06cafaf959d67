/* db.h - gd-open311's read-only database path: a bounded connection pool and the GeoReport queries
 * (never reporter data). */
#ifndef GD_OPEN311_DB_H
#define GD_OPEN311_DB_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct db;

/* Outcome codes of the queries (negative: failures). */
enum {
    DB_OK = 0,
    DB_NOT_FOUND = 1,
    DB_UNAVAILABLE = -1, /* no connection free within the wait, or the database is down */
    DB_ERROR = -2,       /* a query failed or out of memory */
};

/* A pool of `size` connections to `dsn`, opened lazily, each in read-only
 * transactions with a statement timeout. Returns 0 and *ret, or -ENOMEM. */
int db_new(const char *dsn, unsigned size, struct db **ret);
void db_free(struct db *d);

/* GET services: the catalogue as GeoReport service objects in *ret. */
int db_services(struct db *d, json_t **ret);

/* Whether service `code` exists (DB_OK) or not (DB_NOT_FOUND); with ret
 * non-NULL, its service definition (no attributes: metadata is false). */
int db_service(struct db *d, const char *code, json_t **ret);

/* Whether org unit `code` exists: DB_OK or DB_NOT_FOUND. */
int db_org_unit(struct db *d, const char *code);

/* The town whose boundary (unit_boundary, PostGIS) covers WGS-84 point
 * lat/lon: its 9-digit code into ret_town. DB_OK, DB_NOT_FOUND (no town
 * boundary there, or none loaded), or a failure. */
int db_town_at(struct db *d, double lat, double lon, char ret_town[16]);

/* Filters of GET requests; NULL/0 = not filtered. Lists are PostgreSQL
 * array literals built from checked values ("{1,2}"). */
struct db_request_filter {
    const char *sources; /* required: the public sources, "{open311}" */
    const char *ids;
    const char *codes;
    int64_t start_ms, end_ms;
    int status; /* 0 any, 1 open, 2 closed */
    unsigned limit, offset;
    bool extensions;       /* add extended_attributes (where the incident was located) */
    const char *id_prefix; /* service_request_id is this + the incident id (a city's
                              "shard-"); NULL: the incident id alone */
    bool sort_keys;        /* add "_sort": [time ms, incident id], the order of the list,
                              for merging the lists of several shards */
};

/* GET requests: GeoReport service request objects (newest first) in *ret,
 * dates written at `offset_min`. `address_id` is the org unit the reporter
 * named (none when the broker placed the incident from its position or
 * address); with f->extensions each object also has `extended_attributes`:
 * `location_unit` and `location_unit_name` (the unit the incident is
 * located in, however it was found) and `located_by` (given, position,
 * address; null when not located or not recorded). */
int db_requests(struct db *d, const struct db_request_filter *f, int offset_min, json_t **ret);

#endif
