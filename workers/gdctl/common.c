/* common.c - gdctl helpers shared by the subcommands: options, broker calls, failures, JSON views.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "gdctl.h"

int gdctl_common_option(struct gdctl *g, int opt, const char *arg)
{
    switch (opt) {
    case 1000:
        g->intake_ep = arg;
        return 0;
    case 1001:
        g->status_ep = arg;
        return 0;
    case 1002:
        g->dsn = arg;
        return 0;
    case 1003:
        g->json = true;
        return 0;
    case 1004: {
        char *end;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (errno || *end || v < 1 || v > 3600000) {
            fprintf(stderr, "gdctl: --timeout takes milliseconds, 1..3600000\n");
            return -1;
        }
        g->timeout_ms = (int)v;
        return 0;
    }
    case 1005:
        g->city_file = arg;
        return 0;
    case 1006: {
        char *end;
        errno = 0;
        long v = strtol(arg, &end, 10);
        if (errno || *end || end == arg || v < 0 || v > 3600000) {
            fprintf(stderr, "gdctl: --failover-ms takes milliseconds, 0..3600000\n");
            return -1;
        }
        g->failover_ms = (int)v;
        return 0;
    }
    default:
        return -1;
    }
}

int gdctl_usage(const char *name)
{
    for (const struct gdctl_command *c = gdctl_commands; c->name; c++) {
        if (strcmp(c->name, name) == 0) {
            fprintf(stderr, "usage: gdctl [OPTIONS] %s %s\n       %s\n", c->name, c->args,
                    c->summary);
            break;
        }
    }
    return EXIT_USAGE;
}

int gdctl_fail(struct gdctl *g, int exit, const char *code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "gdctl: %s\n", msg);
    if (g->json) {
        json_t *v =
            json_pack("{s:{s:s,s:s,s:i}}", "error", "code", code, "message", msg, "exit", exit);
        gdctl_print_json(v);
    }
    return exit;
}

int gdctl_call(struct gdctl *g, struct gd_msg *m, struct gd_msg *ret)
{
    if (!g->intake) {
        if (!g->intake_ep)
            return gdctl_fail(g, EXIT_USAGE, "usage",
                              "no intake endpoint: pass --intake EP or set GD_INTAKE");
        char why[256];
        if (intake_check_endpoints(g->intake_ep, why, sizeof(why)) < 0)
            return gdctl_fail(g, EXIT_USAGE, "usage", "intake: %s", why);
        int rc = intake_open(g->zctx, g->intake_ep, &g->intake);
        if (rc < 0)
            return gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "cannot connect to %s: %s",
                              g->intake_ep, zmq_strerror(-rc));
        intake_set_failover_ms(g->intake, (uint32_t)g->failover_ms);
    }
    int rc = intake_call(g->intake, m, g->timeout_ms, ret);
    if (rc == 0)
        return gdctl_fail(g, EXIT_UNAVAILABLE, "timeout",
                          "no answer from the broker at %s within %d ms", g->intake_ep,
                          g->timeout_ms);
    if (rc == -EINVAL) /* the request does not encode */
        return gdctl_fail(g, EXIT_USAGE, "usage", "request not sent: %s",
                          gd_code_message(intake_encode_error(g->intake)));
    if (rc < 0)
        return gdctl_fail(g, EXIT_LOCAL, "local", "request not sent or reply unreadable: %s",
                          strerror(-rc));
    if (ret->type == GD_T_BUSY)
        return gdctl_fail(
            g, EXIT_UNAVAILABLE, "busy", "broker busy (%.*s); retry in %" PRIu32 " ms",
            (int)ret->u.busy.reason.len, ret->u.busy.reason.ptr ? ret->u.busy.reason.ptr : "",
            ret->u.busy.retry_ms);
    if (ret->type == GD_T_REJECTED) {
        const struct gd_error_reply *e = &ret->u.error;
        const char *code = gd_code_name(e->code);
        int exit = e->code == GD_E_NOT_FOUND ? EXIT_NOT_FOUND : EXIT_REFUSED;
        fprintf(stderr, "gdctl: refused: %s%s%.*s: %.*s\n", code, e->field.len ? " at " : "",
                (int)e->field.len, e->field.ptr ? e->field.ptr : "", (int)e->message.len,
                e->message.ptr ? e->message.ptr : "");
        if (g->json) {
            json_t *v = json_pack("{s:{s:s,s:o,s:o,s:i}}", "error", "code", code, "message",
                                  gdctl_json_str(e->message), "field", gdctl_json_str(e->field),
                                  "exit", exit);
            gdctl_print_json(v);
        }
        return exit;
    }
    return EXIT_OK;
}

int gdctl_city(struct gdctl *g)
{
    if (g->city)
        return EXIT_OK;
    if (!g->city_file)
        return gdctl_fail(g, EXIT_USAGE, "usage", "no city: pass --city FILE or set GD_CITY");
    char err[512];
    int rc = city_load(g->city_file, &g->city, err, sizeof(err));
    if (rc == -ENOMEM)
        return gdctl_fail(g, EXIT_LOCAL, "local", "out of memory reading %s", g->city_file);
    if (rc < 0)
        return gdctl_fail(g, EXIT_USAGE, "usage", "bad city configuration: %s", err);
    return EXIT_OK;
}

PGconn *gdctl_db(struct gdctl *g)
{
    if (!g->dsn) {
        gdctl_fail(g, EXIT_USAGE, "usage", "no database: pass --db DSN or set GD_DB_DSN");
        return NULL;
    }
    return gdctl_db_dsn(g, g->dsn);
}

PGconn *gdctl_db_dsn(struct gdctl *g, const char *dsn)
{
    PGconn *db = PQconnectdb(dsn);
    if (PQstatus(db) != CONNECTION_OK) {
        gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "cannot connect to the database: %s",
                   PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    return db;
}

int gdctl_print_json(json_t *v)
{
    if (!v)
        return EXIT_LOCAL;
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!s)
        return EXIT_LOCAL;
    puts(s);
    fflush(stdout);
    free(s);
    return EXIT_OK;
}

json_t *gdctl_json_str(struct gd_str s)
{
    return json_stringn(s.ptr ? s.ptr : "", s.len);
}

static int set(json_t *o, const char *k, json_t *v)
{
    return v ? json_object_set_new(o, k, v) : -1;
}

json_t *gdctl_json_incident(const struct gd_incident *inc, bool with_reporter)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = 0;
    bad |= set(o, "id", json_integer((json_int_t)inc->id));
    bad |= set(o, "version", json_integer(inc->version));
    bad |= set(o, "state", json_string(gd_state_name(inc->state)));
    bad |= set(o, "priority", json_string(gd_priority_name(inc->priority)));
    bad |= set(o, "level", json_string(gd_level_name(inc->level)));
    bad |= set(o, "source", gdctl_json_str(inc->source));
    bad |= set(o, "external_id", gdctl_json_str(inc->external_id));
    bad |= set(o, "category", gdctl_json_str(inc->category));
    bad |= set(o, "queue", gdctl_json_str(inc->queue));
    bad |= set(o, "owner", gdctl_json_str(inc->owner));
    json_t *loc = json_object();
    bad |= set(o, "location", loc);
    if (loc) {
        bad |= set(loc, "unit", gdctl_json_str(inc->location.unit));
        bad |= set(loc, "address", gdctl_json_str(inc->location.address));
        if (inc->location.has_coords) {
            bad |= set(loc, "lat", json_real(inc->location.lat));
            bad |= set(loc, "lon", json_real(inc->location.lon));
        }
    }
    bad |= set(o, "description", gdctl_json_str(inc->description));
    if (with_reporter && inc->has_reporter) {
        json_t *r = json_object();
        bad |= set(o, "reporter", r);
        if (r) {
            bad |= set(r, "name", gdctl_json_str(inc->reporter.name));
            bad |= set(r, "phone", gdctl_json_str(inc->reporter.phone));
            bad |= set(r, "address", gdctl_json_str(inc->reporter.address));
        }
    }
    bad |= set(o, "reported_at", json_integer(inc->reported_at));
    bad |= set(o, "received_at", json_integer(inc->received_at));
    bad |= set(o, "sign_due", json_integer(inc->sign_due));
    bad |= set(o, "resolve_due", json_integer(inc->resolve_due));
    bad |= set(o, "attempts", json_integer(inc->attempts));
    bad |= set(o, "escalations", json_integer(inc->escalations));
    bad |= set(o, "flagged", json_boolean(inc->flagged));
    bad |= set(o, "extension_pending", json_integer(inc->extension_pending));
    json_t *att = json_array();
    bad |= set(o, "attachments", att);
    for (uint32_t i = 0; att && i < inc->n_attachments; i++)
        bad |= json_array_append_new(att, gdctl_json_str(inc->attachments[i]));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *gdctl_json_event(const struct gd_event *e)
{
    return json_pack("{s:I,s:I,s:s,s:s,s:s,s:o,s:o,s:o}", "version", (json_int_t)e->version, "at",
                     (json_int_t)e->at, "kind", gd_event_kind_name(e->kind), "from",
                     gd_state_name(e->from), "to", gd_state_name(e->to), "queue",
                     gdctl_json_str(e->queue), "actor", gdctl_json_str(e->actor), "note",
                     gdctl_json_str(e->note));
}

json_t *gdctl_json_gauge(const struct gd_gauge *ga)
{
    return json_pack("{s:o,s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "queue", gdctl_json_str(ga->queue),
                     "depth", (json_int_t)ga->depth, "in_flight", (json_int_t)ga->in_flight,
                     "oldest_age_ms", (json_int_t)ga->oldest_age_ms, "overdue",
                     (json_int_t)ga->overdue, "consumers", (json_int_t)ga->consumers, "in_rate",
                     ga->in_rate, "out_rate", ga->out_rate);
}

const char *gdctl_time(int64_t ms, char out[32])
{
    if (ms <= 0) {
        snprintf(out, 32, "-");
        return out;
    }
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
        snprintf(out, 32, "%lld ms", (long long)ms);
    return out;
}

int gdctl_parse_id(const char *s, uint64_t *ret)
{
    if (!s || *s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0)
        return -1;
    *ret = v;
    return 0;
}
