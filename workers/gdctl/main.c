/* main.c - gdctl, the griddispatch command-line tool: global options, then one subcommand from the
 * table. */
#include <locale.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "gdctl.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: gdctl [OPTIONS] COMMAND [ARGS...]\n\ncommands:\n");
    for (const struct gdctl_command *c = gdctl_commands; c->name; c++)
        fprintf(out, "  %-9s %s\n            %s\n", c->name, c->args, c->summary);
    fprintf(out, "\noptions (before or after the command):\n"
                 "  --intake EP[,EP]  broker intake endpoint, or an HA pair's list [$GD_INTAKE]\n"
                 "  --status EP     broker status endpoint [$GD_STATUS]\n"
                 "  --db DSN        PostgreSQL connection string [$GD_DB_DSN]\n"
                 "  --city FILE     the city's shards (deploy/README.md): submit goes to the\n"
                 "                  shard owning the town (by --unit, or by --lat/--lon and the\n"
                 "                  town boundaries in --db), report combines all shards [$GD_CITY]\n"
                 "  --json          machine-readable output: one JSON document per line on stdout\n"
                 "                  (errors too: {\"error\": {\"code\", \"message\", \"exit\"}})\n"
                 "  --timeout MS    wait for each broker answer [5000]\n"
                 "  --failover-ms MS  with a list of intake endpoints: a broker silent this long\n"
                 "                  gets the request sent to the next one, within --timeout\n"
                 "                  (0: never) [1000]\n"
                 "  --help, --version\n"
                 "\nexit codes:\n"
                 "  0  done\n"
                 "  1  refused: the broker answered REJECTED, or the database refused the\n"
                 "     import or migration\n"
                 "  2  usage: bad command line\n"
                 "  3  unavailable: no answer within the timeout, BUSY, database unreachable\n"
                 "  4  not found: no such incident\n"
                 "  5  local failure: unreadable file, out of memory, unreadable reply\n");
}

int main(int argc, char **argv)
{
    setlocale(LC_CTYPE, "C.UTF-8");
    struct gdctl g = {
        .intake_ep = getenv("GD_INTAKE"),
        .status_ep = getenv("GD_STATUS"),
        .dsn = getenv("GD_DB_DSN"),
        .city_file = getenv("GD_CITY"),
        .timeout_ms = 5000,
        .failover_ms = INTAKE_FAILOVER_MS,
    };
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS, {"version", no_argument, NULL, 'V'}, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (opt == 'h') {
            usage(stdout);
            return EXIT_OK;
        }
        if (opt == 'V') {
            printf("gdctl %s\n", GD_VERSION);
            return EXIT_OK;
        }
        if (opt == '?' || gdctl_common_option(&g, opt, optarg) < 0) {
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const struct gdctl_command *cmd = NULL;
    for (const struct gdctl_command *c = gdctl_commands; c->name; c++)
        if (strcmp(c->name, argv[optind]) == 0)
            cmd = c;
    if (!cmd) {
        fprintf(stderr, "gdctl: unknown command '%s' (see gdctl --help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    g.zctx = zmq_ctx_new();
    if (!g.zctx) {
        fprintf(stderr, "gdctl: cannot create a ZeroMQ context\n");
        return EXIT_LOCAL;
    }
    int first = optind;
    optind = 0; /* the command parses its own options (glibc: full reset) */
    int rc = cmd->run(&g, argc - first, argv + first);
    intake_close(g.intake);
    city_free(g.city);
    zmq_ctx_term(g.zctx);
    return rc;
}
