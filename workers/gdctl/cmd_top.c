/* cmd_top.c - gdctl top: the dashboard's numbers in the terminal, redrawn in place (ANSI) every
 * interval. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "gdctl.h"
#include "model.h"
#include "orgload.h"
#include "statsub.h"

struct top {
    struct gdctl *g;
    uv_loop_t loop;
    struct dash_model model;
    struct statsub sub;
    uv_timer_t frame;
    uv_signal_t sigint, sigterm;
    const struct dash_unit *unit;
    long frames_left; /* 0 = forever */
    bool ansi;
    bool stopped;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_status(void *arg, const char *topic, size_t len, const struct gd_status *st)
{
    struct top *t = arg;
    dash_model_apply(&t->model, 0, topic, len, st, now_ms());
}

static void on_gauges(void *arg, const struct gd_gauges *ga, bool last)
{
    (void)last;
    struct top *t = arg;
    for (uint32_t i = 0; i < ga->n_gauges; i++)
        dash_model_gauge(&t->model, 0, &ga->gauges[i], now_ms());
}

static void on_error(void *arg, const char *topic, size_t len, const struct gd_decode_error *e)
{
    (void)topic;
    (void)len;
    (void)e;
    ((struct top *)arg)->model.decode_errors++;
}

/* Display width of UTF-8 text (CJK as 2 columns). */
static int width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p & 0xC0) != 0x80)
            w += *p >= 0xE0 ? 2 : 1;
    return w;
}

/* Prints `s` cut/padded to `cols` display columns. */
static void put_col(const char *s, int cols)
{
    int w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int cw = *p >= 0xE0 ? 2 : 1;
        if (w + cw > cols)
            break;
        size_t n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : *p >= 0xC0 ? 2 : 1;
        fwrite(p, 1, n, stdout);
        p += n;
        w += cw;
    }
    printf("%*s", cols - w, "");
}

static void age(int64_t ms, char *out, size_t size)
{
    int64_t s = ms / 1000;
    if (!ms)
        snprintf(out, size, "-");
    else if (s < 3600)
        snprintf(out, size, "%lldm%02lld", (long long)(s / 60), (long long)(s % 60));
    else
        snprintf(out, size, "%lldh%02lld", (long long)(s / 3600), (long long)(s % 3600 / 60));
}

static void print_row(const struct dash_model *m, const struct dash_unit *u)
{
    struct dash_queue qs[DASH_SECTORS], total;
    dash_model_queue_totals(m, u, qs, &total);
    struct dash_day all = {0};
    for (int s = 0; s < DASH_SECTORS; s++) {
        all.received += u->day[s].received;
        all.resolved += u->day[s].resolved;
        all.resolved_on_time += u->day[s].resolved_on_time;
    }
    char label[96];
    snprintf(label, sizeof(label), "%s %s", u->name, u->code);
    put_col(label, 26);
    for (int s = 0; s < DASH_SECTORS; s++) {
        char cell[48];
        snprintf(cell, sizeof(cell), "%u/%u/%u", qs[s].depth, qs[s].in_flight, qs[s].overdue);
        printf(" %13s", cell);
    }
    char old[48], rate[16];
    age(total.oldest_age_ms, old, sizeof(old));
    if (all.resolved)
        snprintf(rate, sizeof(rate), "%.1f%%", 100.0 * all.resolved_on_time / all.resolved);
    else
        snprintf(rate, sizeof(rate), "-");
    printf(" %6u %6u %6u %7s %6u %6u %7s\n", total.depth, total.in_flight, total.overdue, old,
           all.received, all.resolved, rate);
}

static void draw(struct top *t)
{
    const struct dash_model *m = &t->model;
    const struct dash_broker *b = &m->broker[0];
    char clock[16];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(clock, sizeof(clock), "%H:%M:%S", &tm);
    if (t->ansi)
        fputs("\033[H\033[2J", stdout); /* home, clear: redraw in place */
    printf("gdctl top  %s  %s (%s)  broker: %s, db %s, open %u, sessions %u\n", clock,
           t->unit->name, t->unit->code, b->seen ? "up" : "no status yet",
           b->seen && b->db_up ? "up" : "DOWN", b->open_incidents, b->sessions);
    printf("%-26s", "单位 unit");
    static const char *const heads[DASH_SECTORS] = {"党建 party", "经济 economy", "民生 livelih.",
                                                    "平安 safety", "其他 other"};
    for (int s = 0; s < DASH_SECTORS; s++) {
        printf(" ");
        printf("%*s", 13 - width(heads[s]), "");
        fputs(heads[s], stdout);
    }
    printf(" %6s %6s %6s %7s %6s %6s %7s\n", "queued", "flight", "overdu", "oldest", "intake",
           "solved", "ontime");
    printf("(sector cells: queued/in flight/overdue; intake, solved and on-time are today's)\n");
    print_row(m, t->unit);
    if (t->unit->level > GD_LEVEL_GRID)
        for (const struct dash_unit *c = t->unit->child; c; c = c->next)
            print_row(m, c);
    if (!t->ansi)
        printf("\f\n"); /* frame separator when not redrawing */
    fflush(stdout);
}

static void stop(struct top *t)
{
    if (t->stopped)
        return;
    t->stopped = true;
    statsub_close(&t->sub);
    uv_timer_stop(&t->frame);
    uv_close((uv_handle_t *)&t->frame, NULL);
    uv_close((uv_handle_t *)&t->sigint, NULL);
    uv_close((uv_handle_t *)&t->sigterm, NULL);
}

static void on_frame(uv_timer_t *h)
{
    struct top *t = h->data;
    dash_model_tick(&t->model, now_ms());
    draw(t);
    if (t->frames_left && --t->frames_left == 0)
        stop(t);
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data);
}

int cmd_top(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS,
        {"unit", required_argument, NULL, 'u'},
        {"interval", required_argument, NULL, 'i'},
        {"count", required_argument, NULL, 'n'},
        {"plain", no_argument, NULL, 'p'},
        {NULL, 0, NULL, 0},
    };
    const char *unit = NULL;
    double interval = 1.0;
    long count = 0;
    bool plain = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        char *end;
        switch (opt) {
        case 'u':
            unit = optarg;
            break;
        case 'i':
            interval = strtod(optarg, &end);
            if (*end || !(interval >= 0.1 && interval <= 3600))
                return gdctl_usage("top");
            break;
        case 'n':
            count = strtol(optarg, &end, 10);
            if (*end || count < 1)
                return gdctl_usage("top");
            break;
        case 'p':
            plain = true;
            break;
        default:
            if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
                return gdctl_usage("top");
        }
    }
    if (optind < argc)
        return gdctl_usage("top");
    if (!g->status_ep)
        return gdctl_fail(g, EXIT_USAGE, "usage", "top needs --status (or $GD_STATUS)");
    struct top *t = calloc(1, sizeof(*t));
    if (!t)
        return EXIT_LOCAL;
    int rc = EXIT_OK;
    char err[512];
    t->g = g;
    t->frames_left = count;
    t->ansi = !plain;
    uv_loop_init(&t->loop);
    dash_model_init(&t->model, 480, now_ms());
    struct statsub_callbacks cb = {
        .on_status = on_status, .on_gauges = on_gauges, .on_error = on_error, .arg = t};
    /* subscribe before reading the database, as the dashboard does; a
     * broker that falls silent is subscribed to anew, as there */
    if (statsub_open(&t->sub, &t->loop, g->zctx, g->status_ep, g->intake_ep, STATSUB_SILENCE_MS,
                     &cb, err, sizeof(err)) < 0) {
        rc = gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "%s", err);
        goto free_top;
    }
    PGconn *db = gdctl_db(g);
    if (!db) {
        rc = EXIT_UNAVAILABLE;
        goto close_sub;
    }
    if (orgload_tree(db, &t->model, err, sizeof(err)) < 0 ||
        orgload_seed(db, &t->model, 0, 30, err, sizeof(err)) < 0) {
        PQfinish(db);
        rc = gdctl_fail(g, EXIT_UNAVAILABLE, "database", "%s", err);
        goto close_sub;
    }
    PQfinish(db);
    t->unit = unit ? dash_model_unit(&t->model, unit) : t->model.root;
    if (!t->unit) {
        rc = gdctl_fail(g, EXIT_NOT_FOUND, "not_found", "no org unit %s", unit);
        goto close_sub;
    }
    uv_timer_init(&t->loop, &t->frame);
    t->frame.data = t;
    uv_timer_start(&t->frame, on_frame, (uint64_t)(interval * 1000), (uint64_t)(interval * 1000));
    uv_signal_init(&t->loop, &t->sigint);
    uv_signal_init(&t->loop, &t->sigterm);
    t->sigint.data = t->sigterm.data = t;
    uv_signal_start(&t->sigint, on_signal, SIGINT);
    uv_signal_start(&t->sigterm, on_signal, SIGTERM);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    goto free_model;

close_sub:
    statsub_close(&t->sub);
    uv_run(&t->loop, UV_RUN_NOWAIT);
free_model:
    uv_loop_close(&t->loop);
free_top:
    dash_model_fini(&t->model);
    free(t);
    return rc;
}
