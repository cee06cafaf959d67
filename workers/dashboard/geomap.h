/* geomap.h - the drill-down maps: org-unit boundaries read from PostGIS, simplified and projected
 * once per load, drawn as SVG with the model's live counts. */
#ifndef GD_DASH_GEOMAP_H
#define GD_DASH_GEOMAP_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "model.h"
#include "render.h"

/* A view is the map of one unit: its children (the district's towns, a
 * town's communities, a community's grids), in a box GEOMAP_SIZE units on
 * its longer side, north up, x scaled by cos(latitude) at the box's
 * middle. Outlines are simplified to GEOMAP_TOLERANCE units. */
#define GEOMAP_SIZE      1000
#define GEOMAP_TOLERANCE 1.0
#define GEOMAP_DECIMALS  1
/* Path bytes of one view beyond which it is not kept (logged, no map for
 * that unit), and of all views together beyond which a load fails. */
#define GEOMAP_MAX_VIEW_BYTES (512u * 1024)
#define GEOMAP_MAX_BYTES      (64u << 20)

struct geomap_shape {
    char code[GD_MAX_CODE + 1];
    char *path; /* SVG path data (absolute M, relative l), owned */
    float label_x, label_y, label_size;
};

struct geomap_view {
    char unit[GD_MAX_CODE + 1]; /* the unit whose children these are */
    float width, height;
    uint32_t n_shapes;
    size_t bytes; /* path data */
    struct geomap_shape *shapes;
    UT_hash_handle hh;
};

/* Everything one load read. Immutable once loaded: the loop replaces it
 * as a whole. */
struct geomap {
    struct geomap_view *views; /* hash by unit code */
    uint32_t n_views, n_shapes;
    size_t bytes;
    uint32_t n_dropped;                  /* views over GEOMAP_MAX_VIEW_BYTES */
    char first_dropped[GD_MAX_CODE + 1]; /* one of them, for the log */
    double load_ms;                      /* the query and the copy */
};

/* Reads the boundaries of every town, community and grid (a unit without
 * a polygon of its own is drawn as the union of the polygons of the units
 * below it: communities, grids, micro-grids; a unit with neither is not
 * drawn) and builds one view per parent. Blocks
 * on `conn` (call it off the loop thread, on a connection of its own).
 * Returns 0 with *ret (free with geomap_free), or a negative errno with a
 * message in err: -EIO (the query failed), -E2BIG (over GEOMAP_MAX_BYTES),
 * -ENOMEM. */
int geomap_load(PGconn *conn, struct geomap **ret, char *err, size_t errlen);

/* Frees a map; accepts NULL. */
void geomap_free(struct geomap *g);

/* The view of unit `code` (the map of its children), or NULL when none of
 * its children has a boundary. `g` may be NULL. */
const struct geomap_view *geomap_view(const struct geomap *g, const char *code);

/* The colour class of a unit with `open` incidents (queued and in flight)
 * of which `overdue` are past a deadline: "m-idle" (none open), "m-ok"
 * (none overdue), "m-warn" (under a quarter overdue), "m-bad". The page's
 * script applies the same rule (assets/app.js mapClass). */
const char *geomap_class(uint32_t open, uint32_t overdue);

/* Appends the SVG document of view `v`: one <path> per child with
 * data-unit, data-open, data-overdue, its colour class and fill, and a
 * <title> (name, code, open, overdue); one <text> label per child (its
 * name, without the name of the unit shown where it begins with it, and
 * "open / overdue"). Counts
 * are the same as the summary rows' totals (the queues of the child's
 * subtree). */
void geomap_render(struct tb *out, const struct geomap_view *v, const struct dash_model *m);

#endif
