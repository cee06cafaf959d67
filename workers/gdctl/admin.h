/* admin.h - shared by gdctl's admin commands (dispatch, approve, deny): read an incident's version,
 * print a DONE. */
#ifndef GD_GDCTL_ADMIN_H
#define GD_GDCTL_ADMIN_H

#include "gdctl.h"

/* QUERYs incident `id` without history; on EXIT_OK sets *ret_version and
 * *ret_pending (the extension_pending time, 0 for none). */
int admin_read_version(struct gdctl *g, uint64_t id, uint32_t *ret_version, int64_t *ret_pending);

/* Prints a DONE answer ("incident N vV STATE queue Q", or JSON). */
int admin_print_done(struct gdctl *g, const char *what, const struct gd_done *d);

#endif
