/* config.c - gd-open311 configuration: INI keys, defaults, limits, and the api_key -> principal
 * table. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"

void config_init(struct config *cfg)
{
    *cfg = (struct config){
        .port = 7780,
        .utc_offset_min = 480,
        .max_body = 65536,
        .max_connections = 64,
        .max_concurrent = 32,
        .db_pool = 4,
        .page_size = 50,
        .max_page_size = 200,
        .max_page = 1000,
        .max_ids = 100,
        .submit_timeout_ms = 10000,
        .attempt_timeout_ms = 3000,
        .failover_ms = INTAKE_FAILOVER_MS,
        .log_level = 2,
    };
}

void config_fini(struct config *cfg)
{
    free(cfg->bind);
    free(cfg->intake);
    free(cfg->city);
    free(cfg->db);
    free(cfg->keys_file);
    free(cfg->public_sources);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        free(cfg->keys[i].key);
        free(cfg->keys[i].principal);
    }
    *cfg = (struct config){0};
}

struct load {
    struct config *cfg;
    char *err;
    size_t errlen;
};

static int set_str(char **dst, const char *v)
{
    char *s = strdup(v);
    if (!s)
        return -1;
    free(*dst);
    *dst = s;
    return 0;
}

static int set_uint(unsigned *dst, const char *v, unsigned min, unsigned max)
{
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || end == v || n < min || n > max)
        return -1;
    *dst = (unsigned)n;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct load *l = user;
    struct config *c = l->cfg;
    if (*section && strcmp(section, "gd-open311") != 0 && strcmp(section, "open311") != 0)
        return 1; /* other programs' sections */
    int rc = 0;
    unsigned u = 0;
    if (strcmp(name, "bind") == 0)
        rc = set_str(&c->bind, value);
    else if (strcmp(name, "port") == 0)
        rc = set_uint(&c->port, value, 0, 65535);
    else if (strcmp(name, "intake") == 0)
        rc = set_str(&c->intake, value);
    else if (strcmp(name, "city") == 0)
        rc = set_str(&c->city, value);
    else if (strcmp(name, "db") == 0)
        rc = set_str(&c->db, value);
    else if (strcmp(name, "keys_file") == 0)
        rc = set_str(&c->keys_file, value);
    else if (strcmp(name, "public_sources") == 0)
        rc = set_str(&c->public_sources, value);
    else if (strcmp(name, "utc_offset_min") == 0) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        rc = errno || *end || end == value || v < -1439 || v > 1439 ? -1 : 0;
        c->utc_offset_min = (int)v;
    } else if (strcmp(name, "max_body") == 0) {
        rc = set_uint(&u, value, 1024, 1048576);
        c->max_body = u;
    } else if (strcmp(name, "max_connections") == 0)
        rc = set_uint(&c->max_connections, value, 1, 4096);
    else if (strcmp(name, "max_concurrent") == 0)
        rc = set_uint(&c->max_concurrent, value, 1, 1000);
    else if (strcmp(name, "db_pool") == 0)
        rc = set_uint(&c->db_pool, value, 1, 64);
    else if (strcmp(name, "page_size") == 0)
        rc = set_uint(&c->page_size, value, 1, 1000);
    else if (strcmp(name, "max_page_size") == 0)
        rc = set_uint(&c->max_page_size, value, 1, 1000);
    else if (strcmp(name, "max_page") == 0)
        rc = set_uint(&c->max_page, value, 1, 100000);
    else if (strcmp(name, "max_ids") == 0)
        rc = set_uint(&c->max_ids, value, 1, 1000);
    else if (strcmp(name, "submit_timeout_ms") == 0)
        rc = set_uint(&c->submit_timeout_ms, value, 100, 600000);
    else if (strcmp(name, "attempt_timeout_ms") == 0)
        rc = set_uint(&c->attempt_timeout_ms, value, 50, 600000);
    else if (strcmp(name, "failover_ms") == 0)
        rc = set_uint(&c->failover_ms, value, 0, 600000);
    else if (strcmp(name, "log_level") == 0) {
        static const char *const levels[] = {"error", "warn", "info", "debug"};
        rc = -1;
        for (int i = 0; i < 4; i++)
            if (strcmp(value, levels[i]) == 0) {
                c->log_level = i;
                rc = 0;
            }
    } else {
        snprintf(l->err, l->errlen, "unknown key '%s'", name);
        return 0;
    }
    if (rc < 0) {
        snprintf(l->err, l->errlen, "bad value for %s: '%s'", name, value);
        return 0;
    }
    return 1;
}

static bool principal_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > CONFIG_MAX_PRINCIPAL)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '_' ||
              p[i] == '-'))
            return false;
    return true;
}

static int on_api_key(void *user, const char *section, const char *name, const char *value)
{
    struct load *l = user;
    struct config *c = l->cfg;
    (void)section;
    size_t klen = strlen(name);
    if (klen < 8 || klen > 128) {
        snprintf(l->err, l->errlen, "keys file: a key must be 8..128 characters");
        return 0;
    }
    if (!principal_ok(value)) {
        snprintf(l->err, l->errlen,
                 "keys file: principal '%s' is not 1..%d characters of a-z 0-9 _ -", value,
                 CONFIG_MAX_PRINCIPAL);
        return 0;
    }
    if (c->n_keys == CONFIG_MAX_KEYS) {
        snprintf(l->err, l->errlen, "keys file: more than %d keys", CONFIG_MAX_KEYS);
        return 0;
    }
    for (size_t i = 0; i < c->n_keys; i++)
        if (strcmp(c->keys[i].key, name) == 0) {
            snprintf(l->err, l->errlen, "keys file: a key appears twice");
            return 0;
        }
    struct api_key *k = &c->keys[c->n_keys];
    k->key = strdup(name);
    k->principal = strdup(value);
    if (!k->key || !k->principal) {
        free(k->key);
        free(k->principal);
        snprintf(l->err, l->errlen, "out of memory");
        return 0;
    }
    c->n_keys++;
    return 1;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    struct load l = {cfg, err, errlen};
    err[0] = '\0';
    int rc = ini_parse(path, on_key, &l);
    if (rc != 0) {
        if (!err[0])
            snprintf(err, errlen,
                     rc < 0 ? "%s: cannot read" : "%s:%d: syntax error (want key = value)", path,
                     rc);
        else if (rc > 0) {
            char tmp[256];
            snprintf(tmp, sizeof(tmp), "%s", err);
            snprintf(err, errlen, "%s:%d: %s", path, rc, tmp);
        }
        return -1;
    }
    if (!cfg->keys_file)
        return 0;
    rc = ini_parse(cfg->keys_file, on_api_key, &l);
    if (rc != 0) {
        if (!err[0])
            snprintf(err, errlen,
                     rc < 0 ? "%s: cannot read" : "%s:%d: syntax error (want key = value)",
                     cfg->keys_file, rc);
        return -1;
    }
    return 0;
}

int config_check(const struct config *cfg, char *err, size_t errlen)
{
    if ((!cfg->intake && !cfg->city) || !cfg->db) {
        snprintf(err, errlen, "intake (or city) and db are required");
        return -1;
    }
    if (cfg->intake && cfg->city) {
        snprintf(err, errlen, "set intake (one broker) or city (its shards), not both");
        return -1;
    }
    char why[256];
    if (cfg->intake && intake_check_endpoints(cfg->intake, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "intake: %s", why);
        return -1;
    }
    if (cfg->n_keys == 0) {
        snprintf(err, errlen, "no api keys: set keys_file to a file of 'key = principal' lines");
        return -1;
    }
    if (cfg->page_size > cfg->max_page_size) {
        snprintf(err, errlen, "page_size is above max_page_size");
        return -1;
    }
    if (cfg->attempt_timeout_ms > cfg->submit_timeout_ms) {
        snprintf(err, errlen, "attempt_timeout_ms is above submit_timeout_ms");
        return -1;
    }
    if (cfg->max_concurrent > cfg->max_connections) {
        snprintf(err, errlen, "max_concurrent is above max_connections");
        return -1;
    }
    if (cfg->utc_offset_min < -1439 || cfg->utc_offset_min > 1439) {
        snprintf(err, errlen, "utc_offset_min is outside -1439..1439");
        return -1;
    }
    return 0;
}

void config_print(const struct config *cfg, FILE *out)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    fprintf(out,
            "; gd-open311: effective configuration (db and api keys not shown)\n[gd-open311]\n"
            "bind = %s\nport = %u\n%s = %s\n; db = (set, not shown)\nkeys_file = %s\n; "
            "api_keys = %zu\n"
            "utc_offset_min = %d\npublic_sources = %s\nmax_body = %zu\nmax_connections = %u\n"
            "max_concurrent = %u\ndb_pool = %u\npage_size = %u\nmax_page_size = %u\n"
            "max_page = %u\nmax_ids = %u\nsubmit_timeout_ms = %u\nattempt_timeout_ms = %u\n"
            "failover_ms = %u\nlog_level = %s\n",
            cfg->bind ? cfg->bind : "127.0.0.1", cfg->port, cfg->city ? "city" : "intake",
            cfg->city     ? cfg->city
            : cfg->intake ? cfg->intake
                          : "",
            cfg->keys_file ? cfg->keys_file : "", cfg->n_keys, cfg->utc_offset_min,
            cfg->public_sources ? cfg->public_sources : "open311", cfg->max_body,
            cfg->max_connections, cfg->max_concurrent, cfg->db_pool, cfg->page_size,
            cfg->max_page_size, cfg->max_page, cfg->max_ids, cfg->submit_timeout_ms,
            cfg->attempt_timeout_ms, cfg->failover_ms, levels[cfg->log_level]);
}

const char *config_principal(const struct config *cfg, const char *key)
{
    size_t n = strlen(key);
    const char *found = NULL;
    for (size_t i = 0; i < cfg->n_keys; i++) {
        const char *k = cfg->keys[i].key;
        size_t kn = strlen(k);
        unsigned char diff = (unsigned char)(kn != n);
        for (size_t j = 0; j < kn; j++)
            diff |= (unsigned char)(k[j] ^ (j < n ? key[j] : 0));
        if (diff == 0)
            found = cfg->keys[i].principal;
    }
    return found;
}
