/* main.c - gd-hotline, the 12345 hotline feed adapter: options, signals, then the feed pumped into
 * the broker. */
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

#include "feed.h"
#include "hlog.h"
#include "intake.h"
#include "pump.h"
#include "resume.h"

#ifndef GD_VERSION
#define GD_VERSION "unknown"
#endif

static void usage(FILE *out)
{
    fprintf(out,
            "usage: gd-hotline --input FILE|- --state FILE --reject FILE [options]\n"
            "\n"
            "Submits 12345 hotline orders (one JSON object per line) to the broker with\n"
            "source \"hotline\" and external_id = ticket_no.\n"
            "\n"
            "  --intake EP        broker intake endpoint [$GD_INTAKE]\n"
            "  --input FILE       the feed; - reads stdin\n"
            "  --follow           keep reading as the file grows (and after rotation)\n"
            "  --state FILE       durable resume position (byte offset + inode)\n"
            "  --reject FILE      bad lines: one JSON object per line {line, offset, inode,\n"
            "                     ticket_no, reason} (the line itself is not copied: it may\n"
            "                     hold personal data)\n"
            "  --window N         orders in flight at once, 1..1000 [64]\n"
            "  --timeout-ms N     resend an unanswered order after N ms [5000]\n"
            "  --save-ms N        longest time between saves of the position [200]\n"
            "  --poll-ms N        --follow: look for new lines every N ms [200]\n"
            "  --max-line N       longest line in bytes, 256..1048576 [65536]\n"
            "  --log-level L      error|warn|info|debug [info]\n"
            "  --help, --version\n"
            "\n"
            "Line fields: ticket_no (required), received_at (ISO 8601 with zone), caller_name,\n"
            "caller_phone, category, grid|community|town|unit, address, lat+lon, content\n"
            "(required), urgency normal|urgent|emergency (一般|紧急|特急).\n"
            "\n"
            "Exit: 0 the input was read to its end and every order is final (accepted or\n"
            "rejected); 1 stopped by SIGINT/SIGTERM (what is final is saved); 2 usage;\n"
            "3 I/O or broker socket failure.\n");
}

static int parse_int(const char *s, long min, long max, long *ret)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        return -1;
    *ret = v;
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    const char *intake_ep = getenv("GD_INTAKE"), *input = NULL, *state = NULL, *reject = NULL;
    bool follow = false;
    long max_line = 65536;
    struct pump_config cfg = {
        .window = 64, .timeout_ms = 5000, .save_ms = 200, .poll_ms = 200, .log_level = HLOG_INFO};
    static const struct option opts[] = {
        {"intake", required_argument, NULL, 'i'},     {"input", required_argument, NULL, 'f'},
        {"follow", no_argument, NULL, 'F'},           {"state", required_argument, NULL, 's'},
        {"reject", required_argument, NULL, 'r'},     {"window", required_argument, NULL, 'w'},
        {"timeout-ms", required_argument, NULL, 't'}, {"save-ms", required_argument, NULL, 'S'},
        {"poll-ms", required_argument, NULL, 'p'},    {"max-line", required_argument, NULL, 'm'},
        {"log-level", required_argument, NULL, 'l'},  {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
    };
    int opt;
    long v;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            intake_ep = optarg;
            break;
        case 'f':
            input = optarg;
            break;
        case 'F':
            follow = true;
            break;
        case 's':
            state = optarg;
            break;
        case 'r':
            reject = optarg;
            break;
        case 'w':
            if (parse_int(optarg, 1, 1000, &v) < 0)
                goto bad_usage;
            cfg.window = (unsigned)v;
            break;
        case 't':
            if (parse_int(optarg, 10, 600000, &v) < 0)
                goto bad_usage;
            cfg.timeout_ms = (int)v;
            break;
        case 'S':
            if (parse_int(optarg, 1, 60000, &v) < 0)
                goto bad_usage;
            cfg.save_ms = (int)v;
            break;
        case 'p':
            if (parse_int(optarg, 1, 60000, &v) < 0)
                goto bad_usage;
            cfg.poll_ms = (int)v;
            break;
        case 'm':
            if (parse_int(optarg, 256, 1048576, &max_line) < 0)
                goto bad_usage;
            break;
        case 'l': {
            static const char *const levels[] = {"error", "warn", "info", "debug"};
            cfg.log_level = -1;
            for (int i = 0; i < 4; i++)
                if (strcmp(optarg, levels[i]) == 0)
                    cfg.log_level = i;
            if (cfg.log_level < 0)
                goto bad_usage;
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("gd-hotline %s\n", GD_VERSION);
            return 0;
        default:
            goto bad_usage;
        }
    }
    if (optind != argc || !intake_ep || !input || !state || !reject)
        goto bad_usage;

    int rc = 3;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
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
    void *zctx = zmq_ctx_new();
    struct intake *in = NULL;
    if (!zctx || intake_open(zctx, intake_ep, &in) < 0) {
        hlog(cfg.log_level, HLOG_ERROR, "cannot connect to %s", intake_ep);
        goto term_zmq;
    }
    struct pump_stats st;
    int64_t t0 = mono_ms();
    err = pump_run(&cfg, feed, in, res, sfd, &st);
    double secs = (double)(mono_ms() - t0) / 1000.0;
    hlog(cfg.log_level, HLOG_INFO,
         "%" PRIu64 " lines: %" PRIu64 " accepted, %" PRIu64 " duplicates, %" PRIu64
         " rejected; %" PRIu64 " BUSY answers, %" PRIu64 " resends; %.1f orders/s",
         st.lines, st.accepted, st.duplicates, st.rejected, st.busy, st.resent,
         secs > 0 ? (double)(st.accepted + st.duplicates) / secs : 0.0);
    if (err < 0)
        hlog(cfg.log_level, HLOG_ERROR, "stopped: %s", strerror(-err));
    rc = err < 0 ? 3 : err;
term_zmq:
    intake_close(in);
    if (zctx)
        zmq_ctx_term(zctx);
    feed_close(feed);
close_resume:
    resume_close(res);
close_signalfd:
    close(sfd);
    return rc;

bad_usage:
    usage(stderr);
    return 2;
}
