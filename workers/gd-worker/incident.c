/* incident.c - a delivered incident as handler input: JSON (jansson) and GD_* environment. */
#include "incident.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Adds `s` under `key` unless it is empty. Returns 0 or -1. */
static int put_str(json_t *o, const char *key, struct gd_str s)
{
    if (!s.len)
        return 0;
    json_t *v = json_stringn(s.ptr, s.len);
    return v ? json_object_set_new(o, key, v) : -1;
}

static int put_int(json_t *o, const char *key, long long v, bool always)
{
    if (!v && !always)
        return 0;
    json_t *j = json_integer(v);
    return j ? json_object_set_new(o, key, j) : -1;
}

static int put_name(json_t *o, const char *key, const char *name)
{
    json_t *v = json_string(name ? name : "");
    return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *location_json(const struct gd_location *l)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = put_str(o, "unit", l->unit) | put_str(o, "address", l->address);
    if (l->has_coords) {
        rc |= json_object_set_new(o, "lat", json_real(l->lat));
        rc |= json_object_set_new(o, "lon", json_real(l->lon));
    }
    if (rc) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *reporter_json(const struct gd_reporter *r)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    if (put_str(o, "name", r->name) | put_str(o, "phone", r->phone) |
        put_str(o, "address", r->address)) {
        json_decref(o);
        return NULL;
    }
    return o;
}

char *incident_json(const struct gd_deliver *d, size_t *ret_len)
{
    const struct gd_incident *inc = &d->incident;
    char *out = NULL;
    json_t *o = json_object();
    if (!o)
        return NULL;
    int rc = put_int(o, "id", (long long)inc->id, true);
    rc |= put_int(o, "version", inc->version, true);
    rc |= put_int(o, "delivery_id", (long long)d->delivery_id, true);
    rc |= put_int(o, "attempt", d->attempt, true);
    rc |= put_name(o, "state", gd_state_name(inc->state));
    rc |= put_name(o, "priority", gd_priority_name(inc->priority));
    rc |= put_name(o, "level", gd_level_name(inc->level));
    rc |= put_str(o, "source", inc->source);
    rc |= put_str(o, "external_id", inc->external_id);
    rc |= put_str(o, "category", inc->category);
    rc |= put_str(o, "queue", inc->queue);
    rc |= put_str(o, "owner", inc->owner);
    rc |= json_object_set_new(o, "location", location_json(&inc->location));
    rc |= put_str(o, "description", inc->description);
    if (inc->has_reporter)
        rc |= json_object_set_new(o, "reporter", reporter_json(&inc->reporter));
    rc |= put_int(o, "reported_at", inc->reported_at, false);
    rc |= put_int(o, "received_at", inc->received_at, false);
    rc |= put_int(o, "sign_due", inc->sign_due, false);
    rc |= put_int(o, "resolve_due", inc->resolve_due, false);
    rc |= put_int(o, "attempts", inc->attempts, false);
    rc |= put_int(o, "escalations", inc->escalations, false);
    if (inc->flagged)
        rc |= json_object_set_new(o, "flagged", json_true());
    if (inc->n_attachments) {
        json_t *a = json_array();
        rc |= json_object_set_new(o, "attachments", a);
        for (uint32_t i = 0; a && i < inc->n_attachments; i++)
            rc |= json_array_append_new(
                a, json_stringn(inc->attachments[i].ptr, inc->attachments[i].len));
    }
    if (rc == 0) {
        out = json_dumps(o, JSON_COMPACT);
        if (out)
            *ret_len = strlen(out);
    }
    json_decref(o);
    return out;
}

static char *env_str(const char *name, struct gd_str v)
{
    size_t n = strlen(name) + 1 + v.len + 1;
    char *s = malloc(n);
    if (s)
        snprintf(s, n, "%s=%.*s", name, (int)v.len, v.ptr ? v.ptr : "");
    return s;
}

static char *env_u64(const char *name, unsigned long long v)
{
    char buf[24];
    snprintf(buf, sizeof(buf), "%llu", v);
    return env_str(name, gd_str_c(buf));
}

int incident_env(const struct gd_deliver *d, const char *worker_name, char *env[INCIDENT_ENV_COUNT])
{
    const struct gd_incident *inc = &d->incident;
    env[0] = env_u64("GD_INCIDENT_ID", inc->id);
    env[1] = env_u64("GD_VERSION", inc->version);
    env[2] = env_u64("GD_DELIVERY_ID", d->delivery_id);
    env[3] = env_u64("GD_ATTEMPT", d->attempt);
    env[4] = env_str("GD_STATE", gd_str_c(gd_state_name(inc->state)));
    env[5] = env_str("GD_PRIORITY", gd_str_c(gd_priority_name(inc->priority)));
    env[6] = env_str("GD_LEVEL", gd_str_c(gd_level_name(inc->level)));
    env[7] = env_str("GD_CATEGORY", inc->category);
    env[8] = env_str("GD_QUEUE", inc->queue);
    env[9] = env_str("GD_OWNER", inc->owner);
    env[10] = env_str("GD_UNIT", inc->location.unit);
    env[11] = env_str("GD_SOURCE", inc->source);
    env[12] = env_str("GD_EXTERNAL_ID", inc->external_id);
    env[13] = env_str("GD_WORKER", gd_str_c(worker_name));
    for (int i = 0; i < INCIDENT_ENV_COUNT; i++) {
        if (!env[i]) {
            incident_env_free(env);
            return -ENOMEM;
        }
    }
    return 0;
}

void incident_env_free(char *env[INCIDENT_ENV_COUNT])
{
    for (int i = 0; i < INCIDENT_ENV_COUNT; i++) {
        free(env[i]);
        env[i] = NULL;
    }
}
