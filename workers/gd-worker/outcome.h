/* outcome.h - what a handler run decided (resolve, return, progress, leave), cleaned text. */
#ifndef GD_WORKER_OUTCOME_H
#define GD_WORKER_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "gdp.h"

enum outcome_action {
    OUTCOME_RESOLVE,  /* RESOLVE with `text` as the result */
    OUTCOME_RETURN,   /* RETURN with `text` as the reason */
    OUTCOME_PROGRESS, /* PROGRESS with `text` as the note; stays open */
    OUTCOME_LEAVE,    /* a failure or "retry later": no command, `detail` says why */
};

struct outcome {
    enum outcome_action action;
    char text[GD_MAX_TEXT + 1]; /* valid UTF-8, no NUL, trimmed, <= GD_MAX_TEXT bytes */
    char detail[128];           /* for the log: "exit 0", "killed by signal 9", "HTTP 503" */
    bool timed_out;
};

/* Called once when a handler run ends. `o` is valid during the call. */
typedef void (*outcome_cb)(void *arg, const struct outcome *o);

/* Writes `len` bytes of handler output into out (GD_MAX_TEXT + 1 bytes) as
 * protocol text: surrounding white space trimmed, NUL bytes and invalid
 * UTF-8 replaced by '?', cut at a character boundary to at most
 * GD_MAX_TEXT bytes. */
void outcome_text(const char *in, size_t len, char out[GD_MAX_TEXT + 1]);

/* The action's name for logs: "resolve", "return", "progress", "leave". */
const char *outcome_name(enum outcome_action a);

#endif
