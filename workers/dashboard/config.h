/* config.h - gd-dashboard's command line. */
#ifndef GD_DASH_CONFIG_H
#define GD_DASH_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "http.h"

struct dash_config {
    const char *status_ep;  /* broker status endpoint (XPUB) */
    const char *intake_ep;  /* broker intake endpoint, for SNAPSHOT; NULL: none */
    const char *db;         /* PostgreSQL connection string */
    int32_t utc_offset_min; /* local day for "today" */
    uint32_t db_wait_s;     /* how long to retry the database at start */
    int verbose;
    struct http_config http;
};

/* Parses argv into cfg (defaults first). Returns 0, 1 when --help was
 * printed to out, or -1 after printing the problem to err. */
int dash_config_parse(struct dash_config *cfg, int argc, char **argv, FILE *out, FILE *err);

#endif
