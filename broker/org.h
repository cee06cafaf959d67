/* org.h - the organisation tree and the category catalogue, held in memory. */
#ifndef GD_BROKER_ORG_H
#define GD_BROKER_ORG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <uthash.h>

#include "gdp.h"

/* The four sectors of a town command centre. */
enum sector {
    SECTOR_PARTY = 0, /* 党的建设 */
    SECTOR_ECONOMY,   /* 经济发展 */
    SECTOR_LIVELIHOOD,/* 民生服务 */
    SECTOR_SAFETY,    /* 平安法治 */
    SECTOR_COUNT
};

struct queue;
struct session;

struct unit {
    char *code;
    char *name;
    enum gd_level level;
    bool special;             /* special grid (school, hospital, park) */
    struct unit *parent;      /* NULL for the district */
    struct unit *town;        /* ancestor-or-self at town level, or NULL */
    struct unit *community;   /* ancestor-or-self at community level, or NULL */
    struct unit *grid;        /* ancestor-or-self at grid level, or NULL */
    struct session *sla;      /* towns: the SLA session serving it, or NULL */
    uint32_t live_deadlines;  /* towns: open incidents with a live deadline (tally.c) */
    uint32_t live_deadlines_check; /* tally.c's verifying pass */
    UT_hash_handle hh;
};

/* Time limits of one category at one priority. */
struct sla {
    bool set;
    bool working_time;        /* limits count working time on the calendar */
    int64_t sign_limit_s;
    int64_t resolve_limit_s;
    int warn_percent;
    int64_t max_extension_s;
    int64_t auto_extension_s; /* approved without the level above */
};

struct category {
    char *code;
    char *name;
    enum sector sector;
    enum gd_level admitted;   /* lowest level it may be pushed down to */
    enum gd_priority default_priority;
    struct sla sla[GD_PRIO_COUNT];
    UT_hash_handle hh;
};

struct org {
    struct unit *units;           /* hash by code */
    struct category *categories;  /* hash by code */
    struct unit *district;        /* top of the ladder */
    size_t n_units;
    size_t n_categories;
};

/* Wire/database name of a sector ("party", "economy", ...), and back
 * (-1 if unknown). */
const char *sector_name(enum sector s);
int sector_parse(const char *s);

/* Sets u->town, u->community and u->grid from u and its parents (which
 * must be linked already). */
void org_link_ancestors(struct unit *u);

/* Loads units, categories and SLA rows from the database over a blocking
 * connection. `district_code` names the unit at the top of the ladder; it
 * must exist and be a district. Returns 0, or -1 with a message in
 * err (size errlen); *org is left empty on failure. */
int org_load(struct org *org, PGconn *conn, const char *district_code, char *err, size_t errlen);

/* Reads the tables again into a loaded org (SIGHUP, after an import):
 * changed units and categories are updated in place, new ones added,
 * none removed (incidents point at them). Returns 0, or -1 with a message
 * in err; a failure part-way leaves what was read so far. */
int org_reload(struct org *org, PGconn *conn, char *err, size_t errlen);

/* Frees everything org_load() built; accepts an empty org. */
void org_clear(struct org *org);

struct unit *org_unit(const struct org *org, const char *code, size_t len);
struct category *org_category(const struct org *org, const char *code, size_t len);

#endif
