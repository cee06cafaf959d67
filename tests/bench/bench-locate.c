/* bench-locate.c - the broker's placing of positions in memory (broker/locate.c), beside the
 * lookup of a given unit code, on the boundaries of a database, in the same run.
 *
 * usage: bench-locate DSN [lookups]
 *
 * Loads the org tree and the grid and micro-grid boundaries as the broker
 * does (org_load, locate_load), then times `lookups` (default 2 000 000)
 * calls of locate_point over points spread across the boundaries (8 inside
 * each grid, ST_GeneratePoints) and as many org_unit lookups of the grid
 * codes those points are in (what a SUBMIT naming its grid costs). Prints
 * both rates, the memory the boundaries take (RSS after the load and after
 * the first pass, when GEOS has built its lazy indexes) per vertex, and
 * checks that every point is placed in its own grid or one of its
 * micro-grids.
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "locate.h"
#include "org.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-locate: %s\n", what);
    exit(1);
}

/* Resident set size of this process, kB. */
static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb;
}

struct point {
    struct unit *grid;
    double lat, lon;
};

int main(int argc, char **argv)
{
    if (argc < 2)
        die("usage: bench-locate DSN [lookups]");
    long lookups = argc > 2 ? atol(argv[2]) : 2000000;
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK)
        die(PQerrorMessage(c));
    char err[512];
    struct org org = {0};
    if (org_load(&org, c, "500113", err, sizeof(err)) < 0)
        die(err);
    struct locate *l;
    struct locate_limits lim = {.max_vertices = 100000000, .max_addresses = 100000000};
    if (locate_new(&l, &lim) < 0)
        die("out of memory");
    long rss0 = rss_kb();
    double t0 = now_s();
    if (locate_load(l, c, &org, err, sizeof(err)) < 0)
        die(err);
    double load_s = now_s() - t0;
    long rss1 = rss_kb();
    struct locate_stats st;
    locate_stats(l, &st);

    PGresult *r = PQexec(c, "SELECT unit, ST_Y(p.geom), ST_X(p.geom) FROM (SELECT b.unit, "
                            "(ST_Dump(ST_GeneratePoints(b.geom, 8, 15))).geom FROM unit_boundary b "
                            "JOIN org_unit o ON o.code = b.unit AND o.level = 'grid') p "
                            "ORDER BY random()");
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) == 0)
        die("no grid boundaries in unit_boundary");
    int n = PQntuples(r);
    struct point *pts = calloc((size_t)n, sizeof(*pts));
    if (!pts)
        die("out of memory");
    for (int i = 0; i < n; i++) {
        const char *code = PQgetvalue(r, i, 0);
        pts[i] = (struct point){.grid = org_unit(&org, code, strlen(code)),
                                .lat = strtod(PQgetvalue(r, i, 1), NULL),
                                .lon = strtod(PQgetvalue(r, i, 2), NULL)};
    }
    PQclear(r);
    PQfinish(c);

    /* the first pass checks the answers and lets GEOS build its indexes */
    for (int i = 0; i < n; i++) {
        struct unit *u = locate_point(l, pts[i].lat, pts[i].lon);
        if (!u || (u != pts[i].grid && u->parent != pts[i].grid))
            die("a point was not placed in its own grid");
    }
    long rss2 = rss_kb();

    t0 = now_s();
    unsigned long placed = 0;
    for (long i = 0; i < lookups; i++)
        placed += locate_point(l, pts[i % n].lat, pts[i % n].lon) != NULL;
    double point_s = now_s() - t0;

    t0 = now_s();
    unsigned long found = 0;
    for (long i = 0; i < lookups; i++) {
        const char *code = pts[i % n].grid->code;
        found += org_unit(&org, code, strlen(code)) != NULL;
    }
    double code_s = now_s() - t0;
    if (placed != (unsigned long)lookups || found != (unsigned long)lookups)
        die("lookups missed");

    printf("boundaries %u grids, %u micro-grids, %llu vertices: loaded in %.2f s; RSS +%.1f MB "
           "after the load, +%.1f MB after one pass (%.0f bytes a vertex)\n",
           st.grids, st.micro_grids, (unsigned long long)st.vertices, load_s,
           (double)(rss1 - rss0) / 1024, (double)(rss2 - rss0) / 1024,
           st.vertices ? (double)(rss2 - rss0) * 1024 / (double)st.vertices : 0.0);
    printf("position   %ld locate_point over %d points: %.0f lookups/s (%.2f us each)\n", lookups,
           n, (double)lookups / point_s, point_s * 1e6 / (double)lookups);
    printf("unit code  %ld org_unit of the same grids: %.0f lookups/s (%.2f us each)\n", lookups,
           (double)lookups / code_s, code_s * 1e6 / (double)lookups);
    free(pts);
    locate_free(l);
    org_clear(&org);
    return 0;
}
