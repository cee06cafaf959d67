/* cmd_queues.c - gdctl queues: queue gauges from SNAPSHOT (every part of a split answer). */
#include <inttypes.h>

#include "gdctl.h"

/* Most GAUGES parts read for one SNAPSHOT: bounds a broker that never says
 * the last part. 64 x 200 queues is far beyond a city. */
#define MAX_PARTS 64

static int add_part(json_t *list, const struct gd_gauges *ga)
{
    for (uint32_t i = 0; i < ga->n_gauges; i++)
        if (json_array_append_new(list, gdctl_json_gauge(&ga->gauges[i])) < 0)
            return -1;
    return 0;
}

int cmd_queues(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {GDCTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage("queues");
    if (argc - optind > 1)
        return gdctl_usage("queues");
    struct gd_msg m = {.type = GD_T_SNAPSHOT};
    if (optind < argc)
        m.u.snapshot.prefix = gd_str_c(argv[optind]);
    struct gd_msg r;
    int rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    json_t *list = json_array();
    if (!list)
        return EXIT_LOCAL;
    int64_t at = 0;
    for (int part = 0;; part++) {
        if (r.type != GD_T_GAUGES) {
            json_decref(list);
            return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
        }
        at = r.u.gauges.at;
        if (add_part(list, &r.u.gauges) < 0) {
            json_decref(list);
            return EXIT_LOCAL;
        }
        if (!r.u.gauges.truncated)
            break;
        if (part + 1 == MAX_PARTS) {
            json_decref(list);
            return gdctl_fail(g, EXIT_LOCAL, "local", "more than %d GAUGES parts", MAX_PARTS);
        }
        uint64_t ref = m.u.snapshot.ref;
        do {
            rc = intake_recv(g->intake, g->timeout_ms, &r);
        } while (rc == 1 && intake_msg_ref(&r) != ref);
        if (rc != 1) {
            json_decref(list);
            return gdctl_fail(g, EXIT_UNAVAILABLE, "timeout",
                              "the rest of the GAUGES answer did not come within %d ms",
                              g->timeout_ms);
        }
    }
    if (g->json)
        return gdctl_print_json(json_pack("{s:I,s:o}", "at", (json_int_t)at, "queues", list));
    printf("%-24s %7s %9s %10s %7s %9s %8s %8s\n", "QUEUE", "DEPTH", "IN_FLIGHT", "OLDEST",
           "OVERDUE", "CONSUMERS", "IN/s", "OUT/s");
    size_t i;
    json_t *q;
    json_array_foreach(list, i, q)
    {
        char oldest[32];
        json_int_t age = json_integer_value(json_object_get(q, "oldest_age_ms"));
        if (age >= 3600000)
            snprintf(oldest, sizeof(oldest), "%.1fh", (double)age / 3600000.0);
        else if (age >= 60000)
            snprintf(oldest, sizeof(oldest), "%.1fm", (double)age / 60000.0);
        else
            snprintf(oldest, sizeof(oldest), "%.1fs", (double)age / 1000.0);
        printf("%-24s %7" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT
               " %10s %7" JSON_INTEGER_FORMAT " %9" JSON_INTEGER_FORMAT " %8.2f %8.2f\n",
               json_string_value(json_object_get(q, "queue")),
               json_integer_value(json_object_get(q, "depth")),
               json_integer_value(json_object_get(q, "in_flight")), oldest,
               json_integer_value(json_object_get(q, "overdue")),
               json_integer_value(json_object_get(q, "consumers")),
               json_real_value(json_object_get(q, "in_rate")),
               json_real_value(json_object_get(q, "out_rate")));
    }
    json_decref(list);
    return EXIT_OK;
}
