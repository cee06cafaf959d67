/* gdp-internal.h - declarations shared by the codec's source files; not installed. */
#ifndef GD_PROTO_GDP_INTERNAL_H
#define GD_PROTO_GDP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "gdp.h"

/* A name table for one enumeration: names[v] is the wire name of value v. */
struct gd__names {
    const char *const *names;
    int count;
};

extern const struct gd__names gd__code_names;
extern const struct gd__names gd__priority_names;
extern const struct gd__names gd__level_names;
extern const struct gd__names gd__state_names;
extern const struct gd__names gd__role_names;
extern const struct gd__names gd__deadline_kind_names;
extern const struct gd__names gd__event_kind_names;
extern const struct gd__names gd__status_kind_names;

/* Returns the value whose wire name is s[0..len), or -1. */
int gd__names_parse(const struct gd__names *t, const char *s, size_t len);

/* Makes room for `extra` more bytes in b, never letting b->len exceed
 * `limit`. Returns 0, -GD_E_TOO_LARGE past the limit, -GD_E_INTERNAL when
 * out of memory (b unchanged). */
int gd__buf_reserve(struct gd_buf *b, size_t extra, size_t limit);

/* Structural pre-scan of a body (see gdp-scan.c). Returns 0 when `body` is
 * exactly one msgpack map within every structural limit, else -code. */
int gd__scan(const uint8_t *body, size_t len);

/* Largest element count the pre-scan lets through for any array: the
 * biggest per-field array limit of the protocol. */
#define GD__MAX_ARRAY GD_MAX_GAUGES

/* ---- schema: one table of field descriptors per map shape ---- */

enum gd__ftype {
    GD__F_U64,      /* uint64_t, positive integer */
    GD__F_U32,      /* uint32_t, positive integer */
    GD__F_TIME,     /* int64_t ms since epoch (or a duration), >= 0 */
    GD__F_BOOL,     /* bool */
    GD__F_F64,      /* double, finite, within [flo, fhi] */
    GD__F_STR,      /* struct gd_str, UTF-8 without NUL, <= max bytes */
    GD__F_ENUM,     /* an enum stored as int, travels as its name */
    GD__F_MAP,      /* nested struct described by `sub` */
    GD__F_STRS,     /* struct gd_str[], count at aux_off, <= max items */
    GD__F_EVENTS,   /* const struct gd_event *, count at aux_off */
    GD__F_GAUGES,   /* const struct gd_gauge *, count at aux_off */
    GD__F_TRANSITIONS, /* const struct gd_status_transition *, count at aux_off */
    GD__F_SUBMITS,  /* const struct gd_submit *, count at aux_off */
    GD__F_RESULTS,  /* const struct gd_submit_result *, count at aux_off */
    GD__F_COUNTERS, /* struct gd_counter[], count at aux_off, as a map */
};

enum gd__fflag {
    GD__REQ = 1u << 0,     /* required: absence is GD_E_MISSING_FIELD */
    GD__SOURCE = 1u << 1,  /* string must match [a-z0-9_-]{1,32} */
    GD__PRESENT = 1u << 2, /* MAP: a bool at aux_off says whether it is there */
    GD__COORD = 1u << 3,   /* F64: part of the lat/lon pair of a location */
};

struct gd__table;

struct gd__field {
    const char *key;
    uint8_t key_len;
    uint8_t type;                  /* enum gd__ftype */
    uint8_t flags;                 /* enum gd__fflag */
    uint16_t off;                  /* offset of the value in the struct */
    uint16_t aux_off;              /* count (arrays) or presence bool (maps) */
    uint32_t max;                  /* string bytes; array items */
    uint32_t item_max;             /* STRS: bytes per string */
    int64_t lo, hi;                /* integer and enum range */
    double flo, fhi;               /* F64 range */
    int32_t def;                   /* ENUM: value when absent */
    const struct gd__names *names; /* ENUM */
    const struct gd__table *sub;   /* MAP, EVENTS, GAUGES: element shape */
};

/* Whole-struct rules that single fields cannot express (e.g. "incident_id,
 * or source and external_id"). Called after decoding and before encoding.
 * Returns 0, or -code with *field set to the key concerned. */
typedef int gd__check_fn(const void *base, const char **field);

struct gd__table {
    const char *name; /* for diagnostics */
    const struct gd__field *fields;
    uint8_t n_fields;
    uint16_t size; /* bytes to clear before decoding */
    gd__check_fn *check;
};

/* Table for a message type (NULL: unknown type) and for a status kind. */
const struct gd__table *gd__msg_table(enum gd_type type);
const struct gd__table *gd__status_table(enum gd_status_kind kind);
extern const struct gd__table gd__transition_table; /* one item of a batch */
extern const struct gd__table gd__gauge_table;
extern const struct gd__table gd__submit_result_table;

/* The element size of a record-array field type. */
static inline size_t gd__record_size(enum gd__ftype t)
{
    return t == GD__F_EVENTS ? sizeof(struct gd_event)
         : t == GD__F_GAUGES ? sizeof(struct gd_gauge)
         : t == GD__F_SUBMITS ? sizeof(struct gd_submit)
         : t == GD__F_RESULTS ? sizeof(struct gd_submit_result)
                             : sizeof(struct gd_status_transition);
}

/* Index of the "kind" descriptor in every status table. */
#define GD__STATUS_KIND_FIELD 0

#endif
