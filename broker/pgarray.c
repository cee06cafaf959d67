/* pgarray.c - one-dimensional PostgreSQL arrays in binary format, for array parameters.
 *
 * The format (PostgreSQL's array_send): int32 dimensions (1), int32 flags
 * (1 when an element is NULL), element type OID, then per dimension int32
 * length and int32 lower bound (1); then per element an int32 byte length
 * (-1 for NULL) and the element in the type's binary form. An element of
 * a composite type (record_send) is int32 field count, then per field its
 * type OID and the field as an array element is (length, bytes). Every
 * integer is big-endian. */
#include "pgarray.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_LEN 20
/* microseconds from the Unix epoch to PostgreSQL's, 2000-01-01 00:00 UTC */
#define PG_EPOCH_US 946684800000000LL

static const struct {
    uint32_t oid;
    const char *sql, *element;
} types[] = {
    [PGARRAY_BOOL] = {16, "bool[]", "bool"},
    [PGARRAY_INT4] = {23, "int4[]", "int4"},
    [PGARRAY_INT8] = {20, "int8[]", "int8"},
    [PGARRAY_FLOAT8] = {701, "float8[]", "float8"},
    [PGARRAY_TEXT] = {25, "text[]", "text"},
    [PGARRAY_TIMESTAMPTZ] = {1184, "timestamptz[]", "timestamptz"},
};

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static void put_be64(char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* Room for `more` bytes at the end; false (and a->failed) when there is none. */
static bool reserve(struct pgarray *a, size_t more)
{
    if (a->failed)
        return false;
    if (a->len + more <= a->cap)
        return true;
    size_t cap = a->cap ? a->cap : 1024;
    while (cap < a->len + more)
        cap *= 2;
    char *p = realloc(a->data, cap);
    if (!p) {
        a->failed = true;
        return false;
    }
    a->data = p;
    a->cap = cap;
    return true;
}

void pgarray_begin(struct pgarray *a, enum pgarray_type type)
{
    a->len = 0;
    a->n = 0;
    a->has_null = false;
    a->failed = false;
    a->type = type;
    if (reserve(a, HEADER_LEN))
        a->len = HEADER_LEN; /* written by pgarray_end */
}

/* Appends an element of `len` bytes and returns where its bytes go, or NULL. */
static char *element(struct pgarray *a, uint32_t len)
{
    if (!reserve(a, 4 + (size_t)len))
        return NULL;
    char *p = a->data + a->len;
    put_be32(p, len);
    a->len += 4 + (size_t)len;
    a->n++;
    return p + 4;
}

void pgarray_null(struct pgarray *a)
{
    if (!reserve(a, 4))
        return;
    put_be32(a->data + a->len, UINT32_MAX); /* -1 */
    a->len += 4;
    a->n++;
    a->has_null = true;
}

void pgarray_bool(struct pgarray *a, bool v)
{
    char *p = element(a, 1);
    if (p)
        *p = v ? 1 : 0;
}

void pgarray_int4(struct pgarray *a, int32_t v)
{
    char *p = element(a, 4);
    if (p)
        put_be32(p, (uint32_t)v);
}

void pgarray_int8(struct pgarray *a, int64_t v)
{
    char *p = element(a, 8);
    if (p)
        put_be64(p, (uint64_t)v);
}

void pgarray_float8(struct pgarray *a, double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    char *p = element(a, 8);
    if (p)
        put_be64(p, bits);
}

void pgarray_text(struct pgarray *a, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n > INT32_MAX) {
        a->failed = true;
        return;
    }
    char *p = element(a, (uint32_t)n);
    if (p && n)
        memcpy(p, s, n);
}

void pgarray_time_ms(struct pgarray *a, int64_t ms)
{
    if (ms == 0) {
        pgarray_null(a);
        return;
    }
    char *p = element(a, 8);
    if (p)
        put_be64(p, (uint64_t)(ms * 1000 - PG_EPOCH_US));
}

int pgarray_end(struct pgarray *a)
{
    if (a->failed || a->len > INT32_MAX)
        return -ENOMEM;
    put_be32(a->data, 1);
    put_be32(a->data + 4, a->has_null ? 1 : 0);
    put_be32(a->data + 8, types[a->type].oid);
    put_be32(a->data + 12, a->n);
    put_be32(a->data + 16, 1);
    return 0;
}

const char *pgarray_sql_element(enum pgarray_type type)
{
    return types[type].element;
}

/* The size of the element at `p` (its length word and bytes). */
static size_t element_size(const char *p)
{
    uint32_t len = get_be32(p);
    return 4 + (len == UINT32_MAX ? 0 : (size_t)len);
}

int pgarray_rows(struct pgarray *out, uint32_t row_type, const struct pgarray *cols, int n)
{
    /* the header's element type is patched in below: begin as any type */
    pgarray_begin(out, PGARRAY_INT4);
    uint32_t rows = n ? cols[0].n : 0;
    size_t body = 0;
    for (int i = 0; i < n; i++) {
        if (cols[i].failed || cols[i].n != rows)
            return -ENOMEM;
        body += cols[i].len - HEADER_LEN;
    }
    /* per row: its length and field count; per field: its type */
    if (!reserve(out, body + (size_t)rows * (8 + 4 * (size_t)n)))
        return -ENOMEM;
    size_t cursor[n > 0 ? n : 1];
    for (int i = 0; i < n; i++)
        cursor[i] = HEADER_LEN;
    for (uint32_t r = 0; r < rows; r++) {
        char *row = out->data + out->len;
        size_t at = 8;
        put_be32(row + 4, (uint32_t)n);
        for (int i = 0; i < n; i++) {
            const char *e = cols[i].data + cursor[i];
            size_t size = element_size(e);
            put_be32(row + at, types[cols[i].type].oid);
            memcpy(row + at + 4, e, size);
            at += 4 + size;
            cursor[i] += size;
        }
        put_be32(row, (uint32_t)(at - 4));
        out->len += at;
        out->n++;
    }
    if (pgarray_end(out) < 0)
        return -ENOMEM;
    put_be32(out->data + 8, row_type);
    return 0;
}

const char *pgarray_data(const struct pgarray *a)
{
    return a->data;
}

int pgarray_length(const struct pgarray *a)
{
    return (int)a->len;
}

const char *pgarray_sql_type(enum pgarray_type type)
{
    return types[type].sql;
}

void pgarray_fini(struct pgarray *a)
{
    free(a->data);
    a->data = NULL;
    a->len = a->cap = 0;
}
