/* georeport.c - gd-open311's HTTP side: GeoReport v2 routes on libmicrohttpd, POSTs relayed to the
 * broker as SUBMITs. */
#include "georeport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "georeq.h"
#include "olog.h"
#include "render.h"

struct request {
    bool counted;    /* holds a slot of cfg->max_concurrent */
    bool over_limit; /* more requests than max_concurrent */
    bool too_large;  /* body beyond max_body */
    size_t body_len;
    struct MHD_PostProcessor *pp;
    struct georeq_form form;
    struct timespec t0;
};

static void request_free(struct request *r)
{
    if (r->pp)
        MHD_destroy_post_processor(r->pp);
    georeq_form_fini(&r->form);
    free(r);
}

/* ---- responses ---- */

static enum MHD_Result send_body(struct MHD_Connection *c, unsigned status, enum georeq_fmt fmt,
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
                            fmt == GEOREQ_XML ? "text/xml; charset=utf-8"
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
static enum MHD_Result send_doc(struct MHD_Connection *c, unsigned status, enum georeq_fmt fmt,
                                json_t *doc, const char *root, const char *item,
                                unsigned retry_after_s)
{
    struct gd_buf body = {0};
    int rc = !doc                ? -ENOMEM
             : fmt == GEOREQ_XML ? render_xml(doc, root, item, &body)
                                 : render_json(doc, &body);
    json_decref(doc);
    if (rc < 0) {
        gd_buf_fini(&body);
        return MHD_NO;
    }
    return send_body(c, status, fmt, &body, retry_after_s);
}

/* The GeoReport error list: [{code, description}]. */
static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, enum georeq_fmt fmt,
                                  unsigned retry_after_s, const char *fmt_desc, ...)
    __attribute__((format(printf, 5, 6)));

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned status, enum georeq_fmt fmt,
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

/* ---- form fields and query arguments ---- */

static enum MHD_Result on_form(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
    struct request *r = cls;
    georeq_form_add(&r->form, key, data, size);
    return MHD_YES; /* keep reading even after a problem: the answer is already decided */
}

static const char *query_arg(void *ctx, const char *name)
{
    return MHD_lookup_connection_value(ctx, MHD_GET_ARGUMENT_KIND, name);
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

/* The shard of the city that owns the town of SUBMIT `s`: by its unit
 * (address_id), else by the town boundary covering lat/long, else the
 * city's default shard (checked at start), whose triage takes it. Returns
 * DB_OK with *ret_shard, or a database failure (the client retries). */
static int pick_shard(struct georeport *g, const struct gd_submit *s, size_t *ret_shard)
{
    int i = city_shard_of_unit(g->city, s->location.unit.ptr, s->location.unit.len);
    if (i < 0 && s->location.has_coords) {
        char town[16];
        int rc = db_town_at(g->db, s->location.lat, s->location.lon, town);
        if (rc < 0)
            return rc;
        if (rc == DB_OK)
            i = city_shard_of_unit(g->city, town, strlen(town));
    }
    if (i < 0)
        i = city_default_shard(g->city);
    *ret_shard = (size_t)i;
    return DB_OK;
}

static enum MHD_Result post_request(struct georeport *g, struct MHD_Connection *c,
                                    struct request *r, enum georeq_fmt fmt)
{
    const struct config *cfg = g->cfg;
    if (r->too_large)
        return send_error(c, MHD_HTTP_CONTENT_TOO_LARGE, fmt, 0,
                          "request body larger than %zu bytes", cfg->max_body);
    struct georeq_args q = {query_arg, c};
    const char *key = georeq_field(&r->form, &q, GEOREQ_API_KEY);
    if (!*key)
        return send_error(c, MHD_HTTP_FORBIDDEN, fmt, 0, "api_key: missing");
    const char *principal = config_principal(cfg, key);
    if (!principal)
        return send_error(c, MHD_HTTP_FORBIDDEN, fmt, 0, "api_key: not a valid key");

    /* idempotency: the same key from the same principal is the same report */
    const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    struct georeq_submit sub;
    char why[256];
    int st = georeq_submit(&r->form, &q, idem, &sub, why, sizeof(why));
    if (st != 0) {
        georeq_submit_fini(&sub);
        return send_error(c, (unsigned)st, fmt, 0, "%s", why);
    }
    struct gd_msg m = sub.msg;
    struct gd_submit *s = &m.u.submit;
    const char *code = sub.service_code, *addr_id = sub.address_id;
    enum MHD_Result result;
    char token[33], external_id[GD_MAX_EXTERNAL_ID + 1];
    if (!idem && fresh_token(token) < 0) {
        result = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "no random token");
        goto free_sub;
    }
    snprintf(external_id, sizeof(external_id), "%s:%s", principal, idem ? idem : token);
    s->external_id = gd_str_c(external_id);

    int rc = db_service(g->db, code, NULL);
    if (rc == DB_NOT_FOUND) {
        result = send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                            "service_code: %s is not a service of this jurisdiction", code);
        goto free_sub;
    }
    if (rc == DB_OK && *addr_id) {
        rc = db_org_unit(g->db, addr_id);
        if (rc == DB_NOT_FOUND) {
            result = send_error(c, MHD_HTTP_BAD_REQUEST, fmt, 0,
                                "address_id: %s is not a known area", addr_id);
            goto free_sub;
        }
    }
    size_t shard = 0;
    if (rc == DB_OK && g->city)
        rc = pick_shard(g, s, &shard);
    if (rc != DB_OK) {
        result = send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 5, "database unavailable");
        goto free_sub;
    }

    struct gd_buf body = {0}, reply = {0};
    struct gd_decoder *dec = gd_decoder_new();
    if (!dec) {
        result = send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
        goto free_bufs;
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
        rc = relay_call(g->relay, shard, s->ref, GD_T_SUBMIT, &body, attempt_ms, &type, &reply);
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
        char id[CITY_MAX_NAME + 24];
        if (g->city) /* ids are per shard: the shard's name makes them unique */
            snprintf(id, sizeof(id), "%s-%" PRIu64, city_shard(g->city, shard)->name,
                     a.u.accepted.incident_id);
        else
            snprintf(id, sizeof(id), "%" PRIu64, a.u.accepted.incident_id);
        const char *account = sub.account_id;
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
free_bufs:
    gd_buf_fini(&body);
    gd_buf_fini(&reply);
free_sub:
    georeq_submit_fini(&sub);
    return result;
}

/* ---- GET ---- */

static enum MHD_Result db_failure(struct MHD_Connection *c, enum georeq_fmt fmt, int rc)
{
    return rc == DB_UNAVAILABLE
               ? send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 5, "database unavailable")
               : send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "query failed");
}

/* ---- GET requests across the shards of a city ---- */

/* With a city a service_request_id is "<shard>-<incident id>" (the shard's
 * name, [a-z0-9_-], then the digits after its last '-'); a bare incident id
 * is looked for in every shard. */
struct city_ids {
    bool wanted[CITY_MAX_SHARDS];    /* shards to ask */
    char ids[CITY_MAX_SHARDS][2048]; /* their incident ids, "1,2" ("" with no id filter) */
};

/* Splits id `t` into its shard and digits. Returns the shard index, -2 for
 * a bare id (every shard), or -1 (not an id of this city). */
static int split_city_id(const struct city *city, const char *t, const char **ret_digits)
{
    const char *dash = strrchr(t, '-');
    if (!dash) {
        *ret_digits = t;
        return georeq_is_id(t) ? -2 : -1;
    }
    char name[CITY_MAX_NAME + 1];
    size_t n = (size_t)(dash - t);
    if (n == 0 || n > CITY_MAX_NAME || !georeq_is_id(dash + 1))
        return -1;
    memcpy(name, t, n);
    name[n] = '\0';
    *ret_digits = dash + 1;
    return city_find_shard(city, name);
}

/* Adds `digits` to shard i's list. Returns 0, or -1 when it is full. */
static int add_city_id(struct city_ids *ids, size_t i, const char *digits)
{
    size_t off = strlen(ids->ids[i]);
    if (off + strlen(digits) + 2 > sizeof(ids->ids[i]))
        return -1;
    snprintf(ids->ids[i] + off, sizeof(ids->ids[i]) - off, "%s%s", off ? "," : "", digits);
    ids->wanted[i] = true;
    return 0;
}

/* Fills `ids` from `one_id` or the service_request_id argument. Returns 0,
 * or the HTTP status (404 for one_id, 400 for the list) with why. */
static int city_ids_parse(const struct georeport *g, const struct georeq_args *q,
                          const char *one_id, struct city_ids *ids, char *why, size_t why_len)
{
    size_t n = city_n_shards(g->city);
    memset(ids, 0, sizeof(*ids));
    const char *list = one_id ? one_id : q->get(q->ctx, "service_request_id");
    if (!list) {
        for (size_t i = 0; i < n; i++)
            ids->wanted[i] = true;
        return 0;
    }
    char copy[4096];
    if (strlen(list) >= sizeof(copy)) {
        snprintf(why, why_len, "service_request_id: at most %u ids", g->cfg->max_ids);
        return 400;
    }
    snprintf(copy, sizeof(copy), "%s", list);
    unsigned count = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        const char *digits;
        int shard = split_city_id(g->city, t, &digits);
        if (++count > g->cfg->max_ids) {
            snprintf(why, why_len, "service_request_id: at most %u ids", g->cfg->max_ids);
            return 400;
        }
        if (shard == -1 && one_id) {
            snprintf(why, why_len, "no such service request");
            return 404;
        }
        if (shard == -1) {
            snprintf(why, why_len,
                     "service_request_id: '%.40s' is not an id of this jurisdiction "
                     "(SHARD-NUMBER, or a number)",
                     t);
            return 400;
        }
        for (size_t i = 0; i < n; i++)
            if ((shard == -2 || (size_t)shard == i) && add_city_id(ids, i, digits) < 0) {
                snprintf(why, why_len, "service_request_id: at most %u ids", g->cfg->max_ids);
                return 400;
            }
    }
    if (count == 0) {
        snprintf(why, why_len, "service_request_id: a comma-separated list of ids");
        return 400;
    }
    return 0;
}

/* The query arguments with service_request_id replaced by one shard's ids. */
struct shard_args {
    const struct georeq_args *q;
    const char *ids;
};

static const char *shard_arg(void *ctx, const char *name)
{
    const struct shard_args *a = ctx;
    if (strcmp(name, "service_request_id") == 0)
        return a->ids;
    return a->q->get(a->q->ctx, name);
}

/* Newest first, then the higher id, then the shard earlier in the file. */
static int by_sort_key(const void *pa, const void *pb)
{
    json_t *a = json_object_get(*(json_t *const *)pa, "_sort");
    json_t *b = json_object_get(*(json_t *const *)pb, "_sort");
    for (size_t k = 0; k < 2; k++) {
        json_int_t x = json_integer_value(json_array_get(a, k));
        json_int_t y = json_integer_value(json_array_get(b, k));
        if (x != y)
            return x > y ? -1 : 1;
    }
    json_int_t sa = json_integer_value(json_object_get(*(json_t *const *)pa, "_shard"));
    json_int_t sb = json_integer_value(json_object_get(*(json_t *const *)pb, "_shard"));
    return sa < sb ? -1 : sa > sb;
}

/* GET requests with a city: every shard asked has to answer (a shard whose
 * database is down makes it 503 naming the shard, not a list with holes);
 * their lists are merged in the order of one shard's, then paged. */
static enum MHD_Result get_city_requests(struct georeport *g, struct MHD_Connection *c,
                                         enum georeq_fmt fmt, const char *one_id)
{
    const struct config *cfg = g->cfg;
    struct georeq_args q = {query_arg, c};
    struct city_ids *ids = malloc(sizeof(*ids));
    if (!ids)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
    char why[256];
    int st = city_ids_parse(g, &q, one_id, ids, why, sizeof(why));
    if (st != 0) {
        free(ids);
        return send_error(c, (unsigned)st, fmt, 0, "%s", why);
    }
    json_t *all = json_array();
    unsigned limit = 0, offset = 0;
    enum MHD_Result result = MHD_NO;
    bool answered = false;
    for (size_t i = 0; all && i < city_n_shards(g->city); i++) {
        if (!ids->wanted[i])
            continue;
        struct shard_args sa = {&q, ids->ids[i][0] ? ids->ids[i] : NULL};
        struct georeq_args sq = {shard_arg, &sa};
        const char *one = NULL;
        if (one_id)
            one = ids->ids[i]; /* the digits of the one id */
        struct georeq_filter f;
        st = georeq_filter(cfg, g->sources, &sq, one, &f, why, sizeof(why));
        if (st != 0) {
            result = send_error(c, (unsigned)st, fmt, 0, "%s", why);
            answered = true;
            break;
        }
        /* the page of the merged list is within the first offset + limit of each */
        limit = one_id ? UINT_MAX / 2 : f.f.limit; /* a bare id: its match in every shard */
        offset = f.f.offset;
        f.f.limit += f.f.offset;
        f.f.offset = 0;
        char prefix[CITY_MAX_NAME + 2];
        snprintf(prefix, sizeof(prefix), "%s-", city_shard(g->city, i)->name);
        f.f.id_prefix = prefix;
        f.f.sort_keys = true;
        json_t *list;
        int rc = db_requests(g->shard_db[i], &f.f, cfg->utc_offset_min, &list);
        if (rc != DB_OK) {
            olog(cfg->log_level, OLOG_WARN, "GET requests: shard %s: %s",
                 city_shard(g->city, i)->name,
                 rc == DB_UNAVAILABLE ? "database unavailable" : "query failed");
            result = rc == DB_UNAVAILABLE
                         ? send_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, fmt, 5,
                                      "shard %s: database unavailable; the list would be "
                                      "incomplete",
                                      city_shard(g->city, i)->name)
                         : send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0,
                                      "shard %s: query failed", city_shard(g->city, i)->name);
            answered = true;
            break;
        }
        size_t k;
        json_t *o;
        json_array_foreach(list, k, o)
        {
            json_object_set_new(o, "_shard", json_integer((json_int_t)i));
            json_array_append(all, o);
        }
        json_decref(list);
    }
    free(ids);
    if (answered) {
        json_decref(all);
        return result;
    }
    if (!all)
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
    size_t n = json_array_size(all);
    json_t **items = calloc(n ? n : 1, sizeof(*items));
    json_t *page = json_array();
    if (!items || !page) {
        free(items);
        json_decref(page);
        json_decref(all);
        return send_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, fmt, 0, "out of memory");
    }
    for (size_t k = 0; k < n; k++)
        items[k] = json_array_get(all, k);
    qsort(items, n, sizeof(*items), by_sort_key);
    for (size_t k = offset; k < n && k < (size_t)offset + limit; k++) {
        json_object_del(items[k], "_sort");
        json_object_del(items[k], "_shard");
        json_array_append(page, items[k]);
    }
    free(items);
    json_decref(all);
    if (one_id && json_array_size(page) == 0) {
        json_decref(page);
        return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service request");
    }
    return send_doc(c, MHD_HTTP_OK, fmt, page, "service_requests", "request", 0);
}

static enum MHD_Result get_requests(struct georeport *g, struct MHD_Connection *c,
                                    enum georeq_fmt fmt, const char *one_id)
{
    if (g->city)
        return get_city_requests(g, c, fmt, one_id);
    const struct config *cfg = g->cfg;
    struct georeq_args q = {query_arg, c};
    struct georeq_filter f;
    char why[256];
    int st = georeq_filter(cfg, g->sources, &q, one_id, &f, why, sizeof(why));
    if (st != 0)
        return send_error(c, (unsigned)st, fmt, 0, "%s", why);
    json_t *list;
    int rc = db_requests(g->db, &f.f, cfg->utc_offset_min, &list);
    if (rc != DB_OK)
        return db_failure(c, fmt, rc);
    if (one_id && json_array_size(list) == 0) {
        json_decref(list);
        return send_error(c, MHD_HTTP_NOT_FOUND, fmt, 0, "no such service request");
    }
    return send_doc(c, MHD_HTTP_OK, fmt, list, "service_requests", "request", 0);
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
                 !r->form.problem[0])
            snprintf(r->form.problem, sizeof(r->form.problem), "body: not a valid form");
        *upload_data_size = 0;
        return MHD_YES;
    }
    char name[32], arg[128];
    enum georeq_fmt fmt = GEOREQ_JSON;
    int routed = georeq_route(url, name, sizeof(name), arg, sizeof(arg), &fmt);
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
        if (!georeq_is_code(arg))
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
    if (georeq_array_literal(cfg->public_sources ? cfg->public_sources : "open311", georeq_is_code,
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
