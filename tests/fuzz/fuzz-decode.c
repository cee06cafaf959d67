/* fuzz-decode.c - libFuzzer target for the GDP/1 decoders with a re-encode fixpoint check. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gdp.h"

/* Input layout: byte 0 selects the frame, the rest is the body.
 *   0x00..0x7f  header "GDP1" + a type: values below 0x60 pick one of
 *               the known types (so most inputs reach a body decoder),
 *               0x60..0x7f use the byte itself as the raw type byte;
 *   0x80..0xef  a status body (gd_decode_status);
 *   0xf0..0xff  a malformed header (4, 6 bytes, or a wrong signature).
 * Whatever decodes must encode, decode again and encode to the same
 * bytes: the encoder accepts everything the decoder accepts, and the
 * decoder reads back exactly what the encoder wrote. */

static const uint8_t known_types[] = {
    GD_T_SUBMIT,   GD_T_QUERY,    GD_T_FEEDBACK, GD_T_SNAPSHOT, GD_T_DISPATCH,  GD_T_ACCEPTED,
    GD_T_REJECTED, GD_T_BUSY,     GD_T_INCIDENT, GD_T_GAUGES,   GD_T_DONE,      GD_T_HELLO,
    GD_T_CREDIT,   GD_T_SIGN,     GD_T_PROGRESS, GD_T_EXTEND,   GD_T_RETURN,    GD_T_RESOLVE,
    GD_T_WARN,     GD_T_ESCALATE, GD_T_WELCOME,  GD_T_DENIED,   GD_T_DELIVER,   GD_T_OK,
    GD_T_ERR,      GD_T_DEADLINE, GD_T_CLEAR,    GD_T_SYNCED,   GD_T_HEARTBEAT, GD_T_BYE,
};

static void die(const char *what, int r)
{
    fprintf(stderr, "fuzz-decode: %s (%d: %s)\n", what, r, r < 0 ? gd_code_name(-r) : "");
    abort();
}

/* Re-encodes the decoded message, decodes that, re-encodes again, and
 * insists on identical bytes. */
static void check_fixpoint_msg(struct gd_decoder *d, const struct gd_msg *m)
{
    struct gd_buf a = {0}, b = {0};
    struct gd_msg again;
    struct gd_decode_error err;
    uint8_t h[GD_HEADER_LEN];

    int r = gd_encode(m, &a);
    if (r == -GD_E_TOO_LARGE)
        goto out; /* float32 widened to float64 can outgrow the limit */
    if (r != 0)
        die("decoded message does not encode", r);
    gd_encode_header(m->type, h);
    r = gd_decode(d, h, sizeof(h), a.data, a.len, &again, &err);
    if (r != 0) {
        fprintf(stderr, "field %s\n", err.field);
        die("re-encoded message does not decode", r);
    }
    r = gd_encode(&again, &b);
    if (r != 0)
        die("second encoding failed", r);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        die("re-encoding is not a fixpoint", 0);
out:
    gd_buf_fini(&a);
    gd_buf_fini(&b);
}

static void check_fixpoint_status(struct gd_decoder *d, const struct gd_status *s)
{
    struct gd_buf a = {0}, b = {0};
    struct gd_status again;
    struct gd_decode_error err;

    int r = gd_encode_status(s, &a);
    if (r == -GD_E_TOO_LARGE)
        goto out;
    if (r != 0)
        die("decoded status does not encode", r);
    r = gd_decode_status(d, a.data, a.len, &again, &err);
    if (r != 0) {
        fprintf(stderr, "field %s\n", err.field);
        die("re-encoded status does not decode", r);
    }
    r = gd_encode_status(&again, &b);
    if (r != 0)
        die("second status encoding failed", r);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        die("status re-encoding is not a fixpoint", 0);
out:
    gd_buf_fini(&a);
    gd_buf_fini(&b);
}

static void check_error(int r, const struct gd_decode_error *err)
{
    if (r > 0 || (r < 0 && (err->code != (enum gd_code) - r || err->field == NULL ||
                            gd_code_name(err->code) == NULL)))
        die("inconsistent error report", r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    const uint8_t *body = data + 1;
    size_t len = size - 1;
    struct gd_decoder *d = gd_decoder_new();
    struct gd_decode_error err = {.code = GD_OK};
    if (d == NULL)
        return 0;

    if (sel < 0x80) {
        uint8_t h[6] = {'G', 'D', 'P', '1', 0, 0};
        h[4] = sel < 0x60 ? known_types[sel % sizeof(known_types)] : sel;
        struct gd_msg m;
        int r = gd_decode(d, h, GD_HEADER_LEN, body, len, &m, &err);
        check_error(r, &err);
        if (r == 0) {
            if (m.type != h[4])
                die("decoded type differs from the header", 0);
            check_fixpoint_msg(d, &m);
        }
    } else if (sel < 0xf0) {
        struct gd_status s;
        int r = gd_decode_status(d, body, len, &s, &err);
        check_error(r, &err);
        if (r == 0)
            check_fixpoint_status(d, &s);
    } else {
        static const uint8_t bad[3][6] = {
            {'G', 'D', 'P', '1', 1, 0}, {'G', 'D', 'P', '2', 1, 0}, {'G', 'D', 'P', '1', 64, 64}};
        struct gd_msg m;
        unsigned v = sel % 3;
        int r = gd_decode(d, bad[v], v == 0 ? 4 : v == 1 ? 5 : 6, body, len, &m, &err);
        if (r != -GD_E_BAD_HEADER)
            die("a malformed header was not refused", r);
    }
    gd_decoder_free(d);
    return 0;
}
