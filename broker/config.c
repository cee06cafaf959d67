/* config.c - the broker's settings: defaults, command line and environment. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

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
    OPT_GAUGE_MS,
    OPT_LOG_LEVEL,
    OPT_CHECK,
    OPT_DB_LANES,
    OPT_SLA_ALARM_MS,
    OPT_UTC_OFFSET,
    OPT_EXTENSION_APPROVAL,
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
    {"gauge-ms", required_argument, NULL, OPT_GAUGE_MS},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"check-config", no_argument, NULL, OPT_CHECK},
    {"db-lanes", required_argument, NULL, OPT_DB_LANES},
    {"sla-alarm-ms", required_argument, NULL, OPT_SLA_ALARM_MS},
    {"utc-offset-min", required_argument, NULL, OPT_UTC_OFFSET},
    {"extension-approval", required_argument, NULL, OPT_EXTENSION_APPROVAL},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

static const char usage[] =
    "usage: gd-broker [options]\n"
    "  --db DSN               PostgreSQL conninfo (env GD_DB_DSN)\n"
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
    "  --heartbeat-ms N       heartbeat interval, ms [1000]\n"
    "  --liveness N           missed heartbeats before a worker is dead [3]\n"
    "  --max-attempts N       unsigned deliveries before moving up [3]\n"
    "  --max-sessions N       worker and SLA sessions at once [1000]\n"
    "  --max-credit N         cap on a worker's credit [256]\n"
    "  --max-pending N        unanswered requests per intake client [1000]\n"
    "  --max-open N           open incidents held in memory [2000000]\n"
    "  --gauge-ms N           period of queue and broker status, ms [1000]\n"
    "  --sla-alarm-ms N       period of the check for unwatched deadlines, ms [10000]\n"
    "  --utc-offset-min N     local time of the working calendar, minutes east of UTC [480]\n"
    "  --extension-approval P auto: extensions up to a category's maximum apply at once;\n"
    "                         above: beyond its automatic limit they wait for APPROVE [auto]\n"
    "  --log-level LEVEL      error, warn, info or debug [info]\n"
    "  --check-config         print the effective configuration and exit\n";

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

int config_parse(struct config *cfg, int argc, char **argv, FILE *err)
{
    *cfg = (struct config){
        .db_dsn = getenv("GD_DB_DSN"),
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
        .heartbeat_ms = 1000,
        .liveness = 3,
        .max_attempts = 3,
        .max_sessions = 1000,
        .max_credit = 256,
        .max_pending = 1000,
        .max_open = 2000000,
        .gauge_ms = 1000,
        .sla_alarm_ms = 10000,
        .utc_offset_min = 480,
        .log_level = LOG_INFO,
    };
    bool check = false;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "hV", options, NULL)) != -1) {
        uint32_t *num = NULL;
        uint32_t min = 1, max = 100000000;
        switch (c) {
        case OPT_DB: cfg->db_dsn = optarg; break;
        case OPT_INTAKE: cfg->intake_endpoint = optarg; break;
        case OPT_WORK: cfg->work_endpoint = optarg; break;
        case OPT_STATUS: cfg->status_endpoint = optarg; break;
        case OPT_MIGRATIONS: cfg->migrations_dir = optarg; break;
        case OPT_DISTRICT: cfg->district = optarg; break;
        case OPT_FLUSH_MS: num = &cfg->flush_ms; min = 0; max = 1000; break;
        case OPT_BATCH_MAX: num = &cfg->batch_max; max = 100000; break;
        case OPT_BACKLOG_MAX: num = &cfg->backlog_max; break;
        case OPT_BUSY_RETRY_MS: num = &cfg->busy_retry_ms; max = 600000; break;
        case OPT_DB_RETRY_MS: num = &cfg->db_retry_ms; min = 10; max = 600000; break;
        case OPT_HEARTBEAT_MS: num = &cfg->heartbeat_ms; min = 10; max = 600000; break;
        case OPT_LIVENESS: num = &cfg->liveness; max = 100; break;
        case OPT_MAX_ATTEMPTS: num = &cfg->max_attempts; max = 1000; break;
        case OPT_MAX_SESSIONS: num = &cfg->max_sessions; max = 1000000; break;
        case OPT_MAX_CREDIT: num = &cfg->max_credit; max = 1024; break;
        case OPT_MAX_PENDING: num = &cfg->max_pending; break;
        case OPT_MAX_OPEN: num = &cfg->max_open; break;
        case OPT_GAUGE_MS: num = &cfg->gauge_ms; min = 10; max = 3600000; break;
        case OPT_LOG_LEVEL:
            cfg->log_level = log_level_parse(optarg);
            if (cfg->log_level < 0) {
                fprintf(err, "gd-broker: --log-level must be error, warn, info or debug\n");
                return -1;
            }
            break;
        case OPT_CHECK: check = true; break;
        case OPT_DB_LANES: num = &cfg->db_lanes; max = 8; break;
        case OPT_SLA_ALARM_MS: num = &cfg->sla_alarm_ms; min = 10; max = 3600000; break;
        case OPT_EXTENSION_APPROVAL:
            if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "above") != 0) {
                fprintf(err, "gd-broker: --extension-approval is auto or above, not '%s'\n",
                        optarg);
                return -1;
            }
            cfg->extension_approval = strcmp(optarg, "above") == 0;
            break;
        case OPT_UTC_OFFSET: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*optarg == '\0' || *end || v < -1080 || v > 1080) {
                fprintf(err, "gd-broker: --utc-offset-min needs minutes from -1080 to 1080, "
                             "not '%s'\n", optarg);
                return -1;
            }
            cfg->utc_offset_min = (int32_t)v;
            break;
        }
        case 'h': fputs(usage, stdout); return 1;
        case 'V': puts("gd-broker " GD_VERSION); return 1;
        default: fputs(usage, err); return -1;
        }
        if (num && parse_u32(optarg, min, max, num) < 0) {
            fprintf(err, "gd-broker: --%s needs a whole number from %u to %u, not '%s'\n",
                    options[c - OPT_DB].name, min, max, optarg);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(err, "gd-broker: unexpected argument '%s'\n%s", argv[optind], usage);
        return -1;
    }
    if (!cfg->db_dsn || !*cfg->db_dsn) {
        fprintf(err, "gd-broker: no database: pass --db DSN or set GD_DB_DSN\n");
        return -1;
    }
    if (cfg->backlog_max < cfg->batch_max) {
        fprintf(err, "gd-broker: --backlog-max (%u) must be at least --batch-max (%u)\n",
                cfg->backlog_max, cfg->batch_max);
        return -1;
    }
    if (check) {
        config_print(cfg, stdout);
        return 1;
    }
    return 0;
}

/* Copies `dsn` into buf with the value of password=... replaced by ***. */
static void mask_password(const char *dsn, char *buf, size_t size)
{
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
    mask_password(cfg->db_dsn, dsn, sizeof(dsn));
    fprintf(out, "db = %s\n", dsn);
    fprintf(out, "intake = %s\nwork = %s\nstatus = %s\n", cfg->intake_endpoint,
            cfg->work_endpoint, cfg->status_endpoint);
    fprintf(out, "migrations = %s\n", cfg->migrations_dir ? cfg->migrations_dir : "(none)");
    fprintf(out, "district = %s\n", cfg->district);
    fprintf(out, "flush_ms = %u\nbatch_max = %u\nbacklog_max = %u\n", cfg->flush_ms,
            cfg->batch_max, cfg->backlog_max);
    fprintf(out, "busy_retry_ms = %u\ndb_retry_ms = %u\ndb_lanes = %u\n", cfg->busy_retry_ms,
            cfg->db_retry_ms, cfg->db_lanes);
    fprintf(out, "heartbeat_ms = %u\nliveness = %u\nmax_attempts = %u\n", cfg->heartbeat_ms,
            cfg->liveness, cfg->max_attempts);
    fprintf(out, "max_sessions = %u\nmax_credit = %u\nmax_pending = %u\nmax_open = %u\n",
            cfg->max_sessions, cfg->max_credit, cfg->max_pending, cfg->max_open);
    fprintf(out, "gauge_ms = %u\nsla_alarm_ms = %u\nutc_offset_min = %d\n", cfg->gauge_ms,
            cfg->sla_alarm_ms, cfg->utc_offset_min);
    fprintf(out, "extension_approval = %s\n", cfg->extension_approval ? "above" : "auto");
}
