/* georeport.c - gd-open311's HTTP side: GeoReport v2 routes on libmicrohttpd, POSTs relayed to the
 * broker as SUBMITs. */
#include "georeport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "isotime.h"
#include "olog.h"
#include "render.h"

#define MAX_ATTRIBUTES        16
#define MAX_DESCRIPTION_CHARS 4000 /* GeoReport v2 */
#define MAX_IDEMPOTENCY_KEY   (GD_MAX_EXTERNAL_ID - CONFIG_MAX_PRINCIPAL - 1)

enum fmt { FMT_JSON, FMT_XML };

/* Form fields of POST requests, with their byte limits. */
enum field {
    F_API_KEY,
    F_SERVICE_CODE,
    F_LAT,
    F_LONG,
    F_ADDRESS_STRING,
    F_ADDRESS_ID,
    F_DESCRIPTION,
    F_MEDIA_URL,
    F_FIRST_NAME,
    F_LAST_NAME,
    F_PHONE,
    F_EMAIL,
    F_DEVICE_ID,
    F_ACCOUNT_ID,
    F_COUNT
};

static const struct {
    const char *name;
    size_t max;
} fields[F_COUNT] = {
    [F_API_KEY] = {"api_key", 128},
    [F_SERVICE_CODE] = {"service_code", GD_MAX_CODE},
    [F_LAT] = {"lat", 32},
    [F_LONG] = {"long", 32},
    [F_ADDRESS_STRING] = {"address_string", GD_MAX_ADDRESS},
    [F_ADDRESS_ID] = {"address_id", GD_MAX_CODE},
    [F_DESCRIPTION] = {"description", GD_MAX_DESCRIPTION},
    [F_MEDIA_URL] = {"media_url", GD_MAX_URL},
    [F_FIRST_NAME] = {"first_name", GD_MAX_NAME},
    [F_LAST_NAME] = {"last_name", GD_MAX_NAME},
    [F_PHONE] = {"phone", GD_MAX_PHONE},
    [F_EMAIL] = {"email", 254},
    [F_DEVICE_ID] = {"device_id", 128},
    [F_ACCOUNT_ID] = {"account_id", 128},
};

struct value {
    char *s;
    size_t len;
    bool seen;
};

struct attribute {
    char code[GD_MAX_CODE + 1];
    struct value v;
};

/* One HTTP request in progress (MHD's per-request pointer). */
struct request {
    bool counted;    /* holds a slot of cfg->max_concurrent */
    bool over_limit; /* more requests than max_concurrent */
    bool too_large;  /* body beyond max_body */
    size_t body_len;
    struct MHD_PostProcessor *pp;
    char problem[160]; /* first bad form field */
    struct value v[F_COUNT];
    unsigned n_attr;
    struct attribute attr[MAX_ATTRIBUTES];
    struct timespec t0;
};

static void request_free(struct request *r)
{
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    for (int i = 0; i < F_COUNT; i++)
        free(r->v[i].s);
    for (unsigned i = 0; i < r->n_attr; i++)
        free(r->attr[i].v.s);
    free(r);
}

/* ---- responses ---- */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, enum fmt fmt,
                                 struct gd_buf *body, unsigned retry_after_s)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        gd_buf_fini(body);
        return MHD_NO;
    }
    body->data = NULL; /* MHD frees it */
    MHD_add_response_header(resp, "Content-Type",
                            fmt == FMT_XML ? "text/xml; charset=utf-8"
                                           : "application/json; charset=utf-8");
    if (retry_after_s) {
        char s[16];
        snprintf(s, sizeof(s), "%u", retry_after_s);
        MHD_add_response_header(resp, "Retry-After", s);
    }
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Renders `doc` (consumed) as the format asks. */
static enum MHD_Result send_doc(struct MHD_Connection *c, unsigned status, enum fmt fmt,
                                json_t *doc, const char *root, const char *item,
                                unsigned retry_after_s)
{
    struct gd_buf body = {0};
    int rc = !doc             ? -ENOMEM
             : fmt == FMT_XML ? render_xml(doc, root, item, &body)
                              : render_json(doc, &body);
    json_decref(doc);
    if (rc < 0) {
        gd_buf_fini(&body);
        return MHD_NO;
    }
    return send_body(c, status, fmt, &body, retry_after_s);
}

/* The GeoReport error list: [{code, description}]. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, enum fmt fmt,
                                  unsigned retry_after_s, const char *fmt_desc, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, enum fmt fmt,
                                  unsigned retry_after_s, const char *fmt_desc, ...)
{
    char desc[512];
    va_list ap;
    va_start(ap, fmt_desc);
    vsnprintf(desc, sizeof(desc), fmt_desc, ap);
    va_end(ap);
    json_t *doc = json_pack("[{s:i,s:s}]", "code", (int)status, "description", desc);
    return send_doc(c, status, fmt, doc, "errors", "error", retry_after_s);
}

/* ---- form fields ---- */

static int value_append(struct value *v, size_t max, const char *data, size_t size)
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

static enum MHD_Result on_form(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
    struct request *r = cls;
    if (r->problem[0])
        return MHD_YES; /* keep reading: the answer is already decided */
    for (int i = 0; i < F_COUNT; i++) {
        if (strcmp(key, fields[i].name) != 0)
            continue;
        if (value_append(&r->v[i], fields[i].max, data, size) < 0)
            snprintf(r->problem, sizeof(r->problem), "%s: longer than %zu bytes", key,
                     fields[i].max);
        return MHD_YES;
    }
    size_t klen = strlen(key);
    if (klen > 11 && strncmp(key, "attribute[", 10) == 0 && key[klen - 1] == ']') {
        size_t clen = klen - 11;
        const char *code = key + 10;
        unsigned i = 0;
        while (i < r->n_attr &&
               (strlen(r->attr[i].code) != clen || memcmp(r->attr[i].code, code, clen) != 0))
            i++;
        if (i == r->n_attr) {
            if (r->n_attr == MAX_ATTRIBUTES || clen == 0 || clen > GD_MAX_CODE) {
                snprintf(r->problem, sizeof(r->problem),
                         "attribute: at most %d attributes with codes of 1..%d bytes",
                         MAX_ATTRIBUTES, GD_MAX_CODE);
                return MHD_YES;
            }
            memcpy(r->attr[i].code, code, clen);
            r->attr[i].code[clen] = '\0';
            r->n_attr++;
        }
        if (value_append(&r->attr[i].v, 256, data, size) < 0)
            snprintf(r->problem, sizeof(r->problem), "attribute[%s]: longer than 256 bytes",
                     r->attr[i].code);
        return MHD_YES;
    }
    return MHD_YES; /* unknown fields are ignored, as GeoReport clients send extras */
}

/* A form value from the body, or else from the query string. */
static const char *field(struct MHD_Connection *c, struct request *r, enum field f)
{
    if (r->v[f].seen)
        return r->v[f].s ? r->v[f].s : "";
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, fields[f].name);
    return q && strlen(q) <= fields[f].max ? q : "";
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static bool is_code(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
              *s == '_' || *s == '-' || *s == '.'))
            return false;
    return true;
}

static int parse_coord(const char *s, double limit, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || fabs(v) > limit)
        return -1;
    *ret = v;
    return 0;
}

/* "<32 hex digits>" from the kernel's random pool. */
static int fresh_token(char out[33])
{
    uint8_t b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, b, sizeof(b));
    close(fd);
    if (n != (ssize_t)sizeof(b))
        return -1;
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
    return 0;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- POST requests ---- */

static enum MHD_Result post_request(struct georeport *g, struct MHD_Connection *c,
                                    struct request *r, enum fmt fmt)
{
    const struct config *cfg = g->cfg;
    if (r->too_large)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, fmt, 0,
                          "request body larger than %zu bytes", cfg->max_body);
    const char *key = field(c, r, F_API_KEY);
    if (!*key)
        return send_error(c, MHD_HTTP_FORBIDDEN, fmt, 0, "api_key: missing");
    const char *principal = config_principal(cfg, key);
    if (!principal)
        return send_error(c, MHD_HTTP_FORBIDDEN, fmt, 0, "api_key: not a valid key");
    if (r->problem[0])
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "%s", r->problem);

    const char *code = field(c, r, F_SERVICE_CODE);
    if (!*code)
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "service_code: missing");
    if (!is_code(code))
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "service_code: not a service code");
    struct gd_msg m = {.type = GD_T_SUBMIT};
    struct gd_submit *s = &m.u.submit;
    s->source = GD_STR("open311");
    s->category = gd_str_c(code);
    const char *lat = field(c, r, F_LAT), *lon = field(c, r, F_LONG);
    const char *addr = field(c, r, F_ADDRESS_STRING), *addr_id = field(c, r, F_ADDRESS_ID);
    if (*lat || *lon) {
        if (parse_coord(lat, 90, &s->location.lat) < 0 ||
            parse_coord(lon, 180, &s->location.lon) < 0)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                              "lat, long: give both, as WGS-84 degrees");
        s->location.has_coords = true;
    }
    if (!s->location.has_coords && !*addr && !*addr_id)
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                          "location: give lat and long, address_string or address_id");
    if (*addr_id && !is_code(addr_id))
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "address_id: not an area code");
    const char *desc = field(c, r, F_DESCRIPTION);
    size_t chars = utf8_chars(desc);
    if (chars > MAX_DESCRIPTION_CHARS)
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                          "description: %zu characters, at most %d", chars, MAX_DESCRIPTION_CHARS);
    const char *media = field(c, r, F_MEDIA_URL);
    if (*media && strncmp(media, "http://", 7) != 0 && strncmp(media, "https://", 8) != 0)
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "media_url: not an http(s) URL");

    /* idempotency: the same key from the same principal is the same report */
    const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    char token[33], external_id[GD_MAX_EXTERNAL_ID + 1];
    if (idem) {
        size_t n = strlen(idem);
        if (n < 1 || n > MAX_IDEMPOTENCY_KEY)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "Idempotency-Key: 1..%d characters",
                              MAX_IDEMPOTENCY_KEY);
    } else if (fresh_token(token) < 0) {
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "no random token");
    }
    snprintf(external_id, sizeof(external_id), "%s:%s", principal, idem ? idem : token);
    s->external_id = gd_str_c(external_id);

    int rc = db_service(g->db, code, NULL);
    if (rc == DB_NOT_FOUND)
        return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                          "service_code: %s is not a service of this jurisdiction", code);
    if (rc == DB_OK && *addr_id) {
        rc = db_org_unit(g->db, addr_id);
        if (rc == DB_NOT_FOUND)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "address_id: %s is not a known area",
                              addr_id);
    }
    if (rc != DB_OK)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 5, "database unavailable");
    s->location.unit = gd_str_c(addr_id);
    s->location.address = gd_str_c(addr);

    /* attributes travel in the description: the protocol has no field for
     * them and no service defines any (metadata false) */
    char *full = NULL;
    size_t full_len = strlen(desc);
    if (r->n_attr) {
        size_t cap = full_len + 32;
        for (unsigned i = 0; i < r->n_attr; i++)
            cap += strlen(r->attr[i].code) + r->attr[i].v.len + 4;
        full = malloc(cap);
        if (!full)
            return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
        size_t off = (size_t)snprintf(full, cap, "%s%s", desc, *desc ? "\n" : "");
        for (unsigned i = 0; i < r->n_attr; i++)
            off += (size_t)snprintf(full + off, cap - off, "[%s] %s\n", r->attr[i].code,
                                    r->attr[i].v.s ? r->attr[i].v.s : "");
        full_len = off;
    }
    s->description = gd_str_make(full ? full : desc, full_len);
    if (*media) {
        s->attachments[0] = gd_str_c(media);
        s->n_attachments = 1;
    }
    char name[2 * GD_MAX_NAME + 2];
    const char *first = field(c, r, F_FIRST_NAME), *last = field(c, r, F_LAST_NAME);
    snprintf(name, sizeof(name), "%s%s%s", first, *first && *last ? " " : "", last);
    if (strlen(name) > GD_MAX_NAME) /* both at their limit: the first name alone */
        snprintf(name, GD_MAX_NAME + 1, "%s", first);
    s->reporter.name = gd_str_c(name);
    s->reporter.phone = gd_str_c(field(c, r, F_PHONE));

    enum MHD_Result result;
    struct gd_buf body = {0}, reply = {0};
    struct gd_decoder *dec = gd_decoder_new();
    if (!dec) {
        result = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
        goto free_full;
    }
    int64_t deadline = mono_ms() + cfg->submit_timeout_ms;
    unsigned retry_after = 1;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0) {
            olog(cfg->log_level, OLOG_WARN, "POST requests: broker busy or silent for %u ms",
                 cfg->submit_timeout_ms);
            result = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, retry_after,
                                "the dispatch system is busy; retry with the same "
                                "Idempotency-Key");
            break;
        }
        s->ref = relay_next_ref(g->relay);
        gd_buf_reset(&body);
        rc = gd_encode(&m, &body);
        if (rc < 0) {
            result = send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "request not acceptable: %s",
                                gd_code_message((enum gd_code) - rc));
            break;
        }
        uint8_t type;
        int attempt_ms = (int)(left < cfg->attempt_timeout_ms ? left : cfg->attempt_timeout_ms);
        rc = relay_call(g->relay, s->ref, GD_T_SUBMIT, &body, attempt_ms, &type, &reply);
        if (rc == 0)
            continue; /* no answer: resend (the external id makes it idempotent) */
        uint8_t hdr[GD_HEADER_LEN];
        gd_encode_header((enum gd_type)type, hdr);
        struct gd_msg a;
        if (rc < 0 || gd_decode(dec, hdr, sizeof(hdr), reply.data, reply.len, &a, NULL) < 0) {
            result = send_error(c, MHD_HTTP_BAD_GATEWAY, fmt, 0, "unreadable broker answer");
            break;
        }
        if (a.type == GD_T_BUSY) {
            unsigned wait = a.u.busy.retry_ms ? a.u.busy.retry_ms : 100;
            retry_after = (wait + 999) / 1000;
            wait += (unsigned)(rand() % (int)(wait / 4 + 1)); /* jitter */
            if ((int64_t)wait >= deadline - mono_ms()) {
                deadline = mono_ms(); /* cannot wait that long: answer 503 now */
                continue;
            }
            struct timespec ts = {wait / 1000, (long)(wait % 1000) * 1000000};
            nanosleep(&ts, NULL);
            continue;
        }
        if (a.type == GD_T_REJECTED) {
            const struct gd_error_reply *e = &a.u.error;
            unsigned st = e->code == GD_E_DENIED     ? MHD_HTTP_FORBIDDEN
                          : e->code == GD_E_LIMIT    ? MHD_HTTP_SERVICE_UNAVAILABLE
                          : e->code == GD_E_INTERNAL ? MHD_HTTP_INTERNAL_SERVER_ERROR
                                                     : MHD_HTTP_BAD_REQUEST;
            result = send_error(c, st, fmt, st == MHD_HTTP_SERVICE_UNAVAILABLE ? 1 : 0,
                                "%s%s%.*s: %.*s", gd_code_name(e->code), e->field.len ? " " : "",
                                (int)e->field.len, e->field.ptr ? e->field.ptr : "",
                                (int)e->message.len, e->message.ptr ? e->message.ptr : "");
            break;
        }
        if (a.type != GD_T_ACCEPTED) {
            result = send_error(c, MHD_HTTP_BAD_GATEWAY, fmt, 0, "unexpected broker answer");
            break;
        }
        char id[24];
        snprintf(id, sizeof(id), "%" PRIu64, a.u.accepted.incident_id);
        const char *account = field(c, r, F_ACCOUNT_ID);
        json_t *doc = json_pack(
            "[{s:s,s:s,s:o}]", "service_request_id", id, "service_notice",
            a.u.accepted.duplicate ? "already received with this Idempotency-Key" : "received",
            "account_id", *account ? json_string(account) : json_null());
        olog(cfg->log_level, OLOG_INFO, "POST requests: %s incident %s for %s%s", code, id,
             principal, a.u.accepted.duplicate ? " (duplicate)" : "");
        result = send_doc(c, MHD_HTTP_OK, fmt, doc, "service_requests", "request", 0);
        break;
    }
    gd_decoder_free(dec);
free_full:
    gd_buf_fini(&body);
    gd_buf_fini(&reply);
    free(full);
    return result;
}

/* ---- GET ---- */

/* Builds a PostgreSQL array literal of comma-separated `list` items, each
 * checked by `ok`; at most max items. Returns 0, -1 (bad item), -2 (too
 * many). */
static int array_literal(const char *list, bool (*ok)(const char *), unsigned max, char *out,
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
        off += (size_t)snprintf(out + off, off < outlen ? outlen - off : 0, "%s%s",
                                n > 1 ? "," : "", t);
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

static bool is_id(const char *s)
{
    if (!*s || strlen(s) > 19)
        return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static int parse_uint_arg(struct MHD_Connection *c, const char *name, unsigned min, unsigned max,
                          unsigned dflt, unsigned *ret)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
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

static enum MHD_Result db_failure(struct MHD_Connection *c, enum fmt fmt, int rc)
{
    return rc == DB_UNAVAILABLE
               ? send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 5, "database unavailable")
               : send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "query failed");
}

static enum MHD_Result get_requests(struct georeport *g, struct MHD_Connection *c, enum fmt fmt,
                                    const char *one_id)
{
    const struct config *cfg = g->cfg;
    char ids[2048], codes[2048];
    struct db_request_filter f = {.sources = g->sources, .limit = cfg->page_size};
    const char *v;
    if (one_id) {
        if (!is_id(one_id))
            return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service request");
        snprintf(ids, sizeof(ids), "{%s}", one_id);
        f.ids = ids;
        f.limit = 1;
    } else if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service_request_id"))) {
        /* GeoReport: with ids, the other filters are ignored */
        int rc = array_literal(v, is_id, cfg->max_ids, ids, sizeof(ids));
        if (rc < 0)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                              rc == -2 ? "service_request_id: at most %u ids"
                                       : "service_request_id: a comma-separated list of ids%.0u",
                              cfg->max_ids);
        f.ids = ids;
        f.limit = cfg->max_ids;
    } else {
        if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "service_code"))) {
            int rc = array_literal(v, is_code, 100, codes, sizeof(codes));
            if (rc < 0)
                return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                                  "service_code: a comma-separated list of at most 100 codes");
            f.codes = codes;
        }
        const char *names[2] = {"start_date", "end_date"};
        int64_t *dst[2] = {&f.start_ms, &f.end_ms};
        for (int i = 0; i < 2; i++) {
            v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, names[i]);
            if (v && isotime_parse(v, strlen(v), dst[i]) < 0)
                return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                                  "%s: not an ISO 8601 date-time with a time zone "
                                  "(2026-03-01T09:00:00+08:00)",
                                  names[i]);
            if (v && *dst[i] == 0)
                *dst[i] = 1; /* the epoch itself: still a filter */
        }
        if (f.start_ms && f.end_ms && f.end_ms < f.start_ms)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "end_date is before start_date");
        if ((v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "status"))) {
            bool open = strstr(v, "open") != NULL, closed = strstr(v, "closed") != NULL;
            char rest[64];
            snprintf(rest, sizeof(rest), "%s", v);
            bool clean = true;
            char *save = NULL;
            for (char *t = strtok_r(rest, ",", &save); t; t = strtok_r(NULL, ",", &save))
                clean &= strcmp(t, "open") == 0 || strcmp(t, "closed") == 0;
            if (!clean || strlen(v) >= sizeof(rest) || (!open && !closed))
                return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                                  "status: open, closed or open,closed");
            f.status = open && closed ? 0 : open ? 1 : 2;
        }
        unsigned page, size;
        if (parse_uint_arg(c, "page_size", 1, cfg->max_page_size, cfg->page_size, &size) < 0)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "page_size: 1..%u",
                              cfg->max_page_size);
        if (parse_uint_arg(c, "page", 1, cfg->max_page, 1, &page) < 0)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0, "page: 1..%u", cfg->max_page);
        f.limit = size;
        f.offset = (page - 1) * size;
    }
    json_t *list;
    int rc = db_requests(g->db, &f, cfg->utc_offset_min, &list);
    if (rc != DB_OK)
        return db_failure(c, fmt, rc);
    if (one_id && json_array_size(list) == 0) {
        json_decref(list);
        return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service request");
    }
    return send_doc(c, MHD_HTTP_OK, fmt, list, "service_requests", "request", 0);
}

/* Splits "/name.fmt" or "/name/arg.fmt": returns 0 with the parts, or -1. */
static int route(const char *url, char *name, size_t nlen, char *arg, size_t alen,
                 enum fmt *ret_fmt)
{
    if (*url != '/')
        return -1;
    const char *dot = strrchr(url, '.');
    if (!dot)
        return -1;
    if (strcmp(dot, ".json") == 0)
        *ret_fmt = FMT_JSON;
    else if (strcmp(dot, ".xml") == 0)
        *ret_fmt = FMT_XML;
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

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_data_size, void **req_cls)
{
    (void)version;
    struct georeport *g = cls;
    struct request *r = *req_cls;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        clock_gettime(CLOCK_MONOTONIC, &r->t0);
        if (atomic_fetch_add(&g->active, 1) >= g->cfg->max_concurrent)
            r->over_limit = true;
        r->counted = true;
        *req_cls = r;
        if (post && !r->over_limit) {
            r->pp = MHD_create_post_processor(c, 8192, on_form, r);
            /* NULL: not a form body; answered at the end */
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        r->body_len += *upload_data_size;
        if (r->body_len > g->cfg->max_body)
            r->too_large = true;
        else if (r->pp && MHD_post_process(r->pp, upload_data, *upload_data_size) != MHD_YES &&
                 !r->problem[0])
            snprintf(r->problem, sizeof(r->problem), "body: not a valid form");
        *upload_data_size = 0;
        return MHD_YES;
    }
    char name[32], arg[128];
    enum fmt fmt = FMT_JSON;
    int routed = route(url, name, sizeof(name), arg, sizeof(arg), &fmt);
    if (r->over_limit)
        return send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 1,
                          "more than %u requests at once; retry shortly", g->cfg->max_concurrent);
    if (routed < 0)
        return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0,
                          "no such resource: use services, services/{code}, requests or "
                          "requests/{id}, with .json or .xml");
    bool services = strcmp(name, "services") == 0, requests = strcmp(name, "requests") == 0;
    if (!services && !requests)
        return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such resource: %s", name);
    if (post) {
        if (!requests || arg[0])
            return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, fmt, 0, "POST only to requests");
        if (!r->pp && !r->too_large)
            return send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                              "send the form as application/x-www-form-urlencoded");
        return post_request(g, c, r, fmt);
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return send_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, fmt, 0, "GET or POST only");
    if (requests)
        return get_requests(g, c, fmt, arg[0] ? arg : NULL);
    json_t *doc = NULL;
    int rc;
    if (arg[0]) {
        if (!is_code(arg))
            return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service");
        rc = db_service(g->db, arg, &doc);
        if (rc == DB_NOT_FOUND)
            return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service: %s", arg);
        if (rc != DB_OK)
            return db_failure(c, fmt, rc);
        return send_doc(c, MHD_HTTP_OK, fmt, doc, "service_definition", NULL, 0);
    }
    rc = db_services(g->db, &doc);
    if (rc != DB_OK)
        return db_failure(c, fmt, rc);
    return send_doc(c, MHD_HTTP_OK, fmt, doc, "services", "service", 0);
}

static void completed(void *cls, struct MHD_Connection *c, void **req_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    struct georeport *g = cls;
    struct request *r = *req_cls;
    if (!r)
        return;
    if (r->counted)
        atomic_fetch_sub(&g->active, 1);
    request_free(r);
    *req_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    const struct georeport *g = cls;
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    olog(g->cfg->log_level, OLOG_WARN, "http: %s", line);
}

struct MHD_Daemon *georeport_start(struct georeport *g, unsigned *ret_port, char *err,
                                   size_t errlen)
{
    const struct config *cfg = g->cfg;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    if (inet_pton(AF_INET, cfg->bind ? cfg->bind : "127.0.0.1", &sa.sin_addr) != 1) {
        snprintf(err, errlen, "bind: not an IPv4 address");
        return NULL;
    }
    /* sources list for SQL */
    if (array_literal(cfg->public_sources ? cfg->public_sources : "open311", is_code,
                      CONFIG_MAX_SOURCES, g->sources, sizeof(g->sources)) < 0) {
        snprintf(err, errlen, "public_sources: a comma list of source names");
        return NULL;
    }
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handle, g, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_NOTIFY_COMPLETED, completed, g, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, g, MHD_OPTION_END);
    if (!d) {
        snprintf(err, errlen, "cannot listen on %s:%u", cfg->bind ? cfg->bind : "127.0.0.1",
                 cfg->port);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *ret_port = info ? info->port : cfg->port;
    return d;
}
