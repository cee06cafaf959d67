/* org.c - the organisation tree and the category catalogue, held in memory. */
#include "org.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const sector_names[SECTOR_COUNT] = {"party", "economy", "livelihood", "safety"};

const char *sector_name(enum sector s)
{
    return (unsigned)s < SECTOR_COUNT ? sector_names[s] : NULL;
}

int sector_parse(const char *s)
{
    for (int i = 0; i < SECTOR_COUNT; i++)
        if (strcmp(s, sector_names[i]) == 0)
            return i;
    return -1;
}

struct unit *org_unit(const struct org *org, const char *code, size_t len)
{
    struct unit *u = NULL;
    HASH_FIND(hh, org->units, code, len, u);
    return u;
}

struct category *org_category(const struct org *org, const char *code, size_t len)
{
    struct category *c = NULL;
    HASH_FIND(hh, org->categories, code, len, c);
    return c;
}

static int level_from_db(const char *s)
{
    return gd_level_parse(gd_str_c(s));
}

static PGresult *query(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return NULL;
    }
    return res;
}

/* Loads the units, merging into what `org` holds already: a known code is
 * updated in place (name, level, kind, parent), a new one added. Units are
 * never removed (incidents and queues point at them). */
static int load_units(struct org *org, PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = query(conn, "SELECT code, name, level, kind, coalesce(parent, '') FROM org_unit",
                          err, errlen);
    if (!res)
        return -1;
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        const char *code = PQgetvalue(res, i, 0);
        int level = level_from_db(PQgetvalue(res, i, 2));
        char *name = strdup(PQgetvalue(res, i, 1));
        if (!name || level < 0) {
            free(name);
            goto fail_oom;
        }
        struct unit *u = org_unit(org, code, strlen(code));
        if (!u) {
            u = calloc(1, sizeof(*u));
            if (!u || !(u->code = strdup(code))) {
                free(u);
                free(name);
                goto fail_oom;
            }
            HASH_ADD_KEYPTR(hh, org->units, u->code, strlen(u->code), u);
        }
        free(u->name);
        u->name = name;
        u->level = (enum gd_level)level;
        u->special = strcmp(PQgetvalue(res, i, 3), "special") == 0;
    }
    /* Second pass: link parents, now that every unit exists. */
    for (int i = 0; i < n; i++) {
        const char *parent = PQgetvalue(res, i, 4);
        const char *code = PQgetvalue(res, i, 0);
        struct unit *u = org_unit(org, code, strlen(code));
        u->parent = *parent ? org_unit(org, parent, strlen(parent)) : NULL;
    }
    PQclear(res);
    org->n_units = HASH_COUNT(org->units);
    for (struct unit *u = org->units; u; u = u->hh.next)
        org_link_ancestors(u);
    return 0;

fail_oom:
    PQclear(res);
    snprintf(err, errlen, "out of memory loading org units");
    return -1;
}

static int load_categories(struct org *org, PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = query(conn,
                          "SELECT code, name, sector, admitted_level, default_priority FROM category",
                          err, errlen);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        /* merged like the units: known codes updated, new ones added */
        const char *code = PQgetvalue(res, i, 0);
        char *name = strdup(PQgetvalue(res, i, 1));
        struct category *c = org_category(org, code, strlen(code));
        if (name && !c) {
            c = calloc(1, sizeof(*c));
            if (c && !(c->code = strdup(code))) {
                free(c);
                c = NULL;
            }
            if (c)
                HASH_ADD_KEYPTR(hh, org->categories, c->code, strlen(c->code), c);
        }
        if (!name || !c) {
            free(name);
            PQclear(res);
            snprintf(err, errlen, "out of memory loading categories");
            return -1;
        }
        free(c->name);
        c->name = name;
        c->sector = (enum sector)sector_parse(PQgetvalue(res, i, 2));
        c->admitted = (enum gd_level)level_from_db(PQgetvalue(res, i, 3));
        c->default_priority = (enum gd_priority)gd_priority_parse(gd_str_c(PQgetvalue(res, i, 4)));
        memset(c->sla, 0, sizeof(c->sla)); /* read again below */
    }
    PQclear(res);
    org->n_categories = HASH_COUNT(org->categories);

    res = query(conn,
                "SELECT category, priority, basis, sign_limit_s, resolve_limit_s, warn_percent, "
                "max_extension_s, auto_extension_s FROM category_sla",
                err, errlen);
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res); i++) {
        const char *code = PQgetvalue(res, i, 0);
        struct category *c = org_category(org, code, strlen(code));
        int prio = gd_priority_parse(gd_str_c(PQgetvalue(res, i, 1)));
        if (!c || prio < 0)
            continue;
        struct sla *s = &c->sla[prio];
        s->set = true;
        s->working_time = strcmp(PQgetvalue(res, i, 2), "working") == 0;
        s->sign_limit_s = atoll(PQgetvalue(res, i, 3));
        s->resolve_limit_s = atoll(PQgetvalue(res, i, 4));
        s->warn_percent = atoi(PQgetvalue(res, i, 5));
        s->max_extension_s = atoll(PQgetvalue(res, i, 6));
        s->auto_extension_s = atoll(PQgetvalue(res, i, 7));
    }
    PQclear(res);
    return 0;
}

void org_link_ancestors(struct unit *u)
{
    u->town = u->community = u->grid = NULL;
    for (struct unit *a = u; a; a = a->parent) {
        if (a->level == GD_LEVEL_TOWN)
            u->town = a;
        else if (a->level == GD_LEVEL_COMMUNITY)
            u->community = a;
        else if (a->level == GD_LEVEL_GRID)
            u->grid = a;
    }
}

int org_load(struct org *org, PGconn *conn, const char *district_code, char *err, size_t errlen)
{
    *org = (struct org){0};
    if (load_units(org, conn, err, errlen) < 0 || load_categories(org, conn, err, errlen) < 0)
        goto fail;
    org->district = org_unit(org, district_code, strlen(district_code));
    if (!org->district || org->district->level != GD_LEVEL_DISTRICT) {
        snprintf(err, errlen,
                 "district '%s' is not in org_unit as a district: import the org tree first "
                 "or pass --district",
                 district_code);
        goto fail;
    }
    return 0;
fail:
    org_clear(org);
    return -1;
}

int org_reload(struct org *org, PGconn *conn, char *err, size_t errlen)
{
    if (load_units(org, conn, err, errlen) < 0 || load_categories(org, conn, err, errlen) < 0)
        return -1;
    return 0;
}

void org_clear(struct org *org)
{
    struct unit *u, *utmp;
    HASH_ITER(hh, org->units, u, utmp) {
        HASH_DEL(org->units, u);
        free(u->code);
        free(u->name);
        free(u);
    }
    struct category *c, *ctmp;
    HASH_ITER(hh, org->categories, c, ctmp) {
        HASH_DEL(org->categories, c);
        free(c->code);
        free(c->name);
        free(c);
    }
    *org = (struct org){0};
}
