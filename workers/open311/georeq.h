/* georeq.h - gd-open311's untrusted-input parsing, free of HTTP: the URL route, POST form fields
 * into a SUBMIT, and GET query arguments into a request filter. */
#ifndef GD_OPEN311_GEOREQ_H
#define GD_OPEN311_GEOREQ_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "db.h"
#include "gdp.h"

#define GEOREQ_MAX_ATTRIBUTES      16
#define GEOREQ_MAX_ATTRIBUTE       256  /* bytes of one attribute value */
#define GEOREQ_MAX_DESCRIPTION_CHS 4000 /* GeoReport v2 */
#define GEOREQ_MAX_IDEMPOTENCY_KEY (GD_MAX_EXTERNAL_ID - CONFIG_MAX_PRINCIPAL - 1)

enum georeq_fmt { GEOREQ_JSON, GEOREQ_XML };

/* Form fields of POST requests (each with its byte limit in georeq.c). */
enum georeq_field {
    GEOREQ_API_KEY,
    GEOREQ_SERVICE_CODE,
    GEOREQ_LAT,
    GEOREQ_LONG,
    GEOREQ_ADDRESS_STRING,
    GEOREQ_ADDRESS_ID,
    GEOREQ_DESCRIPTION,
    GEOREQ_MEDIA_URL,
    GEOREQ_FIRST_NAME,
    GEOREQ_LAST_NAME,
    GEOREQ_PHONE,
    GEOREQ_EMAIL,
    GEOREQ_DEVICE_ID,
    GEOREQ_ACCOUNT_ID,
    GEOREQ_FIELD_COUNT
};

struct georeq_value {
    char *s; /* NUL-terminated, NULL until a byte arrived */
    size_t len;
    bool seen;
};

struct georeq_attribute {
    char code[GD_MAX_CODE + 1];
    struct georeq_value v;
};

/* The form fields of one POST body, collected piece by piece. */
struct georeq_form {
    char problem[160]; /* first bad form field: the request is answered 400 with it */
    struct georeq_value v[GEOREQ_FIELD_COUNT];
    unsigned n_attr;
    struct georeq_attribute attr[GEOREQ_MAX_ATTRIBUTES];
};

/* The query-string arguments of a request: get(ctx, name) returns the
 * (decoded, NUL-terminated) value of argument `name`, or NULL. */
struct georeq_args {
    const char *(*get)(void *ctx, const char *name);
    void *ctx;
};

/* A SUBMIT built from a POST form. Its strings point into the form, the
 * arguments and `name`/`description`; external_id is left to the caller. */
struct georeq_submit {
    struct gd_msg msg;
    const char *service_code; /* to check against the catalogue */
    const char *address_id;   /* "" or an org-unit code to check */
    const char *account_id;   /* echoed in the answer, "" when absent */
    char name[2 * GD_MAX_NAME + 2];
    char *description; /* owned when attributes were folded in, else NULL */
};

/* A GET requests filter and the storage its array literals live in. */
struct georeq_filter {
    struct db_request_filter f;
    char ids[2048];
    char codes[2048];
};

/* Splits "/name.fmt" or "/name/arg.fmt" (fmt json or xml). Returns 0 with
 * the parts (name and arg NUL-terminated, arg "" when absent), or -1 (the
 * format may have been set already). */
int georeq_route(const char *url, char *name, size_t nlen, char *arg, size_t alen,
                 enum georeq_fmt *ret_fmt);

/* Adds `size` bytes of form field `key` (the pieces of one value arrive in
 * order). Known fields beyond their byte limit, unknown attribute codes
 * beyond GEOREQ_MAX_ATTRIBUTES, and other unknown keys (ignored, as
 * GeoReport clients send extras) never fail: a problem is recorded in
 * f->problem, and after the first one nothing more is stored. */
void georeq_form_add(struct georeq_form *f, const char *key, const char *data, size_t size);

/* Releases the values of a form; the form may then be reused zeroed. */
void georeq_form_fini(struct georeq_form *f);

/* A form value from the body, or else from the query string (there only
 * within the field's byte limit); "" when absent. */
const char *georeq_field(const struct georeq_form *f, const struct georeq_args *q,
                         enum georeq_field which);

/* Checks the fields of a POST requests form (after the api key, which the
 * caller checks) and builds the SUBMIT (source "open311"): category,
 * location (lat and long together, in decimal degrees within range, as
 * location.lat/lon; address_string as location.address; address_id, an
 * org-unit code, as location.unit; at least one of the three, as GeoReport
 * v2 requires), description with the attributes folded in, the media URL as an
 * attachment, reporter name and phone; a field in the query string beyond its
 * byte limit is refused as in the body. `idempotency_key` is the header's
 * value or NULL. Returns 0 with *ret filled (release with
 * georeq_submit_fini()), or an HTTP status (400, or 500 when out of memory)
 * with a message for the client in `why` that quotes no personal data. */
int georeq_submit(const struct georeq_form *f, const struct georeq_args *q,
                  const char *idempotency_key, struct georeq_submit *ret, char *why,
                  size_t why_len);

/* Releases what georeq_submit() allocated; accepts a zeroed struct. */
void georeq_submit_fini(struct georeq_submit *s);

/* Reads the GET requests arguments into *ret, whose f.sources is set to
 * `sources`: one request when `one_id` is given, else service_request_id
 * (which overrides the other filters), service_code, start_date, end_date,
 * status, page_size and page within cfg's limits, and extensions (true:
 * the extended_attributes of db_requests()). Returns 0, 404 (one_id
 * is not an id) or 400, with the message in `why`. */
int georeq_filter(const struct config *cfg, const char *sources, const struct georeq_args *q,
                  const char *one_id, struct georeq_filter *ret, char *why, size_t why_len);

/* Builds a PostgreSQL array literal "{a,b}" of the comma-separated `list`
 * items (leading spaces dropped), each checked by `ok`; at most `max` items
 * in `outlen` bytes. Returns 0, -1 (an item fails `ok`, or none) or -2 (too
 * many, or too long). */
int georeq_array_literal(const char *list, bool (*ok)(const char *), unsigned max, char *out,
                         size_t outlen);

/* Whether s is a non-empty [0-9a-zA-Z_.-]+ code. */
bool georeq_is_code(const char *s);

/* Whether s is a decimal id of 1..19 digits. */
bool georeq_is_id(const char *s);

#endif
