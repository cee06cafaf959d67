/* config.h - gd-worker configuration: INI file (libinih), command-line overrides, checks. */
#ifndef GD_WORKER_CONFIG_H
#define GD_WORKER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "gdworker.h"

#define CONFIG_MAX_ENDPOINTS GDW_MAX_ENDPOINTS
#define CONFIG_MAX_QUEUES    64
#define CONFIG_MAX_VALUE     4096 /* longest value of any key */
#define CONFIG_ERR_LEN       512

enum sign_when {
    SIGN_BEFORE = 0, /* SIGN on delivery, then run the handler (default) */
    SIGN_AFTER,      /* run the handler first, SIGN only to report its result */
};

enum wlog_level { WLOG_ERROR = 0, WLOG_WARN, WLOG_INFO, WLOG_DEBUG };

struct config {
    char *endpoints[CONFIG_MAX_ENDPOINTS];
    size_t n_endpoints;
    char *queues[CONFIG_MAX_QUEUES];
    size_t n_queues;
    char *city; /* city configuration file: the endpoint is the queues' shard's work */
    uint32_t credit;
    char *name;
    char *handler; /* command line (split like a shell, no shell run), or NULL */
    char *webhook; /* http(s) URL, or NULL */
    uint32_t handler_timeout_ms;
    uint32_t kill_grace_ms;
    enum sign_when sign;
    uint32_t command_retries;
    uint32_t hello_timeout_ms;
    uint32_t request_timeout_ms;
    uint32_t reconnect_min_ms;
    uint32_t reconnect_max_ms;
    char *curve_server_key;
    char *curve_public_key;
    char *curve_secret_key;
    enum wlog_level log_level;
};

/* Fills `cfg` with the defaults. Nothing is allocated. */
void config_init(struct config *cfg);

/* Frees every string the configuration holds; accepts an initialised or
 * zeroed config, and leaves it zeroed. */
void config_fini(struct config *cfg);

/* Sets one key (the INI key name; '-' is taken as '_') from its text.
 * Returns 0, or -EINVAL with a message in err (unknown key, bad number,
 * out of range, too many list items), or -ENOMEM. A later value of the
 * same key replaces the earlier one. */
int config_set(struct config *cfg, const char *key, const char *value, char *err, size_t errlen);

/* Reads an INI file: keys at the top or in a [gd-worker] section. Returns
 * 0; or -errno when the file cannot be opened, or -EINVAL with
 * "FILE:LINE: message" in err for the first bad line. */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/* With `city` set: loads that city configuration and sets the endpoints to
 * the work endpoint of the shard that owns the towns of all the queues (a
 * queue without a town, like triage, is the default shard's). Refused with
 * a message in err: endpoints set as well, a city file that does not load,
 * queues of two shards (run one gd-worker per shard), a queue no shard owns
 * without a default. Returns 0 (also without city), -EINVAL, or -ENOMEM. */
int config_from_city(struct config *cfg, char *err, size_t errlen);

/* Checks the whole configuration once file and overrides are applied:
 * endpoints and queues given, exactly one of handler and webhook, a
 * handler command that splits into words, an http(s) webhook URL, CURVE
 * keys all three or none and 40 characters each. Returns 0 or -EINVAL with
 * a message in err. */
int config_check(const struct config *cfg, char *err, size_t errlen);

/* Prints the effective configuration as an INI file that config_load
 * reads back; the CURVE secret key is shown as "(set)". */
void config_print(const struct config *cfg, FILE *out);

/* Whether `key` names a configuration key (for the command line). */
bool config_has_key(const char *key);

/* The keys, NULL-terminated, for usage text and option tables. */
extern const char *const config_keys[];

#endif
