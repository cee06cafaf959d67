/* main.c - gd-sla: wires configuration, logging, the broker session and signals to one loop. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

#include "config.h"
#include "log.h"
#include "session.h"
#include "svcnotify.h"

struct app {
    struct config cfg;
    struct logger log;
    struct session session;
    struct svcnotify notify;
    uv_signal_t sigint;
    uv_signal_t sigterm;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    log_info(&app->log, "signal %d: stopping", signum);
    svcnotify_stopping("stopping: saying BYE to the broker");
    uv_signal_stop(&app->sigint);
    uv_signal_stop(&app->sigterm);
    session_stop(&app->session, SESSION_EXIT_OK);
}

static int run(struct app *app)
{
    app->log = (struct logger){.level = (enum log_level)app->cfg.log_level, .name = "gd-sla"};
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* nothing to reload: a reload must not stop it */

    uv_loop_t *loop = uv_default_loop();
    uv_signal_init(loop, &app->sigint);
    uv_signal_init(loop, &app->sigterm);
    app->sigint.data = app->sigterm.data = app;
    uv_signal_start(&app->sigint, on_signal, SIGINT);
    uv_signal_start(&app->sigterm, on_signal, SIGTERM);
    /* the session's handles keep the loop running; the signal handles must
     * not keep it alive once the session has stopped (DENIED, failure) */
    uv_unref((uv_handle_t *)&app->sigint);
    uv_unref((uv_handle_t *)&app->sigterm);

    int rc = session_start(&app->session, loop, &app->cfg, &app->log);
    if (rc < 0) {
        log_error(&app->log, "cannot start: %s", uv_strerror(rc));
        return 1;
    }
    log_info(&app->log, "started: tick %u ms, %u endpoint(s)", app->cfg.tick_ms,
             app->cfg.n_endpoints);
    svcnotify_init(&app->notify);
    if (svcnotify_watch_loop(&app->notify, loop) < 0)
        log_warn(&app->log, "cannot start the systemd watchdog timer");
    /* ready while it connects: a broker that is down is waited for */
    svcnotify_ready("connecting to the broker at %s", app->cfg.endpoints[0]);
    uv_run(loop, UV_RUN_DEFAULT);
    svcnotify_close(&app->notify);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    int status = app->session.exit_status;
    session_fini(&app->session);
    uv_loop_close(loop);
    return status;
}

int main(int argc, char **argv)
{
    /* the session holds a ~33 KiB timing wheel: on the heap, not the stack */
    struct app *app = calloc(1, sizeof(*app));
    if (app == NULL) {
        fprintf(stderr, "gd-sla: out of memory\n");
        return 1;
    }
    int rc = config_parse(&app->cfg, argc, argv, stderr);
    int status = rc > 0 ? 0 : rc < 0 ? 2 : run(app);
    config_fini(&app->cfg);
    free(app);
    return status;
}
