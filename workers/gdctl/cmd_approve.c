/* cmd_approve.c - gdctl approve / deny: decide an incident's pending extension request (APPROVE).
 */
#include <string.h>

#include "admin.h"

int cmd_approve(struct gdctl *g, int argc, char **argv)
{
    const char *name = argv[0];
    bool approve = strcmp(name, "approve") == 0;
    static const struct option opts[] = {GDCTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage(name);
    uint64_t id;
    int npos = argc - optind;
    if ((npos != 1 && npos != 2) || gdctl_parse_id(argv[optind], &id) < 0)
        return gdctl_usage(name);
    uint32_t version;
    int64_t pending;
    int rc = admin_read_version(g, id, &version, &pending);
    if (rc != EXIT_OK)
        return rc;
    if (!pending)
        fprintf(stderr,
                "gdctl: incident %s has no pending extension request; asking the "
                "broker anyway\n",
                argv[optind]);
    struct gd_msg m = {.type = GD_T_APPROVE};
    m.u.approve = (struct gd_approve){
        .incident_id = id,
        .version = version,
        .approve = approve,
        .note = npos == 2 ? gd_str_c(argv[optind + 1]) : GD_STR_NULL,
    };
    struct gd_msg r;
    rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r.type != GD_T_DONE)
        return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
    return admin_print_done(g, approve ? "approved" : "denied", &r.u.done);
}
