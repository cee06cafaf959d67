/* config.c - gd-worker configuration: INI keys, defaults, range checks and the printed form. */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <wordexp.h>

#include "city.h"

const char *const config_keys[] = {
    "endpoints",
    "queues",
    "city",
    "credit",
    "name",
    "handler",
    "webhook",
    "handler_timeout_ms",
    "kill_grace_ms",
    "sign",
    "command_retries",
    "hello_timeout_ms",
    "request_timeout_ms",
    "reconnect_min_ms",
    "reconnect_max_ms",
    "curve_server_key",
    "curve_public_key",
    "curve_secret_key",
    "log_level",
    NULL,
};

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void config_init(struct config *cfg)
{
    *cfg = (struct config){
        .credit = 1,
        .handler_timeout_ms = 30000,
        .kill_grace_ms = 2000,
        .sign = SIGN_BEFORE,
        .command_retries = 5,
        .hello_timeout_ms = 3000,
        .request_timeout_ms = 10000,
        .reconnect_min_ms = 100,
        .reconnect_max_ms = 10000,
        .log_level = WLOG_INFO,
    };
}

static void free_list(char **items, size_t *n)
{
    for (size_t i = 0; i < *n; i++) {
        free(items[i]);
        items[i] = NULL;
    }
    *n = 0;
}

void config_fini(struct config *cfg)
{
    free_list(cfg->endpoints, &cfg->n_endpoints);
    free_list(cfg->queues, &cfg->n_queues);
    free(cfg->city);
    free(cfg->name);
    free(cfg->handler);
    free(cfg->webhook);
    free(cfg->curve_server_key);
    free(cfg->curve_public_key);
    free(cfg->curve_secret_key);
    *cfg = (struct config){0};
}

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        s[--n] = '\0';
    return s;
}

/* Splits a comma list into fresh strings; empty items are refused. */
static int set_list(char **items, size_t *n, size_t max, const char *key, const char *value,
                    char *err, size_t errlen)
{
    char *copy = strdup(value);
    if (!copy)
        return -ENOMEM;
    char *out[CONFIG_MAX_QUEUES > CONFIG_MAX_ENDPOINTS ? CONFIG_MAX_QUEUES : CONFIG_MAX_ENDPOINTS];
    size_t count = 0;
    int rc = 0;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *t = trim(tok);
        if (!*t)
            continue;
        if (count == max) {
            snprintf(err, errlen, "%s: at most %zu items", key, max);
            rc = -EINVAL;
            goto free_out;
        }
        out[count] = strdup(t);
        if (!out[count]) {
            rc = -ENOMEM;
            goto free_out;
        }
        count++;
    }
    if (count == 0) {
        snprintf(err, errlen, "%s: give at least one item (a comma-separated list)", key);
        rc = -EINVAL;
        goto free_out;
    }
    free_list(items, n);
    memcpy(items, out, count * sizeof(*out));
    *n = count;
    free(copy);
    return 0;

free_out:
    for (size_t i = 0; i < count; i++)
        free(out[i]);
    free(copy);
    return rc;
}

static int set_str(char **dst, const char *value)
{
    char *s = strdup(value);
    if (!s)
        return -ENOMEM;
    free(*dst);
    *dst = *s ? s : NULL;
    if (!*dst)
        free(s);
    return 0;
}

static int set_u32(uint32_t *dst, const char *key, const char *value, uint32_t min, uint32_t max,
                   char *err, size_t errlen)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(value, &end, 10);
    if (errno || end == value || *end || value[0] == '-' || v < min || v > max) {
        snprintf(err, errlen, "%s: want a whole number from %u to %u, not '%.64s'", key, min, max,
                 value);
        return -EINVAL;
    }
    *dst = (uint32_t)v;
    return 0;
}

bool config_has_key(const char *key)
{
    for (size_t i = 0; config_keys[i]; i++)
        if (strcmp(key, config_keys[i]) == 0)
            return true;
    return false;
}

int config_set(struct config *cfg, const char *key_in, const char *value_in, char *err,
               size_t errlen)
{
    char key[64];
    snprintf(key, sizeof(key), "%s", key_in);
    for (char *p = key; *p; p++)
        if (*p == '-')
            *p = '_';
    if (strlen(value_in) > CONFIG_MAX_VALUE) {
        snprintf(err, errlen, "%s: value longer than %d bytes", key, CONFIG_MAX_VALUE);
        return -EINVAL;
    }
    char buf[CONFIG_MAX_VALUE + 1];
    snprintf(buf, sizeof(buf), "%s", value_in);
    const char *v = trim(buf);

    if (strcmp(key, "endpoints") == 0)
        return set_list(cfg->endpoints, &cfg->n_endpoints, CONFIG_MAX_ENDPOINTS, key, v, err,
                        errlen);
    if (strcmp(key, "queues") == 0)
        return set_list(cfg->queues, &cfg->n_queues, CONFIG_MAX_QUEUES, key, v, err, errlen);
    if (strcmp(key, "city") == 0)
        return set_str(&cfg->city, v);
    if (strcmp(key, "credit") == 0)
        return set_u32(&cfg->credit, key, v, 1, GD_MAX_CREDIT, err, errlen);
    if (strcmp(key, "name") == 0) {
        if (strlen(v) > GD_MAX_NAME) {
            snprintf(err, errlen, "name: at most %d bytes", GD_MAX_NAME);
            return -EINVAL;
        }
        return set_str(&cfg->name, v);
    }
    if (strcmp(key, "handler") == 0)
        return set_str(&cfg->handler, v);
    if (strcmp(key, "webhook") == 0)
        return set_str(&cfg->webhook, v);
    if (strcmp(key, "handler_timeout_ms") == 0)
        return set_u32(&cfg->handler_timeout_ms, key, v, 10, 86400000, err, errlen);
    if (strcmp(key, "kill_grace_ms") == 0)
        return set_u32(&cfg->kill_grace_ms, key, v, 0, 600000, err, errlen);
    if (strcmp(key, "command_retries") == 0)
        return set_u32(&cfg->command_retries, key, v, 0, 100, err, errlen);
    if (strcmp(key, "hello_timeout_ms") == 0)
        return set_u32(&cfg->hello_timeout_ms, key, v, 10, 600000, err, errlen);
    if (strcmp(key, "request_timeout_ms") == 0)
        return set_u32(&cfg->request_timeout_ms, key, v, 10, 600000, err, errlen);
    if (strcmp(key, "reconnect_min_ms") == 0)
        return set_u32(&cfg->reconnect_min_ms, key, v, 1, 600000, err, errlen);
    if (strcmp(key, "reconnect_max_ms") == 0)
        return set_u32(&cfg->reconnect_max_ms, key, v, 1, 3600000, err, errlen);
    if (strcmp(key, "sign") == 0) {
        if (strcmp(v, "before") == 0)
            cfg->sign = SIGN_BEFORE;
        else if (strcmp(v, "after") == 0)
            cfg->sign = SIGN_AFTER;
        else {
            snprintf(err, errlen, "sign: want 'before' or 'after', not '%.64s'", v);
            return -EINVAL;
        }
        return 0;
    }
    if (strcmp(key, "log_level") == 0) {
        for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
            if (strcmp(v, level_names[i]) == 0) {
                cfg->log_level = (enum wlog_level)i;
                return 0;
            }
        }
        snprintf(err, errlen, "log_level: want error, warn, info or debug, not '%.64s'", v);
        return -EINVAL;
    }
    if (strcmp(key, "curve_server_key") == 0)
        return set_str(&cfg->curve_server_key, v);
    if (strcmp(key, "curve_public_key") == 0)
        return set_str(&cfg->curve_public_key, v);
    if (strcmp(key, "curve_secret_key") == 0)
        return set_str(&cfg->curve_secret_key, v);
    snprintf(err, errlen, "unknown key '%.64s'", key_in);
    return -EINVAL;
}

struct load_ctx {
    struct config *cfg;
    char *err;
    size_t errlen;
    int rc;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct load_ctx *ctx = user;
    if (ctx->rc)
        return 0;
    if (*section && strcmp(section, "gd-worker") != 0) {
        snprintf(ctx->err, ctx->errlen,
                 "unknown section [%.64s] (keys go at the top or in [gd-worker])", section);
        ctx->rc = -EINVAL;
        return 0;
    }
    int rc = config_set(ctx->cfg, name, value ? value : "", ctx->err, ctx->errlen);
    if (rc < 0) {
        ctx->rc = rc;
        return 0;
    }
    return 1;
}

int config_load(struct config *cfg, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        int e = errno;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    char msg[CONFIG_ERR_LEN] = "";
    struct load_ctx ctx = {.cfg = cfg, .err = msg, .errlen = sizeof(msg)};
    int line = ini_parse_file(f, on_ini, &ctx);
    fclose(f);
    if (line == 0)
        return 0;
    if (line < 0) {
        snprintf(err, errlen, "%s: %s", path, line == -2 ? "out of memory" : "cannot read it");
        return line == -2 ? -ENOMEM : -EIO;
    }
    snprintf(err, errlen, "%s:%d: %s", path, line,
             msg[0] ? msg : "syntax error (want key = value)");
    return ctx.rc == -ENOMEM ? -ENOMEM : -EINVAL;
}

int config_from_city(struct config *cfg, char *err, size_t errlen)
{
    if (!cfg->city)
        return 0;
    if (cfg->n_endpoints) {
        snprintf(err, errlen, "set endpoints or city, not both");
        return -EINVAL;
    }
    struct city *city;
    char why[CONFIG_ERR_LEN];
    int rc = city_load(cfg->city, &city, why, sizeof(why));
    if (rc < 0) {
        snprintf(err, errlen, "city: %s", rc == -ENOMEM ? "out of memory" : why);
        return rc;
    }
    int shard = -1;
    for (size_t q = 0; q < cfg->n_queues; q++) {
        const char *name = cfg->queues[q];
        int i = city_shard_of_unit(city, name, strlen(name));
        if (i < 0)
            i = city_default_shard(city);
        if (i < 0) {
            snprintf(err, errlen, "queue %s: no shard of %s owns its town and it names no default",
                     name, cfg->city);
            rc = -EINVAL;
            goto free_city;
        }
        if (shard >= 0 && i != shard) {
            snprintf(err, errlen,
                     "queues %s and %s are on two shards (%s, %s): run one gd-worker per shard",
                     cfg->queues[0], name, city_shard(city, (size_t)shard)->name,
                     city_shard(city, (size_t)i)->name);
            rc = -EINVAL;
            goto free_city;
        }
        shard = i;
    }
    rc = 0;
    if (shard >= 0) /* an HA pair's work endpoints are a comma list, as for endpoints */
        rc = config_set(cfg, "endpoints", city_shard(city, (size_t)shard)->work, err, errlen);
free_city:
    city_free(city);
    return rc;
}

int config_check(const struct config *cfg, char *err, size_t errlen)
{
    if (cfg->n_endpoints == 0) {
        snprintf(err, errlen,
                 "endpoints: not set (e.g. endpoints = tcp://broker-a:5571, tcp://broker-b:5571)");
        return -EINVAL;
    }
    if (cfg->n_queues == 0) {
        snprintf(err, errlen, "queues: not set (the org-unit codes this worker serves)");
        return -EINVAL;
    }
    for (size_t i = 0; i < cfg->n_queues; i++) {
        if (strlen(cfg->queues[i]) > GD_MAX_QUEUE) {
            snprintf(err, errlen, "queues: '%.32s...' is longer than %d bytes", cfg->queues[i],
                     GD_MAX_QUEUE);
            return -EINVAL;
        }
    }
    if (!cfg->handler == !cfg->webhook) {
        snprintf(err, errlen, "set exactly one of handler (a command) and webhook (a URL)");
        return -EINVAL;
    }
    if (cfg->handler) {
        wordexp_t we;
        int rc = wordexp(cfg->handler, &we, WRDE_NOCMD);
        if (rc != 0) {
            snprintf(err, errlen, "handler: cannot split '%.128s' into words (%s)", cfg->handler,
                     rc == WRDE_CMDSUB    ? "command substitution is not allowed"
                     : rc == WRDE_BADCHAR ? "unquoted | & ; < > ( ) { } or newline: wrap a "
                                            "shell line in /bin/sh -c '...'"
                                          : "bad quoting");
            if (rc == WRDE_NOSPACE)
                wordfree(&we);
            return -EINVAL;
        }
        bool empty = we.we_wordc == 0;
        wordfree(&we);
        if (empty) {
            snprintf(err, errlen, "handler: empty command");
            return -EINVAL;
        }
    }
    if (cfg->webhook && strncmp(cfg->webhook, "http://", 7) != 0 &&
        strncmp(cfg->webhook, "https://", 8) != 0) {
        snprintf(err, errlen, "webhook: want an http:// or https:// URL");
        return -EINVAL;
    }
    const char *keys[] = {cfg->curve_server_key, cfg->curve_public_key, cfg->curve_secret_key};
    const char *names[] = {"curve_server_key", "curve_public_key", "curve_secret_key"};
    int set = 0;
    for (int i = 0; i < 3; i++) {
        if (keys[i] && strlen(keys[i]) != GDW_CURVE_KEY_LEN) {
            snprintf(err, errlen, "%s: a CURVE key is %d characters of Z85 text", names[i],
                     GDW_CURVE_KEY_LEN);
            return -EINVAL;
        }
        set += keys[i] != NULL;
    }
    if (set != 0 && set != 3) {
        snprintf(err, errlen,
                 "CURVE needs all of curve_server_key, curve_public_key and curve_secret_key");
        return -EINVAL;
    }
    if (cfg->reconnect_max_ms < cfg->reconnect_min_ms) {
        snprintf(err, errlen, "reconnect_max_ms is below reconnect_min_ms");
        return -EINVAL;
    }
    return 0;
}

static void print_list(FILE *out, const char *key, char *const *items, size_t n)
{
    fprintf(out, "%s = ", key);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", items[i]);
    fputc('\n', out);
}

void config_print(const struct config *cfg, FILE *out)
{
    fprintf(out, "[gd-worker]\n");
    if (cfg->city)
        fprintf(out, "; endpoints from the city %s\n", cfg->city);
    print_list(out, "endpoints", cfg->endpoints, cfg->n_endpoints);
    print_list(out, "queues", cfg->queues, cfg->n_queues);
    fprintf(out, "credit = %u\n", cfg->credit);
    fprintf(out, "name = %s\n", cfg->name ? cfg->name : "");
    if (cfg->handler)
        fprintf(out, "handler = %s\n", cfg->handler);
    if (cfg->webhook)
        fprintf(out, "webhook = %s\n", cfg->webhook);
    fprintf(out, "handler_timeout_ms = %u\n", cfg->handler_timeout_ms);
    fprintf(out, "kill_grace_ms = %u\n", cfg->kill_grace_ms);
    fprintf(out, "sign = %s\n", cfg->sign == SIGN_BEFORE ? "before" : "after");
    fprintf(out, "command_retries = %u\n", cfg->command_retries);
    fprintf(out, "hello_timeout_ms = %u\n", cfg->hello_timeout_ms);
    fprintf(out, "request_timeout_ms = %u\n", cfg->request_timeout_ms);
    fprintf(out, "reconnect_min_ms = %u\n", cfg->reconnect_min_ms);
    fprintf(out, "reconnect_max_ms = %u\n", cfg->reconnect_max_ms);
    if (cfg->curve_server_key)
        fprintf(out, "curve_server_key = %s\n", cfg->curve_server_key);
    if (cfg->curve_public_key)
        fprintf(out, "curve_public_key = %s\n", cfg->curve_public_key);
    if (cfg->curve_secret_key)
        fprintf(out, "; curve_secret_key = (set)\n");
    fprintf(out, "log_level = %s\n", level_names[cfg->log_level]);
}
