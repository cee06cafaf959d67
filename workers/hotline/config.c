/* config.c - gd-hotline's settings: defaults, an INI file (libinih), the environment and argv. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>

#include "hlog.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

enum {
    OPT_INTAKE = 256,
    OPT_CITY,
    OPT_INPUT,
    OPT_FOLLOW,
    OPT_STATE,
    OPT_REJECT,
    OPT_WINDOW,
    OPT_BATCH,
    OPT_TIMEOUT_MS,
    OPT_FAILOVER_MS,
    OPT_SAVE_MS,
    OPT_POLL_MS,
    OPT_MAX_LINE,
    OPT_LOG_LEVEL,
    OPT_CONFIG,
    OPT_CHECK,
};

static const struct option options[] = {
    {"intake", required_argument, NULL, OPT_INTAKE},
    {"city", required_argument, NULL, OPT_CITY},
    {"input", required_argument, NULL, OPT_INPUT},
    {"follow", optional_argument, NULL, OPT_FOLLOW},
    {"state", required_argument, NULL, OPT_STATE},
    {"reject", required_argument, NULL, OPT_REJECT},
    {"window", required_argument, NULL, OPT_WINDOW},
    {"batch", required_argument, NULL, OPT_BATCH},
    {"timeout-ms", required_argument, NULL, OPT_TIMEOUT_MS},
    {"failover-ms", required_argument, NULL, OPT_FAILOVER_MS},
    {"save-ms", required_argument, NULL, OPT_SAVE_MS},
    {"poll-ms", required_argument, NULL, OPT_POLL_MS},
    {"max-line", required_argument, NULL, OPT_MAX_LINE},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: gd-hotline [--config FILE] --input FILE|- --state FILE --reject FILE [options]\n"
    "\n"
    "Submits 12345 hotline orders (one JSON object per line) to the broker with\n"
    "source \"hotline\" and external_id = ticket_no.\n"
    "\n"
    "  --config FILE      INI file: section [gd-hotline], keys = these option names\n"
    "                     without '--' ('-' or '_'); the command line wins over the file\n"
    "  --check-config     check the configuration, print it as an INI file and exit\n"
    "  --intake EP[,EP]   broker intake endpoint, or an HA pair's list [$GD_INTAKE]\n"
    "  --city FILE        the city's shards (deploy/README.md) instead of --intake: each\n"
    "                     order goes to the shard owning its town, else to the default\n"
    "  --input FILE       the feed; - reads stdin\n"
    "  --follow[=BOOL]    keep reading as the file grows (and after rotation) [false]\n"
    "  --state FILE       durable resume position (byte offset + inode)\n"
    "  --reject FILE      bad lines: one JSON object per line {line, offset, inode,\n"
    "                     ticket_no, reason} (the line itself is not copied: it may\n"
    "                     hold personal data)\n"
    "  --window N         orders in flight at once, 1..1000 [256]\n"
    "  --batch N          orders due at once for one shard go in one SUBMITS message\n"
    "                     of up to N, 1..256 (1: each its own SUBMIT) [64]\n"
    "  --timeout-ms N     resend an unanswered order after N ms, 10..600000 [5000]\n"
    "  --failover-ms N    a broker silent N ms while orders wait: the next endpoint of\n"
    "                     the list gets them, 0..600000 (0: never) [1000]\n"
    "  --save-ms N        longest time between saves of the position, 1..60000 [200]\n"
    "  --poll-ms N        --follow: look for new lines every N ms, 1..60000 [200]\n"
    "  --max-line N       longest line in bytes, 256..1048576 [65536]\n"
    "  --log-level L      error|warn|info|debug [info]\n"
    "  --help, --version\n"
    "\n"
    "Line fields: ticket_no (required), received_at (ISO 8601 with zone), caller_name,\n"
    "caller_phone, category, grid|community|town|unit, address, lat+lon, content\n"
    "(required), urgency normal|urgent|emergency (一般|紧急|特急).\n"
    "\n"
    "Signals: SIGTERM/SIGINT stop after saving what is final; nothing is reloaded.\n"
    "Exit: 0 the input was read to its end and every order is final (accepted or\n"
    "rejected); 1 stopped by SIGINT/SIGTERM (what is final is saved); 2 usage or\n"
    "configuration; 3 I/O or broker socket failure.\n";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Parses a decimal in [min, max]; -1 on anything else. */
static int parse_long(const char *s, long min, long max, long *ret)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -1;
    *ret = v;
    return 0;
}

/* Applies one setting (`name` as the user spelled it; `value` NULL for a
 * bare flag, otherwise outliving cfg). Returns 0, or -1 with msg. */
static int apply(struct hotline_config *cfg, int opt, const char *name, const char *value,
                 char *msg, size_t msglen)
{
    long v = 0, min = 1, max = 60000;
    switch (opt) {
    case OPT_FOLLOW:
        if (!value || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
            cfg->follow = true;
        else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
            cfg->follow = false;
        else {
            snprintf(msg, msglen, "%s is true or false, not '%.64s'", name, value);
            return -1;
        }
        return 0;
    case OPT_LOG_LEVEL:
        for (int i = 0; i < 4; i++)
            if (strcmp(value, level_names[i]) == 0) {
                cfg->pump.log_level = i;
                return 0;
            }
        snprintf(msg, msglen, "%s must be error, warn, info or debug, not '%.64s'", name, value);
        return -1;
    case OPT_WINDOW:
        max = 1000;
        break;
    case OPT_BATCH:
        max = GD_MAX_SUBMITS;
        break;
    case OPT_TIMEOUT_MS:
        min = 10;
        max = 600000;
        break;
    case OPT_FAILOVER_MS:
        min = 0;
        max = 600000;
        break;
    case OPT_SAVE_MS:
    case OPT_POLL_MS:
        break;
    case OPT_MAX_LINE:
        min = 256;
        max = 1048576;
        break;
    default:
        if (!*value) {
            snprintf(msg, msglen, "%s needs a value", name);
            return -1;
        }
        if (opt == OPT_INTAKE)
            cfg->intake = value;
        else if (opt == OPT_CITY)
            cfg->city = value;
        else if (opt == OPT_INPUT)
            cfg->input = value;
        else if (opt == OPT_STATE)
            cfg->state = value;
        else if (opt == OPT_REJECT)
            cfg->reject = value;
        else {
            snprintf(msg, msglen, "%s cannot be set here", name);
            return -1;
        }
        return 0;
    }
    if (parse_long(value, min, max, &v) < 0) {
        snprintf(msg, msglen, "%s needs a whole number from %ld to %ld, not '%.64s'", name, min,
                 max, value);
        return -1;
    }
    switch (opt) {
    case OPT_WINDOW:
        cfg->pump.window = (unsigned)v;
        break;
    case OPT_BATCH:
        cfg->pump.batch = (unsigned)v;
        break;
    case OPT_TIMEOUT_MS:
        cfg->pump.timeout_ms = (int)v;
        break;
    case OPT_FAILOVER_MS:
        cfg->pump.failover_ms = (uint32_t)v;
        break;
    case OPT_SAVE_MS:
        cfg->pump.save_ms = (int)v;
        break;
    case OPT_POLL_MS:
        cfg->pump.poll_ms = (int)v;
        break;
    default:
        cfg->max_line = v;
        break;
    }
    return 0;
}

struct file_ctx {
    struct hotline_config *cfg;
    char msg[512]; /* the first bad line's problem; libinih reports its number */
};

/* libinih callback: one "key = value" of the file. Returns 0 for a bad line. */
static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct file_ctx *ctx = user;
    struct hotline_config *cfg = ctx->cfg;
    char problem[sizeof(ctx->msg)];
    if (*section && strcmp(section, "gd-hotline") != 0) {
        snprintf(problem, sizeof(problem), "unknown section [%.64s]; gd-hotline reads [gd-hotline]",
                 section);
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
    if (opt == 0 || opt == OPT_CONFIG || opt == OPT_CHECK || opt == 'h' || opt == 'V') {
        snprintf(problem, sizeof(problem), "unknown key '%.64s'", key);
        goto bad_line;
    }
    size_t n = strlen(value) + 1;
    if (n > sizeof(cfg->strings) - cfg->strings_used) {
        snprintf(problem, sizeof(problem), "the values add up to more than %d bytes",
                 HOTLINE_STRINGS_MAX);
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

/* Reads the INI file. Returns 0, or -1 after printing the problem. */
static int load_file(struct hotline_config *cfg, const char *path, FILE *err)
{
    struct file_ctx ctx = {.cfg = cfg};
    int line = ini_parse(path, on_ini, &ctx);
    if (line < 0) {
        fprintf(err, "gd-hotline: cannot read config file %s%s%s\n", path, line == -1 ? ": " : "",
                line == -1 ? strerror(errno) : "");
        return -1;
    }
    if (line > 0) {
        fprintf(err, "gd-hotline: %s:%d: %s\n", path, line,
                ctx.msg[0] ? ctx.msg : "syntax error (want key = value, or [gd-hotline])");
        return -1;
    }
    return 0;
}

int hotline_config_parse(struct hotline_config *cfg, int argc, char **argv, FILE *err)
{
    *cfg = (struct hotline_config){
        .max_line = 65536,
        .pump = {.window = 256,
                 .batch = 64,
                 .timeout_ms = 5000,
                 .failover_ms = INTAKE_FAILOVER_MS,
                 .save_ms = 200,
                 .poll_ms = 200,
                 .log_level = HLOG_INFO},
    };
    bool check_only = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("gd-hotline %s\n", GD_VERSION);
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
        fprintf(err, "gd-hotline: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (cfg->config_file && load_file(cfg, cfg->config_file, err) < 0)
        return -1;
    const char *env = getenv("GD_INTAKE");
    if (env && *env)
        cfg->intake = env;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
        if (c == OPT_CONFIG || c == OPT_CHECK)
            continue;
        char name[64] = "--?", msg[512];
        for (const struct option *o = options; o->name; o++)
            if (o->val == c)
                snprintf(name, sizeof(name), "--%s", o->name);
        if (apply(cfg, c, name, optarg, msg, sizeof(msg)) < 0) {
            fprintf(err, "gd-hotline: %s\n", msg);
            return -1;
        }
    }
    const char *missing = !cfg->intake && !cfg->city ? "intake (or GD_INTAKE, or city)"
                          : !cfg->input              ? "input"
                          : !cfg->state              ? "state"
                          : !cfg->reject             ? "reject"
                                                     : NULL;
    if (missing) {
        fprintf(err, "gd-hotline: %s is not set\n", missing);
        return -1;
    }
    char why[256];
    if (cfg->intake && !cfg->city && intake_check_endpoints(cfg->intake, why, sizeof(why)) < 0) {
        fprintf(err, "gd-hotline: intake: %s\n", why);
        return -1;
    }
    if (check_only) {
        hotline_config_print(cfg, stdout);
        return 1;
    }
    return 0;
}

void hotline_config_print(const struct hotline_config *cfg, FILE *out)
{
    fprintf(out,
            "; gd-hotline %s: effective configuration (defaults < %s < GD_INTAKE < command "
            "line)\n[gd-hotline]\n",
            GD_VERSION, cfg->config_file ? cfg->config_file : "no file");
    fprintf(out, "%s = %s\ninput = %s\nfollow = %s\nstate = %s\nreject = %s\n",
            cfg->city ? "city" : "intake", cfg->city ? cfg->city : cfg->intake, cfg->input,
            cfg->follow ? "true" : "false", cfg->state, cfg->reject);
    fprintf(out,
            "window = %u\nbatch = %u\ntimeout_ms = %d\nfailover_ms = %u\nsave_ms = %d\n"
            "poll_ms = %d\nmax_line = %ld\n",
            cfg->pump.window, cfg->pump.batch, cfg->pump.timeout_ms, cfg->pump.failover_ms,
            cfg->pump.save_ms, cfg->pump.poll_ms, cfg->max_line);
    fprintf(out, "log_level = %s\n", level_names[cfg->pump.log_level]);
}
