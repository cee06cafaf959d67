/* config.c - gd-dashboard's command-line options and their limits. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
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
    OPT_HELP,
    OPT_VERBOSE,
};

static const struct option options[] = {
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
    {"verbose", no_argument, NULL, OPT_VERBOSE},
    {"help", no_argument, NULL, OPT_HELP},
    {0},
};

static const char usage[] =
    "usage: gd-dashboard --status EP --db DSN [options]\n"
    "Live web dashboard and Prometheus /metrics for a griddispatch broker.\n"
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
    "  --verbose              log every HTTP refusal and decode error\n";

static int number(const char *name, const char *s, long lo, long hi, long *ret, FILE *err)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > hi) {
        fprintf(err, "gd-dashboard: --%s needs a number from %ld to %ld, not '%s'\n", name, lo, hi,
                s);
        return -1;
    }
    *ret = v;
    return 0;
}

int dash_config_parse(struct dash_config *cfg, int argc, char **argv, FILE *out, FILE *err)
{
    *cfg = (struct dash_config){
        .utc_offset_min = 480,
        .db_wait_s = 30,
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
    int c;
    long v;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        int rc = 0;
        switch (c) {
        case OPT_STATUS:
            cfg->status_ep = optarg;
            break;
        case OPT_INTAKE:
            cfg->intake_ep = optarg;
            break;
        case OPT_DB:
            cfg->db = optarg;
            break;
        case OPT_HTTP:
            cfg->http.listen = optarg;
            break;
        case OPT_UTC:
            rc = number("utc-offset-min", optarg, -1080, 1080, &v, err);
            cfg->utc_offset_min = (int32_t)v;
            break;
        case OPT_MAX_CONN:
            rc = number("max-connections", optarg, 1, 10000, &v, err);
            cfg->http.max_connections = (uint32_t)v;
            break;
        case OPT_MAX_IP:
            rc = number("max-per-ip", optarg, 1, 10000, &v, err);
            cfg->http.max_per_ip = (uint32_t)v;
            break;
        case OPT_MAX_SSE:
            rc = number("max-sse", optarg, 0, 1000, &v, err);
            cfg->http.max_sse = (uint32_t)v;
            break;
        case OPT_SSE_BUF:
            rc = number("sse-buffer", optarg, 65536, 64L << 20, &v, err);
            cfg->http.sse_buffer = (uint32_t)v;
            break;
        case OPT_PUSH:
            rc = number("push-ms", optarg, 100, 60000, &v, err);
            cfg->http.push_ms = (uint32_t)v;
            break;
        case OPT_HB:
            rc = number("heartbeat-s", optarg, 1, 300, &v, err);
            cfg->http.heartbeat_s = (uint32_t)v;
            break;
        case OPT_TIMEOUT:
            rc = number("timeout-s", optarg, 1, 3600, &v, err);
            cfg->http.timeout_s = (uint32_t)v;
            break;
        case OPT_DB_WAIT:
            rc = number("db-wait-s", optarg, 0, 3600, &v, err);
            cfg->db_wait_s = (uint32_t)v;
            break;
        case OPT_VERBOSE:
            cfg->verbose = 1;
            break;
        case OPT_HELP:
            fputs(usage, out);
            return 1;
        default:
            fputs(usage, err);
            return -1;
        }
        if (rc < 0)
            return -1;
    }
    if (optind < argc) {
        fprintf(err, "gd-dashboard: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!cfg->status_ep || !cfg->db) {
        fprintf(err, "gd-dashboard: --status and --db are required\n%s", usage);
        return -1;
    }
    if (cfg->http.max_per_ip > cfg->http.max_connections)
        cfg->http.max_per_ip = cfg->http.max_connections;
    return 0;
}
