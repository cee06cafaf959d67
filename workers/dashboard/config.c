/* config.c - gd-dashboard's settings: defaults, an INI file (libinih), the command line and limits.
 */
#include "config.h"

#include "city.h"
#include "model.h"
#include "statsub.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

enum {
    OPT_STATUS = 256,
    OPT_INTAKE,
    OPT_DB,
    OPT_HTTP,
    OPT_UTC,
    OPT_MAX_CONN,
    OPT_MAX_IP,
    OPT_MAX_SSE,
    OPT_SSE_BUF,
    OPT_PUSH,
    OPT_HB,
    OPT_TIMEOUT,
    OPT_DB_WAIT,
    OPT_SILENCE,
    OPT_CITY,
    OPT_HELP,
    OPT_VERBOSE,
    OPT_CONFIG,
    OPT_CHECK,
    OPT_VERSION,
};

static const struct option options[] = {
    {"city", required_argument, NULL, OPT_CITY},
    {"status", required_argument, NULL, OPT_STATUS},
    {"intake", required_argument, NULL, OPT_INTAKE},
    {"db", required_argument, NULL, OPT_DB},
    {"http", required_argument, NULL, OPT_HTTP},
    {"utc-offset-min", required_argument, NULL, OPT_UTC},
    {"max-connections", required_argument, NULL, OPT_MAX_CONN},
    {"max-per-ip", required_argument, NULL, OPT_MAX_IP},
    {"max-sse", required_argument, NULL, OPT_MAX_SSE},
    {"sse-buffer", required_argument, NULL, OPT_SSE_BUF},
    {"push-ms", required_argument, NULL, OPT_PUSH},
    {"heartbeat-s", required_argument, NULL, OPT_HB},
    {"timeout-s", required_argument, NULL, OPT_TIMEOUT},
    {"db-wait-s", required_argument, NULL, OPT_DB_WAIT},
    {"broker-silence-ms", required_argument, NULL, OPT_SILENCE},
    {"verbose", optional_argument, NULL, OPT_VERBOSE},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {0},
};

static const char usage[] =
    "usage: gd-dashboard [--config FILE] --status EP --db DSN [options]\n"
    "       gd-dashboard [--config FILE] --city FILE [options]\n"
    "Live web dashboard and Prometheus /metrics for a griddispatch broker, or a city's shards.\n"
    "  --config FILE          INI file: section [gd-dashboard], keys = these option names\n"
    "                         without '--' ('-' or '_'); the command line wins over the file\n"
    "  --check-config         check the configuration, print it as an INI file and exit\n"
    "  --city FILE            the city's shards (deploy/README.md): every shard's status and\n"
    "                         intake, today's counts from every shard's db, the org tree and\n"
    "                         maps from the default shard's db (instead of status, intake, db)\n"
    "  --status EP            broker status endpoint (XPUB), e.g. tcp://127.0.0.1:5557\n"
    "  --intake EP            broker intake endpoint, for SNAPSHOT at start (recommended)\n"
    "  --db DSN               PostgreSQL: org tree, categories and today's counts at start\n"
    "  --http HOST:PORT       listen address [127.0.0.1:8080]; port 0 picks one\n"
    "  --utc-offset-min N     local time for \"today\", minutes east of UTC [480]\n"
    "  --max-connections N    HTTP connections at once, 1..10000 [128]\n"
    "  --max-per-ip N         HTTP connections from one address, 1..10000 [64]\n"
    "  --max-sse N            event-stream (SSE) clients at once, 0..1000 [32]\n"
    "  --sse-buffer BYTES     pending bytes per SSE client before it is dropped [1048576]\n"
    "  --push-ms N            SSE update period, 100..60000 [500]\n"
    "  --heartbeat-s N        SSE keep-alive comment when idle, 1..300 [15]\n"
    "  --timeout-s N          idle HTTP connection timeout, 1..3600 [30]\n"
    "  --db-wait-s N          retry the database at start for N s [30]\n"
    "  --broker-silence-ms N  no broker status for N ms: make the status subscription anew\n"
    "                         and SNAPSHOT again; keep it above 2 x the broker's --gauge-ms;\n"
    "                         0 (never) or 500..3600000 [3000]\n"
    "  --verbose[=BOOL]       log every HTTP refusal and decode error [false]\n"
    "Signals: SIGTERM/SIGINT close every connection and exit; SIGHUP reads the unit\n"
    "boundaries for the maps again (the configuration is not reloaded).\n";

static int number(const char *name, const char *s, long lo, long hi, long *ret, char *msg,
                  size_t msglen)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        snprintf(msg, msglen, "%s needs a number from %ld to %ld, not '%.64s'", name, lo, hi, s);
        return -1;
    }
    *ret = v;
    return 0;
}

/* Applies one setting (`name` as the user spelled it; `value` NULL for a
 * bare flag, otherwise outliving cfg). Returns 0, or -1 with msg. */
static int apply(struct dash_config *cfg, int opt, const char *name, const char *value, char *msg,
                 size_t msglen)
{
    long v = 0;
    int rc = 0;
    if (opt != OPT_VERBOSE && !*value) {
        snprintf(msg, msglen, "%s needs a value", name);
        return -1;
    }
    switch (opt) {
    case OPT_CITY:
        cfg->city_file = value;
        break;
    case OPT_STATUS:
        cfg->status_ep = value;
        break;
    case OPT_INTAKE:
        cfg->intake_ep = value;
        break;
    case OPT_DB:
        cfg->db = value;
        break;
    case OPT_HTTP:
        if (!strchr(value, ':')) {
            snprintf(msg, msglen, "%s is HOST:PORT, not '%.64s'", name, value);
            return -1;
        }
        cfg->http.listen = value;
        break;
    case OPT_UTC:
        rc = number(name, value, -1080, 1080, &v, msg, msglen);
        cfg->utc_offset_min = (int32_t)v;
        break;
    case OPT_MAX_CONN:
        rc = number(name, value, 1, 10000, &v, msg, msglen);
        cfg->http.max_connections = (uint32_t)v;
        break;
    case OPT_MAX_IP:
        rc = number(name, value, 1, 10000, &v, msg, msglen);
        cfg->http.max_per_ip = (uint32_t)v;
        break;
    case OPT_MAX_SSE:
        rc = number(name, value, 0, 1000, &v, msg, msglen);
        cfg->http.max_sse = (uint32_t)v;
        break;
    case OPT_SSE_BUF:
        rc = number(name, value, 65536, 64L << 20, &v, msg, msglen);
        cfg->http.sse_buffer = (uint32_t)v;
        break;
    case OPT_PUSH:
        rc = number(name, value, 100, 60000, &v, msg, msglen);
        cfg->http.push_ms = (uint32_t)v;
        break;
    case OPT_HB:
        rc = number(name, value, 1, 300, &v, msg, msglen);
        cfg->http.heartbeat_s = (uint32_t)v;
        break;
    case OPT_TIMEOUT:
        rc = number(name, value, 1, 3600, &v, msg, msglen);
        cfg->http.timeout_s = (uint32_t)v;
        break;
    case OPT_DB_WAIT:
        rc = number(name, value, 0, 3600, &v, msg, msglen);
        cfg->db_wait_s = (uint32_t)v;
        break;
    case OPT_SILENCE:
        rc = number(name, value, 0, 3600000, &v, msg, msglen);
        if (rc == 0 && v != 0 && v < 500) {
            snprintf(msg, msglen, "%s is 0 (never) or at least 500, not %ld", name, v);
            return -1;
        }
        cfg->broker_silence_ms = (uint32_t)v;
        break;
    case OPT_VERBOSE:
        if (!value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            cfg->verbose = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            cfg->verbose = 0;
        else {
            snprintf(msg, msglen, "%s is true or false, not '%.64s'", name, value);
            return -1;
        }
        break;
    default:
        snprintf(msg, msglen, "%s cannot be set here", name);
        return -1;
    }
    return rc;
}

struct file_ctx {
    struct dash_config *cfg;
    char msg[512]; /* the first bad line's problem; libinih reports its number */
};

/* libinih callback: one "key = value" of the file. Returns 0 for a bad line. */
static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct file_ctx *ctx = user;
    struct dash_config *cfg = ctx->cfg;
    char problem[sizeof(ctx->msg)];
    if (*section && strcmp(section, "gd-dashboard") != 0) {
        snprintf(problem, sizeof(problem),
                 "unknown section [%.64s]; gd-dashboard reads [gd-dashboard]", section);
        goto bad_line;
    }
    char name[64];
    snprintf(name, sizeof(name), "%s", key);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    int opt = 0;
    for (const struct option *o = options; o->name; o++)
        if (strcmp(o->name, name) == 0)
            opt = o->val;
    if (opt == 0 || opt == OPT_CONFIG || opt == OPT_CHECK || opt == OPT_HELP ||
        opt == OPT_VERSION) {
        snprintf(problem, sizeof(problem), "unknown key '%.64s'", key);
        goto bad_line;
    }
    size_t n = strlen(value) + 1;
    if (n > sizeof(cfg->strings) - cfg->strings_used) {
        snprintf(problem, sizeof(problem), "the values add up to more than %zu bytes",
                 sizeof(cfg->strings));
        goto bad_line;
    }
    char *copy = memcpy(cfg->strings + cfg->strings_used, value, n);
    cfg->strings_used += n;
    if (apply(cfg, opt, key, copy, problem, sizeof(problem)) < 0)
        goto bad_line;
    return 1;

bad_line:
    if (!ctx->msg[0])
        snprintf(ctx->msg, sizeof(ctx->msg), "%s", problem);
    return 0;
}

/* Prints the effective configuration as an INI file --config reads back. */
static void print_config(const struct dash_config *cfg, FILE *out)
{
    const struct http_config *h = &cfg->http;
    fprintf(out,
            "; gd-dashboard: effective configuration (defaults < %s < command line)\n"
            "[gd-dashboard]\n",
            cfg->config_file ? cfg->config_file : "no file");
    if (cfg->city) {
        fprintf(out, "city = %s\n", cfg->city_file);
        for (size_t i = 0; i < city_n_shards(cfg->city); i++) {
            const struct city_shard *s = city_shard(cfg->city, i);
            fprintf(out, "; shard %s: status %s, intake %s%s\n", s->name, s->status, s->intake,
                    (int)i == city_default_shard(cfg->city) ? " (default: org tree, maps)" : "");
        }
    } else {
        fprintf(out, "status = %s\n", cfg->status_ep);
        if (cfg->intake_ep)
            fprintf(out, "intake = %s\n", cfg->intake_ep);
        else
            fprintf(out, "; intake = (none: no SNAPSHOT at start)\n");
        fprintf(out, "db = %s\n",
                strstr(cfg->db, "password") ? "(set; holds a password)" : cfg->db);
    }
    fprintf(out, "http = %s\nutc_offset_min = %d\n", h->listen, cfg->utc_offset_min);
    fprintf(out,
            "max_connections = %u\nmax_per_ip = %u\nmax_sse = %u\nsse_buffer = %u\n"
            "push_ms = %u\nheartbeat_s = %u\ntimeout_s = %u\ndb_wait_s = %u\n"
            "broker_silence_ms = %u\nverbose = %s\n",
            h->max_connections, h->max_per_ip, h->max_sse, h->sse_buffer, h->push_ms,
            h->heartbeat_s, h->timeout_s, cfg->db_wait_s, cfg->broker_silence_ms,
            cfg->verbose ? "true" : "false");
}

int dash_config_parse(struct dash_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    *cfg = (struct dash_config){
        .utc_offset_min = 480,
        .db_wait_s = 30,
        .broker_silence_ms = STATSUB_SILENCE_MS,
        .http = {.listen = "127.0.0.1:8080",
                 .max_connections = 128,
                 .max_per_ip = 64,
                 .max_sse = 32,
                 .sse_buffer = 1 << 20,
                 .push_ms = 500,
                 .heartbeat_s = 15,
                 .timeout_s = 30,
                 .request_memory = 32 * 1024},
    };
    bool check_only = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_HELP:
            fputs(usage, out);
            return 1;
        case OPT_VERSION:
            fprintf(out, "gd-dashboard %s\n", GD_VERSION);
            return 1;
        case '?':
            fputs(usage, err);
            return -1;
        case OPT_CONFIG:
            cfg->config_file = optarg;
            break;
        case OPT_CHECK:
            check_only = true;
            break;
        default:
            break;
        }
    }
    if (optind < argc) {
        fprintf(err, "gd-dashboard: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->config_file) {
        struct file_ctx ctx = {.cfg = cfg};
        int line = ini_parse(cfg->config_file, on_ini, &ctx);
        if (line < 0) {
            fprintf(err, "gd-dashboard: cannot read config file %s%s%s\n", cfg->config_file,
                    line == -1 ? ": " : "", line == -1 ? strerror(errno) : "");
            return -1;
        }
        if (line > 0) {
            fprintf(err, "gd-dashboard: %s:%d: %s\n", cfg->config_file, line,
                    ctx.msg[0] ? ctx.msg : "syntax error (want key = value, or [gd-dashboard])");
            return -1;
        }
    }
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        if (c == OPT_CONFIG || c == OPT_CHECK)
            continue;
        char name[64] = "--?", msg[512];
        for (const struct option *o = options; o->name; o++)
            if (o->val == c)
                snprintf(name, sizeof(name), "--%s", o->name);
        if (apply(cfg, c, name, optarg, msg, sizeof(msg)) < 0) {
            fprintf(err, "gd-dashboard: %s\n", msg);
            return -1;
        }
    }
    if (cfg->city_file && (cfg->status_ep || cfg->intake_ep || cfg->db)) {
        fprintf(err, "gd-dashboard: set city or status, intake and db, not both\n");
        return -1;
    }
    if (cfg->city_file) {
        char why[512];
        int rc = city_load(cfg->city_file, &cfg->city, why, sizeof(why));
        if (rc < 0) {
            fprintf(err, "gd-dashboard: city: %s\n", rc == -ENOMEM ? "out of memory" : why);
            return -1;
        }
        if (city_n_shards(cfg->city) > DASH_MAX_SHARDS) { /* city.h's limit is the same */
            fprintf(err, "gd-dashboard: city: more than %d shards\n", DASH_MAX_SHARDS);
            goto free_city;
        }
    } else if (!cfg->status_ep || !cfg->db) {
        fprintf(err, "gd-dashboard: status and db are required (--status, --db or the file), "
                     "or city\n");
        return -1;
    }
    if (cfg->http.max_per_ip > cfg->http.max_connections)
        cfg->http.max_per_ip = cfg->http.max_connections;
    if (check_only) {
        print_config(cfg, out);
        dash_config_fini(cfg);
        return 1;
    }
    return 0;

free_city:
    dash_config_fini(cfg);
    return -1;
}

void dash_config_fini(struct dash_config *cfg)
{
    city_free(cfg->city);
    cfg->city = NULL;
}
