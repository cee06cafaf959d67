/* deadline.c - the deadline rules: when an incident's sign-for and resolve clocks run out, and whether they apply. */
#include "deadline.h"

#include "calendar.h"
#include "incident.h"

/* The instant `seconds` of the limit's time (wall or working) after
 * `start`, or 0 when it cannot be computed. */
static int64_t add_limit(const struct broker *b, const struct sla *sla, int64_t start,
                         int64_t seconds)
{
    if (!sla->working_time)
        return start + seconds * 1000;
    int64_t at;
    if (!b->calendar || calendar_add(b->calendar, start, seconds, &at) < 0)
        return 0;
    return at;
}

bool deadline_applies(enum gd_deadline_kind kind, enum gd_state state, bool flagged, int64_t due)
{
    if (!due || flagged)
        return false; /* a flagged (挂账) incident has no more deadlines */
    if (kind == GD_DL_SIGN)
        return state == GD_ST_QUEUED || state == GD_ST_DELIVERED;
    return state == GD_ST_QUEUED || incident_in_hand(state);
}

static const struct sla *limits_of(const struct incident *inc)
{
    if (!inc->category || !inc->category->sla[inc->priority].set)
        return NULL;
    return &inc->category->sla[inc->priority];
}

void deadline_start(struct broker *b, struct incident *inc, bool sign, bool resolve,
                      int64_t now)
{
    const struct sla *sla = limits_of(inc);
    if (!sla)
        return;
    if (sign) {
        inc->sign_due = add_limit(b, sla, now, sla->sign_limit_s);
        inc->sign_warn = add_limit(b, sla, now, sla->sign_limit_s * sla->warn_percent / 100);
        inc->warned &= (uint8_t)~(1u << GD_DL_SIGN);
    }
    if (resolve) {
        inc->resolve_due = add_limit(b, sla, now, sla->resolve_limit_s);
        inc->resolve_warn = add_limit(b, sla, now, sla->resolve_limit_s * sla->warn_percent / 100);
        inc->warned &= (uint8_t)~(1u << GD_DL_RESOLVE);
    }
}

void deadline_extend(struct broker *b, struct incident *inc, int64_t until, int64_t now)
{
    (void)b;
    const struct sla *sla = limits_of(inc);
    int pct = sla ? sla->warn_percent : 80;
    inc->resolve_due = until;
    inc->resolve_warn = now + (until - now) * pct / 100;
    inc->warned &= (uint8_t)~(1u << GD_DL_RESOLVE);
}

void deadline_recovered(struct broker *b, struct incident *inc, int64_t now)
{
    (void)b;
    if (inc->sign_warn && inc->sign_warn <= now)
        inc->warned |= 1u << GD_DL_SIGN;
    if (inc->resolve_warn && inc->resolve_warn <= now)
        inc->warned |= 1u << GD_DL_RESOLVE;
    for (int k = 0; k < GD_DL_COUNT; k++)
        if (deadline_applies((enum gd_deadline_kind)k, inc->state, inc->flagged,
                    k == GD_DL_SIGN ? inc->sign_due : inc->resolve_due))
            inc->announced |= (uint8_t)(1u << k);
}

int64_t deadline_overdue_from(const struct incident *inc)
{
    if (inc->flagged)
        return inc->state != GD_ST_RESOLVED && inc->state != GD_ST_CLOSED ? INT64_MIN : INT64_MAX;
    int64_t at = INT64_MAX;
    if (deadline_applies(GD_DL_SIGN, inc->state, false, inc->sign_due))
        at = inc->sign_due;
    if (deadline_applies(GD_DL_RESOLVE, inc->state, false, inc->resolve_due) && inc->resolve_due < at)
        at = inc->resolve_due;
    return at;
}

bool deadline_overdue(const struct incident *inc, int64_t now)
{
    return deadline_overdue_from(inc) <= now;
}

bool deadline_live(const struct incident *inc)
{
    return inc->durable && !inc->doomed &&
           (deadline_applies(GD_DL_SIGN, inc->state, inc->flagged, inc->sign_due) ||
            deadline_applies(GD_DL_RESOLVE, inc->state, inc->flagged, inc->resolve_due));
}
