/* fuzz-hotline.c - libFuzzer target for gd-hotline's order line parser, with checks on the SUBMIT
 * an accepted line becomes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "order.h"

/* The input is one line as gd-hotline reads it (without its newline).
 * An order that parses must become a SUBMIT that encodes and decodes to
 * the same bytes (anything else would be refused by the broker after the
 * hotline had accepted it); order_ticket() must agree with it on the
 * ticket number, and a refusal must say why. */

static void die(const char *what)
{
    fprintf(stderr, "fuzz-hotline: %s\n", what);
    abort();
}

static void check_submit(const struct gd_msg *m)
{
    struct gd_buf a = {0}, b = {0};
    int r = gd_encode(m, &a);
    if (r != 0) {
        fprintf(stderr, "code %s\n", gd_code_name(-r));
        die("an accepted order does not encode");
    }
    struct gd_decoder *d = gd_decoder_new();
    uint8_t h[GD_HEADER_LEN];
    struct gd_msg again;
    gd_encode_header(GD_T_SUBMIT, h);
    if (!d || gd_decode(d, h, sizeof(h), a.data, a.len, &again, NULL) != 0 ||
        gd_encode(&again, &b) != 0 || a.len != b.len || memcmp(a.data, b.data, a.len) != 0)
        die("an accepted order does not decode to itself");
    gd_decoder_free(d);
    gd_buf_fini(&a);
    gd_buf_fini(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *line = (const char *)data;
    struct order o;
    char why[256] = "";
    char ticket[GD_MAX_EXTERNAL_ID + 1];
    order_ticket(line, size, ticket);
    if (strlen(ticket) > GD_MAX_EXTERNAL_ID)
        die("ticket longer than an external id");
    if (order_parse(line, size, &o, why, sizeof(why)) == 0) {
        const struct gd_submit *s = &o.msg.u.submit;
        if (o.msg.type != GD_T_SUBMIT || !gd_str_eq_c(s->source, "hotline"))
            die("an accepted order is not a hotline SUBMIT");
        if (s->external_id.len != strlen(ticket) ||
            memcmp(s->external_id.ptr, ticket, s->external_id.len) != 0)
            die("order_ticket disagrees with order_parse");
        check_submit(&o.msg);
        order_fini(&o);
    } else if (!why[0]) {
        die("a refused order without a reason");
    }
    return 0;
}
