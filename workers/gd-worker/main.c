/* main.c - gd-worker, a town's worker process: configuration, loop, signals, worker. */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "svcnotify.h"
#include "wlog.h"
#include "worker.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

struct app {
    uv_loop_t loop;
    uv_signal_t sigterm, sigint;
    struct config cfg;
    struct worker *worker;
    struct svcnotify notify;
    int status;
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gd-worker --config FILE [--KEY VALUE ...] [--check-config]\n"
            "\n"
            "Serves a town's queues on a griddispatch broker: signs every delivered incident,\n"
            "runs the handler command (or POSTs to the webhook) and reports its result.\n"
            "\n"
            "  --config FILE     INI file with the keys below (at the top or in [gd-worker])\n"
            "  --check-config    print the effective configuration and exit (0 if valid)\n"
            "  --help, --version\n"
            "\n"
            "Every key can be given on the command line as --KEY VALUE (dashes or\n"
            "underscores), overriding the file:\n"
            "  endpoints         comma list of broker work endpoints, tried in order\n"
            "  queues            comma list of queues (org-unit codes) served\n"
            "  city              city configuration file (instead of endpoints): the work\n"
            "                    endpoint of the shard owning the queues' towns\n"
            "  credit            incidents in hand at once, 1..1024 [1]\n"
            "  name              worker name in the broker's event history\n"
            "  handler           command run per incident (split like a shell, no shell)\n"
            "  webhook           http(s) URL POSTed per incident (instead of handler)\n"
            "  handler_timeout_ms  then the handler's process group is killed [30000]\n"
            "  kill_grace_ms     SIGTERM -> SIGKILL delay [2000]\n"
            "  sign              before|after: SIGN before running the handler, or only\n"
            "                    with its result [before]\n"
            "  command_retries   resends of a command whose answer was lost [5]\n"
            "  hello_timeout_ms, request_timeout_ms, reconnect_min_ms, reconnect_max_ms\n"
            "  curve_server_key, curve_public_key, curve_secret_key   CurveZMQ (Z85)\n"
            "  log_level         error|warn|info|debug [info]\n"
            "\n"
            "Handler: the incident as JSON on stdin; GD_INCIDENT_ID, GD_VERSION, GD_CATEGORY,\n"
            "GD_QUEUE, GD_PRIORITY, GD_UNIT, ... in the environment. Exit 0: resolve (stdout is\n"
            "the result); 3: return (stdout is the reason); 4: progress note, stays open;\n"
            "75 or anything else: left as it is (the SLA deadline escalates it).\n"
            "Heartbeat interval and liveness are the broker's (sent in WELCOME).\n");
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    wlog(app->cfg.log_level, WLOG_INFO, "signal %d", signum);
    svcnotify_stopping("stopping: finishing the incidents in hand, then BYE");
    worker_stop(app->worker);
}

static void on_stopped(struct worker *w, int status, void *data)
{
    (void)w;
    struct app *app = data;
    app->status = status;
    svcnotify_close(&app->notify);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
}

enum { OPT_CONFIG = 1000, OPT_CHECK, OPT_HELP, OPT_VERSION, OPT_KEY };

/* Parses the command line into cfg: the file first, then overrides in
 * the order given. Returns 0, 1 when the program should exit 0 at once
 * (help, version) or -1 on an error (already reported). */
static int parse_args(int argc, char **argv, struct config *cfg, bool *ret_check)
{
    const char *config_path = NULL;
    char err[CONFIG_ERR_LEN];
    size_t n_keys = 0;
    while (config_keys[n_keys])
        n_keys++;
    /* every key twice: with underscores and with dashes */
    struct option opts[2 * 32 + 5];
    char names[32][64];
    size_t k = 0;
    opts[k++] = (struct option){"config", required_argument, NULL, OPT_CONFIG};
    opts[k++] = (struct option){"check-config", no_argument, NULL, OPT_CHECK};
    opts[k++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    opts[k++] = (struct option){"version", no_argument, NULL, OPT_VERSION};
    for (size_t i = 0; i < n_keys && i < 32; i++) {
        snprintf(names[i], sizeof(names[i]), "%s", config_keys[i]);
        for (char *p = names[i]; *p; p++)
            if (*p == '_')
                *p = '-';
        opts[k++] = (struct option){config_keys[i], required_argument, NULL, OPT_KEY + (int)i};
        if (strcmp(names[i], config_keys[i]) != 0)
            opts[k++] = (struct option){names[i], required_argument, NULL, OPT_KEY + (int)i};
    }
    opts[k] = (struct option){0};

    /* first pass: find --config, so that overrides apply on top of the file */
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1)
        if (c == OPT_CONFIG)
            config_path = optarg;
    if (config_path && config_load(cfg, config_path, err, sizeof(err)) < 0) {
        fprintf(stderr, "gd-worker: %s\n", err);
        return -1;
    }
    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == OPT_CONFIG)
            continue;
        if (c == OPT_CHECK) {
            *ret_check = true;
        } else if (c == OPT_HELP) {
            usage(stdout);
            return 1;
        } else if (c == OPT_VERSION) {
            printf("gd-worker %s\n", GD_VERSION);
            return 1;
        } else if (c >= OPT_KEY && c < OPT_KEY + (int)n_keys) {
            const char *key = config_keys[c - OPT_KEY];
            if (config_set(cfg, key, optarg, err, sizeof(err)) < 0) {
                fprintf(stderr, "gd-worker: --%s: %s\n", key, err);
                return -1;
            }
        } else {
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "gd-worker: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!config_path && !*ret_check) {
        /* all keys may come from the command line; say so if nothing came */
        if (cfg->n_endpoints == 0 && cfg->n_queues == 0) {
            usage(stderr);
            return -1;
        }
    }
    if (config_from_city(cfg, err, sizeof(err)) < 0 || config_check(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "gd-worker: %s%s%s\n", config_path ? config_path : "",
                config_path ? ": " : "", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct app app = {.status = 1};
    char err[CONFIG_ERR_LEN];
    bool check = false;
    config_init(&app.cfg);
    int rc = parse_args(argc, argv, &app.cfg, &check);
    if (rc != 0) {
        config_fini(&app.cfg);
        return rc > 0 ? 0 : 2;
    }
    if (check) {
        config_print(&app.cfg, stdout);
        config_fini(&app.cfg);
        return 0;
    }
    /* a handler that closes its stdin early must not kill us */
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* nothing to reload: a reload must not stop it */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "gd-worker: curl_global_init failed\n");
        goto free_config;
    }
    uv_loop_init(&app.loop);
    if (worker_new(&app.loop, &app.cfg, on_stopped, &app, &app.worker, err, sizeof(err)) < 0) {
        fprintf(stderr, "gd-worker: %s\n", err);
        goto close_loop;
    }
    uv_signal_init(&app.loop, &app.sigterm);
    uv_signal_init(&app.loop, &app.sigint);
    app.sigterm.data = app.sigint.data = &app;
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    wlog(app.cfg.log_level, WLOG_INFO, "gd-worker %s: %zu queue(s), credit %u, %s %s", GD_VERSION,
         app.cfg.n_queues, app.cfg.credit, app.cfg.webhook ? "webhook" : "handler",
         app.cfg.sign == SIGN_BEFORE ? "after signing" : "before signing");
    svcnotify_init(&app.notify);
    if (svcnotify_watch_loop(&app.notify, &app.loop) < 0)
        wlog(app.cfg.log_level, WLOG_WARN, "cannot start the systemd watchdog timer");
    rc = worker_start(app.worker);
    if (rc < 0) {
        fprintf(stderr, "gd-worker: cannot start: %s\n", strerror(-rc));
        worker_stop(app.worker);
    } else {
        /* ready while it connects: a broker that is down is waited for */
        svcnotify_ready("connecting to the broker at %s", app.cfg.endpoints[0]);
    }
    uv_run(&app.loop, UV_RUN_DEFAULT);
    worker_free(app.worker);
close_loop:
    uv_run(&app.loop, UV_RUN_DEFAULT);
    uv_loop_close(&app.loop);
    curl_global_cleanup();
free_config:
    config_fini(&app.cfg);
    return app.status;
}
