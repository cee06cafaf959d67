/* cmd_watch.c - gdctl watch: one line per status message whose topic starts with a given prefix.
 *
 * Transitions and gauges arrive in batches per town (inc.<town>,
 * queue.<town>, PROTOCOL §12.1); each item is shown as a message of its
 * own under its own topic (a transition's inc.<town>.<community>.<grid>, a
 * gauge's queue.<queue>), so a prefix below town level still selects what
 * it names: the subscription is cut to the town and the items filtered
 * here.
 *
 * The SUB also subscribes to `broker`, the broker's heartbeat (shown only
 * when a prefix asks for it): after STATSUB_SILENCE_MS without one the
 * broker may be gone without a word, or be a new one that never got our
 * subscription (§12.3), so the SUB is closed and made anew. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "gdctl.h"
#include "statsub.h"

#define S(x) (int)(x).len, (x).ptr ? (x).ptr : ""

static json_t *transition_json(const struct gd_status_transition *t)
{
    json_t *o = json_pack("{s:I,s:I,s:I,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:I,s:I,s:b}",
                      "incident_id", (json_int_t)t->incident_id, "version", (json_int_t)t->version,
                      "at", (json_int_t)t->at, "event", gd_event_kind_name(t->event), "from",
                      gd_state_name(t->from), "to", gd_state_name(t->to), "priority",
                      gd_priority_name(t->priority), "level", gd_level_name(t->level), "category",
                      gdctl_json_str(t->category), "queue", gdctl_json_str(t->queue), "unit",
                      gdctl_json_str(t->unit), "source", gdctl_json_str(t->source), "received_at",
                      (json_int_t)t->received_at, "sign_due", (json_int_t)t->sign_due,
                      "resolve_due", (json_int_t)t->resolve_due, "flagged", t->flagged);
    if (o) {
        json_object_set_new(o, "topic", json_stringn(t->topic.ptr ? t->topic.ptr : "", t->topic.len));
        json_object_set_new(o, "kind", json_string("transition"));
    }
    return o;
}

static json_t *gauge_json(const struct gd_gauge *g)
{
    json_t *o = gdctl_json_gauge(g);
    if (o) {
        char topic[GD_MAX_TOPIC + 1];
        snprintf(topic, sizeof(topic), "queue.%.*s", S(g->queue));
        json_object_set_new(o, "topic", json_string(topic));
        json_object_set_new(o, "kind", json_string("gauge"));
    }
    return o;
}

static json_t *status_json(const char *topic, const struct gd_status *st)
{
    json_t *o = NULL;
    switch (st->kind) {
    case GD_STATUS_BROKER: {
        const struct gd_status_broker *b = &st->u.broker;
        json_t *counters = json_object();
        for (uint32_t i = 0; counters && i < b->n_counters; i++) {
            char name[GD_MAX_NAME + 1];
            snprintf(name, sizeof(name), "%.*s", S(b->counters[i].name));
            json_object_set_new(counters, name, json_integer((json_int_t)b->counters[i].value));
        }
        o = json_pack("{s:I,s:I,s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:o}", "at", (json_int_t)b->at,
                      "started_at", (json_int_t)b->started_at, "db_up", b->db_up, "active",
                      b->active, "open_incidents", (json_int_t)b->open_incidents, "sessions",
                      (json_int_t)b->sessions, "commit_backlog", (json_int_t)b->commit_backlog,
                      "commit_p50_us", (json_int_t)b->commit_p50_us, "commit_p99_us",
                      (json_int_t)b->commit_p99_us, "counters", counters);
        break;
    }
    case GD_STATUS_ALARM: {
        const struct gd_status_alarm *a = &st->u.alarm;
        o = json_pack("{s:I,s:o,s:o,s:I,s:o,s:o}", "at", (json_int_t)a->at, "alarm",
                      gdctl_json_str(a->kind), "severity", gdctl_json_str(a->severity),
                      "incident_id", (json_int_t)a->incident_id, "queue", gdctl_json_str(a->queue),
                      "message", gdctl_json_str(a->message));
        break;
    }
    case GD_STATUS_SLA: {
        const struct gd_status_sla *s = &st->u.sla;
        o = json_pack("{s:I,s:b,s:I,s:I,s:s,s:s,s:o,s:I}", "at", (json_int_t)s->at, "breach",
                      s->breach, "incident_id", (json_int_t)s->incident_id, "version",
                      (json_int_t)s->version, "deadline", gd_deadline_kind_name(s->kind), "level",
                      gd_level_name(s->level), "queue", gdctl_json_str(s->queue), "due_at",
                      (json_int_t)s->due_at);
        break;
    }
    default:
        return NULL;
    }
    if (o) {
        json_object_set_new(o, "topic", json_string(topic));
        json_object_set_new(o, "kind", json_string(gd_status_kind_name(st->kind)));
    }
    return o;
}

static void print_time_topic(const char *topic, size_t topic_len)
{
    char now[16];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(now, sizeof(now), "%H:%M:%S", &tm);
    printf("%s %-40.*s ", now, (int)topic_len, topic);
}

static void print_transition(const struct gd_status_transition *x)
{
    print_time_topic(x->topic.ptr ? x->topic.ptr : "", x->topic.len);
    printf("#%" PRIu64 " v%" PRIu32 " %s %s->%s queue %.*s category %.*s %s%s\n", x->incident_id,
           x->version, gd_event_kind_name(x->event), gd_state_name(x->from), gd_state_name(x->to),
           S(x->queue), S(x->category), gd_priority_name(x->priority),
           x->flagged ? " FLAGGED" : "");
    fflush(stdout);
}

static void print_gauge(const struct gd_gauge *g)
{
    char topic[GD_MAX_TOPIC + 1];
    int n = snprintf(topic, sizeof(topic), "queue.%.*s", S(g->queue));
    print_time_topic(topic, n < 0 ? 0 : (size_t)n < sizeof(topic) ? (size_t)n : sizeof(topic) - 1);
    printf("depth %" PRIu32 " in_flight %" PRIu32 " oldest %.1fs overdue %" PRIu32
           " consumers %" PRIu32 " in %.2f/s out %.2f/s\n",
           g->depth, g->in_flight, (double)g->oldest_age_ms / 1000.0, g->overdue, g->consumers,
           g->in_rate, g->out_rate);
    fflush(stdout);
}

static void print_human(const char *topic, const struct gd_status *st)
{
    print_time_topic(topic, strlen(topic));
    switch (st->kind) {
    case GD_STATUS_BROKER: {
        const struct gd_status_broker *b = &st->u.broker;
        printf("db %s, %s, open %" PRIu32 ", sessions %" PRIu32 ", backlog %" PRIu32
               ", commit p50 %" PRIu32 "us p99 %" PRIu32 "us\n",
               b->db_up ? "up" : "DOWN", b->active ? "active" : "standby", b->open_incidents,
               b->sessions, b->commit_backlog, b->commit_p50_us, b->commit_p99_us);
        break;
    }
    case GD_STATUS_ALARM: {
        const struct gd_status_alarm *a = &st->u.alarm;
        printf("ALARM %.*s [%.*s] incident %" PRIu64 " queue %.*s: %.*s\n", S(a->kind),
               S(a->severity), a->incident_id, S(a->queue), S(a->message));
        break;
    }
    case GD_STATUS_SLA: {
        const struct gd_status_sla *s = &st->u.sla;
        char due[32];
        printf("%s %s #%" PRIu64 " v%" PRIu32 " level %s queue %.*s due %s\n",
               s->breach ? "BREACH" : "warning", gd_deadline_kind_name(s->kind), s->incident_id,
               s->version, gd_level_name(s->level), S(s->queue), gdctl_time(s->due_at, due));
        break;
    }
    default:
        printf("?\n");
    }
    fflush(stdout);
}

/* Reads one [topic][body] message; returns 1, 0 when none is waiting, or
 * -1 for a message of another shape (dropped). */
static int read_status(void *sub, char topic[GD_MAX_TOPIC + 1], struct gd_buf *body)
{
    zmq_msg_t part;
    int frames = 0;
    bool bad = false;
    for (;;) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, sub, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return frames == 0 ? 0 : -1;
        }
        size_t n = zmq_msg_size(&part);
        if (frames == 0) {
            if (n > GD_MAX_TOPIC)
                bad = true;
            else {
                memcpy(topic, zmq_msg_data(&part), n);
                topic[n] = '\0';
            }
        } else if (frames == 1 && n <= GD_MAX_BODY) {
            char *p = n > body->cap ? realloc(body->data, n) : body->data;
            if (p) {
                body->data = p;
                body->cap = n > body->cap ? n : body->cap;
                memcpy(body->data, zmq_msg_data(&part), n);
                body->len = n;
            } else {
                bad = true;
            }
        } else {
            bad = true;
        }
        frames++;
        bool more = zmq_msg_more(&part);
        zmq_msg_close(&part);
        if (!more)
            break;
    }
    return bad || frames != 2 ? -1 : 1;
}

/* How much of a watch prefix to subscribe to: an inc. or queue. prefix
 * below town level is cut to the town (9 characters of code), the topic
 * its batches travel on. */
static size_t batch_prefix_len(const char *prefix)
{
    size_t len = strlen(prefix), root;
    if (strncmp(prefix, "inc.", 4) == 0)
        root = 4;
    else if (strncmp(prefix, "queue.", 6) == 0)
        root = 6;
    else
        return len;
    return len < root + GD_TOWN_CODE_LEN ? len : root + GD_TOWN_CODE_LEN;
}

/* True when an item's own topic starts with one of the prefixes (or
 * there are none). */
static bool wanted(struct gd_str topic, char **prefixes, int n)
{
    if (n == 0)
        return true;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(prefixes[i]);
        if (topic.len >= len && memcmp(topic.ptr, prefixes[i], len) == 0)
            return true;
    }
    return false;
}

/* Makes the SUB: subscribed to what the prefixes need (everything when
 * there are none) and to `broker`, and connected. Returns it, or NULL
 * after reporting why with *ret_rc the exit code. */
static void *open_sub(struct gdctl *g, char **prefixes, int n, int *ret_rc)
{
    void *sub = zmq_socket(g->zctx, ZMQ_SUB);
    if (!sub) {
        *ret_rc = gdctl_fail(g, EXIT_LOCAL, "local", "zmq_socket: %s", zmq_strerror(zmq_errno()));
        return NULL;
    }
    if (intake_curve_from_env(sub) < 0) {
        *ret_rc = gdctl_fail(g, EXIT_USAGE, "curve",
                             "bad CurveZMQ settings in GD_CURVE_SERVER_KEY / GD_CURVE_KEY");
        goto close_sub;
    }
    int linger = 0;
    int64_t maxsize = GD_MAX_BODY + GD_MAX_TOPIC;
    zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_setsockopt(sub, ZMQ_MAXMSGSIZE, &maxsize, sizeof(maxsize));
    if (n == 0)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
    else
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "broker", 6);
    for (int i = 0; i < n; i++)
        zmq_setsockopt(sub, ZMQ_SUBSCRIBE, prefixes[i], batch_prefix_len(prefixes[i]));
    if (zmq_connect(sub, g->status_ep) != 0) {
        *ret_rc = gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "cannot connect to %s: %s",
                             g->status_ep, zmq_strerror(zmq_errno()));
        goto close_sub;
    }
    return sub;

close_sub:
    zmq_close(sub);
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cmd_watch(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS,
        {"count", required_argument, NULL, 'n'},
        {"seconds", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    long count = 0;
    double seconds = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        if (opt == 'n') {
            count = strtol(optarg, &end, 10);
            if (*end || count < 1)
                return gdctl_usage("watch");
        } else if (opt == 's') {
            seconds = strtod(optarg, &end);
            if (*end || !(seconds > 0))
                return gdctl_usage("watch");
        } else if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0) {
            return gdctl_usage("watch");
        }
    }
    if (!g->status_ep)
        return gdctl_fail(g, EXIT_USAGE, "usage",
                          "no status endpoint: pass --status EP or set GD_STATUS");
    for (int i = optind; i < argc; i++)
        if (strlen(argv[i]) > GD_MAX_TOPIC)
            return gdctl_fail(g, EXIT_USAGE, "usage", "a prefix is at most %d bytes", GD_MAX_TOPIC);

    int rc = EXIT_LOCAL;
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0)
        goto restore_mask;
    char **prefixes = argv + optind;
    int n_prefixes = argc - optind;
    void *sub = open_sub(g, prefixes, n_prefixes, &rc);
    if (!sub)
        goto close_signalfd;
    struct gd_decoder *dec = gd_decoder_new();
    if (!dec)
        goto close_sub;
    struct gd_buf body = {0};
    long seen = 0;
    int64_t end_at = seconds > 0 ? mono_ms() + (int64_t)(seconds * 1000) : -1;
    int64_t heard = mono_ms(); /* the last `broker` message, or the last new SUB */
    bool lost = false;
    rc = EXIT_OK;
    for (;;) {
        int64_t now = mono_ms();
        if (now - heard >= STATSUB_SILENCE_MS) {
            if (!lost)
                fprintf(stderr, "gdctl: no broker status for %.1f s: subscribing anew\n",
                        (double)(now - heard) / 1000.0);
            lost = true;
            heard = now;
            zmq_close(sub);
            sub = open_sub(g, prefixes, n_prefixes, &rc);
            if (!sub)
                goto done;
        }
        int timeout = (int)(heard + STATSUB_SILENCE_MS - now);
        if (end_at >= 0) {
            int64_t left = end_at - now;
            if (left <= 0)
                break;
            if (left < timeout)
                timeout = (int)left;
        }
        zmq_pollitem_t items[2] = {{.socket = sub, .events = ZMQ_POLLIN},
                                   {.fd = sfd, .events = ZMQ_POLLIN}};
        if (zmq_poll(items, 2, timeout) < 0 && zmq_errno() != EINTR)
            break;
        if (items[1].revents) {
            /* consume the signal: restoring the mask must not deliver it */
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) < 0)
                fprintf(stderr, "gdctl: reading the signal fd: %s\n", strerror(errno));
            break;
        }
        char topic[GD_MAX_TOPIC + 1];
        int got;
        while ((got = read_status(sub, topic, &body)) != 0) {
            struct gd_status st;
            if (got < 0 || gd_decode_status(dec, body.data, body.len, &st, NULL) < 0) {
                fprintf(stderr, "gdctl: dropped a status message that does not decode\n");
                continue;
            }
            if (st.kind == GD_STATUS_BROKER) {
                heard = mono_ms();
                if (lost)
                    fprintf(stderr, "gdctl: broker status again\n");
                lost = false;
            }
            if (st.kind == GD_STATUS_TRANSITIONS) {
                for (uint32_t i = 0; i < st.u.transitions.n_items; i++) {
                    const struct gd_status_transition *x = &st.u.transitions.items[i];
                    if (!wanted(x->topic, prefixes, n_prefixes))
                        continue;
                    if (!g->json)
                        print_transition(x);
                    else if (gdctl_print_json(transition_json(x)) != EXIT_OK)
                        fprintf(stderr, "gdctl: out of memory\n");
                    if (count && ++seen >= count)
                        goto done;
                }
                continue;
            }
            if (st.kind == GD_STATUS_GAUGES) {
                for (uint32_t i = 0; i < st.u.gauges.n_items; i++) {
                    const struct gd_gauge *x = &st.u.gauges.items[i];
                    char qt[GD_MAX_TOPIC + 1];
                    int qn = snprintf(qt, sizeof(qt), "queue.%.*s", S(x->queue));
                    struct gd_str t = {.ptr = qt, .len = qn < 0 ? 0 : (uint32_t)qn};
                    if (!wanted(t, prefixes, n_prefixes))
                        continue;
                    if (!g->json)
                        print_gauge(x);
                    else if (gdctl_print_json(gauge_json(x)) != EXIT_OK)
                        fprintf(stderr, "gdctl: out of memory\n");
                    if (count && ++seen >= count)
                        goto done;
                }
                continue;
            }
            /* `broker` comes for the heartbeat even when no prefix asks for it */
            struct gd_str t = {.ptr = topic, .len = (uint32_t)strlen(topic)};
            if (!wanted(t, prefixes, n_prefixes))
                continue;
            if (g->json) {
                if (gdctl_print_json(status_json(topic, &st)) != EXIT_OK)
                    fprintf(stderr, "gdctl: out of memory\n");
            } else {
                print_human(topic, &st);
            }
            if (count && ++seen >= count)
                goto done;
        }
    }
done:
    gd_buf_fini(&body);
    gd_decoder_free(dec);
close_sub:
    if (sub) /* NULL when a new one could not be made */
        zmq_close(sub);
close_signalfd:
    close(sfd);
restore_mask:
    sigprocmask(SIG_SETMASK, &old, NULL);
    return rc;
}
