/* tally.h - counts over the open incidents, kept as incidents change instead of recounted.
 *
 * Two counts were a pass over every open incident, each gauge period or
 * alarm check (7 % of a core, idle, at a million open incidents):
 * - each queue's `overdue` gauge: its durable open incidents whose sign
 *   or resolve deadline (whichever still applies) has passed, and the
 *   flagged ones (deadline_overdue);
 * - each town's live deadlines (unit.live_deadlines; those of incidents
 *   without a town in broker.live_deadlines_no_town), for the
 *   no_sla_worker alarm.
 * An incident is counted where it stands after every committed change and
 * at load (tally_track), and uncounted when it leaves memory
 * (tally_forget). One whose deadline is still ahead is filed in a min-heap
 * by the instant it becomes overdue; tally_tick counts those whose instant
 * has come (entries of an incident that changed or left since are stale
 * and skipped). Every --overdue-verify ticks a full pass checks both
 * counts, and logs and repairs any difference. */
#ifndef GD_TALLY_H
#define GD_TALLY_H

#include <stdint.h>

struct broker;
struct incident;

/* Counts `inc` where it stands now (queue, state, deadlines, flag),
 * undoing its previous count: after every committed change, and at load. */
void tally_track(struct broker *b, struct incident *inc);

/* Undoes the counts of an incident that leaves memory. */
void tally_forget(struct broker *b, struct incident *inc);

/* Counts the incidents whose deadline has passed by `now`: once per gauge
 * period, before the gauges are read. */
void tally_tick(struct broker *b, int64_t now);

/* Every count from scratch, by a pass over the open incidents: after an
 * org reload (a unit may have moved to another town). */
void tally_rebuild(struct broker *b);

/* Frees the heap. */
void tally_free(struct broker *b);

#endif
