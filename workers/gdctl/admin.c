/* admin.c - shared by gdctl's admin commands (dispatch, approve, deny): read an incident's version,
 * print a DONE. */
#include <inttypes.h>

#include "admin.h"

int admin_read_version(struct gdctl *g, uint64_t id, uint32_t *ret_version, int64_t *ret_pending)
{
    struct gd_msg m = {.type = GD_T_QUERY};
    m.u.query.incident_id = id;
    m.u.query.events = false;
    struct gd_msg r;
    int rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r.type != GD_T_INCIDENT)
        return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
    *ret_version = r.u.incident.incident.version;
    *ret_pending = r.u.incident.incident.extension_pending;
    return EXIT_OK;
}

int admin_print_done(struct gdctl *g, const char *what, const struct gd_done *d)
{
    if (g->json)
        return gdctl_print_json(json_pack("{s:s,s:I,s:I,s:s,s:o}", "done", what, "incident_id",
                                          (json_int_t)d->incident_id, "version",
                                          (json_int_t)d->version, "state", gd_state_name(d->state),
                                          "queue", gdctl_json_str(d->queue)));
    printf("%s: incident %" PRIu64 " version %" PRIu32 " %s, queue %.*s\n", what, d->incident_id,
           d->version, gd_state_name(d->state), (int)d->queue.len,
           d->queue.ptr ? d->queue.ptr : "");
    return EXIT_OK;
}
