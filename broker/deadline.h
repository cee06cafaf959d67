/* deadline.h - the deadline rules: sign-for and resolve clocks of an incident, pure computations.
 *
 * Each open incident has up to two deadlines: sign-for (签收), running from
 * dispatch to its current owner while it is QUEUED or DELIVERED, and
 * resolve (办结), running from receipt while it is open and not flagged.
 * The limits come from the category and priority (category_sla), in wall
 * time or in working time on the calendar. Nothing here does I/O or reads
 * the clock: the instant is always passed in.
 */
#ifndef GD_BROKER_DEADLINE_H
#define GD_BROKER_DEADLINE_H

#include "broker.h"

/* Starts the sign-for and/or resolve clocks of `inc` at `now` (receipt,
 * dispatch to a new owner, escalation, reopening): sets due and warning
 * instants from its category's limits, and forgets earlier warnings.
 * Working-time limits count on the broker's calendar (working days,
 * holidays, make-up days, working hours). Without limits (unknown
 * category) the deadline is left unset. */
void deadline_start(struct broker *b, struct incident *inc, bool sign, bool resolve, int64_t now);

/* An approved extension: the resolve deadline becomes `until`, with a new
 * warning at the category's warning percentage of the remaining time. */
void deadline_extend(struct broker *b, struct incident *inc, int64_t until, int64_t now);

/* After recovery: warnings whose instant has passed count as given, and
 * deadlines that apply count as announced to the SLA worker. */
void deadline_recovered(struct broker *b, struct incident *inc, int64_t now);

/* Whether a deadline of `kind` due at `due` (0: none) applies to an
 * incident in `state` (a flagged incident has none). */
bool deadline_applies(enum gd_deadline_kind kind, enum gd_state state, bool flagged, int64_t due);

/* True when `inc` (durable, open) has a deadline that still applies: one
 * an SLA worker must watch. */
bool deadline_live(const struct incident *inc);

/* The instant from which `inc` is overdue as it stands: INT64_MIN for a
 * flagged open incident (overdue whatever the time), INT64_MAX when no
 * deadline applies. deadline_overdue(inc, now) is
 * deadline_overdue_from(inc) <= now. */
int64_t deadline_overdue_from(const struct incident *inc);
bool deadline_overdue(const struct incident *inc, int64_t now);

#endif
