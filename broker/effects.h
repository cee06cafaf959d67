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

#endif
