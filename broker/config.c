/* config.c - the broker's settings: defaults, an INI file (libinih), the environment and argv. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <ini.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

enum {
    OPT_DB = 256,
    OPT_INTAKE,
    OPT_WORK,
    OPT_STATUS,
    OPT_MIGRATIONS,
    OPT_DISTRICT,
    OPT_FLUSH_MS,
    OPT_BATCH_MAX,
    OPT_BACKLOG_MAX,
    OPT_BUSY_RETRY_MS,
    OPT_DB_RETRY_MS,
    OPT_HEARTBEAT_MS,
    OPT_LIVENESS,
    OPT_MAX_ATTEMPTS,
    OPT_MAX_SESSIONS,
    OPT_MAX_CREDIT,
    OPT_MAX_PENDING,
    OPT_MAX_OPEN,
    OPT_MAX_BOUNDARY_VERTICES,
    OPT_MAX_ADDRESSES,
    OPT_MAX_INTAKE_CLIENTS,
    OPT_MAX_WORKERS,
    OPT_MAX_SUBSCRIBERS,
    OPT_MAX_SUBSCRIBER_BYTES,
    OPT_HANDSHAKE_MS,
    OPT_SNAPSHOT_RATE,
    OPT_WORK_HWM,
    OPT_STATUS_HWM,
    OPT_GAUGE_MS,
    OPT_STATUS_BATCH_MS,
    OPT_OVERDUE_VERIFY,
    OPT_LOG_LEVEL,
    OPT_CHECK,
    OPT_DB_LANES,
    OPT_DB_PIPELINE,
    OPT_SLA_ALARM_MS,
    OPT_UTC_OFFSET,
    OPT_EXTENSION_APPROVAL,
    OPT_CURVE_KEY,
    OPT_PRINCIPALS,
    OPT_TAKEOVER_GRACE_MS,
    OPT_CONFIG,
};

static const struct option options[] = {
    {"db", required_argument, NULL, OPT_DB},
    {"intake", required_argument, NULL, OPT_INTAKE},
    {"work", required_argument, NULL, OPT_WORK},
    {"status", required_argument, NULL, OPT_STATUS},
    {"migrations", required_argument, NULL, OPT_MIGRATIONS},
    {"district", required_argument, NULL, OPT_DISTRICT},
    {"flush-ms", required_argument, NULL, OPT_FLUSH_MS},
    {"batch-max", required_argument, NULL, OPT_BATCH_MAX},
    {"backlog-max", required_argument, NULL, OPT_BACKLOG_MAX},
    {"busy-retry-ms", required_argument, NULL, OPT_BUSY_RETRY_MS},
    {"db-retry-ms", required_argument, NULL, OPT_DB_RETRY_MS},
    {"heartbeat-ms", required_argument, NULL, OPT_HEARTBEAT_MS},
    {"liveness", required_argument, NULL, OPT_LIVENESS},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"max-sessions", required_argument, NULL, OPT_MAX_SESSIONS},
    {"max-credit", required_argument, NULL, OPT_MAX_CREDIT},
    {"max-pending", required_argument, NULL, OPT_MAX_PENDING},
    {"max-open", required_argument, NULL, OPT_MAX_OPEN},
    {"max-boundary-vertices", required_argument, NULL, OPT_MAX_BOUNDARY_VERTICES},
    {"max-addresses", required_argument, NULL, OPT_MAX_ADDRESSES},
    {"max-intake-clients", required_argument, NULL, OPT_MAX_INTAKE_CLIENTS},
    {"max-workers", required_argument, NULL, OPT_MAX_WORKERS},
    {"max-subscribers", required_argument, NULL, OPT_MAX_SUBSCRIBERS},
    {"max-subscriber-bytes", required_argument, NULL, OPT_MAX_SUBSCRIBER_BYTES},
    {"handshake-ms", required_argument, NULL, OPT_HANDSHAKE_MS},
    {"snapshot-rate", required_argument, NULL, OPT_SNAPSHOT_RATE},
    {"work-hwm", required_argument, NULL, OPT_WORK_HWM},
    {"status-hwm", required_argument, NULL, OPT_STATUS_HWM},
    {"gauge-ms", required_argument, NULL, OPT_GAUGE_MS},
    {"status-batch-ms", required_argument, NULL, OPT_STATUS_BATCH_MS},
    {"overdue-verify", required_argument, NULL, OPT_OVERDUE_VERIFY},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"db-lanes", required_argument, NULL, OPT_DB_LANES},
    {"db-pipeline", required_argument, NULL, OPT_DB_PIPELINE},
    {"takeover-grace-ms", required_argument, NULL, OPT_TAKEOVER_GRACE_MS},
    {"sla-alarm-ms", required_argument, NULL, OPT_SLA_ALARM_MS},
    {"utc-offset-min", required_argument, NULL, OPT_UTC_OFFSET},
    {"extension-approval", required_argument, NULL, OPT_EXTENSION_APPROVAL},
    {"curve-key", required_argument, NULL, OPT_CURVE_KEY},
    {"principals", required_argument, NULL, OPT_PRINCIPALS},
    {"config", required_argument, NULL, OPT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: gd-broker [--config FILE] [options]\n"
    "  --config FILE          INI file: section [gd-broker], keys = the option names below\n"
    "                         without '--' ('-' or '_'); the command line wins over the file\n"
    "  --db DSN               PostgreSQL conninfo (env GD_DB_DSN wins over the file); leave\n"
    "                         the password out: libpq reads PGPASSWORD or PGPASSFILE\n"
    "  --intake EP            intake ROUTER endpoint   [tcp://127.0.0.1:7701]\n"
    "  --work EP              work ROUTER endpoint     [tcp://127.0.0.1:7702]\n"
    "  --status EP            status XPUB endpoint     [tcp://127.0.0.1:7703]\n"
    "  --migrations DIR       apply DIR/*.sql at start (idempotent)\n"
    "  --district CODE        district code, top of the escalation ladder [500113]\n"
    "  --flush-ms N           wait for more changes before a commit starts, ms [0]\n"
    "  --batch-max N          most changes per transaction [1000]\n"
    "  --backlog-max N        uncommitted changes before BUSY [20000]\n"
    "  --busy-retry-ms N      retry hint sent with BUSY, ms [1000]\n"
    "  --db-retry-ms N        pause between database reconnections, ms [500]\n"
    "  --db-lanes N           database connections committing in parallel, 1-8 [2]\n"
    "  --db-pipeline N        commits in flight on each connection, 1-8 [2]\n"
    "  --takeover-grace-ms N  a standby that lost the database while waiting for the\n"
    "                         active-broker lock waits this long once it answers again,\n"
    "                         before trying again [5000]\n"
    "  --heartbeat-ms N       heartbeat interval, ms [1000]\n"
    "  --liveness N           missed heartbeats before a worker is dead [3]\n"
    "  --max-attempts N       unsigned deliveries before moving up [3]\n"
    "  --max-sessions N       worker and SLA sessions at once [1000]\n"
    "  --max-credit N         cap on a worker's credit [256]\n"
    "  --max-pending N        unanswered requests per intake client [1000]\n"
    "  --max-open N           open incidents held in memory [2000000]\n"
    "  --max-boundary-vertices N  vertices of all grid and micro-grid boundaries held\n"
    "                         for placing positions; a reload beyond it fails [4000000]\n"
    "  --max-addresses N      rows of the address table held; a reload beyond it\n"
    "                         fails [2000000]\n"
    "  --max-intake-clients N connections to the intake endpoint at once [64]\n"
    "  --max-workers N        connections to the work endpoint at once [1024]\n"
    "  --max-subscribers N    connections to the status endpoint at once [256]\n"
    "                         (the three together, plus 128, must fit in the\n"
    "                         open-file limit, which is raised to that if needed)\n"
    "  --max-subscriber-bytes N  bytes a status subscriber may send over TCP\n"
    "                         (subscriptions); beyond, its connection is closed [16384]\n"
    "  --handshake-ms MS      a connection that has not finished its ZeroMQ handshake\n"
    "                         by then is closed, and frees its place [5000]\n"
    "  --snapshot-rate N      SNAPSHOTs answered per second, all clients together;\n"
    "                         one client: 3 at once, then one per gauge period [20]\n"
    "  --work-hwm N           messages queued for one work connection [100000]\n"
    "  --status-hwm N         messages queued for one status subscriber; beyond it\n"
    "                         that subscriber loses messages [10000]\n"
    "  --gauge-ms N           period of queue and broker status, ms [1000]\n"
    "  --status-batch-ms N    transitions wait at most this long to be published\n"
    "                         together, one batch per town, ms [50]\n"
    "  --sla-alarm-ms N       period of the check for unwatched deadlines, ms [10000]\n"
    "  --overdue-verify N     every N gauge periods, a pass over the open incidents\n"
    "                         checks the queues' overdue counts (0: never) [600]\n"
    "  --utc-offset-min N     local time of the working calendar, minutes east of UTC [480]\n"
    "  --extension-approval P auto: extensions up to a category's maximum apply at once;\n"
    "                         above: beyond its automatic limit they wait for APPROVE [auto]\n"
    "  --log-level LEVEL      error, warn, info or debug [info]\n"
    "  --curve-key FILE       the broker's CURVE key pair (gdctl keygen): CurveZMQ on\n"
    "                         every endpoint; needs --principals\n"
    "  --principals FILE      who may connect: [name] key, role, scope (reloaded on SIGHUP)\n"
    "  --check-config         check the configuration, print it as an INI file and exit\n";

/* Parses a decimal in [min, max]; returns -1 on anything else. */
static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return -1;
    *ret = (uint32_t)v;
    return 0;
}

/* The long name of option `opt`, or "?". */
static const char *option_name(int opt)
{
    for (const struct option *o = options; o->name; o++)
        if (o->val == opt)
            return o->name;
    return "?";
}

/* Applies one setting; `name` is how the user spelled it ("--flush-ms" or
 * "flush_ms") and `value` must outlive cfg. Returns 0, or -1 with the
 * problem in msg. */
static int apply(struct config *cfg, int opt, const char *name, const char *value, char *msg,
                 size_t msglen)
{
    uint32_t *num = NULL;
    uint32_t min = 1, max = 100000000;
    switch (opt) {
    case OPT_DB:
        cfg->db_dsn = value;
        break;
    case OPT_INTAKE:
        cfg->intake_endpoint = value;
        break;
    case OPT_WORK:
        cfg->work_endpoint = value;
        break;
    case OPT_STATUS:
        cfg->status_endpoint = value;
        break;
    case OPT_MIGRATIONS:
        cfg->migrations_dir = value;
        break;
    case OPT_DISTRICT:
        cfg->district = value;
        break;
    case OPT_CURVE_KEY:
        cfg->curve_key = value;
        break;
    case OPT_PRINCIPALS:
        cfg->principals = value;
        break;
    case OPT_FLUSH_MS:
        num = &cfg->flush_ms;
        min = 0;
        max = 1000;
        break;
    case OPT_BATCH_MAX:
        num = &cfg->batch_max;
        max = 100000;
        break;
    case OPT_BACKLOG_MAX:
        num = &cfg->backlog_max;
        break;
    case OPT_BUSY_RETRY_MS:
        num = &cfg->busy_retry_ms;
        max = 600000;
        break;
    case OPT_DB_RETRY_MS:
        num = &cfg->db_retry_ms;
        min = 10;
        max = 600000;
        break;
    case OPT_HEARTBEAT_MS:
        num = &cfg->heartbeat_ms;
        min = 10;
        max = 600000;
        break;
    case OPT_LIVENESS:
        num = &cfg->liveness;
        max = 100;
        break;
    case OPT_MAX_ATTEMPTS:
        num = &cfg->max_attempts;
        max = 1000;
        break;
    case OPT_MAX_SESSIONS:
        num = &cfg->max_sessions;
        max = 1000000;
        break;
    case OPT_MAX_CREDIT:
        num = &cfg->max_credit;
        max = 1024;
        break;
    case OPT_MAX_PENDING:
        num = &cfg->max_pending;
        break;
    case OPT_MAX_OPEN:
        num = &cfg->max_open;
        break;
    case OPT_MAX_BOUNDARY_VERTICES:
        num = &cfg->max_boundary_vertices;
        min = 0;
        break;
    case OPT_MAX_ADDRESSES:
        num = &cfg->max_addresses;
        min = 0;
        break;
    case OPT_MAX_INTAKE_CLIENTS:
        num = &cfg->max_intake_clients;
        max = 1000000;
        break;
    case OPT_MAX_WORKERS:
        num = &cfg->max_workers;
        max = 1000000;
        break;
    case OPT_MAX_SUBSCRIBERS:
        num = &cfg->max_subscribers;
        max = 1000000;
        break;
    case OPT_MAX_SUBSCRIBER_BYTES:
        num = &cfg->max_subscriber_bytes;
        min = 1024;
        max = 16 * 1024 * 1024;
        break;
    case OPT_HANDSHAKE_MS:
        num = &cfg->handshake_ms;
        min = 100;
        max = 600000;
        break;
    case OPT_SNAPSHOT_RATE:
        num = &cfg->snapshot_rate;
        max = 10000;
        break;
    case OPT_WORK_HWM:
        num = &cfg->work_hwm;
        min = 100;
        max = 10000000;
        break;
    case OPT_STATUS_HWM:
        num = &cfg->status_hwm;
        min = 100;
        max = 10000000;
        break;
    case OPT_GAUGE_MS:
        num = &cfg->gauge_ms;
        min = 10;
        max = 3600000;
        break;
    case OPT_OVERDUE_VERIFY:
        num = &cfg->overdue_verify;
        min = 0;
        max = 1000000;
        break;
    case OPT_STATUS_BATCH_MS:
        num = &cfg->status_batch_ms;
        min = 0;
        max = 1000;
        break;
    case OPT_DB_LANES:
        num = &cfg->db_lanes;
        max = 8;
        break;
    case OPT_DB_PIPELINE:
        num = &cfg->db_pipeline;
        max = 8;
        break;
    case OPT_TAKEOVER_GRACE_MS:
        num = &cfg->takeover_grace_ms;
        min = 0;
        max = 3600000;
        break;
    case OPT_SLA_ALARM_MS:
        num = &cfg->sla_alarm_ms;
        min = 10;
        max = 3600000;
        break;
    case OPT_LOG_LEVEL:
        cfg->log_level = log_level_parse(value);
        if (cfg->log_level < 0) {
            snprintf(msg, msglen, "%s must be error, warn, info or debug, not '%.64s'", name,
                     value);
            return -1;
        }
        return 0;
    case OPT_EXTENSION_APPROVAL:
        if (strcmp(value, "auto") != 0 && strcmp(value, "above") != 0) {
            snprintf(msg, msglen, "%s is auto or above, not '%.64s'", name, value);
            return -1;
        }
        cfg->extension_approval = strcmp(value, "above") == 0;
        return 0;
    case OPT_UTC_OFFSET: {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (errno || *value == '\0' || *end || v < -1080 || v > 1080) {
            snprintf(msg, msglen, "%s needs minutes from -1080 to 1080, not '%.64s'", name, value);
            return -1;
        }
        cfg->utc_offset_min = (int32_t)v;
        return 0;
    }
    default:
        snprintf(msg, msglen, "%s cannot be set here", name);
        return -1;
    }
    if (num && parse_u32(value, min, max, num) < 0) {
        snprintf(msg, msglen, "%s needs a whole number from %u to %u, not '%.64s'", name, min, max,
                 value);
        return -1;
    }
    if (!num && !*value) {
        snprintf(msg, msglen, "%s needs a value", name);
        return -1;
    }
    return 0;
}

/* Copies `s` into cfg->strings; NULL when they are full. */
static const char *keep(struct config *cfg, const char *s)
{
    size_t n = strlen(s) + 1;
    if (n > sizeof(cfg->strings) - cfg->strings_used)
        return NULL;
    char *copy = cfg->strings + cfg->strings_used;
    memcpy(copy, s, n);
    cfg->strings_used += n;
    return copy;
}

struct file_ctx {
    struct config *cfg;
    char msg[512]; /* the first bad line's problem; libinih reports its number */
    bool db_from_file;
};

/* libinih callback: one "key = value" of the file. Returns 0 for a bad line. */
static int on_ini(void *user, const char *section, const char *key, const char *value)
{
    struct file_ctx *ctx = user;
    char problem[sizeof(ctx->msg)];
    if (*section && strcmp(section, "gd-broker") != 0) {
        snprintf(problem, sizeof(problem), "unknown section [%.64s]; gd-broker reads [gd-broker]",
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
    const char *copy = keep(ctx->cfg, value ? value : "");
    if (!copy) {
        snprintf(problem, sizeof(problem), "the values add up to more than %d bytes",
                 CONFIG_STRINGS_MAX);
        goto bad_line;
    }
    if (apply(ctx->cfg, opt, key, copy, problem, sizeof(problem)) < 0)
        goto bad_line;
    if (opt == OPT_DB)
        ctx->db_from_file = true;
    return 1;

bad_line:
    if (!ctx->msg[0])
        snprintf(ctx->msg, sizeof(ctx->msg), "%s", problem);
    return 0;
}

/* Reads the INI file into cfg. Returns 0, or -1 after printing
 * "gd-broker: FILE:LINE: problem" (or why the file cannot be read). */
static int load_file(struct config *cfg, const char *path, FILE *err)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(err, "gd-broker: cannot read config file %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct file_ctx ctx = {.cfg = cfg};
    int line = ini_parse_file(f, on_ini, &ctx);
    struct stat st;
    bool world_readable = fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH);
    fclose(f);
    if (line < 0) {
        fprintf(err, "gd-broker: cannot read config file %s: %s\n", path,
                line == -2 ? "out of memory" : "read error");
        return -1;
    }
    if (line > 0) {
        fprintf(err, "gd-broker: %s:%d: %s\n", path, line,
                ctx.msg[0] ? ctx.msg : "syntax error (want key = value, or [gd-broker])");
        return -1;
    }
    if (ctx.db_from_file && world_readable && strstr(cfg->db_dsn, "password"))
        fprintf(err,
                "gd-broker: warning: %s is readable by everyone and its db holds a "
                "password; set PGPASSFILE or PGPASSWORD instead\n",
                path);
    return 0;
}

/* Checks what no single option can: required settings, the DSN's syntax,
 * the migrations directory. Returns 0, or -1 after printing the problem. */
static int check(const struct config *cfg, FILE *err)
{
    if (!cfg->db_dsn || !*cfg->db_dsn) {
        fprintf(err, "gd-broker: no database: set db in the config file, GD_DB_DSN or --db\n");
        return -1;
    }
    char *pqerr = NULL;
    PQconninfoOption *opts = PQconninfoParse(cfg->db_dsn, &pqerr);
    if (!opts) {
        size_t n = pqerr ? strlen(pqerr) : 0;
        while (n && pqerr[n - 1] == '\n')
            n--;
        fprintf(err, "gd-broker: db: not a libpq connection string: %.*s\n", (int)n,
                pqerr ? pqerr : "out of memory");
        PQfreemem(pqerr);
        return -1;
    }
    PQconninfoFree(opts);
    if (cfg->backlog_max < cfg->batch_max) {
        fprintf(err, "gd-broker: backlog_max (%u) must be at least batch_max (%u)\n",
                cfg->backlog_max, cfg->batch_max);
        return -1;
    }
    struct stat st;
    if (cfg->migrations_dir && (stat(cfg->migrations_dir, &st) < 0 || !S_ISDIR(st.st_mode))) {
        fprintf(err, "gd-broker: migrations: %s is not a directory\n", cfg->migrations_dir);
        return -1;
    }
    return 0;
}

int config_parse(struct config *cfg, int argc, char **argv, FILE *err)
{
    *cfg = (struct config){
        .intake_endpoint = "tcp://127.0.0.1:7701",
        .work_endpoint = "tcp://127.0.0.1:7702",
        .status_endpoint = "tcp://127.0.0.1:7703",
        .district = "500113",
        .flush_ms = 0,
        .batch_max = 1000,
        .backlog_max = 20000,
        .busy_retry_ms = 1000,
        .db_retry_ms = 500,
        .db_lanes = 2,
        .db_pipeline = 2,
        .takeover_grace_ms = 5000,
        .heartbeat_ms = 1000,
        .liveness = 3,
        .max_attempts = 3,
        .max_sessions = 1000,
        .max_credit = 256,
        .max_pending = 1000,
        .max_open = 2000000,
        .max_boundary_vertices = 4000000,
        .max_addresses = 2000000,
        .max_intake_clients = 64,
        .max_workers = 1024,
        .max_subscribers = 256,
        .max_subscriber_bytes = 16384,
        .handshake_ms = 5000,
        .snapshot_rate = 20,
        .work_hwm = 100000,
        .status_hwm = 10000,
        .gauge_ms = 1000,
        .status_batch_ms = 50,
        .overdue_verify = 600,
        .sla_alarm_ms = 10000,
        .utc_offset_min = 480,
        .log_level = LOG_INFO,
    };
    /* first pass: --help, --version, usage errors and the file's name */
    bool check_only = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            puts("gd-broker " GD_VERSION);
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
        fprintf(err, "gd-broker: unexpected argument '%s'\n%s", argv[optind], usage);
        return -1;
    }
    if (cfg->config_file && load_file(cfg, cfg->config_file, err) < 0)
        return -1;
    const char *env_dsn = getenv("GD_DB_DSN");
    if (env_dsn && *env_dsn)
        cfg->db_dsn = env_dsn;
    /* second pass: the command line wins */
    optind = 1;
    while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
        if (c == OPT_CONFIG || c == OPT_CHECK)
            continue;
        char name[64], msg[512];
        snprintf(name, sizeof(name), "--%s", option_name(c));
        if (apply(cfg, c, name, optarg, msg, sizeof(msg)) < 0) {
            fprintf(err, "gd-broker: %s\n", msg);
            return -1;
        }
    }
    if (check(cfg, err) < 0)
        return -1;
    if (check_only) {
        config_print(cfg, stdout);
        return 1;
    }
    return 0;
}

/* Copies `dsn` into buf with the password replaced by ***: the value of
 * password=... in a key/value string, user:...@ in a postgresql:// URI. */
static void mask_password(const char *dsn, char *buf, size_t size)
{
    const char *scheme = strstr(dsn, "://");
    if (scheme &&
        (strncmp(dsn, "postgresql://", 13) == 0 || strncmp(dsn, "postgres://", 11) == 0)) {
        const char *auth = scheme + 3;
        const char *at = strchr(auth, '@');
        const char *slash = strchr(auth, '/');
        const char *colon = strchr(auth, ':');
        if (at && (!slash || at < slash) && colon && colon < at) {
            snprintf(buf, size, "%.*s:***%s", (int)(colon - dsn), dsn, at);
            return;
        }
    }
    const char *p = strstr(dsn, "password=");
    if (!p) {
        snprintf(buf, size, "%s", dsn);
        return;
    }
    const char *end = p + strlen("password=");
    while (*end && *end != ' ')
        end++;
    snprintf(buf, size, "%.*spassword=***%s", (int)(p - dsn), dsn, end);
}

void config_print(const struct config *cfg, FILE *out)
{
    char dsn[1024];
    mask_password(cfg->db_dsn ? cfg->db_dsn : "", dsn, sizeof(dsn));
    fprintf(out,
            "; gd-broker %s: effective configuration (defaults < %s < GD_DB_DSN < "
            "command line)\n[gd-broker]\n",
            GD_VERSION, cfg->config_file ? cfg->config_file : "no file");
    fprintf(out, "db = %s\n", dsn);
    fprintf(out, "intake = %s\nwork = %s\nstatus = %s\n", cfg->intake_endpoint, cfg->work_endpoint,
            cfg->status_endpoint);
    if (cfg->migrations_dir)
        fprintf(out, "migrations = %s\n", cfg->migrations_dir);
    else
        fprintf(out, "; migrations = (none: not applied at start)\n");
    fprintf(out, "district = %s\n", cfg->district);
    fprintf(out, "flush_ms = %u\nbatch_max = %u\nbacklog_max = %u\n", cfg->flush_ms, cfg->batch_max,
            cfg->backlog_max);
    fprintf(out, "busy_retry_ms = %u\ndb_retry_ms = %u\ndb_lanes = %u\ndb_pipeline = %u\n",
            cfg->busy_retry_ms, cfg->db_retry_ms, cfg->db_lanes, cfg->db_pipeline);
    fprintf(out, "takeover_grace_ms = %u\n", cfg->takeover_grace_ms);
    fprintf(out, "heartbeat_ms = %u\nliveness = %u\nmax_attempts = %u\n", cfg->heartbeat_ms,
            cfg->liveness, cfg->max_attempts);
    fprintf(out, "max_sessions = %u\nmax_credit = %u\nmax_pending = %u\nmax_open = %u\n",
            cfg->max_sessions, cfg->max_credit, cfg->max_pending, cfg->max_open);
    fprintf(out, "max_boundary_vertices = %u\nmax_addresses = %u\n", cfg->max_boundary_vertices,
            cfg->max_addresses);
    fprintf(out, "max_intake_clients = %u\nmax_workers = %u\nmax_subscribers = %u\n",
            cfg->max_intake_clients, cfg->max_workers, cfg->max_subscribers);
    fprintf(out, "max_subscriber_bytes = %u\nhandshake_ms = %u\n", cfg->max_subscriber_bytes,
            cfg->handshake_ms);
    fprintf(out, "snapshot_rate = %u\nwork_hwm = %u\nstatus_hwm = %u\n", cfg->snapshot_rate,
            cfg->work_hwm, cfg->status_hwm);
    fprintf(out, "gauge_ms = %u\nstatus_batch_ms = %u\nsla_alarm_ms = %u\nutc_offset_min = %d\n",
            cfg->gauge_ms, cfg->status_batch_ms, cfg->sla_alarm_ms, cfg->utc_offset_min);
    fprintf(out, "overdue_verify = %u\n", cfg->overdue_verify);
    fprintf(out, "extension_approval = %s\n", cfg->extension_approval ? "above" : "auto");
    if (cfg->curve_key)
        fprintf(out, "curve_key = %s\n", cfg->curve_key);
    else
        fprintf(out, "; curve_key = (none: no CurveZMQ, every peer may connect)\n");
    if (cfg->principals)
        fprintf(out, "principals = %s\n", cfg->principals);
    else
        fprintf(out, "; principals = (none)\n");
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    fprintf(out, "log_level = %s\n", levels[cfg->log_level]);
}
