/* orgload.c - blocking libpq reads at start-up: org tree, categories, today's counts. */
#include "orgload.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGresult *query(PGconn *conn, const char *sql, int n, const char *const *params,
                       ExecStatusType want, char *err, size_t errlen)
{
    PGresult *r = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) != want) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        size_t l = strlen(err);
        if (l && err[l - 1] == '\n')
            err[l - 1] = '\0';
        PQclear(r);
        return NULL;
    }
    return r;
}

int orgload_tree(PGconn *conn, struct dash_model *m, char *err, size_t errlen)
{
    PGresult *r = query(conn,
                        "SELECT code, name, level, coalesce(parent, '') FROM org_unit "
                        "ORDER BY CASE level WHEN 'district' THEN 0 WHEN 'town' THEN 1 "
                        "WHEN 'community' THEN 2 WHEN 'grid' THEN 3 ELSE 4 END, code",
                        0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (!r)
        return -EIO;
    int rc = 0;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        int level = gd_level_parse(gd_str_c(PQgetvalue(r, i, 2)));
        rc = dash_model_add_unit(m, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1), (enum gd_level)level,
                                 PQgetvalue(r, i, 3));
        if (rc < 0) {
            snprintf(err, errlen, "org unit %s: %s", PQgetvalue(r, i, 0), strerror(-rc));
            goto clear_units;
        }
    }
    PQclear(r);
    if (!m->root) {
        snprintf(err, errlen, "the org tree has no district");
        return -ENOENT;
    }
    r = query(conn, "SELECT code, sector FROM category", 0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (!r)
        return -EIO;
    for (int i = 0; i < PQntuples(r); i++) {
        rc = dash_model_add_category(m, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1));
        if (rc < 0) {
            snprintf(err, errlen, "category %s: %s", PQgetvalue(r, i, 0), strerror(-rc));
            goto clear_units;
        }
    }
    PQclear(r);
    return n;

clear_units:
    PQclear(r);
    return rc;
}

int orgload_seed(PGconn *conn, struct dash_model *m, uint32_t shard, int overlap_s, char *err,
                 size_t errlen)
{
    int rc = -EIO;
    char day[32], overlap[16];
    snprintf(day, sizeof(day), "%lld", (long long)m->day_start);
    snprintf(overlap, sizeof(overlap), "%d", overlap_s);
    const char *p[2] = {day, overlap};
    PGresult *r = query(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                        PGRES_COMMAND_OK, err, errlen);
    if (!r)
        return -EIO;
    PQclear(r);
    /* A resolve is on time when it is at or before the resolve deadline
     * the incident had then; the projection keeps the last deadline (the
     * broker does not clear it at resolve), and after migration 6 the
     * event row records it. */
    r = query(conn, "SELECT to_regclass('gd_report_event') IS NOT NULL", 0, NULL, PGRES_TUPLES_OK,
              err, errlen);
    if (!r)
        goto rollback;
    bool have_due = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    r = query(conn,
              have_due ? "SELECT i.location_unit, i.category, e.kind, count(*), count(*) FILTER "
                         "(WHERE coalesce(e.resolve_due, i.resolve_due) IS NULL "
                         "OR e.at <= coalesce(e.resolve_due, i.resolve_due)) "
                         "FROM incident_event e JOIN incident i ON i.id = e.incident_id "
                         "WHERE e.at >= gd_ts($1::bigint) AND e.kind IN "
                         "('receive','sign','resolve','escalate','return','warn') GROUP BY 1, 2, 3"
                       : "SELECT i.location_unit, i.category, e.kind, count(*), count(*) FILTER "
                         "(WHERE i.resolve_due IS NULL OR e.at <= i.resolve_due) "
                         "FROM incident_event e JOIN incident i ON i.id = e.incident_id "
                         "WHERE e.at >= gd_ts($1::bigint) AND e.kind IN "
                         "('receive','sign','resolve','escalate','return','warn') GROUP BY 1, 2, 3",
              1, p, PGRES_TUPLES_OK, err, errlen);
    if (!r)
        goto rollback;
    for (int i = 0; i < PQntuples(r); i++) {
        const char *kind = PQgetvalue(r, i, 2);
        dash_seed_count(m, PQgetvalue(r, i, 0), PQgetvalue(r, i, 1),
                        strcmp(kind, "warn") ? kind : "warn_sla",
                        (uint32_t)strtoul(PQgetvalue(r, i, 3), NULL, 10),
                        (uint32_t)strtoul(PQgetvalue(r, i, 4), NULL, 10));
    }
    PQclear(r);
    r = query(conn,
              "SELECT gd_ms(now() - make_interval(secs => $2::int)), e.incident_id, e.version "
              "FROM (SELECT 1) one LEFT JOIN incident_event e "
              "ON e.at >= greatest(now() - make_interval(secs => $2::int), gd_ts($1::bigint)) "
              "LIMIT 262145",
              2, p, PGRES_TUPLES_OK, err, errlen);
    if (!r)
        goto rollback;
    dash_seed_set_cutoff(m, shard, strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    for (int i = 0; i < PQntuples(r); i++) {
        if (PQgetisnull(r, i, 1))
            continue;
        if (dash_seed_mark(m, shard, strtoull(PQgetvalue(r, i, 1), NULL, 10),
                           (uint32_t)strtoul(PQgetvalue(r, i, 2), NULL, 10)) < 0) {
            snprintf(err, errlen, "more than %d events in the seed overlap", DASH_MAX_SEEN);
            PQclear(r);
            rc = -E2BIG;
            goto rollback;
        }
    }
    PQclear(r);
    rc = 0;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return rc;
}
