/* incident.h - a delivered incident as handler input: JSON (jansson) and GD_* environment. */
#ifndef GD_WORKER_INCIDENT_H
#define GD_WORKER_INCIDENT_H

#include <stddef.h>

#include "gdp.h"

/* Variables set for a handler process, in this order. */
#define INCIDENT_ENV_COUNT 14

/* The delivered incident as one compact JSON object (UTF-8, no trailing
 * newline): the incident's fields under their GDP/1 names (times as
 * integers, ms since the epoch; absent optional fields left out; reporter
 * contact data included, as the owning worker may see it) plus
 * "delivery_id" and "attempt". Returns a malloc'd string and its length in
 * *ret_len, or NULL when out of memory. */
char *incident_json(const struct gd_deliver *d, size_t *ret_len);

/* Fills env[0..INCIDENT_ENV_COUNT-1] with malloc'd "NAME=value" strings:
 * GD_INCIDENT_ID, GD_VERSION, GD_DELIVERY_ID, GD_ATTEMPT, GD_STATE,
 * GD_PRIORITY, GD_LEVEL, GD_CATEGORY, GD_QUEUE, GD_OWNER, GD_UNIT,
 * GD_SOURCE, GD_EXTERNAL_ID, GD_WORKER (the worker's name). No personal
 * data. Returns 0, or -ENOMEM with nothing allocated. */
int incident_env(const struct gd_deliver *d, const char *worker_name,
                 char *env[INCIDENT_ENV_COUNT]);

/* Frees what incident_env() made; accepts NULL entries. */
void incident_env_free(char *env[INCIDENT_ENV_COUNT]);

#endif
