/* sla.h - deadlines: their clocks, the stream to SLA-timer workers, and WARN/ESCALATE from them.
 *
 * Each open incident has up to two deadlines: sign-for (签收), running from
 * dispatch to its current owner while it is QUEUED or DELIVERED, and
 * resolve (办结), running from receipt while it is open and not flagged.
 * The limits come from the category and priority (category_sla), in wall
 * time or in working time on the calendar. SLA workers keep the timers;
 * the broker streams every deadline of their shard to them and acts on
 * their WARN and ESCALATE only after checking version and clock itself.
 */
#ifndef GD_BROKER_SLA_H
#define GD_BROKER_SLA_H

#include "broker.h"

/* Starts the sign-for and/or resolve clocks of `inc` at `now` (receipt,
 * dispatch to a new owner, escalation, reopening): sets due and warning
 * instants from its category's limits, and forgets earlier warnings.
 * Working-time limits count on the broker's calendar (working days,
 * holidays, make-up days, working hours). Without limits (unknown
 * category) the deadline is left unset. */
void sla_start_clocks(struct broker *b, struct incident *inc, bool sign, bool resolve,
                      int64_t now);

/* An approved extension: the resolve deadline becomes `until`, with a new
 * warning at the category's warning percentage of the remaining time. */
void sla_extend(struct broker *b, struct incident *inc, int64_t until, int64_t now);

/* After recovery: warnings whose instant has passed count as given. */
void sla_recovered(struct broker *b, struct incident *inc, int64_t now);

/* A change of `inc` is durable: sends DEADLINE or CLEAR to the SLA session
 * of its town for each deadline that appeared, moved or ended, and
 * publishes sla.warn / sla.breach / alarm.flagged for WARN, ESCALATE and
 * FLAG events. */
void sla_committed(struct broker *b, struct incident *inc, const struct store_change *c);

/* Registers SLA session `s` for the shard of HELLO `h` (town codes; none
 * = all towns; the district code = incidents located at no town). Returns
 * 0, or a negative gd_code (-GD_E_OVERLAP, -GD_E_NOT_FOUND, -GD_E_INTERNAL)
 * with a message for the DENIED reply in msg. On success the initial set
 * of deadlines starts streaming after WELCOME. */
int sla_hello(struct broker *b, struct session *s, const struct gd_hello *h, char *msg,
              size_t msglen);

/* Starts streaming the full set of live deadlines of `s` (after WELCOME). */
void sla_start_sync(struct broker *b, struct session *s);

/* Unregisters an SLA session that ended or was lost. */
void sla_session_gone(struct broker *b, struct session *s);

/* WARN or ESCALATE from SLA session `s`: answered OK applied=true when it
 * changed something, OK applied=false when stale, early or repeated. */
void sla_command(struct broker *b, struct session *s, enum gd_type type,
                 const struct gd_command *c);

/* True when a deadline of `inc` that still applies has passed at `now`,
 * or it is flagged (overdue at the top). */
/* True when `inc` (durable, open) has a deadline that still applies: one
 * an SLA worker must watch. */
bool sla_has_deadline(const struct incident *inc);

/* The instant from which `inc` is overdue as it stands: INT64_MIN for a
 * flagged open incident (overdue whatever the time), INT64_MAX when no
 * deadline applies. sla_overdue(inc, now) is sla_overdue_from(inc) <= now. */
int64_t sla_overdue_from(const struct incident *inc);

bool sla_overdue(const struct incident *inc, int64_t now);

/* Starts the timer that continues initial syncs and publishes the
 * no_sla_worker alarm. */
void sla_open(struct broker *b);
void sla_close(struct broker *b);

#endif
