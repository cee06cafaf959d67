/* ratelimit.c - token buckets: at most `burst` acts at once, and `count` more every `period_ms`. */
#include "ratelimit.h"

void ratelimit_init(struct ratelimit *rl, uint32_t burst, uint32_t count, uint32_t period_ms,
                    uint64_t now_ms)
{
    uint64_t cap = (uint64_t)burst * period_ms;
    *rl = (struct ratelimit){
        .credit = cap, .cap = cap, .count = count, .period_ms = period_ms, .at_ms = now_ms};
}

/* The credit the bucket holds at `now_ms`. */
static uint64_t credit_at(const struct ratelimit *rl, uint64_t now_ms)
{
    if (now_ms <= rl->at_ms || rl->credit >= rl->cap)
        return rl->credit;
    uint64_t elapsed = now_ms - rl->at_ms;
    uint64_t room = rl->cap - rl->credit;
    /* elapsed * count may not exceed room: divide before multiplying */
    return elapsed >= room / rl->count + 1 ? rl->cap : rl->credit + elapsed * rl->count;
}

uint64_t ratelimit_wait(struct ratelimit *rl, uint64_t now_ms)
{
    if (now_ms > rl->at_ms) {
        rl->credit = credit_at(rl, now_ms);
        rl->at_ms = now_ms;
    }
    if (rl->credit >= rl->period_ms)
        return 0;
    uint64_t missing = rl->period_ms - rl->credit;
    return (missing + rl->count - 1) / rl->count;
}

void ratelimit_take(struct ratelimit *rl)
{
    rl->credit = rl->credit >= rl->period_ms ? rl->credit - rl->period_ms : 0;
}

bool ratelimit_full(const struct ratelimit *rl, uint64_t now_ms)
{
    return credit_at(rl, now_ms) >= rl->cap;
}
