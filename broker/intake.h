/* intake.h - the intake endpoint: SUBMIT, QUERY, FEEDBACK, SNAPSHOT, DISPATCH. */
#ifndef GD_BROKER_INTAKE_H
#define GD_BROKER_INTAKE_H

#include "broker.h"

/* Binds the intake ROUTER. Returns 0 or a negative errno with a message
 * in err. */
int intake_open(struct broker *b, char *err, size_t errlen);

/* Sends `m` to the client of waiter `w` and forgets that request (the
 * client's pending count drops). */
void intake_answer(struct broker *b, struct waiter *w, const struct gd_msg *m);

void intake_close(struct broker *b);
/* Frees the SUBMITS still waiting for outcomes: after the incidents,
 * when nothing can answer them any more. */
void intake_free(struct broker *b);

#endif
