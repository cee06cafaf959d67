/* geomap.c - the drill-down maps: boundaries from PostGIS, simplified and projected in SQL, kept
 * per parent unit, drawn as SVG with live counts.
 *
 * The projection is done once per load by the database: each view's box is
 * the extent of its children, x is scaled by cos(latitude) at the box's
 * middle (so a square kilometre looks square at Chongqing's 29.5 degrees),
 * y points south, the longer side is GEOMAP_SIZE units; outlines are then
 * simplified (ST_SimplifyPreserveTopology) to GEOMAP_TOLERANCE units and
 * written as SVG path data (ST_AsSVG, relative moves, GEOMAP_DECIMALS
 * decimals). Only the counts are added per request. */
#include "geomap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* $1 box size, $2 tolerance, $3 decimals. One row per drawn child: parent,
 * code, view width and height, path, label point (on the surface), and
 * the square root of the drawn area (for the label's size). */
static const char MAP_SQL[] =
    "WITH below AS MATERIALIZED ( " /* bounded units and the ones above them */
    "    SELECT p.code, p.town, p.community, p.grid "
    "      FROM gd_unit_path p JOIN unit_boundary b ON b.unit = p.code "
    "     WHERE p.level IN ('community', 'grid', 'micro_grid') "
    "), merged AS ( " /* for a unit without a boundary: the union of those below it */
    "    SELECT a.unit, ST_Multi(ST_Union(b.geom)) AS geom "
    "      FROM (SELECT town AS unit, code FROM below "
    "            UNION ALL SELECT community, code FROM below WHERE community <> code "
    "            UNION ALL SELECT grid, code FROM below WHERE grid <> code) a "
    "      JOIN unit_boundary b ON b.unit = a.code "
    "     WHERE a.unit IS NOT NULL "
    "       AND NOT EXISTS (SELECT 1 FROM unit_boundary o WHERE o.unit = a.unit) "
    "     GROUP BY a.unit "
    "), shape AS ( "
    "    SELECT u.code, u.parent, coalesce(b.geom, m.geom) AS geom "
    "      FROM org_unit u "
    "      LEFT JOIN unit_boundary b ON b.unit = u.code "
    "      LEFT JOIN merged m ON m.unit = u.code "
    "     WHERE u.level IN ('town', 'community', 'grid') AND u.parent IS NOT NULL "
    "       AND coalesce(b.geom, m.geom) IS NOT NULL "
    "), frame AS ( "
    "    SELECT parent, ST_XMin(e) AS x0, ST_YMax(e) AS y1, ST_XMax(e) - ST_XMin(e) AS dx, "
    "           ST_YMax(e) - ST_YMin(e) AS dy, cos(radians((ST_YMin(e) + ST_YMax(e)) / 2)) AS k "
    "      FROM (SELECT parent, ST_Extent(geom) AS e FROM shape GROUP BY parent) x "
    "), fit AS ( "
    "    SELECT *, $1::float8 / greatest(dx * k, dy, 1e-12) AS s FROM frame "
    "), drawn AS MATERIALIZED ( "
    "    SELECT sh.parent, sh.code, f.dx * f.k * f.s AS w, f.dy * f.s AS h, "
    "           ST_SimplifyPreserveTopology( "
    "               ST_Affine(sh.geom, f.k * f.s, 0, 0, f.s, -f.x0 * f.k * f.s, -f.y1 * f.s), "
    "               $2::float8) AS g "
    "      FROM shape sh JOIN fit f USING (parent) "
    ") "
    "SELECT parent, code, round(w::numeric, 1), round(h::numeric, 1), ST_AsSVG(g, 1, $3::int), "
    "       round(ST_X(ST_PointOnSurface(g))::numeric, 1), "
    "round(-ST_Y(ST_PointOnSurface(g))::numeric, 1), "
    "       round(sqrt(ST_Area(g))::numeric, 1) "
    "  FROM drawn WHERE NOT ST_IsEmpty(g) ORDER BY parent, code ";

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void geomap_free(struct geomap *g)
{
    if (!g)
        return;
    struct geomap_view *v, *tmp;
    HASH_ITER(hh, g->views, v, tmp)
    {
        HASH_DEL(g->views, v);
        for (uint32_t i = 0; i < v->n_shapes; i++)
            free(v->shapes[i].path);
        free(v->shapes);
        free(v);
    }
    free(g);
}

/* Copies rows [first, end) of `r` (all of one parent) into a new view of
 * g; a view over GEOMAP_MAX_VIEW_BYTES is counted as dropped instead.
 * Returns 0 or -ENOMEM. */
static int add_view(struct geomap *g, PGresult *r, int first, int end)
{
    size_t bytes = 0;
    for (int i = first; i < end; i++)
        bytes += (size_t)PQgetlength(r, i, 4);
    const char *unit = PQgetvalue(r, first, 0);
    if (bytes > GEOMAP_MAX_VIEW_BYTES || strlen(unit) > GD_MAX_CODE) {
        if (!g->n_dropped++)
            snprintf(g->first_dropped, sizeof(g->first_dropped), "%.*s", GD_MAX_CODE, unit);
        return 0;
    }
    struct geomap_view *v = calloc(1, sizeof(*v));
    if (!v)
        return -ENOMEM;
    v->shapes = calloc((size_t)(end - first), sizeof(*v->shapes));
    if (!v->shapes) {
        free(v);
        return -ENOMEM;
    }
    snprintf(v->unit, sizeof(v->unit), "%s", unit);
    v->width = strtof(PQgetvalue(r, first, 2), NULL);
    v->height = strtof(PQgetvalue(r, first, 3), NULL);
    for (int i = first; i < end; i++) {
        const char *code = PQgetvalue(r, i, 1), *path = PQgetvalue(r, i, 4);
        if (strlen(code) > GD_MAX_CODE)
            continue; /* no such unit in the model either */
        if (strspn(path, "0123456789.- MLlz") != strlen(path))
            continue; /* not ST_AsSVG path data: never copied into a document */
        struct geomap_shape *s = &v->shapes[v->n_shapes];
        s->path = strdup(path);
        if (!s->path) {
            HASH_ADD_STR(g->views, unit, v); /* freed with g */
            return -ENOMEM;
        }
        snprintf(s->code, sizeof(s->code), "%s", code);
        s->label_x = strtof(PQgetvalue(r, i, 5), NULL);
        s->label_y = strtof(PQgetvalue(r, i, 6), NULL);
        s->label_size = strtof(PQgetvalue(r, i, 7), NULL);
        v->n_shapes++;
    }
    v->bytes = bytes;
    HASH_ADD_STR(g->views, unit, v);
    g->n_views++;
    g->n_shapes += v->n_shapes;
    g->bytes += bytes;
    return 0;
}

int geomap_load(PGconn *conn, struct geomap **ret, char *err, size_t errlen)
{
    double t0 = mono_ms();
    char size[16], tolerance[16], decimals[16];
    snprintf(size, sizeof(size), "%d", GEOMAP_SIZE);
    snprintf(tolerance, sizeof(tolerance), "%g", GEOMAP_TOLERANCE);
    snprintf(decimals, sizeof(decimals), "%d", GEOMAP_DECIMALS);
    const char *params[3] = {size, tolerance, decimals};
    PGresult *r = PQexecParams(conn, MAP_SQL, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        PQclear(r);
        return -EIO;
    }
    struct geomap *g = calloc(1, sizeof(*g));
    int rc = g ? 0 : -ENOMEM;
    size_t total = 0;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++)
        total += (size_t)PQgetlength(r, i, 4);
    if (rc == 0 && total > GEOMAP_MAX_BYTES) {
        snprintf(err, errlen, "%zu bytes of outlines after simplification, more than %u", total,
                 GEOMAP_MAX_BYTES);
        rc = -E2BIG;
    }
    for (int first = 0; rc == 0 && first < n;) {
        int end = first + 1;
        while (end < n && strcmp(PQgetvalue(r, end, 0), PQgetvalue(r, first, 0)) == 0)
            end++;
        rc = add_view(g, r, first, end);
        first = end;
    }
    PQclear(r);
    if (rc == -ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rc < 0) {
        geomap_free(g);
        return rc;
    }
    g->load_ms = mono_ms() - t0;
    *ret = g;
    return 0;
}

const struct geomap_view *geomap_view(const struct geomap *g, const char *code)
{
    struct geomap_view *v = NULL;
    if (g)
        HASH_FIND_STR(g->views, code, v);
    return v;
}

const char *geomap_class(uint32_t open, uint32_t overdue)
{
    if (open == 0 && overdue == 0)
        return "m-idle";
    if (overdue == 0)
        return "m-ok";
    if ((uint64_t)overdue * 4 < open)
        return "m-warn";
    return "m-bad";
}

/* The fill a class stands for when the SVG is shown on its own (the
 * page's style sheet sets the same colours). */
static const char *class_fill(const char *cls)
{
    return !strcmp(cls, "m-idle")   ? "#1c2a44"
           : !strcmp(cls, "m-ok")   ? "#1d6b47"
           : !strcmp(cls, "m-warn") ? "#a87a12"
                                    : "#b3372c";
}

/* Appends s as XML character data or attribute text: markup characters
 * escaped, control characters dropped, invalid UTF-8 bytes as U+FFFD. */
static void xml_text(struct tb *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t n = *p < 0x80                  ? 1
                   : *p >= 0xC2 && *p < 0xE0  ? 2
                   : *p >= 0xE0 && *p < 0xF0  ? 3
                   : *p >= 0xF0 && *p <= 0xF4 ? 4
                                              : 0;
        for (size_t i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80)
                n = 0;
        if (n == 0) {
            tb_puts(out, "\xef\xbf\xbd");
            p++;
            continue;
        }
        if (n == 1) {
            const char *e = *p == '&'   ? "&amp;"
                            : *p == '<' ? "&lt;"
                            : *p == '>' ? "&gt;"
                            : *p == '"' ? "&quot;"
                                        : NULL;
            if (e)
                tb_puts(out, e);
            else if (*p >= 0x20 || *p == '\t' || *p == '\n')
                tb_put(out, (const char *)p, 1);
        } else {
            tb_put(out, (const char *)p, n);
        }
        p += n;
    }
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

void geomap_render(struct tb *out, const struct geomap_view *v, const struct dash_model *m)
{
    /* a margin around the box, so that outlines on its edge are whole */
    float pad = 6;
    tb_printf(out,
              "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"gd-map\" viewBox=\"%.1f %.1f "
              "%.1f %.1f\" data-unit=\"",
              -pad, -pad, v->width + 2 * pad, v->height + 2 * pad);
    xml_text(out, v->unit);
    tb_puts(out,
            "\" role=\"img\">\n<g class=\"shapes\" stroke=\"#5c7196\" stroke-width=\"1.2\">\n");
    /* one pass over the queues per child (dash_model_queue_totals) */
    uint32_t *counts = calloc(v->n_shapes ? 2 * (size_t)v->n_shapes : 1, sizeof(*counts));
    if (!counts) {
        out->failed = true;
        return;
    }
    struct dash_queue qs[DASH_SECTORS], total;
    for (uint32_t i = 0; i < v->n_shapes; i++) {
        const struct geomap_shape *s = &v->shapes[i];
        const struct dash_unit *u = dash_model_unit(m, s->code);
        if (!u)
            continue; /* a boundary of a unit the model does not know (loaded since) */
        dash_model_queue_totals(m, u, qs, &total);
        uint32_t open = counts[2 * i] = total.depth + total.in_flight;
        counts[2 * i + 1] = total.overdue;
        const char *cls = geomap_class(open, total.overdue);
        tb_puts(out, "<path data-unit=\"");
        xml_text(out, s->code);
        tb_printf(out,
                  "\" data-open=\"%u\" data-overdue=\"%u\" class=\"%s%s\" fill=\"%s\" "
                  "fill-rule=\"evenodd\" d=\"",
                  open, total.overdue, cls,
                  u->level > GD_LEVEL_GRID && u->n_children ? " drill" : "", class_fill(cls));
        tb_puts(out, s->path);
        tb_puts(out, "\"><title>");
        xml_text(out, u->name);
        tb_puts(out, " ");
        xml_text(out, s->code);
        tb_printf(out, " · 在办 open %u · 超期 overdue %u</title></path>\n", open, total.overdue);
    }
    tb_puts(out, "</g>\n<g class=\"labels\" text-anchor=\"middle\" fill=\"#f2f5fa\">\n");
    /* labels leave out the name of the unit shown where a child's name
     * repeats it (融门社区第1网格 on 融门社区's map: 第1网格) */
    const struct dash_unit *parent = dash_model_unit(m, v->unit);
    size_t plen = parent ? strlen(parent->name) : 0;
    for (uint32_t i = 0; i < v->n_shapes; i++) {
        const struct geomap_shape *s = &v->shapes[i];
        const struct dash_unit *u = dash_model_unit(m, s->code);
        if (!u)
            continue;
        /* the label's size follows the shape's, within what stays legible */
        float size = s->label_size / 4;
        size = size < 16 ? 16 : size > 40 ? 40 : size;
        /* and it stays inside the box: half the name's width (CJK
         * characters are about one font size wide) from each side */
        const char *name = u->name;
        if (plen && strncmp(name, parent->name, plen) == 0 && name[plen])
            name += plen;
        float half = (float)utf8_chars(name) * size / 2, x = s->label_x;
        if (2 * half < v->width)
            x = x < half ? half : x > v->width - half ? v->width - half : x;
        tb_puts(out, "<text data-unit=\"");
        xml_text(out, s->code);
        tb_printf(out, "\" x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\"><tspan class=\"n\">", x,
                  s->label_y, size);
        xml_text(out, name);
        tb_printf(out,
                  "</tspan><tspan class=\"c\" x=\"%.1f\" dy=\"1.15em\">%u / %u</tspan></text>\n", x,
                  counts[2 * i], counts[2 * i + 1]);
    }
    free(counts);
    tb_puts(out, "</g>\n</svg>\n");
}
