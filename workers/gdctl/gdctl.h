/* gdctl.h - gdctl's shared state, exit codes, command table and helpers used by every subcommand.
 */
#ifndef GD_GDCTL_H
#define GD_GDCTL_H

#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>

#include "city.h"
#include "gdp.h"
#include "intake.h"

/* Exit codes scripts can rely on (also in `gdctl --help`). */
enum gdctl_exit {
    EXIT_OK = 0,          /* done */
    EXIT_REFUSED = 1,     /* the broker answered REJECTED, or the database refused the
                             import/migration (bad data) */
    EXIT_USAGE = 2,       /* bad command line */
    EXIT_UNAVAILABLE = 3, /* no answer within the timeout, BUSY, database unreachable */
    EXIT_NOT_FOUND = 4,   /* no such incident (REJECTED not_found) */
    EXIT_LOCAL = 5,       /* local failure: unreadable file, out of memory, bad reply */
};

/* Options shared by every subcommand, and the connections they open lazily. */
struct gdctl {
    const char *intake_ep; /* --intake, $GD_INTAKE: an endpoint or an HA pair's list */
    const char *status_ep; /* --status, $GD_STATUS */
    const char *dsn;       /* --db, $GD_DB_DSN */
    const char *city_file; /* --city, $GD_CITY: the shards (city.h) */
    bool json;             /* --json: machine-readable output on stdout */
    int timeout_ms;        /* --timeout: per broker request */
    int failover_ms;       /* --failover-ms: silence before the next intake endpoint */
    void *zctx;
    struct intake *intake;
    struct city *city; /* loaded by gdctl_city() */
};

struct gdctl_command {
    const char *name;
    const char *args;    /* usage after the name, e.g. "ID UNIT [NOTE]" */
    const char *summary; /* one line for `gdctl --help` */
    /* argv[0] is the command name. Returns an exit code. */
    int (*run)(struct gdctl *g, int argc, char **argv);
};

/* The table of subcommands, NULL-name terminated (commands.c). */
extern const struct gdctl_command gdctl_commands[];

/* Every subcommand's getopt_long table starts with these; they return the
 * option values 1000.. handled by gdctl_common_option(). */
#define GDCTL_COMMON_OPTIONS                                                                 \
    {"intake", required_argument, NULL, 1000}, {"status", required_argument, NULL, 1001},    \
        {"db", required_argument, NULL, 1002}, {"json", no_argument, NULL, 1003},            \
        {"timeout", required_argument, NULL, 1004}, {"city", required_argument, NULL, 1005}, \
        {"failover-ms", required_argument, NULL, 1006},                                      \
    {                                                                                        \
        "help", no_argument, NULL, 'h'                                                       \
    }

/* Applies common option `opt` (one of GDCTL_COMMON_OPTIONS). Returns 0, or
 * -1 after printing why the value is bad. */
int gdctl_common_option(struct gdctl *g, int opt, const char *arg);

/* Prints "usage: gdctl NAME ARGS" for `cmd` to stderr; returns EXIT_USAGE. */
int gdctl_usage(const char *name);

/* Reports a failure: on stderr "gdctl: MESSAGE", and with --json also
 * {"error": {"code": CODE, "message": MESSAGE}} on stdout. Returns `exit`. */
int gdctl_fail(struct gdctl *g, int exit, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sends request `m` to the intake endpoint and waits for its reply.
 * Returns EXIT_OK with *ret (valid until the next call) when the broker
 * answered with anything but REJECTED/BUSY; otherwise reports the failure
 * (gdctl_fail) and returns EXIT_REFUSED, EXIT_NOT_FOUND, EXIT_UNAVAILABLE
 * or EXIT_LOCAL. */
int gdctl_call(struct gdctl *g, struct gd_msg *m, struct gd_msg *ret);

/* Loads the city configuration named by --city once. Returns EXIT_OK with
 * g->city set, or reports why it does not load (gdctl_fail) and returns
 * EXIT_USAGE (no --city, a bad file) or EXIT_LOCAL (out of memory). */
int gdctl_city(struct gdctl *g);

/* Opens a database connection to `dsn`. Returns it, or NULL after
 * reporting the failure (the caller exits EXIT_UNAVAILABLE). */
PGconn *gdctl_db_dsn(struct gdctl *g, const char *dsn);

/* Opens a database connection (--db). Returns it, or NULL after reporting
 * the failure (the caller exits EXIT_UNAVAILABLE). */
PGconn *gdctl_db(struct gdctl *g);

/* Prints `v` as one line of JSON on stdout and releases it. Returns
 * EXIT_OK, or EXIT_LOCAL when `v` is NULL (out of memory). */
int gdctl_print_json(json_t *v);

/* JSON views of protocol values; NULL when out of memory. */
json_t *gdctl_json_str(struct gd_str s);
json_t *gdctl_json_incident(const struct gd_incident *inc, bool with_reporter);
json_t *gdctl_json_event(const struct gd_event *e);
json_t *gdctl_json_gauge(const struct gd_gauge *ga);

/* `ms` since the epoch as local "YYYY-MM-DD HH:MM:SS" into out ("-" for 0). */
const char *gdctl_time(int64_t ms, char out[32]);

/* Parses a whole decimal uint64 > 0. Returns 0, or -1. */
int gdctl_parse_id(const char *s, uint64_t *ret);

#endif
