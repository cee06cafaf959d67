/* effects.h - what the lower layers ask of the layers above them: the clock and the effects.
 *
 * The broker's modules call only downward (broker/README.md has the
 * layers). When a lower layer needs something that only a higher one can
 * do -- read the time, answer a client once its change is durable, start a
 * dispatch pass, publish a committed transition, send to a worker
 * session, raise an alarm -- it calls through the function pointers here,
 * which main.c fills in once at start-up. A unit test fills them with its
 * own, so that the lifecycle and the model run with no sockets and no
 * database.
 *
 * Every callback is called on the loop thread, never with the broker in
 * the middle of changing an incident, and must not call back into the
 * caller's module.
 */
#ifndef GD_BROKER_EFFECTS_H
#define GD_BROKER_EFFECTS_H

#include <stdint.h>

/* The time as the broker sees it: wall-clock ms since the Unix epoch.
 * main.c wires the system's real-time clock; tests wire their own. */
struct broker_clock {
    int64_t (*now)(void *ctx);
    void *ctx;
};

struct gd_msg;
struct incident;
struct queue;
struct session;
struct store_change;
struct waiter;

/* The effects: what a lower layer asks the endpoints to do. `ctx` is
 * passed back to every callback. */
struct effects {
    /* Queue change `c` for its commit (the store's write path); its
     * callback runs once it is durable or refused. */
    void (*commit)(void *ctx, struct store_change *c);
    /* Answer waiter `w` of an intake client with `m` (the client's
     * request is then forgotten; `w` is still the caller's to free). */
    void (*answer_client)(void *ctx, struct waiter *w, const struct gd_msg *m);
    /* Answer work session `session_id` with `m`, if it still exists. */
    void (*answer_session)(void *ctx, uint64_t session_id, const struct gd_msg *m);
    /* A dispatch pass over `q` is wanted on the next loop iteration (q
     * got an item, or a consumer of q got credit back). */
    void (*kick)(void *ctx, struct queue *q);
    /* Change `c` of `inc` committed: publish the transition on the status
     * topics (never with reporter data). */
    void (*publish)(void *ctx, const struct incident *inc, const struct store_change *c);
    /* Change `c` of open incident `inc` committed: stream the deadlines
     * that appeared, moved or ended to the SLA workers, and announce its
     * warnings and breaches. */
    void (*deadlines)(void *ctx, struct incident *inc, const struct store_change *c);
    /* Send `m` to worker session `s`: 0, -EAGAIN when its pipe is full,
     * -EHOSTUNREACH when it is gone, or another negative errno. */
    int (*send)(void *ctx, struct session *s, const struct gd_msg *m);
    /* End session `s` as lost: its unsigned deliveries go back. */
    void (*session_lost)(void *ctx, struct session *s, const char *why);
    /* Publish alarm.<kind>; `incident_id` 0 and `queue` NULL when not about
     * one. `message` carries no personal data. */
    void (*alarm)(void *ctx, const char *kind, const char *severity, uint64_t incident_id,
                  const char *queue, const char *message);
    void *ctx;
};

#endif
