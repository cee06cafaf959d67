/* webhook.c - POSTs incidents to an HTTP handler with libcurl's multi socket API on the libuv loop.
 *
 * libcurl tells us, through CURLMOPT_SOCKETFUNCTION, which sockets to
 * watch for what (one uv_poll each, freed in its close callback) and,
 * through CURLMOPT_TIMERFUNCTION, when to call it back regardless (one
 * uv_timer). Both end in curl_multi_socket_action(), after which finished
 * transfers are collected with curl_multi_info_read().
 */
#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct webhook {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct curl_slist *headers;
    char *url;
    struct transfer *transfers; /* under way, for webhook_close() */
    size_t active;
    bool closing;
};

struct transfer {
    struct transfer *prev, *next;
    struct webhook *w;
    CURL *easy;
    char *body;
    char response[WEBHOOK_MAX_RESPONSE];
    size_t response_len;
    bool too_long;
    char error[CURL_ERROR_SIZE];
    uint32_t timeout_ms;
    outcome_cb cb;
    void *arg;
};

/* Watches one socket curl uses. */
struct sock_watch {
    uv_poll_t poll;
    curl_socket_t fd;
    struct webhook *w;
};

static void check_done(struct webhook *w);

static void on_watch_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock_watch *s = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    struct webhook *w = s->w;
    int running;
    curl_multi_socket_action(w->multi, s->fd, flags, &running);
    check_done(w);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    struct webhook *w = userp;
    struct sock_watch *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            uv_poll_stop(&s->poll);
            uv_close((uv_handle_t *)&s->poll, on_watch_closed);
            curl_multi_assign(w->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        s->fd = fd;
        s->w = w;
        if (uv_poll_init_socket(w->loop, &s->poll, fd) < 0) {
            free(s);
            return -1;
        }
        s->poll.data = s;
        curl_multi_assign(w->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct webhook *w = t->data;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(w);
}

static int on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    struct webhook *w = userp;
    if (timeout_ms < 0)
        uv_timer_stop(&w->timer);
    else /* 0 means "as soon as possible": from the loop, not from here */
        uv_timer_start(&w->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    struct transfer *t = userp;
    size_t n = size * nmemb;
    if (n > sizeof(t->response) - t->response_len) {
        t->too_long = true;
        return 0; /* aborts the transfer */
    }
    memcpy(t->response + t->response_len, data, n);
    t->response_len += n;
    return n;
}

/* Turns a finished transfer into an outcome. */
static void decide(struct transfer *t, CURLcode res, struct outcome *o)
{
    *o = (struct outcome){.action = OUTCOME_LEAVE};
    long status = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (res != CURLE_OK) {
        o->timed_out = res == CURLE_OPERATION_TIMEDOUT;
        if (t->too_long)
            snprintf(o->detail, sizeof(o->detail), "response longer than %d bytes",
                     WEBHOOK_MAX_RESPONSE);
        else if (o->timed_out)
            snprintf(o->detail, sizeof(o->detail), "timed out after %u ms", t->timeout_ms);
        else
            snprintf(o->detail, sizeof(o->detail), "%.100s",
                     t->error[0] ? t->error : curl_easy_strerror(res));
        return;
    }
    if (status < 200 || status > 299) {
        snprintf(o->detail, sizeof(o->detail), "HTTP %ld", status);
        return;
    }
    json_error_t jerr;
    json_t *root = json_loadb(t->response, t->response_len, 0, &jerr);
    const char *action = NULL;
    const char *text = "";
    size_t text_len = 0;
    if (root && json_is_object(root)) {
        json_t *a = json_object_get(root, "action");
        json_t *x = json_object_get(root, "text");
        if (json_is_string(a))
            action = json_string_value(a);
        if (json_is_string(x)) {
            text = json_string_value(x);
            text_len = json_string_length(x);
        }
    }
    if (!action) {
        snprintf(o->detail, sizeof(o->detail),
                 "HTTP %ld but the body is not {\"action\": ..., \"text\": ...}", status);
    } else if (strcmp(action, "resolve") == 0) {
        o->action = OUTCOME_RESOLVE;
    } else if (strcmp(action, "return") == 0) {
        o->action = OUTCOME_RETURN;
    } else if (strcmp(action, "progress") == 0) {
        o->action = OUTCOME_PROGRESS;
    } else if (strcmp(action, "retry") == 0) {
        snprintf(o->detail, sizeof(o->detail), "HTTP %ld, action retry", status);
    } else {
        snprintf(o->detail, sizeof(o->detail), "HTTP %ld, unknown action '%.32s'", status, action);
    }
    if (o->action != OUTCOME_LEAVE)
        snprintf(o->detail, sizeof(o->detail), "HTTP %ld", status);
    outcome_text(text, text_len, o->text);
    json_decref(root);
}

static void transfer_free(struct transfer *t)
{
    curl_easy_cleanup(t->easy);
    free(t->body);
    free(t);
}

static void finish(struct webhook *w, struct transfer *t, CURLcode res)
{
    struct outcome o;
    decide(t, res, &o);
    curl_multi_remove_handle(w->multi, t->easy);
    if (t->prev)
        t->prev->next = t->next;
    else
        w->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->active--;
    outcome_cb cb = t->cb;
    void *arg = t->arg;
    transfer_free(t);
    cb(arg, &o);
}

static void check_done(struct webhook *w)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        finish(w, t, m->data.result);
    }
}

int webhook_new(uv_loop_t *loop, const char *url, struct webhook **ret)
{
    struct webhook *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->loop = loop;
    w->url = strdup(url);
    w->headers = curl_slist_append(NULL, "Content-Type: application/json");
    w->multi = curl_multi_init();
    if (!w->url || !w->headers || !w->multi) {
        free(w->url);
        curl_slist_free_all(w->headers);
        if (w->multi)
            curl_multi_cleanup(w->multi);
        free(w);
        return -ENOMEM;
    }
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    uv_timer_init(loop, &w->timer);
    w->timer.data = w;
    *ret = w;
    return 0;
}

int webhook_post(struct webhook *w, const char *json, size_t len, uint32_t timeout_ms,
                 outcome_cb cb, void *arg)
{
    if (w->closing)
        return -ESHUTDOWN;
    struct transfer *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->w = w;
    t->cb = cb;
    t->arg = arg;
    t->timeout_ms = timeout_ms;
    t->body = malloc(len ? len : 1);
    t->easy = curl_easy_init();
    if (!t->body || !t->easy) {
        if (t->easy)
            curl_easy_cleanup(t->easy);
        free(t->body);
        free(t);
        return -ENOMEM;
    }
    memcpy(t->body, json, len);
    CURL *e = t->easy;
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, w->url);
    bad |= curl_easy_setopt(e, CURLOPT_POST, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body);
    bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, w->headers);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error);
    bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    if (bad || curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        transfer_free(t);
        return -EIO;
    }
    t->next = w->transfers;
    if (t->next)
        t->next->prev = t;
    w->transfers = t;
    w->active++;
    return 0;
}

size_t webhook_active(const struct webhook *w)
{
    return w ? w->active : 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct webhook *w = h->data;
    curl_multi_cleanup(w->multi);
    curl_slist_free_all(w->headers);
    free(w->url);
    free(w);
}

void webhook_close(struct webhook *w)
{
    if (!w || w->closing)
        return;
    w->closing = true;
    while (w->transfers)
        finish(w, w->transfers, CURLE_ABORTED_BY_CALLBACK);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, NULL);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, on_timer_closed);
}
