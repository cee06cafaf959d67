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
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>
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
        a->prep = GEOSPrepare_r(l->geos, g);
        if (!a->prep) {
            rc = fail(err, errlen, "boundary of unit %s: %s", code, l->geos_error);
            goto out;
        }
        GEOSSTRtree_insert_r(l->geos, d->tree, g, a);
        if (u->level == GD_LEVEL_GRID)
            d->stats.grids++;
        else
            d->stats.micro_grids++;
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

struct point_query {
    struct locate *l;
    const GEOSGeometry *point;
    struct area *best;
};

/* Whether a's unit wins over b's when both cover the point. */
static bool finer(const struct area *a, const struct area *b)
{
    if (a->unit->level != b->unit->level)
        return a->unit->level < b->unit->level;
    return strcmp(a->unit->code, b->unit->code) < 0;
}

static void on_candidate(void *item, void *userdata)
{
    struct area *a = item;
    struct point_query *q = userdata;
    if (q->best && !finer(a, q->best))
        return; /* could not win: spare the test */
    if (GEOSPreparedCovers_r(q->l->geos, a->prep, q->point) == 1)
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
    GEOSGeom_destroy_r(l->geos, p);
    return q.best ? q.best->unit : NULL;
}

int locate_address(struct locate *l, const char *addr, size_t len, double *ret_lat, double *ret_lon)
{
    char norm[LOCATE_MAX_NORM];
    size_t n, road, number;
    if (locate_address_norm(addr, len, norm, sizeof(norm), &n) < 0 ||
        locate_address_split(norm, n, &road, &number) < 0)
        return -ENOENT;
    char key[LOCATE_MAX_NORM + 1];
    memcpy(key, norm, road);
    key[road] = '\x1f';
    memcpy(key + road + 1, norm + road, number);
    struct address *a = NULL;
    HASH_FIND(hh, l->cur.addresses, key, road + 1 + number, a);
    if (!a)
        return -ENOENT;
    *ret_lat = a->lat;
    *ret_lon = a->lon;
    return 0;
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

int locate_address_norm(const char *s, size_t len, char *out, size_t cap, size_t *ret_len)
{
    if (u8_check((const uint8_t *)s, len) != NULL)
        return -EINVAL;
    uint8_t buf[LOCATE_MAX_NORM];
    size_t n = sizeof(buf);
    uint8_t *nfkc = u8_normalize(UNINORM_NFKC, (const uint8_t *)s, len, buf, &n);
    if (!nfkc)
        return errno == ENOMEM ? -ENOMEM : -EINVAL;
    size_t o = 0;
    int rc = 0;
    for (const uint8_t *p = nfkc, *end = nfkc + n; p < end;) {
        ucs4_t c;
        p += u8_mbtouc_unsafe(&c, p, (size_t)(end - p));
        if (uc_is_space(c))
            continue;
        uint8_t enc[6];
        int k = u8_uctomb(enc, uc_tolower(c), sizeof(enc));
        if (k < 0 || o + (size_t)k > cap) {
            rc = -E2BIG;
            break;
        }
        memcpy(out + o, enc, (size_t)k);
        o += (size_t)k;
    }
    if (nfkc != buf)
        free(nfkc);
    if (rc == 0)
        *ret_len = o;
    return rc;
}

int locate_address_split(const char *norm, size_t len, size_t *ret_road_len, size_t *ret_number_len)
{
    size_t end = len;
    while (end > 0 && (norm[end - 1] < '0' || norm[end - 1] > '9'))
        end--;
    size_t start = end;
    while (start > 0 && norm[start - 1] >= '0' && norm[start - 1] <= '9')
        start--;
    if (end == 0 || start == 0)
        return -ENOENT;
    *ret_road_len = start;
    *ret_number_len = end - start;
    return 0;
}
