/* cmd_show.c - gdctl show: one incident and its history (QUERY). */
#include <inttypes.h>
#include <string.h>

#include "gdctl.h"

#define S(x) (int)(x).len, (x).ptr ? (x).ptr : ""

static void print_human(const struct gd_incident_reply *r, bool with_reporter)
{
    const struct gd_incident *i = &r->incident;
    char t1[32], t2[32], t3[32];
    printf("incident %" PRIu64 "  version %" PRIu32 "  %s  priority %s  level %s%s\n", i->id,
           i->version, gd_state_name(i->state), gd_priority_name(i->priority),
           gd_level_name(i->level), i->flagged ? "  FLAGGED (挂账)" : "");
    printf("  source       %.*s / %.*s\n", S(i->source), S(i->external_id));
    printf("  category     %.*s\n", i->category.len ? (int)i->category.len : 6,
           i->category.len ? i->category.ptr : "(none)");
    printf("  queue        %.*s   owner %.*s\n", S(i->queue), S(i->owner));
    printf("  location     unit %.*s  address %.*s", S(i->location.unit), S(i->location.address));
    if (i->location.has_coords)
        printf("  lat %.6f lon %.6f", i->location.lat, i->location.lon);
    printf("\n  reported     %s   received %s\n", gdctl_time(i->reported_at, t1),
           gdctl_time(i->received_at, t2));
    printf("  sign due     %s   resolve due %s\n", gdctl_time(i->sign_due, t1),
           gdctl_time(i->resolve_due, t2));
    printf("  attempts %" PRIu32 "  escalations %" PRIu32 "  extension pending %s\n", i->attempts,
           i->escalations, i->extension_pending ? gdctl_time(i->extension_pending, t3) : "no");
    if (i->description.len)
        printf("  description  %.*s\n", S(i->description));
    for (uint32_t k = 0; k < i->n_attachments; k++)
        printf("  attachment   %.*s\n", S(i->attachments[k]));
    if (with_reporter && i->has_reporter)
        printf("  reporter     %.*s  %.*s  %.*s\n", S(i->reporter.name), S(i->reporter.phone),
               S(i->reporter.address));
    printf("history:\n");
    for (uint32_t k = 0; k < r->n_events; k++) {
        const struct gd_event *e = &r->events[k];
        printf("  v%-3" PRIu32 " %s  %-15s %s -> %s", e->version, gdctl_time(e->at, t1),
               gd_event_kind_name(e->kind), gd_state_name(e->from), gd_state_name(e->to));
        if (e->queue.len)
            printf("  queue %.*s", S(e->queue));
        if (e->actor.len)
            printf("  by %.*s", S(e->actor));
        if (e->note.len)
            printf("  \"%.*s\"", S(e->note));
        printf("\n");
    }
    if (r->truncated)
        printf("  ... (older events not shown)\n");
}

int cmd_show(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS,
        {"reporter", no_argument, NULL, 'r'},
        {"source", required_argument, NULL, 's'},
        {"external-id", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    struct gd_msg m = {.type = GD_T_QUERY};
    struct gd_query *q = &m.u.query;
    q->events = true;
    bool with_reporter = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 'r')
            with_reporter = true;
        else if (opt == 's')
            q->source = gd_str_c(optarg);
        else if (opt == 'x')
            q->external_id = gd_str_c(optarg);
        else if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage("show");
    }
    bool by_key = q->source.len || q->external_id.len;
    if (by_key ? optind != argc || !q->source.len || !q->external_id.len
               : optind != argc - 1 || gdctl_parse_id(argv[optind], &q->incident_id) < 0)
        return gdctl_usage("show");
    struct gd_msg r;
    int rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r.type != GD_T_INCIDENT)
        return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
    if (!g->json) {
        print_human(&r.u.incident, with_reporter);
        return EXIT_OK;
    }
    json_t *events = json_array();
    for (uint32_t k = 0; events && k < r.u.incident.n_events; k++)
        if (json_array_append_new(events, gdctl_json_event(&r.u.incident.events[k])) < 0) {
            json_decref(events);
            events = NULL;
        }
    json_t *inc = gdctl_json_incident(&r.u.incident.incident, with_reporter);
    if (!events || !inc) {
        json_decref(events);
        json_decref(inc);
        return EXIT_LOCAL;
    }
    return gdctl_print_json(json_pack("{s:o,s:o,s:b}", "incident", inc, "events", events,
                                      "truncated", r.u.incident.truncated));
}
