/* order.h - one 12345 hotline order (a JSON line) checked and turned into a SUBMIT.
 *
 * The line format (one JSON object per line, UTF-8; unknown keys ignored):
 *   ticket_no    string, required, 1..64 bytes: the hotline's order number,
 *                sent as external_id (source "hotline")
 *   received_at  string ISO 8601 with a zone, or integer ms since the epoch:
 *                when the hotline took the call (reported_at)
 *   caller_name, caller_phone   strings, optional: personal data
 *   category     string, optional: catalogue code (absent: triage)
 *   grid, community, town, unit   strings, optional: org-unit codes; the
 *                finest given is the location
 *   address      string, optional: location as text
 *   lat, lon     numbers, optional, together
 *   content      string, required: what the caller reported
 *   urgency      normal|urgent|emergency (also 一般|紧急|特急), default normal
 */
#ifndef GD_HOTLINE_ORDER_H
#define GD_HOTLINE_ORDER_H

#include <stddef.h>

#include "gdp.h"

struct json_t;

/* A parsed order: the SUBMIT and the JSON document its strings point into. */
struct order {
    struct json_t *doc;
    struct gd_msg msg; /* a SUBMIT */
};

/* Parses `len` bytes (one line, without its newline) into *ret. Returns 0,
 * or -1 with a reason for people in `why` (never quoting the caller's data;
 * the ticket number may appear). On success the caller releases *ret with
 * order_fini(). */
int order_parse(const char *line, size_t len, struct order *ret, char *why, size_t why_len);

/* Releases what order_parse() produced; accepts a zeroed order. */
void order_fini(struct order *o);

/* The ticket number of a line that may not parse, for the reject file:
 * copied into out (NUL-terminated, at most GD_MAX_EXTERNAL_ID bytes), or
 * "" when the line has none that is usable. */
void order_ticket(const char *line, size_t len, char out[GD_MAX_EXTERNAL_ID + 1]);

#endif
