/* pgarray.h - one-dimensional PostgreSQL arrays in binary format, for array parameters.
 *
 * The store passes a batch's rows as one array parameter per column and
 * expands them with unnest(). Sent in binary, an array costs the server
 * one receive call per element instead of parsing a quoted literal, and
 * times go as timestamptz without a conversion in SQL.
 *
 * Build an array with pgarray_begin(), one pgarray_<type>() call per
 * element (the element type must be the array's), then pgarray_end().
 * Appending never fails; a failed allocation is remembered and reported
 * by pgarray_end(). The buffer is kept for the next pgarray_begin() and
 * freed by pgarray_fini().
 */
#ifndef GD_BROKER_PGARRAY_H
#define GD_BROKER_PGARRAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pgarray_type {
    PGARRAY_BOOL,
    PGARRAY_INT4,
    PGARRAY_INT8,
    PGARRAY_FLOAT8,
    PGARRAY_TEXT,
    PGARRAY_TIMESTAMPTZ,
};

struct pgarray {
    char *data;
    size_t len, cap;
    uint32_t n; /* elements so far */
    bool has_null;
    bool failed; /* an allocation failed: the array is incomplete */
    enum pgarray_type type;
};

/* Starts an empty array of `type`, reusing a's buffer. `a` must be zeroed
 * before its first use. */
void pgarray_begin(struct pgarray *a, enum pgarray_type type);

void pgarray_null(struct pgarray *a);
void pgarray_bool(struct pgarray *a, bool v);
void pgarray_int4(struct pgarray *a, int32_t v);
void pgarray_int8(struct pgarray *a, int64_t v);
void pgarray_float8(struct pgarray *a, double v);
/* A text element; NULL is stored as the empty string, not as NULL. The
 * text must be valid in the server's encoding (UTF-8). */
void pgarray_text(struct pgarray *a, const char *s);
/* A timestamptz from milliseconds since the Unix epoch; 0 means "not
 * set" and is stored as NULL (the rule of gd_ts() in the schema). */
void pgarray_time_ms(struct pgarray *a, int64_t ms);

/* Completes the header. Returns 0, or -ENOMEM when an element could not
 * be added. The array is then pgarray_data()/pgarray_length() until the
 * next pgarray_begin(). */
int pgarray_end(struct pgarray *a);

const char *pgarray_data(const struct pgarray *a);
int pgarray_length(const struct pgarray *a);

/* The SQL name of the array type, for a cast such as `$1::int8[]`, and
 * of its element type. */
const char *pgarray_sql_type(enum pgarray_type type);
const char *pgarray_sql_element(enum pgarray_type type);

/* Makes `out` an array of rows of the composite type `row_type` (its OID
 * on the connection it is sent to) from `n` completed column arrays of
 * equal length, column i of each row from cols[i]: one parameter that
 * unnest() expands into rows at the cost of one function call, where n
 * arrays cost n. Returns 0, or -ENOMEM (also when the columns' lengths
 * differ, which is the caller's mistake). */
int pgarray_rows(struct pgarray *out, uint32_t row_type, const struct pgarray *cols, int n);

/* Frees the buffer; accepts a zeroed array. */
void pgarray_fini(struct pgarray *a);

#endif
