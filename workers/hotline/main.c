/* main.c - gd-hotline, the 12345 hotline feed adapter: configuration, signals, then the feed pumped
 * into the broker. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "config.h"
#include "feed.h"
#include "hlog.h"
#include "intake.h"
#include "pump.h"
#include "resume.h"
#include "svcnotify.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    struct hotline_config hc;
    int parsed = hotline_config_parse(&hc, argc, argv, stderr);
    if (parsed != 0)
        return parsed > 0 ? 0 : 2;
    const struct pump_config cfg = hc.pump;
    const char *intake_ep = hc.intake, *input = hc.input, *state = hc.state, *reject = hc.reject;
    bool follow = hc.follow;
    long max_line = hc.max_line;

    int rc = 3;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN); /* nothing to reload: a reload must not stop it */
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        hlog(cfg.log_level, HLOG_ERROR, "signalfd: %s", strerror(errno));
        return 3;
    }
    struct resume *res = NULL;
    struct resume_pos pos;
    int err = resume_open(state, reject, &res, &pos);
    if (err < 0) {
        hlog(cfg.log_level, HLOG_ERROR, "state %s / reject file %s: %s", state, reject,
             err == -EINVAL ? "the state file is not one of gd-hotline's" : strerror(-err));
        goto close_signalfd;
    }
    struct feed *feed = NULL;
    err = feed_open(input, follow, (size_t)max_line, pos.inode, pos.offset, pos.line, &feed);
    if (err < 0) {
        hlog(cfg.log_level, HLOG_ERROR, "input %s: %s", input, strerror(-err));
        goto close_resume;
    }
    if (!feed_seekable(feed))
        hlog(cfg.log_level, HLOG_WARN,
             "input is not a regular file: no resume position is "
             "kept (a resubmit after a restart is a duplicate)");
    else if (pos.inode && pos.inode == feed_inode(feed))
        hlog(cfg.log_level, HLOG_INFO, "resuming after line %" PRIu64 " (byte %" PRIu64 ")",
             pos.line, pos.offset);
    struct city *city = NULL;
    const char *endpoints[CITY_MAX_SHARDS] = {intake_ep};
    size_t n_in = 1;
    if (hc.city) {
        char why[512];
        err = city_intake_endpoints(hc.city, &city, endpoints, &n_in, why, sizeof(why));
        if (err < 0) {
            hlog(cfg.log_level, HLOG_ERROR, "city: %s", err == -ENOMEM ? "out of memory" : why);
            goto close_feed;
        }
    }
    for (size_t i = 0; i < n_in; i++) {
        char why[256];
        if (intake_check_endpoints(endpoints[i], why, sizeof(why)) < 0) {
            hlog(cfg.log_level, HLOG_ERROR, "%s%s%s: %s", hc.city ? "city shard " : "intake",
                 hc.city ? city_shard(city, i)->name : "", hc.city ? " intake" : "", why);
            goto free_city;
        }
    }
    const char *target = hc.city ? hc.city : intake_ep;
    hlog(cfg.log_level, HLOG_INFO, "submitting %s to %s%s", input, target,
         follow ? " (following it)" : "");
    void *zctx = zmq_ctx_new();
    struct intake *in[CITY_MAX_SHARDS] = {NULL};
    if (!zctx)
        goto free_city;
    for (size_t i = 0; i < n_in; i++) {
        if (intake_open(zctx, endpoints[i], &in[i]) < 0) {
            hlog(cfg.log_level, HLOG_ERROR, "cannot connect to %s", endpoints[i]);
            goto term_zmq;
        }
        intake_set_failover_ms(in[i], cfg.failover_ms);
    }
    struct svcnotify notify;
    svcnotify_init(&notify);
    svcnotify_ready("submitting %s to %s%s%s", input, hc.city ? "the shards of " : "the broker at ",
                    target, follow ? " (following it)" : "");
    struct pump_stats st;
    int64_t t0 = mono_ms();
    err = pump_run(&cfg, feed, in, n_in, city, res, sfd, &notify, &st);
    double secs = (double)(mono_ms() - t0) / 1000.0;
    hlog(cfg.log_level, HLOG_INFO,
         "%" PRIu64 " lines: %" PRIu64 " accepted, %" PRIu64 " duplicates, %" PRIu64
         " rejected; %" PRIu64 " BUSY answers, %" PRIu64 " resends, %" PRIu64
         " fail-overs; %" PRIu64 " SUBMIT messages, %" PRIu64 " SUBMITS messages carrying %" PRIu64
         " orders (%" PRIu64 " refused whole); %.1f orders/s",
         st.lines, st.accepted, st.duplicates, st.rejected, st.busy, st.resent, st.failovers,
         st.submit_msgs, st.submits_msgs, st.submits_orders, st.batches_refused,
         secs > 0 ? (double)(st.accepted + st.duplicates) / secs : 0.0);
    if (err < 0)
        hlog(cfg.log_level, HLOG_ERROR, "stopped: %s", strerror(-err));
    rc = err < 0 ? 3 : err;
term_zmq:
    for (size_t i = 0; i < n_in; i++)
        intake_close(in[i]);
    zmq_ctx_term(zctx);
free_city:
    city_free(city);
close_feed:
    feed_close(feed);
close_resume:
    resume_close(res);
close_signalfd:
    close(sfd);
    return rc;
}
