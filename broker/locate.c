/* locate.c - where a SUBMIT happened: its unit from a named code, a position or an address. */
#define GEOS_USE_ONLY_R_API
#include "locate.h"

#include <errno.h>
#include <geos_c.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "org.h"

static const char *const method_names[] = {
    [LOCATE_NONE] = "",
    [LOCATE_GIVEN] = "given",
    [LOCATE_POSITION] = "position",
    [LOCATE_ADDRESS] = "address",
};

const char *locate_method_name(enum locate_method m)
{
    return (unsigned)m < sizeof(method_names) / sizeof(method_names[0]) ? method_names[m] : "";
}

int locate_method_parse(const char *s)
{
    for (int i = 0; i < (int)(sizeof(method_names) / sizeof(method_names[0])); i++)
        if (strcmp(s, method_names[i]) == 0)
            return i;
    return -1;
}

/* ---- the data of one load ---- */

/* One unit's boundary. */
struct area {
    struct unit *unit;
    GEOSGeometry *geom;
    const GEOSPreparedGeometry *prep;
};

/* One address row: its normalised "road\x1fnumber" key and its point. */
struct address {
    UT_hash_handle hh;
    double lat, lon;
    char key[];
};

struct data {
    struct area *areas;
    size_t n_areas;
    GEOSSTRtree *tree; /* of the areas; NULL when there are none */
    struct address *addresses;
    struct locate_stats stats;
};

struct locate {
    GEOSContextHandle_t geos;
    struct locate_limits lim;
    struct data cur;
    char geos_error[256]; /* GEOS's last error message */
};

static void data_free(GEOSContextHandle_t geos, struct data *d)
{
    if (d->tree)
        GEOSSTRtree_destroy_r(geos, d->tree);
    for (size_t i = 0; i < d->n_areas; i++) {
        if (d->areas[i].prep)
            GEOSPreparedGeom_destroy_r(geos, d->areas[i].prep);
        GEOSGeom_destroy_r(geos, d->areas[i].geom);
    }
    free(d->areas);
    struct address *a, *tmp;
    HASH_ITER(hh, d->addresses, a, tmp)
    {
        HASH_DELETE(hh, d->addresses, a);
        free(a);
    }
    *d = (struct data){0};
}

static void on_geos_error(const char *message, void *userdata)
{
    struct locate *l = userdata;
    snprintf(l->geos_error, sizeof(l->geos_error), "%s", message);
}

int locate_new(struct locate **ret, const struct locate_limits *lim)
{
    struct locate *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->geos = GEOS_init_r();
    if (!l->geos) {
        free(l);
        return -ENOMEM;
    }
    GEOSContext_setErrorMessageHandler_r(l->geos, on_geos_error, l);
    l->lim = *lim;
    *ret = l;
    return 0;
}

void locate_free(struct locate *l)
{
    if (!l)
        return;
    data_free(l->geos, &l->cur);
    GEOS_finish_r(l->geos);
    free(l);
}

void locate_stats(const struct locate *l, struct locate_stats *ret)
{
    *ret = l->cur.stats;
}

/* ---- loading ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The units whose boundaries are read: the levels a point is placed at. */
#define BOUNDARY_FROM                                          \
    "FROM unit_boundary b JOIN org_unit o ON o.code = b.unit " \
    "WHERE o.level IN ('grid', 'micro_grid') "

static const char sql_boundary_size[] =
    "SELECT count(*), coalesce(sum(ST_NPoints(b.geom)), 0) " BOUNDARY_FROM;
static const char sql_boundaries[] =
    "SELECT b.unit, ST_AsBinary(b.geom) " BOUNDARY_FROM "ORDER BY b.unit COLLATE \"C\"";
static const char sql_address_count[] = "SELECT count(*) FROM address_point";
static const char sql_addresses[] =
    "SELECT road, number, ST_Y(geom), ST_X(geom) FROM address_point "
    "WHERE NOT ST_IsEmpty(geom) LIMIT $1";

/* Runs `sql` (text parameters, results in `format`: 0 text, 1 binary);
 * NULL with a message in err when it did not return rows. */
static PGresult *query(PGconn *conn, const char *sql, int nparams, const char *const *params,
                       int format, char *err, size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, format);
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
        return res;
    fail(err, errlen, "%s", PQresultErrorMessage(res));
    PQclear(res);
    return NULL;
}

/* Finest level first, then the smallest code (byte order). */
static int area_cmp(const void *x, const void *y)
{
    const struct area *a = x, *b = y;
    if (a->unit->level != b->unit->level)
        return a->unit->level < b->unit->level ? -1 : 1;
    return strcmp(a->unit->code, b->unit->code);
}

static int load_boundaries(struct locate *l, PGconn *conn, const struct org *org, struct data *d,
                           char *err, size_t errlen)
{
    PGresult *res = query(conn, sql_boundary_size, 0, NULL, 0, err, errlen);
    if (!res)
        return -1;
    unsigned long long n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    unsigned long long vertices = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (vertices > l->lim.max_vertices)
        return fail(err, errlen,
                    "the %llu grid and micro-grid boundaries have %llu vertices, more than "
                    "--max-boundary-vertices (%llu)",
                    n, vertices, (unsigned long long)l->lim.max_vertices);

    res = query(conn, sql_boundaries, 0, NULL, 1, err, errlen);
    if (!res)
        return -1;
    int rows = PQntuples(res);
    d->areas = calloc(rows ? (size_t)rows : 1, sizeof(*d->areas));
    GEOSWKBReader *reader = GEOSWKBReader_create_r(l->geos);
    d->tree = GEOSSTRtree_create_r(l->geos, 10);
    int rc = 0;
    if (!d->areas || !reader || !d->tree) {
        rc = fail(err, errlen, "out of memory reading %d boundaries", rows);
        goto out;
    }
    for (int i = 0; i < rows; i++) {
        char code[GD_MAX_CODE + 1];
        snprintf(code, sizeof(code), "%.*s", PQgetlength(res, i, 0), PQgetvalue(res, i, 0));
        struct unit *u = org_unit(org, code, strlen(code));
        if (!u || (u->level != GD_LEVEL_GRID && u->level != GD_LEVEL_MICRO_GRID)) {
            d->stats.skipped++; /* the org tree was not reloaded with it */
            continue;
        }
        l->geos_error[0] = '\0';
        GEOSGeometry *g =
            GEOSWKBReader_read_r(l->geos, reader, (const unsigned char *)PQgetvalue(res, i, 1),
                                 (size_t)PQgetlength(res, i, 1));
        if (!g) {
            rc = fail(err, errlen, "boundary of unit %s: bad WKB: %s", code, l->geos_error);
            goto out;
        }
        struct area *a = &d->areas[d->n_areas++];
        a->unit = u;
        a->geom = g;
        int type = GEOSGeomTypeId_r(l->geos, g);
        if ((type != GEOS_POLYGON && type != GEOS_MULTIPOLYGON) || GEOSisEmpty_r(l->geos, g)) {
            rc = fail(err, errlen, "boundary of unit %s is not a polygon or multipolygon", code);
            goto out;
        }
        int nv = GEOSGetNumCoordinates_r(l->geos, g);
        if (nv < 0 || d->stats.vertices + (uint64_t)nv > l->lim.max_vertices) {
            rc = fail(err, errlen, "boundaries beyond --max-boundary-vertices (%llu) at unit %s",
                      (unsigned long long)l->lim.max_vertices, code);
            goto out;
        }
        d->stats.vertices += (uint64_t)nv;
        if (GEOSisValid_r(l->geos, g) != 1) {
            rc = fail(err, errlen, "boundary of unit %s is not a valid polygon", code);
            goto out;
        }
        if (u->level == GD_LEVEL_GRID)
            d->stats.grids++;
        else
            d->stats.micro_grids++;
    }
    /* in the order a point's candidates are tried (see finer) */
    qsort(d->areas, d->n_areas, sizeof(*d->areas), area_cmp);
    for (size_t i = 0; i < d->n_areas; i++) {
        struct area *a = &d->areas[i];
        a->prep = GEOSPrepare_r(l->geos, a->geom);
        if (!a->prep) {
            rc = fail(err, errlen, "boundary of unit %s: %s", a->unit->code, l->geos_error);
            goto out;
        }
        GEOSSTRtree_insert_r(l->geos, d->tree, a->geom, a);
    }
out:
    if (reader)
        GEOSWKBReader_destroy_r(l->geos, reader);
    PQclear(res);
    return rc;
}

static int load_addresses(struct locate *l, PGconn *conn, struct data *d, char *err, size_t errlen)
{
    PGresult *res = query(conn, sql_address_count, 0, NULL, 0, err, errlen);
    if (!res)
        return -1;
    unsigned long long n = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (n > l->lim.max_addresses)
        return fail(err, errlen, "the address table has %llu rows, more than --max-addresses (%u)",
                    n, l->lim.max_addresses);
    char limit[16];
    snprintf(limit, sizeof(limit), "%u", l->lim.max_addresses);
    const char *params[1] = {limit};
    res = query(conn, sql_addresses, 1, params, 0, err, errlen);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        size_t road = (size_t)PQgetlength(res, i, 0), number = (size_t)PQgetlength(res, i, 1);
        if (road + 1 + number > LOCATE_MAX_NORM) {
            d->stats.skipped++; /* no address we are sent normalises to that */
            continue;
        }
        struct address *a = malloc(sizeof(*a) + road + number + 2);
        if (!a) {
            PQclear(res);
            return fail(err, errlen, "out of memory reading %d addresses", PQntuples(res));
        }
        memcpy(a->key, PQgetvalue(res, i, 0), road);
        a->key[road] = '\x1f';
        memcpy(a->key + road + 1, PQgetvalue(res, i, 1), number);
        a->key[road + 1 + number] = '\0';
        a->lat = strtod(PQgetvalue(res, i, 2), NULL);
        a->lon = strtod(PQgetvalue(res, i, 3), NULL);
        /* (road, number) is the table's primary key: no duplicates */
        HASH_ADD(hh, d->addresses, key, road + 1 + number, a);
        d->stats.addresses++;
    }
    PQclear(res);
    return 0;
}

int locate_load(struct locate *l, PGconn *conn, const struct org *org, char *err, size_t errlen)
{
    struct data d = {0};
    if (load_boundaries(l, conn, org, &d, err, errlen) < 0 ||
        load_addresses(l, conn, &d, err, errlen) < 0) {
        data_free(l->geos, &d);
        return -1;
    }
    if (d.n_areas == 0) {
        GEOSSTRtree_destroy_r(l->geos, d.tree);
        d.tree = NULL;
    }
    data_free(l->geos, &l->cur);
    l->cur = d;
    return 0;
}

/* ---- lookups ---- */

/* Candidates of one point: the boundaries whose envelope holds it. They
 * are tested finest first, so the first that covers the point is the
 * answer (most points: one test, their micro-grid's). */
#define MAX_CANDIDATES 32

struct point_query {
    struct locate *l;
    const GEOSGeometry *point;
    struct area *cand[MAX_CANDIDATES];
    int n;
    struct area *best; /* of candidates beyond MAX_CANDIDATES, tested at once */
};

/* Whether a's unit wins over b's when both cover the point: the areas
 * are sorted by area_cmp, so the one earlier in the array (and no unit
 * needs to be read: they are cold in the cache). */
static bool finer(const struct area *a, const struct area *b)
{
    return a < b;
}

static bool covers(struct point_query *q, const struct area *a)
{
    return GEOSPreparedCovers_r(q->l->geos, a->prep, q->point) == 1;
}

static void on_candidate(void *item, void *userdata)
{
    struct area *a = item;
    struct point_query *q = userdata;
    if (q->n < MAX_CANDIDATES) {
        q->cand[q->n++] = a;
        return;
    }
    /* a crowd of overlapping envelopes: no ordering, test as they come */
    if ((!q->best || finer(a, q->best)) && covers(q, a))
        q->best = a;
}

struct unit *locate_point(struct locate *l, double lat, double lon)
{
    if (!l->cur.tree)
        return NULL;
    GEOSGeometry *p = GEOSGeom_createPointFromXY_r(l->geos, lon, lat);
    if (!p)
        return NULL;
    struct point_query q = {.l = l, .point = p};
    GEOSSTRtree_query_r(l->geos, l->cur.tree, p, on_candidate, &q);
    for (int i = 1; i < q.n; i++) /* insertion sort: a handful */
        for (int j = i; j > 0 && finer(q.cand[j], q.cand[j - 1]); j--) {
            struct area *t = q.cand[j];
            q.cand[j] = q.cand[j - 1];
            q.cand[j - 1] = t;
        }
    for (int i = 0; i < q.n && (!q.best || finer(q.cand[i], q.best)); i++)
        if (covers(&q, q.cand[i])) {
            q.best = q.cand[i];
            break;
        }
    GEOSGeom_destroy_r(l->geos, p);
    return q.best ? q.best->unit : NULL;
}

/* Looks up road norm[0, road) with number `number` (len n), then with
 * the number's 号 added or taken off. */
static struct address *find_key(struct locate *l, const char *norm, size_t road, const char *number,
                                size_t n)
{
    static const char hao[] = "\xe5\x8f\xb7"; /* 号 */
    char key[LOCATE_MAX_NORM + sizeof(hao) + 1];
    memcpy(key, norm, road);
    key[road] = '\x1f';
    memcpy(key + road + 1, number, n);
    struct address *a = NULL;
    HASH_FIND(hh, l->cur.addresses, key, road + 1 + n, a);
    if (a)
        return a;
    size_t len = road + 1 + n;
    if (n > 3 && memcmp(number + n - 3, hao, 3) == 0) {
        len -= 3;
    } else {
        memcpy(key + len, hao, 3);
        len += 3;
    }
    HASH_FIND(hh, l->cur.addresses, key, len, a);
    return a;
}

int locate_address(struct locate *l, const char *addr, size_t len, double *ret_lat, double *ret_lon)
{
    char norm[LOCATE_MAX_NORM];
    size_t n;
    size_t starts[LOCATE_MAX_SPLITS];
    if (locate_address_norm(addr, len, norm, sizeof(norm), &n) < 0)
        return -ENOENT;
    int k = locate_address_splits(norm, n, starts, LOCATE_MAX_SPLITS);
    for (int i = 0; i < k; i++) {
        struct address *a = find_key(l, norm, starts[i], norm + starts[i], n - starts[i]);
        if (a) {
            *ret_lat = a->lat;
            *ret_lon = a->lon;
            return 0;
        }
    }
    return -ENOENT;
}

void locate_submit(struct locate *l, const struct org *org, const struct gd_location *where,
                   struct locate_result *ret)
{
    *ret = (struct locate_result){.by = LOCATE_NONE};
    if (where->unit.len) {
        ret->unit = org_unit(org, where->unit.ptr, where->unit.len);
        if (ret->unit) {
            ret->by = LOCATE_GIVEN;
            return;
        }
        ret->reason = LOCATE_UNKNOWN_UNIT;
    }
    double lat = where->lat, lon = where->lon;
    enum locate_method by = LOCATE_POSITION;
    if (!where->has_coords) {
        if (!where->address.len)
            return;
        if (locate_address(l, where->address.ptr, where->address.len, &lat, &lon) < 0) {
            ret->reason = LOCATE_ADDRESS_UNMATCHED;
            return;
        }
        by = LOCATE_ADDRESS;
    }
    ret->unit = locate_point(l, lat, lon);
    ret->by = ret->unit ? by : LOCATE_NONE;
    ret->reason = ret->unit ? NULL : LOCATE_OUTSIDE_GRIDS;
}

/* ---- addresses: the key ---- */

/* Length of the UTF-8 sequence at p (at most n bytes), or 0 when it is not
 * one (overlong, surrogate, beyond U+10FFFF, cut). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    if (p[0] < 0x80)
        return 1;
    size_t k = p[0] >= 0xf0 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (k == 0 || p[0] > 0xf4 || k > n)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((p[0] == 0xe0 && p[1] < 0xa0) || (p[0] == 0xed && p[1] >= 0xa0) ||
        (p[0] == 0xf0 && p[1] < 0x90) || (p[0] == 0xf4 && p[1] >= 0x90))
        return 0;
    return k;
}

int locate_address_norm(const char *s, size_t len, char *out, size_t cap, size_t *ret_len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t k = utf8_len(p + i, len - i);
        if (k == 0)
            return -EINVAL;
        unsigned c = p[i]; /* the character, when it is one the rule changes */
        if (k == 2 && p[i] == 0xc2 && p[i + 1] == 0xa0)
            c = ' '; /* NO-BREAK SPACE */
        else if (k == 3 && p[i] == 0xe3 && p[i + 1] == 0x80 && p[i + 2] == 0x80)
            c = ' '; /* IDEOGRAPHIC SPACE */
        else if (k == 3 && p[i] == 0xef &&
                 ((p[i + 1] == 0xbc && p[i + 2] >= 0x81) || (p[i + 1] == 0xbd && p[i + 2] <= 0x9e)))
            /* U+FF01..U+FF5E: the full-width form of U+0021..U+007E */
            c = 0x21 + ((unsigned)(p[i + 1] - 0xbc) << 6) + p[i + 2] - 0x81;
        else if (k > 1)
            c = 0x100; /* any other: kept as it is */
        if (c == ' ' || (c >= '\t' && c <= '\r')) {
            i += k;
            continue;
        }
        size_t w = c < 0x80 ? 1 : k;
        if (o + w > cap)
            return -E2BIG;
        if (c < 0x80)
            out[o] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
        else
            memcpy(out + o, p + i, k);
        o += w;
        i += k;
    }
    *ret_len = o;
    return 0;
}

int locate_address_splits(const char *norm, size_t len, size_t *ret_starts, int max)
{
    int n = 0;
    for (size_t i = len; i > 1 && n < max; i--) {
        /* a run of digits starts at i - 1, after at least one byte of road */
        bool digit = norm[i - 1] >= '0' && norm[i - 1] <= '9';
        bool before = norm[i - 2] >= '0' && norm[i - 2] <= '9';
        if (digit && !before)
            ret_starts[n++] = i - 1;
    }
    return n;
}
