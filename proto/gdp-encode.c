/* gdp-encode.c - GDP/1 encoder: schema-validated structs packed by msgpack-c into a gd_buf. */
#include <math.h>
#include <string.h>

#include <msgpack.h>

#include "gdp-internal.h"

/* Where packed bytes go: the body buffer, never beyond `limit`. The first
 * failure sticks, so callers check once at the end. */
struct sink {
    struct gd_buf *b;
    size_t limit;
    int err;
};

static int sink_grow(struct sink *s, size_t len)
{
    int r = s->err != 0 ? s->err : gd__buf_reserve(s->b, len, s->limit);
    if (r < 0) {
        s->err = r;
        return -1;
    }
    return 0;
}

static inline int sink_append(struct sink *s, const char *p, size_t len)
{
    struct gd_buf *b = s->b;
    if (__builtin_expect(b->cap - b->len < len || s->err != 0, 0) && sink_grow(s, len) < 0)
        return -1;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    return 0;
}

/* msgpack-c's packer (msgpack/pack_template.h, the code behind
 * msgpack_packer) instantiated a second time with `struct sink` as its
 * user type: the same encodings, but the append is inlined instead of
 * going through msgpack_packer's callback pointer for every few bytes,
 * which cost a third of the encoding time. Functions are named gd__mp_*
 * (gd__mp_uint64 is msgpack_pack_uint64, and so on). */
#undef msgpack_pack_inline_func
#undef msgpack_pack_inline_func_cint
#undef msgpack_pack_inline_func_fixint
#undef msgpack_pack_user
#undef msgpack_pack_append_buffer
#define msgpack_pack_inline_func(name)        static inline int gd__mp##name
#define msgpack_pack_inline_func_cint(name)   static inline int gd__mp##name
#define msgpack_pack_inline_func_fixint(name) static inline int gd__mp_fix##name
#define msgpack_pack_user                     struct sink *
#define msgpack_pack_append_buffer(user, buf, len) \
    return sink_append(user, (const char *)(buf), len)
#define msgpack_pack_ext gd__mp_ext /* called by the template's timestamp packer */
#include <msgpack/pack_template.h>
#undef msgpack_pack_ext
#undef msgpack_pack_inline_func_cint
#undef msgpack_pack_inline_func_fixint

typedef struct sink packer;

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
    case GD__F_TRANSITIONS:
    case GD__F_SUBMITS:
    case GD__F_RESULTS:
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
static int put_str(packer *pk, struct gd_str s, uint32_t max, bool nonempty)
{
    if (s.len > max)
        return -GD_E_TOO_LONG;
    if ((s.len != 0 && s.ptr == NULL) || (nonempty && s.len == 0) || !gd_utf8_valid(s))
        return -GD_E_BAD_VALUE;
    gd__mp_str(pk, s.len);
    if (s.len != 0)
        gd__mp_str_body(pk, s.ptr, s.len);
    return 0;
}

/* Keys are short (< 32 bytes, a fixstr): header and name in one append. */
static inline void put_key(packer *pk, const struct gd__field *f)
{
    char tmp[32];
    tmp[0] = (char)(0xa0 | f->key_len);
    memcpy(tmp + 1, f->key, f->key_len);
    sink_append(pk, tmp, (size_t)f->key_len + 1);
}

static int encode_map(packer *pk, const struct gd__table *t, const void *base);

static int encode_value(packer *pk, const struct gd__field *f, const void *base)
{
    int r;

    switch ((enum gd__ftype)f->type) {
    case GD__F_U64: {
        uint64_t v = *(const uint64_t *)cat(base, f->off);
        if (v < (uint64_t)f->lo)
            return -GD_E_BAD_VALUE;
        gd__mp_uint64(pk, v);
        return 0;
    }
    case GD__F_U32: {
        uint32_t v = *(const uint32_t *)cat(base, f->off);
        if (v < f->lo || v > f->hi)
            return -GD_E_BAD_VALUE;
        gd__mp_uint32(pk, v);
        return 0;
    }
    case GD__F_TIME: {
        int64_t v = *(const int64_t *)cat(base, f->off);
        if (v < f->lo)
            return -GD_E_BAD_VALUE;
        gd__mp_uint64(pk, (uint64_t)v);
        return 0;
    }
    case GD__F_BOOL:
        if (*(const bool *)cat(base, f->off))
            gd__mp_true(pk);
        else
            gd__mp_false(pk);
        return 0;
    case GD__F_F64: {
        double v = *(const double *)cat(base, f->off);
        if (!isfinite(v) || v < f->flo || v > f->fhi)
            return -GD_E_BAD_VALUE;
        gd__mp_double(pk, v);
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
        size_t len = strlen(name);
        gd__mp_str(pk, len);
        gd__mp_str_body(pk, name, len);
        return 0;
    }
    case GD__F_MAP:
        return encode_map(pk, f->sub, cat(base, f->off));
    case GD__F_STRS: {
        uint32_t n = *(const uint32_t *)cat(base, f->aux_off);
        const struct gd_str *v = cat(base, f->off);
        if (n > f->max)
            return -GD_E_TOO_MANY;
        gd__mp_array(pk, n);
        for (uint32_t i = 0; i < n; i++)
            if ((r = put_str(pk, v[i], f->item_max, true)) < 0)
                return r;
        return 0;
    }
    case GD__F_EVENTS:
    case GD__F_GAUGES:
    case GD__F_TRANSITIONS:
    case GD__F_SUBMITS:
    case GD__F_RESULTS: {
        uint32_t n = *(const uint32_t *)cat(base, f->aux_off);
        const char *elems;
        size_t size = gd__record_size((enum gd__ftype)f->type);
        memcpy(&elems, cat(base, f->off), sizeof(elems));
        if (n > f->max)
            return -GD_E_TOO_MANY;
        if (elems == NULL)
            return -GD_E_BAD_VALUE;
        gd__mp_array(pk, n);
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
        gd__mp_map(pk, n);
        for (uint32_t i = 0; i < n; i++) {
            for (uint32_t j = 0; j < i; j++)
                if (gd_str_eq(c[j].name, c[i].name))
                    return -GD_E_DUPLICATE_FIELD;
            if ((r = put_str(pk, c[i].name, f->item_max, true)) < 0)
                return r;
            gd__mp_uint64(pk, c[i].value);
        }
        return 0;
    }
    }
    return -GD_E_INTERNAL;
}

static int encode_map(packer *pk, const struct gd__table *t, const void *base)
{
    if (t->check != NULL) {
        const char *field;
        int r = t->check(base, &field);
        if (r < 0)
            return r;
    }
    uint64_t mask = emit_mask(t, base);
    gd__mp_map(pk, (size_t)__builtin_popcountll(mask));
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

    if (start > SIZE_MAX - GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    int r = encode_map(&s, t, base);
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

int gd_encode_transition(const struct gd_status_transition *t, struct gd_buf *items)
{
    return encode_into(items, &gd__transition_table, t);
}

/* A batch body, {"kind": kind, "items": [the n encoded items]}: the same
 * bytes gd_encode_status writes for the same items. */
static int encode_batch(const char *kind, uint32_t n, uint32_t max, const struct gd_buf *items,
                        struct gd_buf *body)
{
    size_t start = body->len;
    size_t kind_len = strlen(kind);
    struct sink s = {.b = body, .limit = start + GD_MAX_BODY, .err = 0};

    if (n == 0 || n > max)
        return -GD_E_TOO_MANY;
    if (start > SIZE_MAX - GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    gd__mp_map(&s, 2);
    gd__mp_str(&s, 4);
    gd__mp_str_body(&s, "kind", 4);
    gd__mp_str(&s, kind_len);
    gd__mp_str_body(&s, kind, kind_len);
    gd__mp_str(&s, 5);
    gd__mp_str_body(&s, "items", 5);
    gd__mp_array(&s, n);
    sink_append(&s, items->data, items->len);
    if (s.err < 0)
        body->len = start;
    return s.err;
}

int gd_encode_transitions(uint32_t n, const struct gd_buf *items, struct gd_buf *body)
{
    return encode_batch("transitions", n, GD_MAX_BATCH, items, body);
}

int gd_encode_gauge(const struct gd_gauge *g, struct gd_buf *items)
{
    return encode_into(items, &gd__gauge_table, g);
}

int gd_encode_gauges(uint32_t n, const struct gd_buf *items, struct gd_buf *body)
{
    return encode_batch("gauges", n, GD_MAX_GAUGES, items, body);
}

int gd_encode_submits(uint64_t ref, uint32_t n, const struct gd_buf *const *items,
                      struct gd_buf *body)
{
    size_t start = body->len;
    struct sink s = {.b = body, .limit = start + GD_MAX_BODY, .err = 0};

    if (n == 0 || n > GD_MAX_SUBMITS)
        return -GD_E_TOO_MANY;
    if (start > SIZE_MAX - GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    /* the key order of submits_fields: "ref" (optional), then "items" */
    gd__mp_map(&s, ref ? 2 : 1);
    if (ref) {
        gd__mp_str(&s, 3);
        gd__mp_str_body(&s, "ref", 3);
        gd__mp_uint64(&s, ref);
    }
    gd__mp_str(&s, 5);
    gd__mp_str_body(&s, "items", 5);
    gd__mp_array(&s, n);
    for (uint32_t i = 0; i < n; i++)
        sink_append(&s, items[i]->data, items[i]->len);
    if (s.err < 0)
        body->len = start;
    return s.err;
}
