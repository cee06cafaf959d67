/* http.c - libmicrohttpd on the libuv loop: static page, JSON API, Server-Sent Events, /metrics.
 *
 * MHD runs without threads of its own (MHD_USE_EPOLL, external loop): its
 * epoll fd is watched with uv_poll and MHD_run() is called when it is
 * readable or when MHD's timeout passes. Everything therefore runs on the
 * loop thread that also applies the status stream to the model.
 *
 * An event stream is a response whose content reader hands out the
 * client's pending bytes; with nothing pending it suspends the connection,
 * and the push timer resumes it after queueing new events. A client whose
 * pending bytes exceed cfg.sse_buffer is ended (the browser's EventSource
 * reconnects and gets a fresh summary). */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "assets.h"
#include "geomap.h"

#define FEED_PUSH_MAX 64 /* feed items in one push (the rest are skipped) */
#define FEED_INITIAL  50 /* feed items sent to a new client */

#define MAP_NOT_READY "{\"error\":\"not_ready\",\"message\":\"the boundaries are not read yet\"}\n"

struct sse_client {
    struct http *h;
    struct MHD_Connection *conn;
    struct sse_client *prev, *next;
    char unit[GD_MAX_CODE + 1];
    struct tb out; /* pending bytes; out.data[sent..len) not yet written */
    size_t sent;
    bool suspended;
    bool ending; /* end the stream at the next read */
    uint64_t last_write_tick;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void run_mhd(struct http *h);

/* ---- responses ---- */

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const void *data, size_t len, enum MHD_ResponseMemoryMode mode,
                             const char *cache)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)data, mode);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", cache ? cache : "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; style-src 'self'; script-src 'self'; "
                            "connect-src 'self'; img-src 'self' data:");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_tb(struct http *h, struct MHD_Connection *c, unsigned status,
                                const char *type)
{
    if (h->scratch.failed)
        return reply(c, 500, "text/plain", "out of memory\n", 14, MHD_RESPMEM_PERSISTENT, NULL);
    return reply(c, status, type, h->scratch.data ? h->scratch.data : "", h->scratch.len,
                 MHD_RESPMEM_MUST_COPY, NULL);
}

static enum MHD_Result reply_error(struct http *h, struct MHD_Connection *c, unsigned status,
                                   const char *code, const char *message)
{
    tb_reset(&h->scratch);
    tb_printf(&h->scratch, "{\"error\":\"%s\",\"message\":", code);
    tb_json_str(&h->scratch, message);
    tb_puts(&h->scratch, "}\n");
    return reply_tb(h, c, status, "application/json");
}

/* The unit named by ?unit=, the district when absent; NULL (after
 * answering 404) when it names none or is over GD_MAX_CODE bytes. */
static const struct dash_unit *unit_arg(struct http *h, struct MHD_Connection *c,
                                        enum MHD_Result *ret)
{
    const char *code = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "unit");
    if (!code || !*code)
        return h->model->root;
    const struct dash_unit *u =
        strlen(code) <= GD_MAX_CODE ? dash_model_unit(h->model, code) : NULL;
    if (!u)
        *ret = reply_error(h, c, 404, "not_found", "no such org unit");
    return u;
}

/* ---- event streams ---- */

static void sse_event(struct sse_client *cl, const char *event, const char *data, size_t len)
{
    if (cl->ending)
        return;
    if (cl->out.len - cl->sent + len + 64 > cl->h->cfg.sse_buffer) {
        cl->ending = true; /* too slow a reader: drop it, it reconnects */
        return;
    }
    if (cl->sent && cl->sent == cl->out.len) {
        tb_reset(&cl->out);
        cl->sent = 0;
    }
    tb_printf(&cl->out, "event: %s\ndata: ", event);
    tb_put(&cl->out, data, len);
    tb_puts(&cl->out, "\n\n");
    if (cl->out.failed)
        cl->ending = true;
}

static void sse_wake(struct sse_client *cl)
{
    if (cl->suspended) {
        cl->suspended = false;
        MHD_resume_connection(cl->conn);
    }
}

static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct sse_client *cl = cls;
    if (cl->sent < cl->out.len) {
        size_t n = cl->out.len - cl->sent;
        if (n > max)
            n = max;
        memcpy(buf, cl->out.data + cl->sent, n);
        cl->sent += n;
        cl->last_write_tick = cl->h->ticks;
        return (ssize_t)n;
    }
    if (cl->ending || cl->h->stopping)
        return MHD_CONTENT_READER_END_OF_STREAM;
    cl->suspended = true;
    MHD_suspend_connection(cl->conn);
    return 0;
}

/* Called by MHD when the stream's response is destroyed (connection gone). */
static void sse_free(void *cls)
{
    struct sse_client *cl = cls;
    struct http *h = cl->h;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        h->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    h->stats.sse_clients--;
    tb_fini(&cl->out);
    free(cl);
}

static void sse_send_summary(struct http *h, struct sse_client *cl, int64_t now)
{
    const struct dash_unit *u = dash_model_unit(h->model, cl->unit);
    if (!u)
        u = h->model->root;
    tb_reset(&h->scratch);
    render_summary(&h->scratch, h->model, u, now);
    if (!h->scratch.failed)
        sse_event(cl, "summary", h->scratch.data, h->scratch.len);
}

static enum MHD_Result start_stream(struct http *h, struct MHD_Connection *c)
{
    enum MHD_Result ret = MHD_NO;
    const struct dash_unit *u = unit_arg(h, c, &ret);
    if (!u)
        return ret;
    if (h->stats.sse_clients >= h->cfg.max_sse) {
        h->stats.sse_refused++;
        struct MHD_Response *r = MHD_create_response_from_buffer(
            sizeof("too many event-stream clients\n") - 1, "too many event-stream clients\n",
            MHD_RESPMEM_PERSISTENT);
        if (!r)
            return MHD_NO;
        MHD_add_response_header(r, "Retry-After", "10");
        MHD_add_response_header(r, "Content-Type", "text/plain");
        ret = MHD_queue_response(c, 503, r);
        MHD_destroy_response(r);
        return ret;
    }
    struct sse_client *cl = calloc(1, sizeof(*cl));
    if (!cl)
        return MHD_NO;
    cl->h = h;
    cl->conn = c;
    cl->out.limit = h->cfg.sse_buffer + 4096;
    snprintf(cl->unit, sizeof(cl->unit), "%s", u->code);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, sse_read, cl, sse_free);
    if (!r) {
        free(cl);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream; charset=utf-8");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Accel-Buffering", "no");
    cl->next = h->clients;
    if (h->clients)
        h->clients->prev = cl;
    h->clients = cl;
    h->stats.sse_clients++;
    int64_t now = now_ms();
    tb_puts(&cl->out, "retry: 3000\n\n");
    sse_send_summary(h, cl, now);
    tb_reset(&h->scratch);
    render_feed(&h->scratch, h->model,
                h->model->feed_seq > FEED_INITIAL ? h->model->feed_seq - FEED_INITIAL : 0);
    sse_event(cl, "feed", h->scratch.data, h->scratch.len);
    ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r); /* the connection holds it; sse_free runs when it goes */
    return ret;
}

/* One push: summaries when the model changed, new feed items, heartbeats. */
static void on_push(uv_timer_t *t)
{
    struct http *h = t->data;
    const struct dash_model *m = h->model;
    int64_t now = now_ms();
    h->ticks++;
    bool changed = m->version != h->pushed_version;
    h->pushed_version = m->version;
    uint64_t hb_ticks = (uint64_t)h->cfg.heartbeat_s * 1000 / (h->cfg.push_ms ? h->cfg.push_ms : 1);
    if (hb_ticks == 0)
        hb_ticks = 1;

    struct tb feed = {0};
    if (m->feed_seq > h->pushed_feed) {
        uint64_t after = h->pushed_feed;
        if (m->feed_seq - after > FEED_PUSH_MAX)
            after = m->feed_seq - FEED_PUSH_MAX;
        render_feed(&feed, m, after);
        h->pushed_feed = m->feed_seq;
    }
    for (struct sse_client *cl = h->clients; cl; cl = cl->next) {
        size_t before = cl->out.len - cl->sent;
        if (changed)
            sse_send_summary(h, cl, now);
        if (feed.len && !feed.failed)
            sse_event(cl, "feed", feed.data, feed.len);
        if (cl->out.len - cl->sent == before && h->ticks - cl->last_write_tick >= hb_ticks) {
            tb_puts(&cl->out, ": heartbeat\n\n"); /* also finds clients that went away */
            cl->last_write_tick = h->ticks;
        }
        if (cl->out.len > cl->sent || cl->ending)
            sse_wake(cl);
    }
    tb_fini(&feed);
    run_mhd(h);
}

/* ---- requests ---- */

static bool has_body(struct MHD_Connection *c)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding");
    return te || (cl && strcmp(cl, "0") != 0);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    struct http *h = cls;
    if (*con_cls == NULL) {
        *con_cls = h; /* seen: later calls skip the checks */
        h->stats.requests++;
        if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
            h->stats.requests_refused++;
            return reply_error(h, c, 405, "method", "only GET and HEAD");
        }
        if (has_body(c)) {
            h->stats.requests_refused++;
            return reply_error(h, c, 413, "too_large", "requests carry no body");
        }
        /* answered on this first call: nothing more to read */
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* refused above; discard anything left */
        return MHD_YES;
    }
    enum MHD_Result ret = MHD_NO;
    int64_t now = now_ms();
    const struct dash_model *m = h->model;
    if (!strcmp(url, "/events"))
        return start_stream(h, c);
    if (!strcmp(url, "/api/summary")) {
        const struct dash_unit *u = unit_arg(h, c, &ret);
        if (!u)
            return ret;
        tb_reset(&h->scratch);
        render_summary(&h->scratch, m, u, now);
        return reply_tb(h, c, 200, "application/json");
    }
    if (!strcmp(url, "/api/feed")) {
        const char *a = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "after");
        char *end = NULL;
        unsigned long long after = a ? strtoull(a, &end, 10) : 0;
        if (a && (!*a || *end || strlen(a) > 20))
            return reply_error(h, c, 400, "bad_value", "after must be a feed sequence number");
        tb_reset(&h->scratch);
        render_feed(&h->scratch, m, after);
        return reply_tb(h, c, 200, "application/json");
    }
    if (!strcmp(url, "/api/broker")) {
        tb_reset(&h->scratch);
        render_broker(&h->scratch, m, now);
        return reply_tb(h, c, 200, "application/json");
    }
    if (!strcmp(url, "/api/map.svg")) {
        const struct dash_unit *u = unit_arg(h, c, &ret);
        if (!u)
            return ret;
        if (!h->map) {
            struct MHD_Response *r = MHD_create_response_from_buffer(
                sizeof(MAP_NOT_READY) - 1, (void *)MAP_NOT_READY, MHD_RESPMEM_PERSISTENT);
            if (!r)
                return MHD_NO;
            MHD_add_response_header(r, "Content-Type", "application/json");
            MHD_add_response_header(r, "Retry-After", "5");
            ret = MHD_queue_response(c, 503, r);
            MHD_destroy_response(r);
            return ret;
        }
        const struct geomap_view *v = geomap_view(h->map, u->code);
        if (!v)
            return reply_error(h, c, 404, "no_map", "no boundaries for this unit's children");
        tb_reset(&h->scratch);
        geomap_render(&h->scratch, v, m);
        return reply_tb(h, c, 200, "image/svg+xml; charset=utf-8");
    }
    if (!strcmp(url, "/metrics")) {
        tb_reset(&h->scratch);
        render_metrics(&h->scratch, m, &h->stats, now);
        return reply_tb(h, c, 200, "text/plain; version=0.0.4; charset=utf-8");
    }
    if (!strcmp(url, "/healthz")) {
        bool ok = true; /* every shard's broker status arrives */
        for (uint32_t i = 0; i < m->n_shards; i++)
            ok = ok && dash_broker_up(&m->broker[i], now);
        return reply(c, ok ? 200 : 503, "text/plain", ok ? "ok\n" : "no broker status\n",
                     ok ? 3 : 17, MHD_RESPMEM_PERSISTENT, NULL);
    }
    const char *path = !strcmp(url, "/") ? "/index.html" : url;
    for (size_t i = 0; i < dash_n_assets; i++)
        if (!strcmp(path, dash_assets[i].path))
            return reply(c, 200, dash_assets[i].type, dash_assets[i].data, dash_assets[i].len,
                         MHD_RESPMEM_PERSISTENT, "max-age=60");
    return reply_error(h, c, 404, "not_found", "no such page");
}

/* ---- MHD on the loop ---- */

static void on_mhd_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_mhd_poll(uv_poll_t *p, int status, int events)
{
    (void)status;
    (void)events;
    run_mhd(p->data);
}

static void run_mhd(struct http *h)
{
    if (!h->daemon)
        return;
    MHD_run(h->daemon);
    MHD_UNSIGNED_LONG_LONG to = 0;
    if (MHD_get_timeout(h->daemon, &to) == MHD_YES)
        uv_timer_start(&h->timer, on_mhd_timer, to, 0);
    else
        uv_timer_stop(&h->timer);
}

static int bind_listen(const char *spec, int *ret_fd, uint16_t *ret_port, char *err, size_t errlen)
{
    char host[64];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof(host)) {
        snprintf(err, errlen, "--http wants HOST:PORT, not %s", spec);
        return -EINVAL;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (*end || port < 0 || port > 65535 || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--http wants an IPv4 HOST:PORT, not %s", spec);
        return -EINVAL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        goto fail;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0)
        goto close_fd;
    socklen_t len = sizeof(sa);
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        goto close_fd;
    *ret_fd = fd;
    *ret_port = ntohs(sa.sin_port);
    return 0;

close_fd:
    close(fd);
fail:;
    int e = errno;
    snprintf(err, errlen, "cannot listen on %s: %s", spec, strerror(e));
    return -e;
}

int http_open(struct http *h, uv_loop_t *loop, const struct http_config *cfg,
              const struct dash_model *model, char *err, size_t errlen)
{
    *h = (struct http){.loop = loop, .cfg = *cfg, .model = model, .listen_fd = -1};
    h->scratch.limit = 64u << 20; /* the largest document (metrics of 65536 queues) fits */
    int rc = bind_listen(cfg->listen, &h->listen_fd, &h->port, err, errlen);
    if (rc < 0)
        return rc;
    h->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME, 0, NULL, NULL, on_request, h,
        MHD_OPTION_LISTEN_SOCKET, h->listen_fd, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->max_per_ip, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->request_memory, MHD_OPTION_END);
    if (!h->daemon) {
        snprintf(err, errlen, "libmicrohttpd did not start on %s", cfg->listen);
        rc = -EIO;
        goto close_listen;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info) {
        snprintf(err, errlen, "libmicrohttpd has no epoll fd");
        rc = -EIO;
        goto stop_daemon;
    }
    uv_poll_init(loop, &h->poll, info->epoll_fd);
    h->poll.data = h;
    uv_poll_start(&h->poll, UV_READABLE, on_mhd_poll);
    uv_timer_init(loop, &h->timer);
    h->timer.data = h;
    uv_timer_init(loop, &h->push);
    h->push.data = h;
    uv_timer_start(&h->push, on_push, cfg->push_ms, cfg->push_ms);
    h->open = true;
    run_mhd(h);
    return 0;

stop_daemon:
    MHD_stop_daemon(h->daemon);
    h->daemon = NULL;
close_listen:
    close(h->listen_fd);
    h->listen_fd = -1;
    return rc;
}

void http_set_map(struct http *h, const struct geomap *map)
{
    h->map = map;
    h->stats.map_views = map ? map->n_views : 0;
    h->stats.map_shapes = map ? map->n_shapes : 0;
    h->stats.map_bytes = map ? map->bytes : 0;
}

static void on_closed(uv_handle_t *hd)
{
    (void)hd;
}

void http_close(struct http *h)
{
    if (!h->open)
        return;
    h->open = false;
    h->stopping = true;
    /* MHD must not be stopped with suspended connections */
    for (struct sse_client *cl = h->clients; cl; cl = cl->next) {
        cl->ending = true;
        sse_wake(cl);
    }
    MHD_run(h->daemon);
    uv_poll_stop(&h->poll);
    uv_timer_stop(&h->timer);
    uv_timer_stop(&h->push);
    uv_close((uv_handle_t *)&h->poll, on_closed);
    uv_close((uv_handle_t *)&h->timer, on_closed);
    uv_close((uv_handle_t *)&h->push, on_closed);
    MHD_stop_daemon(h->daemon); /* frees the remaining streams (sse_free), closes listen_fd */
    h->daemon = NULL;
    h->listen_fd = -1;
    tb_fini(&h->scratch);
}
