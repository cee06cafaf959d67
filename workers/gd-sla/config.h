/* config.h - gd-sla settings: defaults, an optional INI file, then the command line. */
#ifndef GD_SLA_CONFIG_H
#define GD_SLA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gdp.h"

#define CONFIG_MAX_ENDPOINTS 8

struct config {
    char *endpoints[CONFIG_MAX_ENDPOINTS]; /* work endpoints, tried in order */
    uint32_t n_endpoints;
    char *shard[GD_MAX_SHARD]; /* town codes; none = all towns */
    uint32_t n_shard;
    bool all_towns;            /* --all was given */
    char *city_file;           /* --city: the city configuration (shards) */
    char *city_shard;          /* --city-shard: its shard whose work endpoint we use */
    char *name;                /* HELLO name */
    uint32_t tick_ms;          /* timing wheel resolution */
    uint32_t hello_timeout_ms; /* wait for WELCOME/DENIED */
    uint32_t backoff_min_ms;   /* first reconnect delay */
    uint32_t backoff_max_ms;   /* reconnect delay cap */
    uint32_t denied_retry_ms;  /* wait after DENIED before a new HELLO */
    uint32_t retry_ms;         /* resend after ERR busy/internal */
    uint32_t report_ms;        /* period of the activity summary line */
    bool exit_on_denied;
    char *curve_server_key; /* Z85; CURVE when set */
    char *curve_public_key;
    char *curve_secret_key;
    int log_level; /* enum log_level */
};

/* Fills `cfg` with defaults, then the file named by --config (INI,
 * section [gd-sla], keys = long option names, '-' or '_'), then argv.
 * Returns 0; 1 when --help, --version or --check-config was printed
 * (exit 0); -1 after printing a usage error to `err`, a bad file line as
 * "FILE:LINE: ..." (exit 2). config_fini frees what it holds in all
 * three cases. */
int config_parse(struct config *cfg, int argc, char **argv, FILE *err);

/* Prints the effective configuration as an INI file --config reads back
 * (the CURVE secret key as "(set)"); `file` is named in a comment. */
void config_print(const struct config *cfg, const char *file, FILE *out);

/* Frees the strings of `cfg`; accepts a zeroed one. */
void config_fini(struct config *cfg);

#endif
