/* config.c - gd-sla settings from defaults, an INI file (libinih) and getopt_long. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "city.h"
#include "log.h"

#define SECTION "gd-sla"

static const char usage[] =
    "usage: gd-sla --work EP[,EP...] (--shard TOWN[,TOWN...] | --all) [options]\n"
    "       gd-sla --city FILE --city-shard NAME [--shard TOWN[,TOWN...]] [options]\n"
    "\n"
    "SLA-timer worker of griddispatch: holds the live deadlines of a shard of\n"
    "towns streamed by gd-broker and sends WARN and ESCALATE when they pass.\n"
    "\n"
    "  --work EP[,EP...]       broker work endpoints (tcp:// or ipc://), tried in order\n"
    "  --shard T1,T2,...       town codes served (at most 128)\n"
    "  --all                   serve every town\n"
    "  --city FILE             the city's shards (deploy/README.md), with --city-shard:\n"
    "  --city-shard NAME       connect to that shard's work endpoint (instead of --work)\n"
    "                          and, without --shard, serve all its broker's towns (--all)\n"
    "  --name NAME             session name for logs and event history [gd-sla]\n"
    "  --tick-ms N             timing wheel resolution, 1..1000 [10]; lateness <= N ms\n"
    "  --hello-timeout-ms N    wait for WELCOME before trying the next endpoint [5000]\n"
    "  --backoff-min-ms N      first reconnect delay [100]\n"
    "  --backoff-max-ms N      reconnect delay cap (doubles per failure) [10000]\n"
    "  --denied-retry-ms N     wait after DENIED before saying HELLO again [5000]\n"
    "  --retry-ms N            resend WARN/ESCALATE after ERR busy/internal [1000]\n"
    "  --report-ms N           period of the activity summary log line [10000]\n"
    "  --exit-on-denied        exit with status 3 when the broker refuses the session\n"
    "  --curve-server-key Z85  broker's CURVE public key (enables CURVE)\n"
    "  --curve-public-key Z85  this worker's CURVE key pair (required with CURVE)\n"
    "  --curve-secret-key Z85\n"
    "  --log-level LEVEL       error, warn, info or debug [info]\n"
    "  --config FILE           INI file, section [gd-sla], keys as the long options\n"
    "                          ('-' or '_': work = ..., tick_ms = 20); the command line wins\n"
    "  --check-config          check the configuration, print it as an INI file and exit\n"
    "  --help, --version\n";

enum opt {
    OPT_WORK = 256,
    OPT_SHARD,
    OPT_ALL,
    OPT_CITY,
    OPT_CITY_SHARD,
    OPT_NAME,
    OPT_TICK,
    OPT_HELLO_TIMEOUT,
    OPT_BACKOFF_MIN,
    OPT_BACKOFF_MAX,
    OPT_DENIED_RETRY,
    OPT_RETRY,
    OPT_REPORT,
    OPT_EXIT_ON_DENIED,
    OPT_CURVE_SERVER,
    OPT_CURVE_PUBLIC,
    OPT_CURVE_SECRET,
    OPT_LOG_LEVEL,
    OPT_CONFIG,
    OPT_CHECK,
    OPT_HELP,
    OPT_VERSION,
};

static const struct option options[] = {
    {"work", required_argument, NULL, OPT_WORK},
    {"shard", required_argument, NULL, OPT_SHARD},
    {"all", no_argument, NULL, OPT_ALL},
    {"city", required_argument, NULL, OPT_CITY},
    {"city-shard", required_argument, NULL, OPT_CITY_SHARD},
    {"name", required_argument, NULL, OPT_NAME},
    {"tick-ms", required_argument, NULL, OPT_TICK},
    {"hello-timeout-ms", required_argument, NULL, OPT_HELLO_TIMEOUT},
    {"backoff-min-ms", required_argument, NULL, OPT_BACKOFF_MIN},
    {"backoff-max-ms", required_argument, NULL, OPT_BACKOFF_MAX},
    {"denied-retry-ms", required_argument, NULL, OPT_DENIED_RETRY},
    {"retry-ms", required_argument, NULL, OPT_RETRY},
    {"report-ms", required_argument, NULL, OPT_REPORT},
    {"exit-on-denied", no_argument, NULL, OPT_EXIT_ON_DENIED},
    {"curve-server-key", required_argument, NULL, OPT_CURVE_SERVER},
    {"curve-public-key", required_argument, NULL, OPT_CURVE_PUBLIC},
    {"curve-secret-key", required_argument, NULL, OPT_CURVE_SECRET},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, OPT_HELP},
    {"version", no_argument, NULL, OPT_VERSION},
    {NULL, 0, NULL, 0},
};

static int set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-' || v < min || v > max)
        return -1;
    *ret = (uint32_t)v;
    return 0;
}

/* Splits a comma list into fresh strings in `out` (previous ones freed).
 * Every element must be non-empty and at most max_len bytes. */
static int parse_list(const char *s, char **out, uint32_t *n, uint32_t max_n, size_t max_len)
{
    for (uint32_t i = 0; i < *n; i++) {
        free(out[i]);
        out[i] = NULL;
    }
    *n = 0;
    const char *p = s;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > max_len || *n == max_n)
            return -1;
        out[*n] = strndup(p, len);
        if (out[*n] == NULL)
            return -1;
        (*n)++;
        if (comma == NULL)
            return 0;
        p = comma + 1;
    }
}

/* Applies one option; `value` is NULL for flags. Returns 0 or -1 after
 * printing what is wrong. */
static int apply(struct config *cfg, int opt, const char *name, const char *value, FILE *err)
{
    int rc = 0;
    switch (opt) {
    case OPT_WORK:
        rc = parse_list(value, cfg->endpoints, &cfg->n_endpoints, CONFIG_MAX_ENDPOINTS, 1024);
        break;
    case OPT_SHARD:
        rc = parse_list(value, cfg->shard, &cfg->n_shard, GD_MAX_SHARD, GD_MAX_CODE);
        cfg->all_towns = false; /* the later of --shard and --all wins */
        break;
    case OPT_ALL:
        cfg->all_towns = value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        if (cfg->all_towns) {
            for (uint32_t i = 0; i < cfg->n_shard; i++)
                free(cfg->shard[i]);
            cfg->n_shard = 0;
        }
        break;
    case OPT_CITY:
        rc = strlen(value) == 0 ? -1 : set_string(&cfg->city_file, value);
        break;
    case OPT_CITY_SHARD:
        rc = strlen(value) == 0 || strlen(value) > CITY_MAX_NAME
                 ? -1
                 : set_string(&cfg->city_shard, value);
        break;
    case OPT_NAME:
        rc = strlen(value) == 0 || strlen(value) > GD_MAX_NAME ? -1 : set_string(&cfg->name, value);
        break;
    case OPT_TICK:
        rc = parse_u32(value, 1, 1000, &cfg->tick_ms);
        break;
    case OPT_HELLO_TIMEOUT:
        rc = parse_u32(value, 10, 600000, &cfg->hello_timeout_ms);
        break;
    case OPT_BACKOFF_MIN:
        rc = parse_u32(value, 1, 600000, &cfg->backoff_min_ms);
        break;
    case OPT_BACKOFF_MAX:
        rc = parse_u32(value, 1, 3600000, &cfg->backoff_max_ms);
        break;
    case OPT_DENIED_RETRY:
        rc = parse_u32(value, 1, 3600000, &cfg->denied_retry_ms);
        break;
    case OPT_RETRY:
        rc = parse_u32(value, 1, 3600000, &cfg->retry_ms);
        break;
    case OPT_REPORT:
        rc = parse_u32(value, 100, 86400000, &cfg->report_ms);
        break;
    case OPT_EXIT_ON_DENIED:
        cfg->exit_on_denied =
            value == NULL || strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        break;
    case OPT_CURVE_SERVER:
        rc = strlen(value) != 40 ? -1 : set_string(&cfg->curve_server_key, value);
        break;
    case OPT_CURVE_PUBLIC:
        rc = strlen(value) != 40 ? -1 : set_string(&cfg->curve_public_key, value);
        break;
    case OPT_CURVE_SECRET:
        rc = strlen(value) != 40 ? -1 : set_string(&cfg->curve_secret_key, value);
        break;
    case OPT_LOG_LEVEL:
        cfg->log_level = log_level_parse(value);
        rc = cfg->log_level < 0 ? -1 : 0;
        break;
    default:
        rc = -1;
    }
    if (rc < 0)
        fprintf(err, "gd-sla: bad value for %s: '%s'\n", name, value ? value : "");
    return rc;
}

struct ini_ctx {
    struct config *cfg;
    FILE *err;
    bool failed;
};

static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct ini_ctx *ic = user;
    if (strcmp(section, SECTION) != 0) {
        fprintf(ic->err, "unknown section [%s]; gd-sla reads [gd-sla]\n", section);
        ic->failed = true;
        return 0;
    }
    char name[64];
    snprintf(name, sizeof(name), "%s", key);
    for (char *p = name; *p; p++)
        if (*p == '_')
            *p = '-';
    for (const struct option *o = options; o->name; o++) {
        if (strcmp(o->name, name) != 0 || o->val == OPT_CONFIG || o->val == OPT_CHECK ||
            o->val == OPT_HELP || o->val == OPT_VERSION)
            continue;
        if (apply(ic->cfg, o->val, key, value, ic->err) < 0) {
            ic->failed = true;
            return 0;
        }
        return 1;
    }
    fprintf(ic->err, "unknown key '%s'\n", key);
    ic->failed = true;
    return 0;
}

static void defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->tick_ms = 10;
    cfg->hello_timeout_ms = 5000;
    cfg->backoff_min_ms = 100;
    cfg->backoff_max_ms = 10000;
    cfg->denied_retry_ms = 5000;
    cfg->retry_ms = 1000;
    cfg->report_ms = 10000;
    cfg->log_level = LOG_INFO;
}

/* --city + --city-shard: the shard's work endpoint, and all its broker's
 * towns unless --shard named some. Returns 0 or -1 after printing why. */
static int from_city(struct config *cfg, FILE *err)
{
    if (cfg->n_endpoints) {
        fprintf(err, "gd-sla: give --work or --city-shard, not both\n");
        return -1;
    }
    struct city *city;
    char why[512];
    int rc = city_load(cfg->city_file, &city, why, sizeof(why));
    if (rc < 0) {
        fprintf(err, "gd-sla: %s\n", rc == -ENOMEM ? "out of memory" : why);
        return -1;
    }
    int i = city_find_shard(city, cfg->city_shard);
    if (i < 0) {
        fprintf(err, "gd-sla: %s has no shard '%s'\n", cfg->city_file, cfg->city_shard);
        city_free(city);
        return -1;
    }
    /* an HA pair's work endpoints are a comma list, as for --work; blanks
     * after the commas are dropped (no endpoint has one) */
    char list[CITY_MAX_VALUE + 1];
    size_t n = 0;
    for (const char *p = city_shard(city, (size_t)i)->work; *p && n < CITY_MAX_VALUE; p++)
        if (*p != ' ' && *p != '\t')
            list[n++] = *p;
    list[n] = '\0';
    rc = parse_list(list, cfg->endpoints, &cfg->n_endpoints, CONFIG_MAX_ENDPOINTS, 1024);
    if (rc < 0)
        fprintf(err, "gd-sla: shard %s of %s: bad work endpoint list\n", cfg->city_shard,
                cfg->city_file);
    city_free(city);
    if (rc < 0)
        return -1;
    if (cfg->n_shard == 0)
        cfg->all_towns = true; /* a shard's broker holds only the shard's deadlines */
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv, FILE *err)
{
    defaults(cfg);
    const char *file = NULL;
    bool check_only = false;
    opterr = 0;
    optind = 1;
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (opt == OPT_HELP) {
            fputs(usage, stdout);
            return 1;
        }
        if (opt == OPT_VERSION) {
            printf("gd-sla %s\n", GD_VERSION);
            return 1;
        }
        if (opt == OPT_CONFIG)
            file = optarg;
        if (opt == OPT_CHECK)
            check_only = true;
        if (opt == '?') {
            fprintf(err, "gd-sla: unknown option or missing value: %s\n%s", argv[optind - 1],
                    usage);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(err, "gd-sla: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (file) {
        /* the problem goes to a buffer so that it is printed as FILE:LINE: problem */
        char *msg = NULL;
        size_t msglen = 0;
        FILE *mf = open_memstream(&msg, &msglen);
        if (mf == NULL)
            return -1;
        struct ini_ctx ic = {cfg, mf, false};
        int line = ini_parse(file, on_ini, &ic);
        fclose(mf);
        if (line < 0)
            fprintf(err, "gd-sla: cannot read config file %s\n", file);
        else if (line > 0 || ic.failed) {
            /* the first problem only, without apply()'s program prefix */
            const char *m = msg && *msg ? msg : "syntax error (want key = value, or [gd-sla])\n";
            if (strncmp(m, "gd-sla: ", 8) == 0)
                m += 8;
            fprintf(err, "gd-sla: %s:%d: %.*s\n", file, line, (int)strcspn(m, "\n"), m);
        }
        free(msg);
        if (line != 0 || ic.failed)
            return -1;
    }
    optind = 1;
    for (int opt; (opt = getopt_long(argc, argv, "", options, NULL)) != -1;) {
        if (opt == OPT_CONFIG || opt == OPT_CHECK)
            continue;
        const char *name = NULL;
        for (const struct option *o = options; o->name; o++)
            if (o->val == opt)
                name = o->name;
        if (apply(cfg, opt, name ? name : "?", optarg, err) < 0)
            return -1;
    }
    if (!cfg->city_file != !cfg->city_shard) {
        fprintf(err, "gd-sla: --city and --city-shard go together\n");
        return -1;
    }
    if (cfg->city_file && from_city(cfg, err) < 0)
        return -1;
    if (cfg->n_endpoints == 0) {
        fprintf(err, "gd-sla: --work is required\n");
        return -1;
    }
    if (cfg->n_shard == 0 && !cfg->all_towns) {
        fprintf(err, "gd-sla: give --shard or --all\n");
        return -1;
    }
    if (cfg->backoff_max_ms < cfg->backoff_min_ms) {
        fprintf(err, "gd-sla: --backoff-max-ms is below --backoff-min-ms\n");
        return -1;
    }
    if (cfg->curve_server_key && (!cfg->curve_public_key || !cfg->curve_secret_key)) {
        fprintf(err, "gd-sla: CURVE needs --curve-public-key and --curve-secret-key\n");
        return -1;
    }
    if (cfg->name == NULL && set_string(&cfg->name, "gd-sla") < 0)
        return -1;
    if (check_only) {
        config_print(cfg, file, stdout);
        return 1;
    }
    return 0;
}

/* Prints a comma list as "key = a, b". */
static void print_list(FILE *out, const char *key, char *const *items, uint32_t n)
{
    fprintf(out, "%s = ", key);
    for (uint32_t i = 0; i < n; i++)
        fprintf(out, "%s%s", i ? ", " : "", items[i]);
    fputc('\n', out);
}

void config_print(const struct config *cfg, const char *file, FILE *out)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    fprintf(out, "; gd-sla %s: effective configuration (defaults < %s < command line)\n[gd-sla]\n",
            GD_VERSION, file ? file : "no file");
    if (cfg->city_file) {
        fprintf(out, "city = %s\ncity_shard = %s\n; from the city: ", cfg->city_file,
                cfg->city_shard);
    }
    print_list(out, "work", cfg->endpoints, cfg->n_endpoints);
    if (cfg->all_towns)
        fprintf(out, "all = true\n");
    else
        print_list(out, "shard", cfg->shard, cfg->n_shard);
    fprintf(out, "name = %s\ntick_ms = %u\nhello_timeout_ms = %u\n", cfg->name, cfg->tick_ms,
            cfg->hello_timeout_ms);
    fprintf(out, "backoff_min_ms = %u\nbackoff_max_ms = %u\ndenied_retry_ms = %u\n",
            cfg->backoff_min_ms, cfg->backoff_max_ms, cfg->denied_retry_ms);
    fprintf(out, "retry_ms = %u\nreport_ms = %u\nexit_on_denied = %s\n", cfg->retry_ms,
            cfg->report_ms, cfg->exit_on_denied ? "true" : "false");
    if (cfg->curve_server_key)
        fprintf(out, "curve_server_key = %s\ncurve_public_key = %s\n; curve_secret_key = (set)\n",
                cfg->curve_server_key, cfg->curve_public_key);
    fprintf(out, "log_level = %s\n", levels[cfg->log_level]);
}

void config_fini(struct config *cfg)
{
    for (uint32_t i = 0; i < cfg->n_endpoints; i++)
        free(cfg->endpoints[i]);
    for (uint32_t i = 0; i < cfg->n_shard; i++)
        free(cfg->shard[i]);
    free(cfg->name);
    free(cfg->city_file);
    free(cfg->city_shard);
    free(cfg->curve_server_key);
    free(cfg->curve_public_key);
    free(cfg->curve_secret_key);
    memset(cfg, 0, sizeof(*cfg));
}
