/* route.h - who owns an incident: routing of new items and the escalation ladder. */
#ifndef GD_BROKER_ROUTE_H
#define GD_BROKER_ROUTE_H

#include "broker.h"

/* Where an incident goes. `owner` is NULL for the triage queue. */
struct route {
    struct queue *queue;
    struct unit *owner;
    enum gd_level level;
};

/* Routes a new incident (DESIGN §3): the location's ancestor at the
 * category's admitted level (or the location itself when it is already
 * coarser), then that unit's queue (a town's sector queue). No location
 * or an unknown category: the triage queue. Returns 0, or -ENOMEM. */
int route_resolve(struct broker *b, struct category *cat, struct unit *location,
                  struct route *ret);

/* One rung up the ladder from the current owner: grid -> community ->
 * town sector -> district. Returns 0; 1 when already at the top (the
 * district or triage), with *ret untouched; -ENOMEM. */
int route_parent(struct broker *b, const struct incident *inc, struct route *ret);

/* Where a returned (退单) item goes: the parent level for grids and
 * communities, the triage queue (the dispatcher) from a town or the
 * district. Returns 0; 1 if it is already in triage; -ENOMEM. */
int route_return(struct broker *b, const struct incident *inc, struct route *ret);

/* The route for a dispatcher's choice `code`: an org unit code with a
 * queue, or "<town>.<sector>"; a bare town code takes the incident's
 * category sector. Returns 0, or -GD_E_NOT_FOUND / -GD_E_BAD_VALUE. */
int route_named(struct broker *b, const struct incident *inc, const char *code, size_t len,
                struct route *ret);

#endif
