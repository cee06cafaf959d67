/* fuzz-open311.c - libFuzzer target for gd-open311's request parsing (URL route, form fields, query
 * arguments) with checks on what a successful parse may produce. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "georeq.h"

/* Input layout, '\n'-separated: the URL path, the query string, the
 * Idempotency-Key header ("-" for none), then the form body up to the end.
 * The query string and body are form-encoded (key=value&..., %XX, '+' for
 * space) and decoded here as libmicrohttpd does before gd-open311 sees
 * them; body values are handed over in pieces of 1..16 bytes (the length
 * of the URL picks it), as libmicrohttpd's post processor splits them. */

#define MAX_ARGS 64

struct args {
    unsigned n;
    char *key[MAX_ARGS];
    char *value[MAX_ARGS];
};

static void die(const char *what)
{
    fprintf(stderr, "fuzz-open311: %s\n", what);
    abort();
}

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Decodes n bytes of form encoding into a fresh NUL-terminated string;
 * *ret_len is the decoded length (it may hold NUL bytes from %00). */
static char *form_decode(const char *s, size_t n, size_t *ret_len)
{
    char *out = malloc(n + 1);
    if (!out)
        abort();
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[o++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out[o++] = (char)(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    if (ret_len)
        *ret_len = o;
    return out;
}

/* Calls fn(key, value, value_len) for every key[=value] of the encoded list. */
static void form_each(const char *s, size_t n, void (*fn)(void *, char *, char *, size_t),
                      void *ctx)
{
    size_t i = 0;
    while (i < n) {
        const char *amp = memchr(s + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - s) : n;
        const char *eq = memchr(s + i, '=', end - i);
        size_t kend = eq ? (size_t)(eq - s) : end;
        if (kend > i) {
            size_t vlen;
            char *k = form_decode(s + i, kend - i, NULL);
            char *v = eq ? form_decode(eq + 1, end - kend - 1, &vlen) : form_decode("", 0, &vlen);
            fn(ctx, k, v, vlen);
        }
        i = end + 1;
    }
}

static void add_arg(void *ctx, char *k, char *v, size_t vlen)
{
    (void)vlen;
    struct args *a = ctx;
    if (a->n == MAX_ARGS) {
        free(k);
        free(v);
        return;
    }
    a->key[a->n] = k;
    a->value[a->n++] = v;
}

/* The first value of argument `name`, as MHD_lookup_connection_value. */
static const char *get_arg(void *ctx, const char *name)
{
    const struct args *a = ctx;
    for (unsigned i = 0; i < a->n; i++)
        if (strcmp(a->key[i], name) == 0)
            return a->value[i];
    return NULL;
}

struct body {
    struct georeq_form *form;
    size_t piece;
};

static void add_field(void *ctx, char *k, char *v, size_t vlen)
{
    struct body *b = ctx;
    if (vlen == 0)
        georeq_form_add(b->form, k, v, 0);
    for (size_t off = 0; off < vlen; off += b->piece)
        georeq_form_add(b->form, k, v + off, vlen - off < b->piece ? vlen - off : b->piece);
    free(k);
    free(v);
}

static bool all_utf8(const struct gd_submit *s)
{
    const struct gd_str strs[] = {s->category,       s->location.unit, s->location.address,
                                  s->description,    s->reporter.name, s->reporter.phone,
                                  s->attachments[0], s->external_id};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (!gd_utf8_valid(strs[i]))
            return false;
    return true;
}

/* A built SUBMIT encodes, unless its description outgrew the protocol's
 * limit with the attributes folded in or a string is not valid UTF-8 (both
 * answered 400 by gd-open311); what encodes decodes to the same bytes. */
static void check_submit(struct georeq_submit *sub)
{
    struct gd_submit *s = &sub->msg.u.submit;
    if (!gd_str_eq_c(s->source, "open311") || s->category.len == 0 ||
        s->category.len > GD_MAX_CODE || s->reporter.name.len > GD_MAX_NAME ||
        s->reporter.phone.len > GD_MAX_PHONE || s->location.unit.len > GD_MAX_CODE ||
        s->location.address.len > GD_MAX_ADDRESS || s->n_attachments > 1 ||
        (s->n_attachments && s->attachments[0].len > GD_MAX_URL))
        die("a built SUBMIT breaks a field limit");
    if (!s->location.has_coords && !s->location.address.len && !s->location.unit.len)
        die("a built SUBMIT has no location");
    if (s->location.has_coords && !(fabs(s->location.lat) <= 90 && fabs(s->location.lon) <= 180))
        die("a built SUBMIT has a position out of range");
    if (sub->service_code == NULL || sub->address_id == NULL || sub->account_id == NULL)
        die("a built SUBMIT lacks its catalogue keys");
    s->external_id = GD_STR("fuzz:0123456789abcdef0123456789abcdef");
    struct gd_buf a = {0}, b = {0};
    int r = gd_encode(&sub->msg, &a);
    if (r == -GD_E_TOO_LONG && s->description.len > GD_MAX_DESCRIPTION && sub->description)
        goto out;
    if (r == -GD_E_BAD_VALUE && !all_utf8(s))
        goto out;
    if (r != 0) {
        fprintf(stderr, "code %s\n", gd_code_name(-r));
        die("a built SUBMIT does not encode");
    }
    struct gd_decoder *d = gd_decoder_new();
    uint8_t h[GD_HEADER_LEN];
    struct gd_msg again;
    gd_encode_header(GD_T_SUBMIT, h);
    if (!d || gd_decode(d, h, sizeof(h), a.data, a.len, &again, NULL) != 0 ||
        gd_encode(&again, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        die("a built SUBMIT does not decode to itself");
    gd_decoder_free(d);
out:
    gd_buf_fini(&a);
    gd_buf_fini(&b);
}

static void check_filter(const struct config *cfg, const struct georeq_filter *gf)
{
    const struct db_request_filter *f = &gf->f;
    if (f->limit < 1 || f->limit > cfg->max_ids + cfg->max_page_size)
        die("filter limit out of range");
    const char *lists[2] = {f->ids, f->codes};
    for (int i = 0; i < 2; i++) {
        if (!lists[i])
            continue;
        size_t n = strlen(lists[i]);
        if (n < 3 || lists[i][0] != '{' || lists[i][n - 1] != '}' ||
            strspn(lists[i] + 1, "0123456789abcdefghijklmnopqrstuvwxyz"
                                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ_.-,") != n - 2)
            die("array literal with other characters");
    }
    if (f->start_ms < 0 || f->end_ms < 0 || f->status < 0 || f->status > 2)
        die("filter value out of range");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    const char *part[3];
    size_t len[3];
    for (int i = 0; i < 3; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            return 0;
        part[i] = p;
        len[i] = (size_t)(nl - p);
        p = nl + 1;
    }
    char *url = form_decode(part[0], len[0], NULL);
    struct args q = {0};
    form_each(part[1], len[1], add_arg, &q);
    char *idem = len[2] == 1 && part[2][0] == '-' ? NULL : form_decode(part[2], len[2], NULL);
    struct georeq_args qa = {get_arg, &q};

    char name[32], arg[128];
    enum georeq_fmt fmt = GEOREQ_JSON;
    if (georeq_route(url, name, sizeof(name), arg, sizeof(arg), &fmt) == 0 &&
        (strchr(arg, '/') || strchr(name, '/') || strlen(name) >= sizeof(name)))
        die("route parts hold a slash");

    struct config cfg = {.page_size = 50, .max_page_size = 200, .max_page = 1000, .max_ids = 100};
    struct georeq_filter gf;
    char why[256];
    int st = georeq_filter(&cfg, "{open311}", &qa, arg[0] ? arg : NULL, &gf, why, sizeof(why));
    if (st == 0)
        check_filter(&cfg, &gf);
    else if ((st != 400 && st != 404) || !why[0])
        die("filter refusal without status or message");

    struct georeq_form form = {0};
    struct body b = {&form, len[0] % 16 + 1};
    form_each(p, (size_t)(end - p), add_field, &b);
    (void)georeq_field(&form, &qa, GEOREQ_API_KEY);
    struct georeq_submit sub;
    st = georeq_submit(&form, &qa, idem, &sub, why, sizeof(why));
    if (st == 0)
        check_submit(&sub);
    else if ((st != 400 && st != 500) || !why[0])
        die("submit refusal without status or message");
    georeq_submit_fini(&sub);
    georeq_form_fini(&form);

    for (unsigned i = 0; i < q.n; i++) {
        free(q.key[i]);
        free(q.value[i]);
    }
    free(idem);
    free(url);
    return 0;
}
