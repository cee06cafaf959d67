/* gdp-decode.c - GDP/1 decoder: header, pre-scan, msgpack-c unpack, schema-driven mapping. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <zstd.h>

#include "gdp-internal.h"

/* Zone chunk: a typical SUBMIT or DELIVER needs well under 2 KiB of
 * msgpack_object, so the steady state never allocates. */
#define ZONE_CHUNK (16 * 1024)

struct path_elem {
    const char *key;
    int32_t index; /* array element, or -1 */
};

struct gd_decoder {
    msgpack_zone zone;
    char *inflated;     /* a decompressed status body, GD_MAX_BODY bytes */
    ZSTD_DCtx *dctx;
    unsigned depth; /* entries used in path */
    struct path_elem path[GD_MAX_DEPTH + 1];
    char field[GD_MAX_NAME + 1]; /* dotted path of the last error */
    uint64_t ref;                /* the body's "ref", when it could be read */
};

struct gd_decoder *gd_decoder_new(void)
{
    struct gd_decoder *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return NULL;
    if (!msgpack_zone_init(&d->zone, ZONE_CHUNK)) {
        free(d);
        return NULL;
    }
    return d;
}

void gd_decoder_free(struct gd_decoder *d)
{
    if (d == NULL)
        return;
    msgpack_zone_destroy(&d->zone);
    ZSTD_freeDCtx(d->dctx);
    free(d->inflated);
    free(d);
}

/* ---- error reporting ---- */

static size_t append(char *out, size_t cap, size_t n, const char *s, size_t len, bool sanitize)
{
    for (size_t i = 0; i < len && n + 1 < cap; i++) {
        char c = s[i];
        if (sanitize && (c < 0x21 || c > 0x7e))
            c = '?'; /* the key came from the peer: keep logs and replies clean */
        out[n++] = c;
    }
    out[n] = '\0';
    return n;
}

static size_t append_elem(char *out, size_t cap, size_t n, const char *key, size_t klen,
                          int32_t index, bool sanitize)
{
    if (n != 0)
        n = append(out, cap, n, ".", 1, false);
    n = append(out, cap, n, key, klen, sanitize);
    if (index >= 0) {
        char tmp[16];
        int k = snprintf(tmp, sizeof(tmp), "[%d]", (int)index);
        n = append(out, cap, n, tmp, (size_t)k, false);
    }
    return n;
}

/* Records the error's field path: the open containers, then `key` (from
 * the peer when `raw`, else one of ours) with an optional array index. */
static int fail_at(struct gd_decoder *d, enum gd_code code, const char *key, size_t klen, bool raw)
{
    size_t n = 0;
    d->field[0] = '\0';
    for (unsigned i = 0; i < d->depth; i++)
        n = append_elem(d->field, sizeof(d->field), n, d->path[i].key, strlen(d->path[i].key),
                        d->path[i].index, false);
    if (key != NULL) {
        if (raw && klen > 32)
            klen = 32;
        n = append_elem(d->field, sizeof(d->field), n, key, klen, -1, raw);
    }
    (void)n;
    return -(int)code;
}

static int fail(struct gd_decoder *d, enum gd_code code, const struct gd__field *f)
{
    return fail_at(d, code, f ? f->key : NULL, f ? f->key_len : 0, false);
}

/* ---- values ---- */

static inline void *at(void *base, uint16_t off)
{
    return (char *)base + off;
}

static bool source_valid(const char *p, uint32_t len)
{
    if (len == 0 || len > 32)
        return false;
    for (uint32_t i = 0; i < len; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Checks one string object against a byte limit; 0 or -code. */
static int take_str(const msgpack_object *o, uint32_t max, bool nonempty, struct gd_str *ret)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -GD_E_WRONG_TYPE;
    if (o->via.str.size > max)
        return -GD_E_TOO_LONG;
    struct gd_str s = {o->via.str.ptr, o->via.str.size};
    if ((nonempty && s.len == 0) || !gd_utf8_valid(s))
        return -GD_E_BAD_VALUE;
    *ret = s;
    return 0;
}

static int decode_map(struct gd_decoder *d, const struct gd__table *t, void *base,
                      const msgpack_object *o);

/* Decodes the elements of an EVENTS/GAUGES array into zone memory. */
static int decode_records(struct gd_decoder *d, const struct gd__field *f, void *base,
                          const msgpack_object *o, size_t elem_size)
{
    const msgpack_object_array *a = &o->via.array;
    if (a->size > f->max)
        return fail(d, GD_E_TOO_MANY, f);
    char *elems = NULL;
    if (a->size != 0) {
        elems = msgpack_zone_malloc(&d->zone, a->size * elem_size);
        if (elems == NULL)
            return fail(d, GD_E_INTERNAL, f);
        memset(elems, 0, a->size * elem_size);
    }
    for (uint32_t i = 0; i < a->size; i++) {
        d->path[d->depth++] = (struct path_elem){f->key, (int32_t)i};
        int r = decode_map(d, f->sub, elems + i * elem_size, &a->ptr[i]);
        d->depth--;
        if (r < 0)
            return r;
    }
    memcpy(at(base, f->off), &elems, sizeof(elems));
    *(uint32_t *)at(base, f->aux_off) = a->size;
    return 0;
}

static int decode_counters(struct gd_decoder *d, const struct gd__field *f, void *base,
                           const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, GD_E_WRONG_TYPE, f);
    const msgpack_object_map *m = &o->via.map;
    if (m->size > f->max)
        return fail(d, GD_E_TOO_MANY, f);
    struct gd_counter *c = at(base, f->off);
    for (uint32_t i = 0; i < m->size; i++) {
        int r = take_str(&m->ptr[i].key, f->item_max, true, &c[i].name);
        if (r < 0)
            return fail(d, (enum gd_code) - r, f);
        for (uint32_t j = 0; j < i; j++)
            if (gd_str_eq(c[j].name, c[i].name))
                return fail(d, GD_E_DUPLICATE_FIELD, f);
        const msgpack_object *v = &m->ptr[i].val;
        if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return fail(d, GD_E_BAD_VALUE, f);
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return fail(d, GD_E_WRONG_TYPE, f);
        c[i].value = v->via.u64;
    }
    *(uint32_t *)at(base, f->aux_off) = m->size;
    return 0;
}

static int decode_value(struct gd_decoder *d, const struct gd__field *f, void *base,
                        const msgpack_object *o)
{
    int r;

    switch ((enum gd__ftype)f->type) {
    case GD__F_U64:
    case GD__F_U32:
    case GD__F_TIME: {
        if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return fail(d, GD_E_BAD_VALUE, f);
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return fail(d, GD_E_WRONG_TYPE, f);
        uint64_t v = o->via.u64;
        if (v < (uint64_t)f->lo)
            return fail(d, GD_E_BAD_VALUE, f);
        if (f->type == GD__F_U64) {
            *(uint64_t *)at(base, f->off) = v;
        } else if (f->type == GD__F_U32) {
            if (v > (uint64_t)f->hi)
                return fail(d, GD_E_BAD_VALUE, f);
            *(uint32_t *)at(base, f->off) = (uint32_t)v;
        } else {
            if (v > (uint64_t)INT64_MAX)
                return fail(d, GD_E_BAD_VALUE, f);
            *(int64_t *)at(base, f->off) = (int64_t)v;
        }
        return 0;
    }
    case GD__F_BOOL:
        if (o->type != MSGPACK_OBJECT_BOOLEAN)
            return fail(d, GD_E_WRONG_TYPE, f);
        *(bool *)at(base, f->off) = o->via.boolean;
        return 0;
    case GD__F_F64: {
        double v;
        if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
            v = o->via.f64;
        else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            v = (double)o->via.u64; /* clients in languages without floats send 30 for 30.0 */
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            v = (double)o->via.i64;
        else
            return fail(d, GD_E_WRONG_TYPE, f);
        if (!isfinite(v) || v < f->flo || v > f->fhi)
            return fail(d, GD_E_BAD_VALUE, f);
        *(double *)at(base, f->off) = v;
        return 0;
    }
    case GD__F_STR: {
        struct gd_str s;
        r = take_str(o, f->max, (f->flags & GD__REQ) != 0, &s);
        if (r < 0)
            return fail(d, (enum gd_code) - r, f);
        if ((f->flags & GD__SOURCE) && !source_valid(s.ptr, s.len))
            return fail(d, GD_E_BAD_VALUE, f);
        *(struct gd_str *)at(base, f->off) = s;
        return 0;
    }
    case GD__F_ENUM: {
        if (o->type != MSGPACK_OBJECT_STR)
            return fail(d, GD_E_WRONG_TYPE, f);
        int v = gd__names_parse(f->names, o->via.str.ptr, o->via.str.size);
        if (v < f->lo)
            return fail(d, GD_E_BAD_VALUE, f);
        *(int *)at(base, f->off) = v;
        return 0;
    }
    case GD__F_MAP:
        if (o->type != MSGPACK_OBJECT_MAP)
            return fail(d, GD_E_WRONG_TYPE, f);
        d->path[d->depth++] = (struct path_elem){f->key, -1};
        r = decode_map(d, f->sub, at(base, f->off), o);
        d->depth--;
        if (r < 0)
            return r;
        if (f->flags & GD__PRESENT)
            *(bool *)at(base, f->aux_off) = true;
        return 0;
    case GD__F_STRS: {
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return fail(d, GD_E_WRONG_TYPE, f);
        const msgpack_object_array *a = &o->via.array;
        if (a->size > f->max)
            return fail(d, GD_E_TOO_MANY, f);
        struct gd_str *v = at(base, f->off);
        for (uint32_t i = 0; i < a->size; i++) {
            r = take_str(&a->ptr[i], f->item_max, true, &v[i]);
            if (r < 0) {
                d->path[d->depth++] = (struct path_elem){f->key, (int32_t)i};
                r = fail(d, (enum gd_code) - r, NULL);
                d->depth--;
                return r;
            }
        }
        *(uint32_t *)at(base, f->aux_off) = a->size;
        return 0;
    }
    case GD__F_EVENTS:
    case GD__F_GAUGES:
    case GD__F_TRANSITIONS:
    case GD__F_SUBMITS:
    case GD__F_RESULTS:
        if (o->type != MSGPACK_OBJECT_ARRAY)
            return fail(d, GD_E_WRONG_TYPE, f);
        return decode_records(d, f, base, o, gd__record_size(f->type));
    case GD__F_COUNTERS:
        return decode_counters(d, f, base, o);
    }
    return fail(d, GD_E_INTERNAL, f);
}

static int decode_map(struct gd_decoder *d, const struct gd__table *t, void *base,
                      const msgpack_object *o)
{
    const msgpack_object_map *m;
    uint64_t seen = 0;
    unsigned hint = 0, coords = 0;

    if (o->type != MSGPACK_OBJECT_MAP)
        return fail(d, GD_E_WRONG_TYPE, NULL);
    m = &o->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return fail(d, GD_E_WRONG_TYPE, NULL);
        const char *kp = k->via.str.ptr;
        uint32_t kl = k->via.str.size;

        /* Our encoder writes keys in table order: try the next one first. */
        unsigned j = hint;
        if (j >= t->n_fields || t->fields[j].key_len != kl || memcmp(t->fields[j].key, kp, kl)) {
            for (j = 0; j < t->n_fields; j++)
                if (t->fields[j].key_len == kl && memcmp(t->fields[j].key, kp, kl) == 0)
                    break;
            if (j == t->n_fields)
                return fail_at(d, GD_E_UNKNOWN_FIELD, kp, kl, true);
        }
        const struct gd__field *f = &t->fields[j];
        if (seen & (UINT64_C(1) << j))
            return fail(d, GD_E_DUPLICATE_FIELD, f);
        seen |= UINT64_C(1) << j;
        hint = j + 1;
        if (f->flags & GD__COORD)
            coords++;
        int r = decode_value(d, f, base, &m->ptr[i].val);
        if (r < 0)
            return r;
    }

    for (unsigned j = 0; j < t->n_fields; j++) {
        const struct gd__field *f = &t->fields[j];
        if (seen & (UINT64_C(1) << j))
            continue;
        if (f->flags & GD__REQ)
            return fail(d, GD_E_MISSING_FIELD, f);
        if (f->def != 0) {
            if (f->type == GD__F_BOOL)
                *(bool *)at(base, f->off) = true;
            else
                *(int *)at(base, f->off) = f->def;
        }
        if ((f->flags & GD__COORD) && coords != 0)
            return fail(d, GD_E_MISSING_FIELD, f); /* lat and lon travel together */
    }
    for (unsigned j = 0; coords != 0 && j < t->n_fields; j++)
        if (t->fields[j].flags & GD__COORD)
            *(bool *)at(base, t->fields[j].aux_off) = true;

    if (t->check != NULL) {
        const char *key = NULL;
        int r = t->check(base, &key);
        if (r < 0)
            return fail_at(d, (enum gd_code) - r, key, key ? strlen(key) : 0, false);
    }
    return 0;
}

/* Pre-scans and unpacks `body`, then maps it through table `t` into the
 * struct at `base` (t->size bytes, cleared first). */
static int decode_body(struct gd_decoder *d, const struct gd__table *t, void *base,
                       const void *body, size_t body_len, bool status)
{
    msgpack_object root;
    size_t off = 0;
    int r;

    d->depth = 0;
    d->field[0] = '\0';
    d->ref = 0;
    r = gd__scan(body, body_len);
    if (r < 0)
        return r;

    msgpack_zone_clear(&d->zone);
    switch (msgpack_unpack(body, body_len, &off, &d->zone, &root)) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        return -GD_E_INTERNAL;
    default: /* the pre-scan accepted what msgpack-c refuses */
        return -GD_E_MALFORMED;
    }

    /* Remember the request's ref even if the body turns out to be bad, so
     * that the refusal can name the request it answers. */
    if (root.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *m = &root.via.map;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 3 &&
                memcmp(k->via.str.ptr, "ref", 3) == 0 &&
                m->ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
                d->ref = m->ptr[i].val.via.u64;
                break;
            }
        }
    }

    if (status) {
        /* The "kind" key picks the table; the table then decodes it again
         * as its first field, so its value is checked like any other. */
        const msgpack_object_map *m = &root.via.map;
        int kind = -1;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 4 &&
                memcmp(k->via.str.ptr, "kind", 4) == 0) {
                const msgpack_object *v = &m->ptr[i].val;
                if (v->type != MSGPACK_OBJECT_STR)
                    return fail_at(d, GD_E_WRONG_TYPE, "kind", 4, false);
                kind = gd__names_parse(&gd__status_kind_names, v->via.str.ptr, v->via.str.size);
                if (kind < 0)
                    return fail_at(d, GD_E_BAD_VALUE, "kind", 4, false);
                break;
            }
        }
        if (kind < 0)
            return fail_at(d, GD_E_MISSING_FIELD, "kind", 4, false);
        t = gd__status_table((enum gd_status_kind)kind);
    }

    memset(base, 0, t->size);
    return decode_map(d, t, base, &root);
}

static int finish(struct gd_decoder *d, int r, struct gd_decode_error *ret_err)
{
    if (r < 0 && ret_err != NULL) {
        ret_err->code = (enum gd_code) - r;
        ret_err->field = d->field;
        ret_err->ref = d->ref;
    }
    return r;
}

int gd_decode(struct gd_decoder *d, const void *header, size_t header_len, const void *body,
              size_t body_len, struct gd_msg *ret_msg, struct gd_decode_error *ret_err)
{
    const uint8_t *h = header;
    const struct gd__table *t;

    d->field[0] = '\0';
    d->ref = 0;
    if (header_len != GD_HEADER_LEN || memcmp(h, GD_SIGNATURE, GD_SIGNATURE_LEN) != 0)
        return finish(d, -GD_E_BAD_HEADER, ret_err);
    t = gd__msg_table((enum gd_type)h[GD_SIGNATURE_LEN]);
    if (t == NULL)
        return finish(d, -GD_E_UNKNOWN_TYPE, ret_err);
    ret_msg->type = (enum gd_type)h[GD_SIGNATURE_LEN];
    return finish(d, decode_body(d, t, &ret_msg->u, body, body_len, false), ret_err);
}

/* A compressed status body (§12.1): decompressed into the decoder's own
 * buffer, which the decoded strings then point into. The frame must
 * declare its size, and that size is checked before anything is
 * decompressed. */
static int inflate_body(struct gd_decoder *d, const void **body, size_t *body_len)
{
    unsigned long long size = ZSTD_getFrameContentSize(*body, *body_len);
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN)
        return -GD_E_MALFORMED;
    if (size > GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    if (d->inflated == NULL && (d->inflated = malloc(GD_MAX_BODY)) == NULL)
        return -GD_E_INTERNAL;
    if (d->dctx == NULL && (d->dctx = ZSTD_createDCtx()) == NULL)
        return -GD_E_INTERNAL;
    size_t n = ZSTD_decompressDCtx(d->dctx, d->inflated, GD_MAX_BODY, *body, *body_len);
    if (ZSTD_isError(n) || n != size)
        return -GD_E_MALFORMED;
    *body = d->inflated;
    *body_len = n;
    return 0;
}

int gd_decode_status(struct gd_decoder *d, const void *body, size_t body_len,
                     struct gd_status *ret_status, struct gd_decode_error *ret_err)
{
    if (body_len >= 4 && memcmp(body, GD_ZSTD_MAGIC, 4) == 0) {
        d->field[0] = '\0';
        d->ref = 0;
        if (body_len > GD_MAX_BODY)
            return finish(d, -GD_E_TOO_LARGE, ret_err);
        int r = inflate_body(d, &body, &body_len);
        if (r < 0)
            return finish(d, r, ret_err);
    }
    return finish(d, decode_body(d, NULL, ret_status, body, body_len, true), ret_err);
}
