/* config.h - gd-dashboard's settings: defaults, an INI file (libinih) and the command line. */
#ifndef GD_DASH_CONFIG_H
#define GD_DASH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "http.h"

struct city;

struct dash_config {
    const char *city_file;      /* city configuration; instead of status_ep, intake_ep, db */
    struct city *city;          /* read from city_file; owned, dash_config_fini() */
    const char *status_ep;      /* broker status endpoint (XPUB) */
    const char *intake_ep;      /* broker intake endpoint, for SNAPSHOT; NULL: none */
    const char *db;             /* PostgreSQL connection string */
    int32_t utc_offset_min;     /* local day for "today" */
    uint32_t db_wait_s;         /* how long to retry the database at start */
    uint32_t broker_silence_ms; /* no broker status this long: resubscribe; 0 = never */
    int verbose;
    struct http_config http;

    const char *config_file; /* --config FILE, or NULL */
    char strings[8192];      /* values read from the file (nothing to free) */
    size_t strings_used;
};

/* Fills cfg from, lowest precedence first: the defaults, the INI file
 * named by --config (section [gd-dashboard], keys = the long option
 * names, '-' or '_'; verbose = true|false) and argv; with `city`, reads and
 * checks the city file into cfg->city (city or status/intake/db, not both).
 * Returns 0 (free with dash_config_fini()); 1 when --help, --version or
 * --check-config printed to out (exit 0); -1 after printing the problem to
 * err, a bad file line as "FILE:LINE: ..." (exit 2); nothing to free then. */
int dash_config_parse(struct dash_config *cfg, int argc, char **argv, FILE *out, FILE *err);

/* Frees what dash_config_parse() read (the city); accepts a zeroed cfg. */
void dash_config_fini(struct dash_config *cfg);

#endif
