/* main.c - gd-open311, the Open311 GeoReport v2 adapter: configuration, HTTP threads, and the
 * broker thread (this one). */
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "db.h"
#include "georeport.h"
#include "intake.h"
#include "olog.h"
#include "relay.h"
#include "svcnotify.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gd-open311 --config FILE [--check-config]\n"
            "\n"
            "Open311 GeoReport v2 over HTTP: GET services.{json,xml}, services/{code}.{fmt},\n"
            "requests.{fmt} and requests/{id}.{fmt}; POST requests.{fmt} (form-encoded) becomes a\n"
            "SUBMIT (source open311) answered only after the broker's ACCEPTED.\n"
            "\n"
            "Keys of the INI file (at the top or in [gd-open311]; [open311] is read too):\n"
            "  bind, port          listen address [127.0.0.1], port [7780] (0: any, logged)\n"
            "  intake              broker intake endpoint, or an HA pair's comma list (this or\n"
            "                      city is required)\n"
            "  city                city configuration file (deploy/README.md): one connection\n"
            "                      per shard; a POST goes to the shard owning its town (by\n"
            "                      address_id, else by the town boundary in db covering\n"
            "                      lat/long), else to the default shard's triage\n"
            "  db                  PostgreSQL DSN for the read-only queries (required)\n"
            "  keys_file           'api_key = principal' lines (principal: a-z 0-9 _ -, <= 24)\n"
            "  public_sources      sources GET requests shows [open311]\n"
            "  utc_offset_min      zone of the dates written [480]\n"
            "  max_body            POST body bytes [65536] (413 beyond)\n"
            "  max_connections     open connections [64]\n"
            "  max_concurrent      requests processed at once [32] (503 + Retry-After beyond)\n"
            "  db_pool             database connections [4]\n"
            "  page_size, max_page_size, max_page   GET requests paging [50, 200, 1000]\n"
            "  max_ids             ids in one service_request_id list [100]\n"
            "  submit_timeout_ms   a POST waits for the broker (BUSY retries included) [10000]\n"
            "  attempt_timeout_ms  one SUBMIT attempt before resending [3000]\n"
            "  failover_ms         a broker silent this long while SUBMITs wait: the next\n"
            "                      endpoint of its list gets them (0: never) [1000]\n"
            "  log_level           error|warn|info|debug [info]\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    bool check = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'c')
            path = optarg;
        else if (opt == 'k')
            check = true;
        else if (opt == 'h') {
            usage(stdout);
            return 0;
        } else if (opt == 'V') {
            printf("gd-open311 %s\n", GD_VERSION);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (!path || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct config cfg;
    config_init(&cfg);
    struct city *city = NULL;
    char err[512];
    int rc = 1;
    if (config_load(&cfg, path, err, sizeof(err)) < 0 || config_check(&cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "gd-open311: %s\n", err);
        goto free_config;
    }
    if (check) {
        config_print(&cfg, stdout);
        rc = 0;
        goto free_config;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    /* blocked before any thread starts, so only the signalfd sees them */
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* nothing to reload: a reload must not stop it */
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        goto free_config;
    void *zctx = zmq_ctx_new();
    if (!zctx)
        goto close_signalfd;
    struct georeport g = {.cfg = &cfg};
    const char *endpoints[RELAY_MAX_SHARDS] = {cfg.intake};
    size_t n_endpoints = 1;
    if (cfg.city) {
        int crc = city_intake_endpoints(cfg.city, &city, endpoints, &n_endpoints, err, sizeof(err));
        if (crc < 0) {
            olog(cfg.log_level, OLOG_ERROR, "city: %s", crc == -ENOMEM ? "out of memory" : err);
            goto term_zmq;
        }
        g.city = city;
        for (size_t i = 0; i < n_endpoints; i++) {
            char why[256];
            if (intake_check_endpoints(endpoints[i], why, sizeof(why)) < 0) {
                olog(cfg.log_level, OLOG_ERROR, "city %s: shard %s: intake: %s", cfg.city,
                     city_shard(city, i)->name, why);
                goto free_city;
            }
        }
    }
    if (relay_new(zctx, endpoints, n_endpoints, cfg.failover_ms, cfg.log_level, &g.relay) < 0) {
        olog(cfg.log_level, OLOG_ERROR, "cannot connect to the broker%s",
             n_endpoints > 1 ? "s" : "");
        goto free_city;
    }
    if (db_new(cfg.db, cfg.db_pool, &g.db) < 0)
        goto free_relay;
    for (size_t i = 0; g.city && i < n_endpoints; i++)
        if (db_new(city_shard(city, i)->db, cfg.db_pool, &g.shard_db[i]) < 0)
            goto free_db;
    unsigned port;
    struct MHD_Daemon *d = georeport_start(&g, &port, err, sizeof(err));
    if (!d) {
        olog(cfg.log_level, OLOG_ERROR, "%s", err);
        goto free_db;
    }
    olog(cfg.log_level, OLOG_INFO, "listening on %s:%u", cfg.bind ? cfg.bind : "127.0.0.1", port);
    struct svcnotify notify;
    svcnotify_init(&notify);
    if (g.city)
        svcnotify_ready("serving Open311 at http://%s:%u/, submitting to %zu shards of %s",
                        cfg.bind ? cfg.bind : "127.0.0.1", port, n_endpoints, cfg.city);
    else
        svcnotify_ready("serving Open311 at http://%s:%u/, submitting to the broker at %s",
                        cfg.bind ? cfg.bind : "127.0.0.1", port, cfg.intake);
    rc = relay_run(g.relay, sfd, &notify) < 0 ? 1 : 0;
    olog(cfg.log_level, OLOG_INFO, "stopping");
    svcnotify_stopping("stopping: finishing the HTTP requests in progress");
    /* HTTP threads may be waiting in relay_call(): they time out (bounded by
     * submit_timeout_ms) while MHD_stop_daemon() joins them */
    MHD_stop_daemon(d);
free_db:
    for (size_t i = 0; i < CITY_MAX_SHARDS; i++)
        db_free(g.shard_db[i]);
    db_free(g.db);
free_relay:
    relay_free(g.relay);
free_city:
    city_free(city);
term_zmq:
    zmq_ctx_term(zctx);
close_signalfd:
    close(sfd);
free_config:
    config_fini(&cfg);
    return rc;
}
