/* district.h - a small org tree built in memory for the unit tests of the broker's model and lifecycle.
 *
 * One district (500113), one town (500113001), one community
 * (500113001001) with one grid (500113001001001) and a micro-grid under
 * it (500113001001001001), and three categories:
 *   road  - livelihood, admitted at grid level, wall-time limits at normal
 *           priority: sign 3600 s, resolve 86400 s, warning at 80 %;
 *   fire  - safety, admitted at town level, no limits;
 *   party - party-building, admitted at community level, no limits.
 * No database and no sockets: the tests of lifecycle and route run on it.
 */
#ifndef GD_TESTS_DISTRICT_H
#define GD_TESTS_DISTRICT_H

#include "broker.h"

#define D_DISTRICT "500113"
#define D_TOWN "500113001"
#define D_COMMUNITY "500113001001"
#define D_GRID "500113001001001"
#define D_MICRO "500113001001001001"

/* Fills b->org with the district above; returns 0 or -1 when out of memory. */
int district_build(struct broker *b);

/* Frees the org and every queue of `b` (incidents must be gone). */
void district_free(struct broker *b);

/* cmocka group-or-test fixtures: *state becomes a struct broker holding
 * the district above (one static broker: tests run one at a time), and is
 * freed again. */
int district_setup(void **state);
int district_teardown(void **state);

#endif
