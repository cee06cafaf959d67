/* georeq.c - gd-open311's untrusted-input parsing, free of HTTP: the URL route, POST form fields
 * into a SUBMIT, and GET query arguments into a request filter. */
#include "georeq.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "isotime.h"

static const struct {
    const char *name;
    size_t max;
} fields[GEOREQ_FIELD_COUNT] = {
    [GEOREQ_API_KEY] = {"api_key", 128},
    [GEOREQ_SERVICE_CODE] = {"service_code", GD_MAX_CODE},
    [GEOREQ_LAT] = {"lat", 32},
    [GEOREQ_LONG] = {"long", 32},
    [GEOREQ_ADDRESS_STRING] = {"address_string", GD_MAX_ADDRESS},
    [GEOREQ_ADDRESS_ID] = {"address_id", GD_MAX_CODE},
    [GEOREQ_DESCRIPTION] = {"description", GD_MAX_DESCRIPTION},
    [GEOREQ_MEDIA_URL] = {"media_url", GD_MAX_URL},
    [GEOREQ_FIRST_NAME] = {"first_name", GD_MAX_NAME},
    [GEOREQ_LAST_NAME] = {"last_name", GD_MAX_NAME},
    [GEOREQ_PHONE] = {"phone", GD_MAX_PHONE},
    [GEOREQ_EMAIL] = {"email", 254},
    [GEOREQ_DEVICE_ID] = {"device_id", 128},
    [GEOREQ_ACCOUNT_ID] = {"account_id", 128},
};

int georeq_route(const char *url, char *name, size_t nlen, char *arg, size_t alen,
                 enum georeq_fmt *ret_fmt)
{
    if (*url != '/')
        return -1;
    const char *dot = strrchr(url, '.');
    if (!dot)
        return -1;
    if (strcmp(dot, ".json") == 0)
        *ret_fmt = GEOREQ_JSON;
    else if (strcmp(dot, ".xml") == 0)
        *ret_fmt = GEOREQ_XML;
    else
        return -1;
    const char *p = url + 1, *slash = memchr(p, '/', (size_t)(dot - p));
    const char *name_end = slash ? slash : dot;
    if ((size_t)(name_end - p) >= nlen)
        return -1;
    memcpy(name, p, (size_t)(name_end - p));
    name[name_end - p] = '\0';
    arg[0] = '\0';
    if (slash) {
        size_t n = (size_t)(dot - slash - 1);
        if (n == 0 || n >= alen || memchr(slash + 1, '/', n))
            return -1;
        memcpy(arg, slash + 1, n);
        arg[n] = '\0';
    }
    return 0;
}

/* ---- POST form ---- */

static int value_append(struct georeq_value *v, size_t max, const char *data, size_t size)
{
    if (v->len + size > max)
        return -1;
    char *p = realloc(v->s, v->len + size + 1);
    if (!p)
        return -1;
    memcpy(p + v->len, data, size);
    v->len += size;
    p[v->len] = '\0';
    v->s = p;
    v->seen = true;
    return 0;
}

void georeq_form_add(struct georeq_form *f, const char *key, const char *data, size_t size)
{
    if (f->problem[0])
        return; /* the answer is already decided */
    for (int i = 0; i < GEOREQ_FIELD_COUNT; i++) {
        if (strcmp(key, fields[i].name) != 0)
            continue;
        if (value_append(&f->v[i], fields[i].max, data, size) < 0)
            snprintf(f->problem, sizeof(f->problem), "%s: longer than %zu bytes", key,
                     fields[i].max);
        return;
    }
    size_t klen = strlen(key);
    if (klen > 11 && strncmp(key, "attribute[", 10) == 0 && key[klen - 1] == ']') {
        size_t clen = klen - 11;
        const char *code = key + 10;
        unsigned i = 0;
        while (i < f->n_attr &&
               (strlen(f->attr[i].code) != clen || memcmp(f->attr[i].code, code, clen) != 0))
            i++;
        if (i == f->n_attr) {
            if (f->n_attr == GEOREQ_MAX_ATTRIBUTES || clen == 0 || clen > GD_MAX_CODE) {
                snprintf(f->problem, sizeof(f->problem),
                         "attribute: at most %d attributes with codes of 1..%d bytes",
                         GEOREQ_MAX_ATTRIBUTES, GD_MAX_CODE);
                return;
            }
            memcpy(f->attr[i].code, code, clen);
            f->attr[i].code[clen] = '\0';
            f->n_attr++;
        }
        if (value_append(&f->attr[i].v, GEOREQ_MAX_ATTRIBUTE, data, size) < 0)
            snprintf(f->problem, sizeof(f->problem), "attribute[%.*s]: longer than %d bytes",
                     (int)clen, code, GEOREQ_MAX_ATTRIBUTE);
    }
    /* other keys are ignored, as GeoReport clients send extras */
}

void georeq_form_fini(struct georeq_form *f)
{
    for (int i = 0; i < GEOREQ_FIELD_COUNT; i++)
        free(f->v[i].s);
    for (unsigned i = 0; i < f->n_attr; i++)
        free(f->attr[i].v.s);
    *f = (struct georeq_form){0};
}

const char *georeq_field(const struct georeq_form *f, const struct georeq_args *q,
                         enum georeq_field which)
{
    if (f->v[which].seen)
        return f->v[which].s ? f->v[which].s : "";
    const char *v = q->get(q->ctx, fields[which].name);
    return v && strlen(v) <= fields[which].max ? v : "";
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

bool georeq_is_code(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

/* A coordinate in plain decimal degrees ("29.5617", "-0.5", "106"), within
 * -limit..limit. Hexadecimal, exponents, "inf" and "nan", which strtod()
 * would take, are refused. Returns 0 with *ret, or -1. */
static int parse_coord(const char *s, double limit, double *ret)
{
    const char *p = s + (*s == '-' || *s == '+');
    size_t digits = strspn(p, "0123456789");
    if (p[digits] == '.')
        digits += strspn(p + digits + 1, "0123456789") + 1;
    if (digits == 0 || p[digits] != '\0' || (digits == 1 && *p == '.'))
        return -1;
    errno = 0;
    double v = strtod(s, NULL);
    if (errno || !isfinite(v) || fabs(v) > limit)
        return -1;
    *ret = v;
    return 0;
}

/* The position of a POST: both of lat and long, or neither. Returns 0
 * (loc->has_coords set when they are given), or 400 with the message in
 * `why`. */
static int parse_position(const char *lat, const char *lon, struct gd_location *loc, char *why,
                          size_t why_len)
{
    if (!*lat && !*lon)
        return 0;
    if (!*lat || !*lon) {
        snprintf(why, why_len, "%s: missing; lat and long come together (WGS-84 degrees)",
                 *lat ? "long" : "lat");
        return 400;
    }
    if (parse_coord(lat, 90, &loc->lat) < 0) {
        snprintf(why, why_len, "lat: not a latitude in decimal degrees, -90..90 (WGS-84)");
        return 400;
    }
    if (parse_coord(lon, 180, &loc->lon) < 0) {
        snprintf(why, why_len, "long: not a longitude in decimal degrees, -180..180 (WGS-84)");
        return 400;
    }
    loc->has_coords = true;
    return 0;
}

int georeq_submit(const struct georeq_form *f, const struct georeq_args *q,
                  const char *idempotency_key, struct georeq_submit *ret, char *why, size_t why_len)
{
    *ret = (struct georeq_submit){.msg.type = GD_T_SUBMIT};
    struct gd_submit *s = &ret->msg.u.submit;
    if (f->problem[0]) {
        snprintf(why, why_len, "%s", f->problem);
        return 400;
    }
    for (int i = 0; i < GEOREQ_FIELD_COUNT; i++) {
        /* from the query string: refused beyond its limit, as in the body */
        const char *v = f->v[i].seen ? NULL : q->get(q->ctx, fields[i].name);
        if (v && strlen(v) > fields[i].max) {
            snprintf(why, why_len, "%s: longer than %zu bytes", fields[i].name, fields[i].max);
            return 400;
        }
    }
    const char *code = georeq_field(f, q, GEOREQ_SERVICE_CODE);
    if (!*code) {
        snprintf(why, why_len, "service_code: missing");
        return 400;
    }
    if (!georeq_is_code(code)) {
        snprintf(why, why_len, "service_code: not a service code");
        return 400;
    }
    s->source = GD_STR("open311");
    s->category = gd_str_c(code);
    const char *lat = georeq_field(f, q, GEOREQ_LAT), *lon = georeq_field(f, q, GEOREQ_LONG);
    const char *addr = georeq_field(f, q, GEOREQ_ADDRESS_STRING);
    const char *addr_id = georeq_field(f, q, GEOREQ_ADDRESS_ID);
    int st = parse_position(lat, lon, &s->location, why, why_len);
    if (st != 0)
        return st;
    if (!s->location.has_coords && !*addr && !*addr_id) {
        snprintf(why, why_len, "location: give lat and long, address_string or address_id");
        return 400;
    }
    if (*addr_id && !georeq_is_code(addr_id)) {
        snprintf(why, why_len, "address_id: not an area code");
        return 400;
    }
    const char *desc = georeq_field(f, q, GEOREQ_DESCRIPTION);
    size_t chars = utf8_chars(desc);
    if (chars > GEOREQ_MAX_DESCRIPTION_CHS) {
        snprintf(why, why_len, "description: %zu characters, at most %d", chars,
                 GEOREQ_MAX_DESCRIPTION_CHS);
        return 400;
    }
    const char *media = georeq_field(f, q, GEOREQ_MEDIA_URL);
    if (*media && strncmp(media, "http://", 7) != 0 && strncmp(media, "https://", 8) != 0) {
        snprintf(why, why_len, "media_url: not an http(s) URL");
        return 400;
    }
    if (idempotency_key) {
        size_t n = strlen(idempotency_key);
        if (n < 1 || n > GEOREQ_MAX_IDEMPOTENCY_KEY) {
            snprintf(why, why_len, "Idempotency-Key: 1..%d characters", GEOREQ_MAX_IDEMPOTENCY_KEY);
            return 400;
        }
    }
    ret->service_code = code;
    ret->address_id = addr_id;
    ret->account_id = georeq_field(f, q, GEOREQ_ACCOUNT_ID);
    s->location.unit = gd_str_c(addr_id);
    s->location.address = gd_str_c(addr);

    /* attributes travel in the description: the protocol has no field for
     * them and no service defines any (metadata false) */
    size_t full_len = strlen(desc);
    if (f->n_attr) {
        size_t cap = full_len + 32;
        for (unsigned i = 0; i < f->n_attr; i++)
            cap += strlen(f->attr[i].code) + f->attr[i].v.len + 4;
        ret->description = malloc(cap);
        if (!ret->description) {
            snprintf(why, why_len, "out of memory");
            return 500;
        }
        size_t off = (size_t)snprintf(ret->description, cap, "%s%s", desc, *desc ? "\n" : "");
        for (unsigned i = 0; i < f->n_attr; i++)
            off += (size_t)snprintf(ret->description + off, cap - off, "[%s] %s\n", f->attr[i].code,
                                    f->attr[i].v.s ? f->attr[i].v.s : "");
        full_len = off;
    }
    s->description = gd_str_make(ret->description ? ret->description : desc, full_len);
    if (*media) {
        s->attachments[0] = gd_str_c(media);
        s->n_attachments = 1;
    }
    const char *first = georeq_field(f, q, GEOREQ_FIRST_NAME);
    const char *last = georeq_field(f, q, GEOREQ_LAST_NAME);
    snprintf(ret->name, sizeof(ret->name), "%s%s%s", first, *first && *last ? " " : "", last);
    if (strlen(ret->name) > GD_MAX_NAME) /* both at their limit: the first name alone */
        snprintf(ret->name, GD_MAX_NAME + 1, "%s", first);
    s->reporter.name = gd_str_c(ret->name);
    s->reporter.phone = gd_str_c(georeq_field(f, q, GEOREQ_PHONE));
    return 0;
}

void georeq_submit_fini(struct georeq_submit *s)
{
    free(s->description);
    s->description = NULL;
}

/* ---- GET requests ---- */

int georeq_array_literal(const char *list, bool (*ok)(const char *), unsigned max, char *out,
                         size_t outlen)
{
    char *copy = strdup(list);
    if (!copy)
        return -1;
    size_t off = (size_t)snprintf(out, outlen, "{");
    unsigned n = 0;
    int rc = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (!ok(t)) {
            rc = -1;
            break;
        }
        if (++n > max) {
            rc = -2;
            break;
        }
        size_t need = (n > 1) + strlen(t);
        if (off + need < outlen) /* else only counted: too long, refused below */
            snprintf(out + off, outlen - off, "%s%s", n > 1 ? "," : "", t);
        off += need;
    }
    free(copy);
    if (rc == 0 && n == 0)
        rc = -1;
    if (rc == 0 && off + 2 > outlen)
        rc = -2;
    if (rc == 0)
        snprintf(out + off, outlen - off, "}");
    return rc;
}

bool georeq_is_id(const char *s)
{
    if (!*s || strlen(s) > 19)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int parse_uint_arg(const struct georeq_args *q, const char *name, unsigned min, unsigned max,
                          unsigned dflt, unsigned *ret)
{
    const char *v = q->get(q->ctx, name);
    if (!v) {
        *ret = dflt;
        return 0;
    }
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || !*v || *end || n < min || n > max)
        return -1;
    *ret = (unsigned)n;
    return 0;
}

int georeq_filter(const struct config *cfg, const char *sources, const struct georeq_args *q,
                  const char *one_id, struct georeq_filter *ret, char *why, size_t why_len)
{
    struct db_request_filter *f = &ret->f;
    *f = (struct db_request_filter){.sources = sources, .limit = cfg->page_size};
    const char *v = q->get(q->ctx, "extensions");
    if (v && strcmp(v, "true") != 0 && strcmp(v, "false") != 0) {
        snprintf(why, why_len, "extensions: true or false");
        return 400;
    }
    f->extensions = v && strcmp(v, "true") == 0;
    if (one_id) {
        if (!georeq_is_id(one_id)) {
            snprintf(why, why_len, "no such service request");
            return 404;
        }
        snprintf(ret->ids, sizeof(ret->ids), "{%s}", one_id);
        f->ids = ret->ids;
        f->limit = 1;
        return 0;
    }
    if ((v = q->get(q->ctx, "service_request_id"))) {
        /* GeoReport: with ids, the other filters are ignored */
        int rc = georeq_array_literal(v, georeq_is_id, cfg->max_ids, ret->ids, sizeof(ret->ids));
        if (rc < 0) {
            if (rc == -2)
                snprintf(why, why_len, "service_request_id: at most %u ids", cfg->max_ids);
            else
                snprintf(why, why_len, "service_request_id: a comma-separated list of ids");
            return 400;
        }
        f->ids = ret->ids;
        f->limit = cfg->max_ids;
        return 0;
    }
    if ((v = q->get(q->ctx, "service_code"))) {
        int rc = georeq_array_literal(v, georeq_is_code, 100, ret->codes, sizeof(ret->codes));
        if (rc < 0) {
            snprintf(why, why_len, "service_code: a comma-separated list of at most 100 codes");
            return 400;
        }
        f->codes = ret->codes;
    }
    const char *names[2] = {"start_date", "end_date"};
    int64_t *dst[2] = {&f->start_ms, &f->end_ms};
    for (int i = 0; i < 2; i++) {
        v = q->get(q->ctx, names[i]);
        if (v && isotime_parse(v, strlen(v), dst[i]) < 0) {
            snprintf(why, why_len,
                     "%s: not an ISO 8601 date-time with a time zone "
                     "(2026-03-01T09:00:00+08:00)",
                     names[i]);
            return 400;
        }
        if (v && *dst[i] == 0)
            *dst[i] = 1; /* the epoch itself: still a filter */
    }
    if (f->start_ms && f->end_ms && f->end_ms < f->start_ms) {
        snprintf(why, why_len, "end_date is before start_date");
        return 400;
    }
    if ((v = q->get(q->ctx, "status"))) {
        bool open = strstr(v, "open") != NULL, closed = strstr(v, "closed") != NULL;
        char rest[64];
        snprintf(rest, sizeof(rest), "%s", v);
        bool clean = true;
        char *save = NULL;
        for (char *t = strtok_r(rest, ",", &save); t; t = strtok_r(NULL, ",", &save))
            clean &= strcmp(t, "open") == 0 || strcmp(t, "closed") == 0;
        if (!clean || strlen(v) >= sizeof(rest) || (!open && !closed)) {
            snprintf(why, why_len, "status: open, closed or open,closed");
            return 400;
        }
        f->status = open && closed ? 0 : open ? 1 : 2;
    }
    unsigned page, size;
    if (parse_uint_arg(q, "page_size", 1, cfg->max_page_size, cfg->page_size, &size) < 0) {
        snprintf(why, why_len, "page_size: 1..%u", cfg->max_page_size);
        return 400;
    }
    if (parse_uint_arg(q, "page", 1, cfg->max_page, 1, &page) < 0) {
        snprintf(why, why_len, "page: 1..%u", cfg->max_page);
        return 400;
    }
    f->limit = size;
    f->offset = (page - 1) * size;
    return 0;
}
