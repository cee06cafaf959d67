/* city.h - the city configuration: which shard (one broker + one database) owns which town, and
 * which shard a SUBMIT goes to.
 *
 * A city is split into shards by town. The configuration is an INI file
 * (libinih), described in deploy/README.md "City configuration":
 *
 *     [city]
 *     default = east              ; shard whose triage queue takes what no shard owns
 *
 *     [shard east]
 *     intake = tcp://10.1.0.1:7701
 *     work   = tcp://10.1.0.1:7702
 *     status = tcp://10.1.0.1:7703
 *     db     = host=pg-east dbname=griddispatch
 *     towns  = 500113001 500113002
 *
 * Endpoints are what the programs' own --intake/--work/--status take (intake
 * and work: a comma list for an HA pair, as gd-worker and gd-sla take it). `towns` lists 9-digit
 * town codes (county + town), separated by spaces or commas; the key may repeat. The library is
 * pure: no sockets, no database, no logging.
 */
#ifndef GD_LIB_CITY_H
#define GD_LIB_CITY_H

#include <stdbool.h>
#include <stddef.h>

#define CITY_MAX_SHARDS    32
#define CITY_MAX_TOWNS     4096 /* in all shards together */
#define CITY_MAX_VALUE     1024 /* bytes of one endpoint list or DSN */
#define CITY_MAX_NAME      32   /* shard name: [a-z0-9_-]{1,32} */
#define CITY_TOWN_CODE_LEN 9    /* 6-digit county + 3-digit town */

struct city_shard {
    char name[CITY_MAX_NAME + 1];
    char *intake, *work, *status, *db; /* owned by the city */
    size_t n_towns;                    /* towns this shard owns */
};

struct city;

/* Reads and checks the configuration file `path`. Refused, with a message
 * for people in `err` ("FILE:LINE: ..." where a line is to blame): a file
 * that does not read or parse, an unknown section or key, a shard without
 * intake, work, status or db, a value longer than CITY_MAX_VALUE, a bad
 * shard name or town code, a town listed twice (in one shard or in two),
 * more than CITY_MAX_SHARDS shards or CITY_MAX_TOWNS towns, no shard at
 * all, and a default that names no shard. Returns 0 and *ret (free with
 * city_free()), -EINVAL with err, or -ENOMEM. */
int city_load(const char *path, struct city **ret, char *err, size_t errlen);

/* As city_load(), from the text of a configuration in memory; `name`
 * stands for the file in messages. */
int city_parse(const char *text, const char *name, struct city **ret, char *err, size_t errlen);

/* Frees; accepts NULL. */
void city_free(struct city *c);

/* For an intake adapter (gd-open311, gd-hotline): loads the city at `path`
 * as city_load() does and requires a default shard (a report whose town no
 * shard owns goes to its triage queue). Shard i's intake endpoint (list) is
 * ret_endpoints[i], valid as long as the city, for *ret_n shards. Returns 0
 * with *ret, ret_endpoints and *ret_n; -EINVAL with err; or -ENOMEM. */
int city_intake_endpoints(const char *path, struct city **ret,
                          const char *ret_endpoints[CITY_MAX_SHARDS], size_t *ret_n, char *err,
                          size_t errlen);

/* The number of shards (>= 1) and shard `i` (0 <= i < city_n_shards()), in
 * the order of the file. */
size_t city_n_shards(const struct city *c);
const struct city_shard *city_shard(const struct city *c, size_t i);

/* The index of the shard named `name`, or -1. */
int city_find_shard(const struct city *c, const char *name);

/* The index of the default shard, or -1 when the file names none. */
int city_default_shard(const struct city *c);

/* The index of the shard that owns the town of org-unit code `unit` (its
 * first `len` bytes): the town is the code's first 9 digits, so a town,
 * community, grid or micro-grid code of that town all give the same shard.
 * -1 when `unit` does not start with 9 digits (a district code, a name)
 * or no shard lists its town. */
int city_shard_of_unit(const struct city *c, const char *unit, size_t len);

/* The query that finds the town whose boundary covers a WGS-84 point, for
 * clients that route by position with a database at hand (gd-open311,
 * gdctl): parameters $1 lat, $2 lon (text of float8); one row with the
 * 9-digit town code, or none. */
#define CITY_TOWN_AT_SQL                                                                \
    "SELECT b.unit FROM unit_boundary b JOIN org_unit o ON o.code = b.unit "            \
    " WHERE o.level = 'town' AND length(b.unit) = 9 "                                   \
    "   AND ST_Covers(b.geom, ST_SetSRID(ST_MakePoint($2::float8, $1::float8), 4326)) " \
    " ORDER BY b.unit LIMIT 1"

/* All towns of the city in ascending code order: city_n_towns() of them;
 * town `k` is a NUL-terminated 9-digit code valid as long as the city, and
 * *ret_shard (when not NULL) the index of its shard. */
size_t city_n_towns(const struct city *c);
const char *city_town(const struct city *c, size_t k, int *ret_shard);

#endif
