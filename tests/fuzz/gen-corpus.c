/* gen-corpus.c - writes the fuzz seed corpus: one input per message type and status kind. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include <zstd.h>

#include "gd-samples.h"
#include "gdp.h"

static int write_seed(const char *dir, const char *name, uint8_t sel, const struct gd_buf *b)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    int ok = fputc(sel, f) != EOF && fwrite(b->data, 1, b->len, f) == b->len;
    if (fclose(f) != 0 || !ok) {
        perror(path);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct gd_buf b = {0};
    struct gd_msg m;
    struct gd_status s;
    char name[64];

    if (argc != 2) {
        fprintf(stderr, "usage: gen-corpus DIR\n");
        return 2;
    }
    for (unsigned i = 0; i < GD_SAMPLE_N_TYPES; i++) {
        enum gd_type t = gd_sample_types[i];
        for (int full = 0; full <= 1; full++) {
            unsigned keys = full ? gd_sample_full(t, &m) : gd_sample_min(t, &m);
            gd_buf_reset(&b);
            if (keys == UINT_MAX || gd_encode(&m, &b) != 0) {
                fprintf(stderr, "gen-corpus: cannot encode %s\n", gd_type_name(t));
                return 1;
            }
            /* selector i picks known_types[i] in fuzz-decode.c (same order) */
            snprintf(name, sizeof(name), "%s-%s", gd_type_name(t), full ? "full" : "min");
            if (write_seed(argv[1], name, (uint8_t)i, &b) != 0)
                return 1;
        }
    }
    for (int k = 0; k < GD_STATUS_COUNT; k++) {
        for (int full = 0; full <= 1; full++) {
            if (full)
                gd_sample_status_full((enum gd_status_kind)k, &s);
            else
                gd_sample_status_min((enum gd_status_kind)k, &s);
            gd_buf_reset(&b);
            if (gd_encode_status(&s, &b) != 0) {
                fprintf(stderr, "gen-corpus: cannot encode status %d\n", k);
                return 1;
            }
            snprintf(name, sizeof(name), "status-%s-%s",
                     gd_status_kind_name((enum gd_status_kind)k), full ? "full" : "min");
            if (write_seed(argv[1], name, (uint8_t)(0x80 + k), &b) != 0)
                return 1;
            if (k != GD_STATUS_TRANSITIONS || !full)
                continue;
            /* the same batch compressed, as the broker sends it (§12.1) */
            struct gd_buf z = {.cap = ZSTD_compressBound(b.len)};
            z.data = malloc(z.cap);
            z.len = z.data ? ZSTD_compress(z.data, z.cap, b.data, b.len, 1) : 0;
            if (!z.data || ZSTD_isError(z.len) ||
                write_seed(argv[1], "status-transitions-zstd", (uint8_t)(0x80 + k), &z) != 0) {
                fprintf(stderr, "gen-corpus: cannot write the compressed seed\n");
                return 1;
            }
            gd_buf_fini(&z);
        }
    }
    gd_buf_fini(&b);
    return 0;
}
