/* sla.h - the deadline stream to SLA-timer workers, and WARN/ESCALATE from them.
 *
 * Each open incident has up to two deadlines: sign-for (签收), running from
 * dispatch to its current owner while it is QUEUED or DELIVERED, and
 * resolve (办结), running from receipt while it is open and not flagged.
 * The rules that set and read them are deadline.h's. SLA workers keep the timers;
 * the broker streams every deadline of their shard to them and acts on
 * their WARN and ESCALATE only after checking version and clock itself.
 */
#ifndef GD_BROKER_SLA_H
#define GD_BROKER_SLA_H

#include "broker.h"

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

/* Starts the timer that continues initial syncs and publishes the
 * no_sla_worker alarm. */
void sla_open(struct broker *b);
void sla_close(struct broker *b);

#endif
