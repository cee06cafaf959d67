/* http.h - the dashboard's HTTP server: libmicrohttpd on the libuv loop (epoll fd), pages, JSON,
 * SSE, /metrics. */
#ifndef GD_DASH_HTTP_H
#define GD_DASH_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "model.h"
#include "render.h"

struct http_config {
    const char *listen;       /* "HOST:PORT" (IPv4), port 0 = any */
    uint32_t max_connections; /* all HTTP connections at once */
    uint32_t max_per_ip;      /* connections from one address */
    uint32_t max_sse;         /* event-stream clients at once */
    uint32_t sse_buffer;      /* bytes queued per event-stream client before it is dropped */
    uint32_t push_ms;         /* event-stream update period */
    uint32_t heartbeat_s;     /* event-stream comment when idle */
    uint32_t timeout_s;       /* idle connection timeout (not event streams) */
    uint32_t request_memory;  /* per-connection memory: bounds the request line and headers */
};

struct sse_client;
struct geomap;

struct http {
    uv_loop_t *loop;
    struct MHD_Daemon *daemon;
    int listen_fd;
    uint16_t port;    /* bound port */
    uv_poll_t poll;   /* MHD's epoll fd */
    uv_timer_t timer; /* MHD's own timeouts */
    uv_timer_t push;  /* event-stream updates */
    struct http_config cfg;
    const struct dash_model *model;
    const struct geomap *map;   /* the drill-down maps; NULL until the first load (http_set_map) */
    struct sse_client *clients; /* doubly linked */
    struct dash_http_stats stats;
    uint64_t pushed_version; /* model version of the last summary push */
    uint64_t pushed_feed;    /* feed seq of the last feed push */
    uint64_t ticks;
    struct tb scratch;
    bool open;
    bool stopping;
};

/* Binds cfg->listen, starts libmicrohttpd without threads (MHD_USE_EPOLL,
 * external event loop) on `loop`, and starts the push timer. `model` is
 * read on the loop thread only: the HTTP side never runs elsewhere, so no
 * lock is needed. Returns 0, or a negative errno with a message in err. */
int http_open(struct http *h, uv_loop_t *loop, const struct http_config *cfg,
              const struct dash_model *model, char *err, size_t errlen);

/* Serves `map` (owned by the caller, who keeps it until it is replaced or
 * the server closed) from now on, and shows its size in /metrics. */
void http_set_map(struct http *h, const struct geomap *map);

/* Ends every event stream, stops the daemon and closes the handles; `h`
 * must stay allocated until the loop has run once more. */
void http_close(struct http *h);

#endif
