/* gdp-scan.c - structural pre-scan of a body, before msgpack-c allocates anything for it. */
#include "gdp-internal.h"

/* msgpack-c's unpacker allocates count × sizeof(msgpack_object) as soon as
 * it reads an array or map header, before it has seen a single element; a
 * 5-byte body can ask for gigabytes. This walk reads every header without
 * allocating and refuses any count or length the bytes cannot back:
 *   - total size <= GD_MAX_BODY (GD_E_TOO_LARGE);
 *   - every str/bin/ext length fits in what is left (GD_E_TRUNCATED);
 *   - every array count <= GD__MAX_ARRAY and every map count <=
 *     GD_MAX_MAP_KEYS (GD_E_TOO_MANY), and each element can still have its
 *     one byte (array) or two bytes (map entry) (GD_E_TRUNCATED);
 *   - nesting <= GD_MAX_DEPTH, the top-level map being depth 1
 *     (GD_E_TOO_DEEP);
 *   - exactly one top-level value, a map (GD_E_NOT_MAP, GD_E_MALFORMED);
 *   - the never-used byte 0xc1 (GD_E_MALFORMED).
 * After it passes, the unpacker needs at most one msgpack_object per body
 * byte, so a 64 KiB body costs at most ~1.5 MiB of zone memory. */

static inline uint32_t be16(const uint8_t *p)
{
    return (uint32_t)p[0] << 8 | p[1];
}

static inline uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int gd__scan(const uint8_t *body, size_t len)
{
    uint32_t left[GD_MAX_DEPTH]; /* values still to come in each open container */
    unsigned depth = 0;
    size_t pos = 0;

    if (len > GD_MAX_BODY)
        return -GD_E_TOO_LARGE;
    if (len == 0)
        return -GD_E_TRUNCATED;
    if (body[0] == 0xc1)
        return -GD_E_MALFORMED;
    if (!((body[0] >= 0x80 && body[0] <= 0x8f) || body[0] == 0xde || body[0] == 0xdf))
        return -GD_E_NOT_MAP;

    for (;;) {
        size_t skip = 0;     /* payload bytes after the type byte */
        size_t lenbytes = 0; /* size of a str/bin/ext length field */
        size_t extra = 0;    /* ext type byte */
        int container = 0;   /* 1 array, 2 map */
        uint32_t n = 0;

        if (pos >= len)
            return -GD_E_TRUNCATED;
        uint8_t b = body[pos++];

        if (b <= 0x7f || b >= 0xe0) {
            /* fixint */
        } else if (b <= 0x8f) {
            container = 2;
            n = b & 0x0f;
        } else if (b <= 0x9f) {
            container = 1;
            n = b & 0x0f;
        } else if (b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc0: /* nil */
            case 0xc2: /* false */
            case 0xc3: /* true */
                break;
            case 0xc1:
                return -GD_E_MALFORMED;
            case 0xc4: /* bin 8 */
            case 0xd9: /* str 8 */
                lenbytes = 1;
                break;
            case 0xc5:
            case 0xda:
                lenbytes = 2;
                break;
            case 0xc6:
            case 0xdb:
                lenbytes = 4;
                break;
            case 0xc7: /* ext 8/16/32: length, then a type byte */
                lenbytes = 1;
                extra = 1;
                break;
            case 0xc8:
                lenbytes = 2;
                extra = 1;
                break;
            case 0xc9:
                lenbytes = 4;
                extra = 1;
                break;
            case 0xca: /* float 32 */
                skip = 4;
                break;
            case 0xcb: /* float 64 */
                skip = 8;
                break;
            case 0xcc: /* uint 8..64, int 8..64 */
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4: /* fixext 1..16: type byte + data */
                skip = 2;
                break;
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc: /* array 16/32 */
            case 0xde: /* map 16/32 */
                if (len - pos < 2)
                    return -GD_E_TRUNCATED;
                n = be16(body + pos);
                pos += 2;
                container = b == 0xdc ? 1 : 2;
                break;
            case 0xdd:
            case 0xdf:
                if (len - pos < 4)
                    return -GD_E_TRUNCATED;
                n = be32(body + pos);
                pos += 4;
                container = b == 0xdd ? 1 : 2;
                break;
            default: /* every byte value is covered above */
                return -GD_E_MALFORMED;
            }
        }

        if (lenbytes != 0) {
            if (len - pos < lenbytes)
                return -GD_E_TRUNCATED;
            skip = lenbytes == 1 ? body[pos] : lenbytes == 2 ? be16(body + pos) : be32(body + pos);
            pos += lenbytes;
            skip += extra;
        }
        if (skip > len - pos)
            return -GD_E_TRUNCATED;
        pos += skip;

        if (container != 0) {
            if (depth + 1 > GD_MAX_DEPTH)
                return -GD_E_TOO_DEEP;
            if (container == 2 ? n > GD_MAX_MAP_KEYS : n > GD__MAX_ARRAY)
                return -GD_E_TOO_MANY;
            uint64_t values = container == 2 ? 2 * (uint64_t)n : n;
            if (values > len - pos)
                return -GD_E_TRUNCATED; /* each value needs at least one byte */
            if (n != 0) {
                left[depth++] = (uint32_t)values;
                continue;
            }
        }

        /* A value is complete; close every container it completes. */
        while (depth > 0) {
            if (--left[depth - 1] != 0)
                break;
            depth--;
        }
        if (depth == 0)
            return pos == len ? 0 : -GD_E_MALFORMED;
    }
}
