/* gdp-encode.c - the GDP/1 encoder: validates a struct against its schema and packs it with msgpack_packer into a gd_buf. */
#include <math.h>
#include <string.h>

#include <msgpack.h>

#include "gdp-internal.h"

/* Sink for msgpack_packer: appends to the buffer up to `limit` bytes. The
 * first failure sticks, so callers check once at the end. */
struct sink {
    struct gd_buf *b;
    size_t limit;
    int err;
};

static int sink_write(void *data, const char *buf, size_t len)
{
    struct sink *s = data;
    if (s->err != 0)
        return -1;
    if (s->b->cap - s->b->len < len) {
        int r = gd__buf_reserve(s->b, len, s->limit);
        if (r < 0) {
            s->err = r;
            return -1;
        }
    }
    memcpy(s->b->data + s->b->len, buf, len);
    s->b->len += len;
    return 0;
}

static inline const void *cat(const void *base, uint16_t off)
{
    return (const char *)base + off;
}

static uint64_t emit_mask(const struct gd__table *t, const void *base);

/* True when the field differs from what a decoder assumes in its absence,
 * i.e. it must be written. Required fields are always written. */
static bool must_emit(const struct gd__field *f, const void *base)
{
    if (f->flags & GD__REQ)
        return true;
    switch ((enum gd__ftype)f->type) {
    case GD__F_U64:
        return *(const uint64_t *)cat(base, f->off) != 0;
    case GD__F_U32:
        return *(const uint32_t *)cat(base, f->off) != 0;
    case GD__F_TIME:
        return *(const int64_t *)cat(base, f->off) != 0;
    case GD__F_BOOL:
        return *(const bool *)cat(base, f->off) != (f->def != 0);
    case GD__F_F64:
        if (f->flags & GD__COORD)
            return *(const bool *)cat(base, f->aux_off);
        return *(const double *)cat(base, f->off) != 0.0;
    case GD__F_STR:
        return ((const struct gd_str *)cat(base, f->off))->len != 0;
    case GD__F_ENUM:
        return *(const int *)cat(base, f->off) != f->def;
    case GD__F_MAP:
        if (f->flags & GD__PRESENT)
            return *(const bool *)cat(base, f->aux_off);
        return emit_mask(f->sub, cat(base, f->off)) != 0;
    case GD__F_STRS:
    case GD__F_EVENTS:
    case GD__F_GAUGES:
    case GD__F_COUNTERS:
        return *(const uint32_t *)cat(base, f->aux_off) != 0;
    }
    return true;
}

static uint64_t emit_mask(const struct gd__table *t, const void *base)
{
    uint64_t mask = 0;
    for (unsigned i = 0; i < t->n_fields; i++)
        if (must_emit(&t->fields[i], base))
            mask |= UINT64_C(1) << i;
    return mask;
}

static bool source_valid(struct gd_str s)
{
    if (s.len == 0 || s.len > 32)
        return false;
    for (uint32_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Validates and writes one string; the same rules as the decoder's. */
static int put_str(msgpack_packer *pk, struct gd_str s, uint32_t max, bool nonempty)
{
    if (s.len > max)
        return -GD_E_TOO_LONG;
    if ((s.len != 0 && s.ptr == NULL) || (nonempty && s.len == 0) || !gd_utf8_valid(s))
        return -GD_E_BAD_VALUE;
    msgpack_pack_str(pk, s.len);
    if (s.len != 0)
        msgpack_pack_str_body(pk, s.ptr, s.len);
    return 0;
}

static inline void put_key(msgpack_packer *pk, const struct gd__field *f)
{
    msgpack_pack_str_with_body(pk, f->key, f->key_len);
}

static int encode_map(msgpack_packer *pk, const struct gd__table *t, const void *base);

static int encode_value(msgpack_packer *pk, const struct gd__field *f, const void *base)
{
    int r;

    switch ((enum gd__ftype)f->type) {
    case GD__F_U64: {
        uint64_t v = *(const uint64_t *)cat(base, f->off);
        if (v < (uint64_t)f->lo)
            return -GD_E_BAD_VALUE;
        msgpack_pack_uint64(pk, v);
        return 0;
    }
    case GD__F_U32: {
        uint32_t v = *(const uint32_t *)cat(base, f->off);
        if (v < f->lo || v > f->hi)
            return -GD_E_BAD_VALUE;
        msgpack_pack_uint32(pk, v);
        return 0;
    }
    case GD__F_TIME: {
        int64_t v = *(const int64_t *)cat(base, f->off);
        if (v < f->lo)
            return -GD_E_BAD_VALUE;
        msgpack_pack_uint64(pk, (uint64_t)v);
        return 0;
    }
    case GD__F_BOOL:
        if (*(const bool *)cat(base, f->off))
            msgpack_pack_true(pk);
        else
            msgpack_pack_false(pk);
        return 0;
    case GD__F_F64: {
        double v = *(const double *)cat(base, f->off);
        if (!isfinite(v) || v < f->flo || v > f->fhi)
            return -GD_E_BAD_VALUE;
        msgpack_pack_double(pk, v);
        return 0;
    }
    case GD__F_STR: {
        struct gd_str s = *(const struct gd_str *)cat(base, f->off);
        if ((f->flags & GD__SOURCE) && !source_valid(s))
            return s.len > f->max ? -GD_E_TOO_LONG : -GD_E_BAD_VALUE;
        return put_str(pk, s, f->max, (f->flags & GD__REQ) != 0);
    }
    case GD__F_ENUM: {
        int v = *(const int *)cat(base, f->off);
        if (v < f->lo || v >= f->names->count)
            return -GD_E_BAD_VALUE;
        const char *name = f->names->names[v];
        msgpack_pack_str_with_body(pk, name, strlen(name));
        return 0;
    }
    case GD__F_MAP:
        return encode_map(pk, f->sub, cat(base, f->off));
    case GD__F_STRS: {
        uint32_t n = *(const uint32_t *)cat(base, f->aux_off);
        const struct gd_str *v = cat(base, f->off);
        if (n > f->max)
            return -GD_E_TOO_MANY;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            if ((r = put_str(pk, v[i], f->item_max, true)) < 0)
                return r;
        return 0;
    }
    case GD__F_EVENTS:
    case GD__F_GAUGES: {
        uint32_t n = *(const uint32_t *)cat(base, f->aux_off);
        const char *elems;
        size_t size = f->type == GD__F_EVENTS ? sizeof(struct gd_event) : sizeof(struct gd_gauge);
        memcpy(&elems, cat(base, f->off), sizeof(elems));
        if (n > f->max)
            return -GD_E_TOO_MANY;
        if (elems == NULL)
            return -GD_E_BAD_VALUE;
        msgpack_pack_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            if ((r = encode_map(pk, f->sub, elems + i * size)) < 0)
                return r;
        return 0;
    }
    case GD__F_COUNTERS: {
        uint32_t n = *(const uint32_t *)cat(base, f->aux_off);
        const struct gd_counter *c = cat(base, f->off);
        if (n > f->max)
            return -GD_E_TOO_MANY;
        msgpack_pack_map(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < i; j++)
                if (gd_str_eq(c[j].name, c[i].name))
                    return -GD_E_DUPLICATE_FIELD;
            if ((r = put_str(pk, c[i].name, f->item_max, true)) < 0)
                return r;
            msgpack_pack_uint64(pk, c[i].value);
        }
        return 0;
    }
    }
    return -GD_E_INTERNAL;
}

static int encode_map(msgpack_packer *pk, const struct gd__table *t, const void *base)
{
    if (t->check != NULL) {
        const char *field;
        int r = t->check(base, &field);
        if (r < 0)
            return r;
    }
    uint64_t mask = emit_mask(t, base);
    msgpack_pack_map(pk, (size_t)__builtin_popcountll(mask));
    for (unsigned i = 0; i < t->n_fields; i++) {
        if (!(mask & (UINT64_C(1) << i)))
            continue;
        const struct gd__field *f = &t->fields[i];
        put_key(pk, f);
        int r = encode_value(pk, f, base);
        if (r < 0)
            return r;
    }
    return 0;
}

/* Runs encode_map into `body`, restoring its length on any failure. */
static int encode_into(struct gd_buf *body, const struct gd__table *t, const void *base)
{
    size_t start = body->len;
    struct sink s = {.b = body, .limit = start + GD_MAX_BODY, .err = 0};
    msgpack_packer pk;

    if (start > SIZE_MAX - GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    msgpack_packer_init(&pk, &s, sink_write);
    int r = encode_map(&pk, t, base);
    if (r == 0)
        r = s.err;
    if (r < 0)
        body->len = start;
    return r;
}

void gd_encode_header(enum gd_type type, uint8_t out[GD_HEADER_LEN])
{
    memcpy(out, GD_SIGNATURE, GD_SIGNATURE_LEN);
    out[GD_SIGNATURE_LEN] = (uint8_t)type;
}

int gd_encode(const struct gd_msg *m, struct gd_buf *body)
{
    const struct gd__table *t = gd__msg_table(m->type);
    if (t == NULL)
        return -GD_E_UNKNOWN_TYPE;
    return encode_into(body, t, &m->u);
}

int gd_encode_status(const struct gd_status *s, struct gd_buf *body)
{
    const struct gd__table *t = gd__status_table(s->kind);
    if (t == NULL)
        return -GD_E_BAD_VALUE;
    return encode_into(body, t, s);
}
