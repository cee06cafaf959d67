/* config.h - gd-open311 configuration: INI keys, defaults, limits, and the api_key -> principal
 * table. */
#ifndef GD_OPEN311_CONFIG_H
#define GD_OPEN311_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define CONFIG_MAX_KEYS      1024
#define CONFIG_MAX_SOURCES   16
#define CONFIG_MAX_PRINCIPAL 24 /* so "<principal>:<idempotency key>" fits external_id */

struct api_key {
    char *key;
    char *principal; /* [a-z0-9_-]{1,24} */
};

struct config {
    char *bind;                  /* listen address [127.0.0.1] */
    unsigned port;               /* [7780]; 0 = any free port (logged) */
    char *intake;                /* broker intake endpoint, or an HA pair's comma list */
    char *city;                  /* city configuration file (shards): instead of intake */
    char *db;                    /* PostgreSQL DSN for the read-only queries */
    char *keys_file;             /* lines "key = principal" */
    int utc_offset_min;          /* zone of the dates we write [480] */
    char *public_sources;        /* comma list of sources GET requests shows [open311] */
    size_t max_body;             /* POST body bytes [65536] */
    unsigned max_connections;    /* open HTTP connections [64] */
    unsigned max_concurrent;     /* requests being processed at once [32] */
    unsigned db_pool;            /* database connections [4] */
    unsigned page_size;          /* default page size of GET requests [50] */
    unsigned max_page_size;      /* [200] */
    unsigned max_page;           /* highest page number [1000] */
    unsigned max_ids;            /* service_request_id list length [100] */
    unsigned submit_timeout_ms;  /* a POST waits this long in all, BUSY retries included [10000] */
    unsigned attempt_timeout_ms; /* one SUBMIT attempt [3000] */
    unsigned failover_ms;        /* a broker silent this long: the next of its list [1000] */
    int log_level;               /* 0 error .. 3 debug [2] */
    size_t n_keys;
    struct api_key keys[CONFIG_MAX_KEYS];
};

/* Sets the defaults. */
void config_init(struct config *cfg);

/* Frees the strings; accepts a zeroed config. */
void config_fini(struct config *cfg);

/* Reads the INI file `path` (keys at the top or in [open311]) and then the
 * keys file it names. Returns 0, or -1 with a message for people in err. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* Checks ranges and required keys. Returns 0, or -1 with err. */
int config_check(const struct config *cfg, char *err, size_t errlen);

/* Prints the effective configuration (api keys shown as a count only). */
void config_print(const struct config *cfg, FILE *out);

/* The principal of `key` (compared in constant time per entry), or NULL. */
const char *config_principal(const struct config *cfg, const char *key);

#endif
