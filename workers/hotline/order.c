/* order.c - one 12345 hotline order (a JSON line) checked and turned into a SUBMIT. */
#include "order.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "isotime.h"

/* The string at `key`, checked against the field's byte limit. Returns 0
 * (absent or "" leaves *ret empty), or -1 with `why`. */
static int get_str(json_t *doc, const char *key, size_t max, struct gd_str *ret, char *why,
                   size_t why_len)
{
    json_t *v = json_object_get(doc, key);
    *ret = GD_STR_NULL;
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        snprintf(why, why_len, "%s: not a string", key);
        return -1;
    }
    size_t n = json_string_length(v);
    if (n > max) {
        snprintf(why, why_len, "%s: %zu bytes, at most %zu", key, n, max);
        return -1;
    }
    struct gd_str s = gd_str_make(json_string_value(v), n);
    if (!gd_utf8_valid(s)) {
        snprintf(why, why_len, "%s: contains a NUL character", key);
        return -1;
    }
    *ret = s;
    return 0;
}

static int parse_urgency(struct gd_str s, enum gd_priority *ret)
{
    static const struct {
        const char *name;
        enum gd_priority p;
    } names[] = {
        {"normal", GD_PRIO_NORMAL}, {"一般", GD_PRIO_NORMAL},         {"urgent", GD_PRIO_URGENT},
        {"紧急", GD_PRIO_URGENT},   {"emergency", GD_PRIO_EMERGENCY}, {"特急", GD_PRIO_EMERGENCY},
    };
    if (!s.len) {
        *ret = GD_PRIO_NORMAL;
        return 0;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (gd_str_eq_c(s, names[i].name)) {
            *ret = names[i].p;
            return 0;
        }
    return -1;
}

static bool is_code(struct gd_str s)
{
    for (uint32_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

int order_parse(const char *line, size_t len, struct order *ret, char *why, size_t why_len)
{
    *ret = (struct order){0};
    json_error_t jerr;
    /* JSON_REJECT_DUPLICATES: a key twice is ambiguous, like on the wire */
    json_t *doc = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc) {
        /* jansson quotes the offending input ("... near 'xyz'"): that may be
         * a caller's data, so keep only the description */
        char *near = strstr(jerr.text, " near ");
        if (near)
            *near = '\0';
        snprintf(why, why_len, "not JSON: %s (column %d)", jerr.text, jerr.column);
        return -1;
    }
    if (!json_is_object(doc)) {
        snprintf(why, why_len, "not a JSON object");
        goto fail;
    }
    struct gd_msg m = {.type = GD_T_SUBMIT};
    struct gd_submit *s = &m.u.submit;
    s->source = GD_STR("hotline");
    struct gd_str grid, community, town, unit, urgency;
    if (get_str(doc, "ticket_no", GD_MAX_EXTERNAL_ID, &s->external_id, why, why_len) < 0 ||
        get_str(doc, "caller_name", GD_MAX_NAME, &s->reporter.name, why, why_len) < 0 ||
        get_str(doc, "caller_phone", GD_MAX_PHONE, &s->reporter.phone, why, why_len) < 0 ||
        get_str(doc, "category", GD_MAX_CODE, &s->category, why, why_len) < 0 ||
        get_str(doc, "grid", GD_MAX_CODE, &grid, why, why_len) < 0 ||
        get_str(doc, "community", GD_MAX_CODE, &community, why, why_len) < 0 ||
        get_str(doc, "town", GD_MAX_CODE, &town, why, why_len) < 0 ||
        get_str(doc, "unit", GD_MAX_CODE, &unit, why, why_len) < 0 ||
        get_str(doc, "address", GD_MAX_ADDRESS, &s->location.address, why, why_len) < 0 ||
        get_str(doc, "content", GD_MAX_DESCRIPTION, &s->description, why, why_len) < 0 ||
        get_str(doc, "urgency", GD_MAX_CODE, &urgency, why, why_len) < 0)
        goto fail;
    if (!s->external_id.len) {
        snprintf(why, why_len, "ticket_no: missing");
        goto fail;
    }
    if (!s->description.len) {
        snprintf(why, why_len, "content: missing");
        goto fail;
    }
    s->location.unit = grid.len ? grid : unit.len ? unit : community.len ? community : town;
    if (!is_code(s->location.unit) || !is_code(s->category)) {
        snprintf(why, why_len, "%s: not a code (letters, digits, _ - .)",
                 is_code(s->category) ? "location code" : "category");
        goto fail;
    }
    if (parse_urgency(urgency, &s->priority) < 0) {
        snprintf(why, why_len, "urgency: not normal, urgent or emergency (一般, 紧急, 特急)");
        goto fail;
    }
    json_t *lat = json_object_get(doc, "lat"), *lon = json_object_get(doc, "lon");
    if (lat || lon) {
        if (!json_is_number(lat) || !json_is_number(lon)) {
            snprintf(why, why_len, "lat, lon: give both, as numbers");
            goto fail;
        }
        s->location.lat = json_number_value(lat);
        s->location.lon = json_number_value(lon);
        if (!isfinite(s->location.lat) || fabs(s->location.lat) > 90 ||
            !isfinite(s->location.lon) || fabs(s->location.lon) > 180) {
            snprintf(why, why_len, "lat, lon: out of range");
            goto fail;
        }
        s->location.has_coords = true;
    }
    json_t *at = json_object_get(doc, "received_at");
    if (json_is_string(at)) {
        if (isotime_parse(json_string_value(at), json_string_length(at), &s->reported_at) < 0) {
            snprintf(why, why_len,
                     "received_at: not an ISO 8601 date-time with a zone "
                     "(2026-03-01T09:15:00+08:00)");
            goto fail;
        }
    } else if (json_is_integer(at)) {
        s->reported_at = json_integer_value(at);
        if (s->reported_at <= 0) {
            snprintf(why, why_len, "received_at: not a positive time in ms");
            goto fail;
        }
    } else if (at) {
        snprintf(why, why_len, "received_at: not a date-time");
        goto fail;
    }
    ret->doc = doc;
    ret->msg = m;
    return 0;

fail:
    json_decref(doc);
    return -1;
}

void order_fini(struct order *o)
{
    json_decref(o->doc);
    o->doc = NULL;
}

void order_ticket(const char *line, size_t len, char out[GD_MAX_EXTERNAL_ID + 1])
{
    out[0] = '\0';
    json_t *doc = json_loadb(line, len, 0, NULL);
    json_t *t = doc ? json_object_get(doc, "ticket_no") : NULL;
    if (json_is_string(t) && json_string_length(t) <= GD_MAX_EXTERNAL_ID &&
        gd_utf8_valid(gd_str_make(json_string_value(t), json_string_length(t))))
        snprintf(out, GD_MAX_EXTERNAL_ID + 1, "%s", json_string_value(t));
    json_decref(doc);
}
