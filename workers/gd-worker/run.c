/* run.c - runs one handler command (uv_spawn, own process group, timeout) into an outcome. */
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wordexp.h>

extern char **environ;

enum kill_stage { KILL_NONE, KILL_TERM, KILL_HARD };

struct run {
    uv_process_t proc;
    uv_pipe_t in, out;
    uv_timer_t timer;
    uv_write_t write_req;
    int handles; /* open handles; the run is freed when the last one closes */
    int pid;
    bool exited, out_done, timed_out, killed, reported;
    int64_t exit_status;
    int term_signal;
    enum kill_stage stage;
    uint32_t timeout_ms, kill_grace_ms;
    char *input;
    char chunk[4096];
    char output[RUN_OUTPUT_MAX];
    size_t output_len;
    struct outcome outcome;
    outcome_cb cb;
    void *arg;
};

static void on_closed(uv_handle_t *h)
{
    struct run *r = h->data;
    if (--r->handles > 0)
        return;
    if (r->cb) /* NULL when the spawn failed: nothing to report */
        r->cb(r->arg, &r->outcome);
    free(r->input);
    free(r);
}

static void close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

static void decide(struct run *r)
{
    struct outcome *o = &r->outcome;
    o->action = OUTCOME_LEAVE;
    o->timed_out = r->timed_out;
    if (r->timed_out) {
        snprintf(o->detail, sizeof(o->detail), "timed out after %u ms, process group killed",
                 r->timeout_ms);
    } else if (r->killed) {
        snprintf(o->detail, sizeof(o->detail), "killed at shutdown");
    } else if (r->term_signal) {
        snprintf(o->detail, sizeof(o->detail), "killed by signal %d", r->term_signal);
    } else {
        snprintf(o->detail, sizeof(o->detail), "exit %lld%s", (long long)r->exit_status,
                 r->exit_status == RUN_EXIT_TEMPFAIL ? " (temporary failure)" : "");
        switch (r->exit_status) {
        case RUN_EXIT_RESOLVE:
            o->action = OUTCOME_RESOLVE;
            break;
        case RUN_EXIT_RETURN:
            o->action = OUTCOME_RETURN;
            break;
        case RUN_EXIT_PROGRESS:
            o->action = OUTCOME_PROGRESS;
            break;
        default:
            break;
        }
    }
    outcome_text(r->output, r->output_len, o->text);
}

/* Once the process is gone and its stdout is closed: decide, close the
 * rest; the callback comes from the last close. */
static void maybe_finish(struct run *r)
{
    if (r->reported || !r->exited || !r->out_done)
        return;
    r->reported = true;
    decide(r);
    uv_timer_stop(&r->timer);
    close_handle((uv_handle_t *)&r->timer);
    close_handle((uv_handle_t *)&r->in);
    close_handle((uv_handle_t *)&r->out);
    close_handle((uv_handle_t *)&r->proc);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct run *r = p->data;
    r->exited = true;
    r->exit_status = exit_status;
    r->term_signal = term_signal;
    maybe_finish(r);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct run *r = h->data;
    *buf = uv_buf_init(r->chunk, sizeof(r->chunk));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = s->data;
    if (n > 0) {
        size_t room = sizeof(r->output) - r->output_len;
        size_t take = (size_t)n < room ? (size_t)n : room;
        memcpy(r->output + r->output_len, buf->base, take);
        r->output_len += take;
        return;
    }
    if (n < 0) { /* EOF or error: no more output */
        uv_read_stop(s);
        r->out_done = true;
        maybe_finish(r);
    }
}

static void on_written(uv_write_t *req, int status)
{
    (void)status; /* EPIPE: the handler did not read its input; its exit status tells */
    struct run *r = req->data;
    close_handle((uv_handle_t *)&r->in);
}

static void group_kill(struct run *r, int sig)
{
    if (r->pid > 0)
        kill(-r->pid, sig); /* the whole process group: grandchildren too */
}

static void on_timer(uv_timer_t *t)
{
    struct run *r = t->data;
    if (r->exited) {
        /* exited, but something it started still holds stdout open */
        group_kill(r, SIGKILL);
        uv_read_stop((uv_stream_t *)&r->out);
        r->out_done = true;
        maybe_finish(r);
        return;
    }
    if (r->stage == KILL_NONE) {
        r->timed_out = true;
        r->stage = KILL_TERM;
        group_kill(r, SIGTERM);
        uv_timer_start(&r->timer, on_timer, r->kill_grace_ms ? r->kill_grace_ms : 1, 0);
    } else {
        r->stage = KILL_HARD;
        group_kill(r, SIGKILL);
        uv_timer_start(&r->timer, on_timer, 1000, 0);
    }
}

/* The worker's environment without the names `add` sets, then `add`. */
static char **merge_env(char *const *add, size_t n_add)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = calloc(n + n_add + 1, sizeof(*env));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool replaced = false;
        for (size_t j = 0; j < n_add && !replaced; j++) {
            size_t name_len = strcspn(add[j], "=");
            replaced = strncmp(environ[i], add[j], name_len + 1) == 0;
        }
        if (!replaced)
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < n_add; j++)
        env[k++] = add[j];
    return env;
}

int run_start(uv_loop_t *loop, const struct run_params *p, outcome_cb cb, void *arg,
              struct run **ret_run)
{
    int rc;
    wordexp_t we;
    if (wordexp(p->command, &we, WRDE_NOCMD) != 0)
        return -EINVAL;
    if (we.we_wordc == 0) {
        rc = -EINVAL;
        goto free_words;
    }
    char **env = merge_env(p->env, p->n_env);
    if (!env) {
        rc = -ENOMEM;
        goto free_words;
    }
    struct run *r = calloc(1, sizeof(*r));
    if (!r) {
        rc = -ENOMEM;
        goto free_env;
    }
    r->input = malloc(p->input_len ? p->input_len : 1);
    if (!r->input) {
        rc = -ENOMEM;
        goto free_run;
    }
    memcpy(r->input, p->input, p->input_len);
    r->timeout_ms = p->timeout_ms;
    r->kill_grace_ms = p->kill_grace_ms;
    r->cb = cb;
    r->arg = arg;
    uv_pipe_init(loop, &r->in, 0);
    uv_pipe_init(loop, &r->out, 0);
    uv_timer_init(loop, &r->timer);
    r->in.data = r->out.data = r->timer.data = r->proc.data = r;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&r->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&r->out},
        {.flags = UV_INHERIT_FD, .data.fd = 2},
    };
    uv_process_options_t opts = {
        .exit_cb = on_exit_cb,
        .file = we.we_wordv[0],
        .args = we.we_wordv,
        .env = env,
        .flags = UV_PROCESS_DETACHED, /* setsid(): its own process group to kill */
        .stdio_count = 3,
        .stdio = stdio,
    };
    r->handles = 4;
    rc = uv_spawn(loop, &r->proc, &opts);
    if (rc < 0) {
        /* every handle was initialised (uv_spawn initialises the process
         * handle before it fails): close them; the last close frees r */
        r->cb = NULL;
        close_handle((uv_handle_t *)&r->in);
        close_handle((uv_handle_t *)&r->out);
        close_handle((uv_handle_t *)&r->timer);
        close_handle((uv_handle_t *)&r->proc);
        goto spawn_failed;
    }
    r->pid = r->proc.pid;
    uv_read_start((uv_stream_t *)&r->out, on_alloc, on_read);
    uv_buf_t buf = uv_buf_init(r->input, (unsigned)p->input_len);
    r->write_req.data = r;
    if (uv_write(&r->write_req, (uv_stream_t *)&r->in, &buf, 1, on_written) < 0)
        close_handle((uv_handle_t *)&r->in);
    uv_timer_start(&r->timer, on_timer, p->timeout_ms, 0);
    free(env);
    wordfree(&we);
    *ret_run = r;
    return 0;

spawn_failed:
    free(env);
    wordfree(&we);
    return rc; /* r is freed by the close callbacks */
free_run:
    free(r);
free_env:
    free(env);
free_words:
    wordfree(&we);
    return rc;
}

void run_kill(struct run *r)
{
    if (r->exited || r->reported)
        return;
    r->killed = true;
    r->stage = KILL_HARD;
    group_kill(r, SIGKILL);
}

int run_pid(const struct run *r)
{
    return r->pid;
}
