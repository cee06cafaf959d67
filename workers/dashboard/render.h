/* render.h - JSON documents and the Prometheus text exposition rendered from the dashboard model.
 */
#ifndef GD_DASH_RENDER_H
#define GD_DASH_RENDER_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* A growable text buffer. Zero-initialise; tb_fini frees it. Appends
 * never fail visibly: running out of memory (or past `limit`, when set)
 * sets `failed` and further appends do nothing, so a renderer checks once
 * at the end. */
struct tb {
    char *data;
    size_t len, cap;
    size_t limit; /* 0 = no limit */
    bool failed;
};

void tb_reset(struct tb *b);
void tb_fini(struct tb *b);
void tb_put(struct tb *b, const char *s, size_t n);
void tb_puts(struct tb *b, const char *s);
void tb_printf(struct tb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes included); invalid UTF-8
 * bytes become U+FFFD. */
void tb_json_str(struct tb *b, const char *s);

/* Extra figures the HTTP side owns, shown in /metrics. */
struct dash_http_stats {
    uint32_t sse_clients;
    uint64_t sse_refused, requests, requests_refused;
    /* the drill-down maps (geomap.h) in use, and their loads */
    uint32_t map_views, map_shapes;
    uint64_t map_bytes, map_loads, map_load_failures;
    double map_load_seconds; /* of the last good load */
};

/* The summary of unit u as JSON: the unit and its path from the district,
 * its own row and one row per child (no children below grids): per sector
 * and in total the queue gauges of the subtree and today's counts. `now`
 * is local time (ms). See README.md "GET /api/summary". */
void render_summary(struct tb *out, const struct dash_model *m, const struct dash_unit *u,
                    int64_t now);

/* One feed item as a JSON object. */
void render_feed_item(struct tb *out, const struct dash_model *m, const struct dash_feed_item *it);
/* The feed items after seq `after` as a JSON array, oldest first. */
void render_feed(struct tb *out, const struct dash_model *m, uint64_t after);
/* The last broker message as JSON (`{"seen":false}` before the first). */
void render_broker(struct tb *out, const struct dash_model *m, int64_t now);

/* Everything in Prometheus text exposition format 0.0.4. */
void render_metrics(struct tb *out, const struct dash_model *m, const struct dash_http_stats *hs,
                    int64_t now);

#endif
