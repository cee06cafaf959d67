/* route.c - who owns an incident: routing of new items and the escalation ladder. */
#include "route.h"

#include <errno.h>
#include <string.h>

#include "queue.h"

static int route_to_triage(struct broker *b, struct route *ret)
{
    if (!b->triage)
        b->triage = queue_lookup(b, QUEUE_TRIAGE, strlen(QUEUE_TRIAGE));
    if (!b->triage)
        return -ENOMEM;
    *ret = (struct route){.queue = b->triage, .owner = NULL, .level = GD_LEVEL_DISTRICT};
    return 0;
}

static int route_to_unit(struct broker *b, struct unit *u, enum sector sector, struct route *ret)
{
    struct queue *q = queue_of_unit(b, u, sector);
    if (!q)
        return -ENOMEM;
    *ret = (struct route){.queue = q, .owner = u, .level = u->level};
    return 0;
}

static enum sector sector_of(const struct incident *inc)
{
    return inc->category ? inc->category->sector : SECTOR_LIVELIHOOD;
}

int route_resolve(struct broker *b, struct category *cat, struct unit *location,
                  struct route *ret)
{
    if (!cat || !location || location->level == GD_LEVEL_DISTRICT)
        return route_to_triage(b, ret);
    struct unit *owner = location;
    while (owner->level < cat->admitted && owner->parent)
        owner = owner->parent;
    return route_to_unit(b, owner, cat->sector, ret);
}

int route_parent(struct broker *b, const struct incident *inc, struct route *ret)
{
    struct unit *owner = inc->owner;
    if (!owner || owner->level == GD_LEVEL_DISTRICT || !owner->parent)
        return 1;
    return route_to_unit(b, owner->parent, sector_of(inc), ret);
}

int route_return(struct broker *b, const struct incident *inc, struct route *ret)
{
    struct unit *owner = inc->owner;
    if (!owner)
        return 1;
    if (owner->level >= GD_LEVEL_TOWN || !owner->parent)
        return route_to_triage(b, ret);
    return route_to_unit(b, owner->parent, sector_of(inc), ret);
}

int route_named(struct broker *b, const struct incident *inc, const char *code, size_t len,
                struct route *ret)
{
    struct unit *u = org_unit(&b->org, code, len);
    if (u) {
        if (u->level == GD_LEVEL_MICRO_GRID)
            return -GD_E_BAD_VALUE;
        if (u->level == GD_LEVEL_TOWN && !inc->category)
            return -GD_E_BAD_VALUE; /* which sector? the caller must say */
        int rc = route_to_unit(b, u, sector_of(inc), ret);
        return rc < 0 ? -GD_E_INTERNAL : 0;
    }
    struct queue *q = queue_lookup(b, code, len);
    if (!q || q == b->triage || !q->unit)
        return -GD_E_NOT_FOUND;
    *ret = (struct route){.queue = q, .owner = q->unit, .level = q->unit->level};
    return 0;
}
