/* locate.h - where a SUBMIT happened: its unit from a named code, a position or an address.
 *
 * The broker's loop never waits on the database to place a SUBMIT.
 * PostgreSQL (PostGIS) stores and validates the boundaries; locate_load()
 * reads the grid and micro-grid boundaries (as WKB) and the address table
 * over a blocking connection, at start and on SIGHUP, and every lookup
 * runs in memory: one GEOS STRtree of prepared geometries for points, one
 * hash of normalised (road, number) keys for addresses.
 *
 * A point belongs to every boundary that covers it (the border and the
 * vertices included, as PostGIS's ST_Covers). Among them the finest level
 * wins (a micro-grid over its grid), then the smallest unit code (byte
 * order), so a point on a shared border always gets the same unit.
 *
 * An address is matched by a key made of its road and its house number,
 * both in the form of SQL's gd_address_norm() (0007_geo.sql: full-width
 * ASCII forms to ASCII, blanks removed, ASCII lower case).
 * locate_address_norm() is that rule in C; locate_address_splits() gives
 * the places where a free-text address may be split into road and number,
 * tried last digit run first, each with the number as written and with its
 * 号 added or taken off (the table holds `123号` or `123`).
 */
#ifndef GD_BROKER_LOCATE_H
#define GD_BROKER_LOCATE_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "gdp.h"

struct org;
struct unit;

/* How an incident's location unit was found. */
enum locate_method {
    LOCATE_NONE = 0, /* not located: no usable location (triage) */
    LOCATE_GIVEN,    /* the SUBMIT named a known unit */
    LOCATE_POSITION, /* lat/lon inside a grid or micro-grid boundary */
    LOCATE_ADDRESS,  /* address table, then the same as a position */
};

/* Database and wire name of a method: "", "given", "position",
 * "address". */
const char *locate_method_name(enum locate_method m);

/* The method named `s` (as locate_method_name writes it), or -1. */
int locate_method_parse(const char *s);

/* Why a SUBMIT that carried a location was not located (the note of its
 * receive event; it goes to the triage queue). */
#define LOCATE_OUTSIDE_GRIDS     "outside_grids"     /* the point is in no boundary */
#define LOCATE_ADDRESS_UNMATCHED "address_unmatched" /* no such road and number */
#define LOCATE_UNKNOWN_UNIT      "unknown_unit"      /* a unit code we do not know */

/* Longest normalised address, in bytes; longer ones never match. */
#define LOCATE_MAX_NORM 1024

/* What one load may hold (PROTOCOL §9): the boundaries' vertices all
 * together, and address rows. A load beyond either fails as a whole. */
struct locate_limits {
    uint64_t max_vertices;
    uint32_t max_addresses;
};

/* Figures of the data in force. */
struct locate_stats {
    uint32_t grids, micro_grids; /* boundaries held, by level */
    uint64_t vertices;
    uint32_t addresses;
    uint32_t skipped; /* last load: boundaries of units the org tree does not
                         have, and address rows that cannot match */
};

/* Where one SUBMIT's location points. */
struct locate_result {
    struct unit *unit;     /* NULL: not located */
    enum locate_method by; /* LOCATE_NONE when unit is NULL */
    const char *reason;    /* not located although something was given:
                              one of the LOCATE_* reasons above; else NULL */
};

struct locate;

/* Creates an empty locator (every position is then outside the grids and
 * no address matches) with the given limits. Returns 0, or -ENOMEM. */
int locate_new(struct locate **ret, const struct locate_limits *lim);

/* Frees the locator and everything it loaded; accepts NULL. */
void locate_free(struct locate *l);

/* Reads the boundaries of the grid and micro-grid units of `org` and the
 * address table over the blocking connection `conn`, and puts them in
 * force in place of what was loaded before. Boundaries of units `org`
 * does not know are skipped (counted in stats.skipped). Returns 0; -1
 * with a message in err (size errlen) when the data is beyond the limits,
 * a boundary is not a valid (multi)polygon, or a query failed: the data
 * loaded before then stays in force. */
int locate_load(struct locate *l, PGconn *conn, const struct org *org, char *err, size_t errlen);

void locate_stats(const struct locate *l, struct locate_stats *ret);

/* The finest unit whose boundary covers the point (ties: the smallest
 * code), or NULL. */
struct unit *locate_point(struct locate *l, double lat, double lon);

/* The point of the address `addr` (free text) in the address table: 0
 * with *ret_lat, *ret_lon set; -ENOENT when it has no road and number or
 * matches no row. */
int locate_address(struct locate *l, const char *addr, size_t len, double *ret_lat,
                   double *ret_lon);

/* Places a SUBMIT's location: a unit code `org` knows is taken as given;
 * otherwise a position (lat/lon) is looked up, else an address. Always
 * fills *ret (unit NULL: triage, with a reason when a location was given
 * but did not lead to a unit). */
void locate_submit(struct locate *l, const struct org *org, const struct gd_location *where,
                   struct locate_result *ret);

/* Writes gd_address_norm(s) into out (capacity cap, not NUL-terminated),
 * the rule of 0007_geo.sql exactly: each full-width form U+FF01..U+FF5E
 * becomes the ASCII character it stands for, the blanks U+0009..U+000D,
 * U+0020, U+00A0 and U+3000 are removed, and A-Z become a-z; every other
 * character stays as it is. Returns 0 with *ret_len set; -EINVAL when s
 * is not valid UTF-8; -E2BIG when the result is longer than cap. */
int locate_address_norm(const char *s, size_t len, char *out, size_t cap, size_t *ret_len);

/* Where the house number may start in the normalised address `norm`: at
 * each run of ASCII digits that has something before it, the last run
 * first (at most `max`). The road is everything before the start, the
 * number everything from it (`龙洲大道8号附1号` gives 龙洲大道8号附 / 1号,
 * then 龙洲大道 / 8号附1号). Writes the starts into ret_starts and returns
 * their count (0: no number, no match). */
int locate_address_splits(const char *norm, size_t len, size_t *ret_starts, int max);

/* Splits tried per address: its last digit runs. */
#define LOCATE_MAX_SPLITS 8

#endif
