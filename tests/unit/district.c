/* district.c - a small org tree built in memory for the unit tests (see district.h). */
#include "district.h"

#include <stdlib.h>
#include <string.h>

#include "queue.h"

static struct unit *add_unit(struct org *org, const char *code, enum gd_level level,
                             struct unit *parent)
{
    struct unit *u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->code = strdup(code);
    u->name = strdup(code);
    if (!u->code || !u->name) {
        free(u->code);
        free(u->name);
        free(u);
        return NULL;
    }
    u->level = level;
    u->parent = parent;
    org_link_ancestors(u);
    HASH_ADD_KEYPTR(hh, org->units, u->code, strlen(u->code), u);
    org->n_units++;
    return u;
}

static struct category *add_category(struct org *org, const char *code, enum sector sector,
                                     enum gd_level admitted)
{
    struct category *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->code = strdup(code);
    c->name = strdup(code);
    if (!c->code || !c->name) {
        free(c->code);
        free(c->name);
        free(c);
        return NULL;
    }
    c->sector = sector;
    c->admitted = admitted;
    c->default_priority = GD_PRIO_NORMAL;
    HASH_ADD_KEYPTR(hh, org->categories, c->code, strlen(c->code), c);
    org->n_categories++;
    return c;
}

int district_build(struct broker *b)
{
    struct org *org = &b->org;
    struct unit *d = add_unit(org, D_DISTRICT, GD_LEVEL_DISTRICT, NULL);
    struct unit *t = d ? add_unit(org, D_TOWN, GD_LEVEL_TOWN, d) : NULL;
    struct unit *c = t ? add_unit(org, D_COMMUNITY, GD_LEVEL_COMMUNITY, t) : NULL;
    struct unit *g = c ? add_unit(org, D_GRID, GD_LEVEL_GRID, c) : NULL;
    struct unit *m = g ? add_unit(org, D_MICRO, GD_LEVEL_MICRO_GRID, g) : NULL;
    struct category *road = add_category(org, "road", SECTOR_LIVELIHOOD, GD_LEVEL_GRID);
    if (!m || !road || !add_category(org, "fire", SECTOR_SAFETY, GD_LEVEL_TOWN) ||
        !add_category(org, "party", SECTOR_PARTY, GD_LEVEL_COMMUNITY))
        return -1;
    org->district = d;
    road->sla[GD_PRIO_NORMAL] = (struct sla){
        .set = true, .sign_limit_s = 3600, .resolve_limit_s = 86400, .warn_percent = 80};
    return 0;
}

void district_free(struct broker *b)
{
    queue_free_all(b);
    org_clear(&b->org);
}

int district_setup(void **state)
{
    static struct broker b;
    b = (struct broker){0};
    if (district_build(&b) < 0)
        return -1;
    *state = &b;
    return 0;
}

int district_teardown(void **state)
{
    district_free(*state);
    return 0;
}
