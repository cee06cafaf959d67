/* run.h - runs one handler command (uv_spawn, own process group, timeout) into an outcome. */
#ifndef GD_WORKER_RUN_H
#define GD_WORKER_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "outcome.h"

/* Exit statuses with a meaning; anything else (and any signal) is a failure. */
#define RUN_EXIT_RESOLVE  0
#define RUN_EXIT_RETURN   3
#define RUN_EXIT_PROGRESS 4
#define RUN_EXIT_TEMPFAIL 75 /* EX_TEMPFAIL: leave it, logged as "try later" */

/* Bytes of handler stdout kept; the rest is read and dropped. */
#define RUN_OUTPUT_MAX 8192

struct run;

struct run_params {
    const char *command; /* split into words like a shell (wordexp, no command
                            substitution); no shell runs it */
    const char *input;   /* written to the handler's stdin, then closed */
    size_t input_len;
    char *const *env; /* "NAME=value" added to (and replacing) the worker's own */
    size_t n_env;
    uint32_t timeout_ms;    /* then SIGTERM to the process group ... */
    uint32_t kill_grace_ms; /* ... and SIGKILL this much later */
};

/* Starts the command in a new session and process group (setsid), stdin
 * a pipe carrying `input`, stdout a pipe read up to RUN_OUTPUT_MAX bytes,
 * stderr the worker's. When the process has exited and its stdout is
 * closed, `cb` gets the outcome: exit 0 resolve, 3 return, 4 progress
 * (stdout as the text), anything else leave; at the timeout the whole
 * process group gets SIGTERM, then SIGKILL after the grace period, and the
 * outcome is leave with timed_out set. Returns 0 and the run in *ret_run
 * (owned by the runner; freed after `cb` returns), or a negative errno
 * (the command cannot be split, is not found or cannot be started; `cb`
 * is not called). */
int run_start(uv_loop_t *loop, const struct run_params *p, outcome_cb cb, void *arg,
              struct run **ret_run);

/* Kills the run's process group now (SIGKILL); the callback still comes,
 * with the outcome leave ("killed"). For shutdown. */
void run_kill(struct run *r);

/* The handler's process id, for logs. */
int run_pid(const struct run *r);

#endif
