/* cmd_dispatch.c - gdctl dispatch: a dispatcher routes a triage incident to an org unit (DISPATCH).
 */
#include "admin.h"

int cmd_dispatch(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {GDCTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage("dispatch");
    uint64_t id;
    int npos = argc - optind;
    if ((npos != 2 && npos != 3) || gdctl_parse_id(argv[optind], &id) < 0)
        return gdctl_usage("dispatch");
    /* No retry on stale_version: it means someone else changed the incident
     * (perhaps dispatched it) since it was read; the dispatcher looks again. */
    uint32_t version;
    int64_t pending;
    int rc = admin_read_version(g, id, &version, &pending);
    if (rc != EXIT_OK)
        return rc;
    struct gd_msg m = {.type = GD_T_DISPATCH};
    m.u.dispatch = (struct gd_dispatch){
        .incident_id = id,
        .version = version,
        .unit = gd_str_c(argv[optind + 1]),
        .note = npos == 3 ? gd_str_c(argv[optind + 2]) : GD_STR_NULL,
    };
    struct gd_msg r;
    rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r.type != GD_T_DONE)
        return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
    return admin_print_done(g, "dispatched", &r.u.done);
}
