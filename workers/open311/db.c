/* db.c - gd-open311's read-only database path: a bounded connection pool and the GeoReport queries
 * (never reporter data). */
#include "db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "city.h"
#include "isotime.h"

/* Longest wait for a free connection before answering 503. */
#define POOL_WAIT_MS 2000

struct db {
    char *dsn;
    unsigned size, n_free;
    PGconn **conns; /* NULL: not opened yet */
    bool *busy;
    pthread_mutex_t lock;
    pthread_cond_t freed;
};

int db_new(const char *dsn, unsigned size, struct db **ret)
{
    struct db *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->dsn = strdup(dsn);
    d->conns = calloc(size, sizeof(*d->conns));
    d->busy = calloc(size, sizeof(*d->busy));
    if (!d->dsn || !d->conns || !d->busy) {
        db_free(d);
        return -ENOMEM;
    }
    d->size = d->n_free = size;
    pthread_mutex_init(&d->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&d->freed, &ca);
    pthread_condattr_destroy(&ca);
    *ret = d;
    return 0;
}

void db_free(struct db *d)
{
    if (!d)
        return;
    for (unsigned i = 0; d->conns && i < d->size; i++)
        PQfinish(d->conns[i]);
    if (d->size) {
        pthread_mutex_destroy(&d->lock);
        pthread_cond_destroy(&d->freed);
    }
    free(d->conns);
    free(d->busy);
    free(d->dsn);
    free(d);
}

/* A connection of the pool (opened or reset as needed), or NULL. */
static PGconn *acquire(struct db *d, unsigned *ret_slot)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += POOL_WAIT_MS / 1000;
    pthread_mutex_lock(&d->lock);
    while (d->n_free == 0)
        if (pthread_cond_timedwait(&d->freed, &d->lock, &until) != 0) {
            pthread_mutex_unlock(&d->lock);
            return NULL;
        }
    unsigned slot = 0;
    while (d->busy[slot])
        slot++;
    d->busy[slot] = true;
    d->n_free--;
    pthread_mutex_unlock(&d->lock);

    PGconn *c = d->conns[slot];
    if (!c || PQstatus(c) != CONNECTION_OK) {
        PQfinish(c);
        static const char *const keys[] = {"dbname", "options", "application_name", NULL};
        const char *values[] = {d->dsn,
                                "-c default_transaction_read_only=on -c statement_timeout=5000",
                                "gd-open311", NULL};
        c = PQconnectdbParams(keys, values, 1);
        if (PQstatus(c) != CONNECTION_OK) {
            PQfinish(c);
            c = NULL;
        }
        d->conns[slot] = c;
    }
    if (!c) {
        pthread_mutex_lock(&d->lock);
        d->busy[slot] = false;
        d->n_free++;
        pthread_cond_signal(&d->freed);
        pthread_mutex_unlock(&d->lock);
        return NULL;
    }
    *ret_slot = slot;
    return c;
}

static void release(struct db *d, unsigned slot)
{
    pthread_mutex_lock(&d->lock);
    d->busy[slot] = false;
    d->n_free++;
    pthread_cond_signal(&d->freed);
    pthread_mutex_unlock(&d->lock);
}

/* Runs a parameterised query; DB_OK with *ret (caller PQclear()s) or a
 * failure. */
static int query(struct db *d, const char *sql, int n, const char *const *params, PGresult **ret)
{
    unsigned slot;
    PGconn *c = acquire(d, &slot);
    if (!c)
        return DB_UNAVAILABLE;
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? DB_OK
             : PQstatus(c) != CONNECTION_OK         ? DB_UNAVAILABLE
                                                    : DB_ERROR;
    release(d, slot);
    if (rc != DB_OK) {
        PQclear(res);
        return rc;
    }
    *ret = res;
    return DB_OK;
}

static json_t *text_or_null(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col) || !*PQgetvalue(res, row, col))
        return json_null();
    return json_string(PQgetvalue(res, row, col));
}

static json_t *service_json(PGresult *res, int row)
{
    char keywords[128];
    snprintf(keywords, sizeof(keywords), "%s,%s", PQgetvalue(res, row, 2), PQgetvalue(res, row, 3));
    return json_pack("{s:s,s:s,s:s,s:b,s:s,s:s,s:s}", "service_code", PQgetvalue(res, row, 0),
                     "service_name", PQgetvalue(res, row, 1), "description",
                     PQgetvalue(res, row, 1), "metadata", 0, "type", "realtime", "keywords",
                     keywords, "group", PQgetvalue(res, row, 4));
}

#define SERVICE_SQL "SELECT code, name, sector, admitted_level, group_name FROM category "

int db_services(struct db *d, json_t **ret)
{
    PGresult *res;
    int rc = query(d, SERVICE_SQL "ORDER BY group_name, code", 0, NULL, &res);
    if (rc != DB_OK)
        return rc;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++)
        if (json_array_append_new(list, service_json(res, i)) < 0) {
            json_decref(list);
            list = NULL;
        }
    PQclear(res);
    if (!list)
        return DB_ERROR;
    *ret = list;
    return DB_OK;
}

int db_service(struct db *d, const char *code, json_t **ret)
{
    PGresult *res;
    const char *params[1] = {code};
    int rc = query(d, SERVICE_SQL "WHERE code = $1", 1, params, &res);
    if (rc != DB_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    if (n == 0)
        return DB_NOT_FOUND;
    if (ret) {
        *ret = json_pack("{s:s,s:[]}", "service_code", code, "attributes");
        if (!*ret)
            return DB_ERROR;
    }
    return DB_OK;
}

int db_org_unit(struct db *d, const char *code)
{
    PGresult *res;
    const char *params[1] = {code};
    int rc = query(d, "SELECT 1 FROM org_unit WHERE code = $1", 1, params, &res);
    if (rc != DB_OK)
        return rc;
    int n = PQntuples(res);
    PQclear(res);
    return n ? DB_OK : DB_NOT_FOUND;
}

int db_town_at(struct db *d, double lat, double lon, char ret_town[16])
{
    char la[32], lo[32];
    snprintf(la, sizeof(la), "%.9f", lat);
    snprintf(lo, sizeof(lo), "%.9f", lon);
    const char *params[2] = {la, lo};
    PGresult *res;
    int rc = query(d, CITY_TOWN_AT_SQL, 2, params, &res);
    if (rc != DB_OK)
        return rc;
    rc = DB_NOT_FOUND;
    if (PQntuples(res) == 1) {
        snprintf(ret_town, 16, "%s", PQgetvalue(res, 0, 0));
        rc = DB_OK;
    }
    PQclear(res);
    return rc;
}

/* Public fields only: no reporter_* column is ever selected. */
static const char REQUESTS_SQL[] =
    "SELECT i.id, i.state, i.category, coalesce(c.name, ''), i.description, "
    "       coalesce(u.name, ''), i.address, "
    "       CASE WHEN i.located_by IN ('position', 'address') THEN '' ELSE i.location_unit END, "
    "       i.lat, i.lon, coalesce(i.attachments[1], ''), "
    "       gd_ms(coalesce(i.reported_at, i.received_at)), gd_ms(i.updated_at), "
    "       gd_ms(i.resolve_due), i.location_unit, coalesce(l.name, ''), i.located_by "
    "  FROM incident i "
    "  LEFT JOIN category c ON c.code = i.category "
    "  LEFT JOIN org_unit u ON u.code = i.owner_unit "
    "  LEFT JOIN org_unit l ON l.code = i.location_unit "
    " WHERE i.source = ANY($1::text[]) "
    "   AND ($2::bigint[] IS NULL OR i.id = ANY($2::bigint[])) "
    "   AND ($3::text[] IS NULL OR i.category = ANY($3::text[])) "
    "   AND ($4::bigint IS NULL OR coalesce(i.reported_at, i.received_at) >= gd_ts($4)) "
    "   AND ($5::bigint IS NULL OR coalesce(i.reported_at, i.received_at) <= gd_ts($5)) "
    "   AND ($6::int = 0 OR ($6::int = 1) = (i.state NOT IN ('RESOLVED', 'CLOSED'))) "
    " ORDER BY coalesce(i.reported_at, i.received_at) DESC, i.id DESC "
    " LIMIT $7 OFFSET $8";

static json_t *date_or_null(PGresult *res, int row, int col, int offset_min)
{
    long long ms = strtoll(PQgetvalue(res, row, col), NULL, 10);
    if (ms <= 0)
        return json_null();
    char buf[ISOTIME_MAX];
    return json_string(isotime_format(ms, offset_min, buf));
}

static json_t *number_or_null(PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return json_null();
    return json_real(strtod(PQgetvalue(res, row, col), NULL));
}

int db_requests(struct db *d, const struct db_request_filter *f, int offset_min, json_t **ret)
{
    char start[24], end[24], status[4], limit[16], offset[16];
    snprintf(start, sizeof(start), "%lld", (long long)f->start_ms);
    snprintf(end, sizeof(end), "%lld", (long long)f->end_ms);
    snprintf(status, sizeof(status), "%d", f->status);
    snprintf(limit, sizeof(limit), "%u", f->limit);
    snprintf(offset, sizeof(offset), "%u", f->offset);
    const char *params[8] = {
        f->sources, f->ids, f->codes, f->start_ms ? start : NULL, f->end_ms ? end : NULL,
        status,     limit,  offset};
    PGresult *res;
    int rc = query(d, REQUESTS_SQL, 8, params, &res);
    if (rc != DB_OK)
        return rc;
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res); i++) {
        const char *state = PQgetvalue(res, i, 1);
        bool closed = strcmp(state, "RESOLVED") == 0 || strcmp(state, "CLOSED") == 0;
        char id[96];
        snprintf(id, sizeof(id), "%s%s", f->id_prefix ? f->id_prefix : "", PQgetvalue(res, i, 0));
        json_t *o = json_pack(
            "{s:s,s:s,s:s,s:o,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o,s:o}",
            "service_request_id", id, "status", closed ? "closed" : "open", "status_notes", state,
            "service_name", text_or_null(res, i, 3), "service_code", PQgetvalue(res, i, 2),
            "description", text_or_null(res, i, 4), "agency_responsible", text_or_null(res, i, 5),
            "service_notice", json_null(), "requested_datetime",
            date_or_null(res, i, 11, offset_min), "updated_datetime",
            date_or_null(res, i, 12, offset_min), "expected_datetime",
            date_or_null(res, i, 13, offset_min), "address", text_or_null(res, i, 6), "address_id",
            text_or_null(res, i, 7), "zipcode", json_null(), "lat", number_or_null(res, i, 8),
            "long", number_or_null(res, i, 9), "media_url", text_or_null(res, i, 10));
        if (o && f->extensions &&
            json_object_set_new(o, "extended_attributes",
                                json_pack("{s:o,s:o,s:o}", "location_unit",
                                          text_or_null(res, i, 14), "location_unit_name",
                                          text_or_null(res, i, 15), "located_by",
                                          text_or_null(res, i, 16))) < 0) {
            json_decref(o);
            o = NULL;
        }
        if (o && f->sort_keys &&
            json_object_set_new(
                o, "_sort",
                json_pack("[I,I]", (json_int_t)strtoll(PQgetvalue(res, i, 11), NULL, 10),
                          (json_int_t)strtoll(PQgetvalue(res, i, 0), NULL, 10))) < 0) {
            json_decref(o);
            o = NULL;
        }
        if (!o || json_array_append_new(list, o) < 0) {
            json_decref(list);
            list = NULL;
        }
    }
    PQclear(res);
    if (!list)
        return DB_ERROR;
    *ret = list;
    return DB_OK;
}
