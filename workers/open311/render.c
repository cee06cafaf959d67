/* render.c - gd-open311's output: a jansson document as GeoReport JSON or as escaped XML. */
#include "render.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(struct gd_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static int puts_(struct gd_buf *b, const char *s)
{
    return put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. Sets
 * *cp to the code point. */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len;
    uint32_t c, min;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2, c = s[0] & 0x1f, min = 0x80;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3, c = s[0] & 0x0f, min = 0x800;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4, c = s[0] & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return len;
}

int render_xml_text(struct gd_buf *out, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        uint32_t cp;
        size_t n = utf8_seq(p + i, len - i, &cp);
        const char *rep = NULL;
        if (n == 0) {
            rep = "\xef\xbf\xbd";
            n = 1;
        } else if (cp == '&') {
            rep = "&amp;";
        } else if (cp == '<') {
            rep = "&lt;";
        } else if (cp == '>') {
            rep = "&gt;";
        } else if (cp == '"') {
            rep = "&quot;";
        } else if (cp == '\'') {
            rep = "&apos;";
        } else if ((cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r') || cp == 0xfffe ||
                   cp == 0xffff) {
            rep = "\xef\xbf\xbd";
        }
        int rc = rep ? puts_(out, rep) : put(out, s + i, n);
        if (rc < 0)
            return rc;
        i += n;
    }
    return 0;
}

static int xml_value(struct gd_buf *out, const char *name, const json_t *v);

static int xml_children(struct gd_buf *out, const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        int rc = xml_value(out, k, v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int xml_array(struct gd_buf *out, const json_t *arr, const char *item)
{
    size_t i;
    json_t *v;
    json_array_foreach((json_t *)arr, i, v)
    {
        int rc = xml_value(out, item, v);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int xml_value(struct gd_buf *out, const char *name, const json_t *v)
{
    int rc;
    if (json_is_null(v)) {
        if ((rc = puts_(out, "<")) < 0 || (rc = puts_(out, name)) < 0 ||
            (rc = puts_(out, "/>")) < 0)
            return rc;
        return 0;
    }
    if ((rc = puts_(out, "<")) < 0 || (rc = puts_(out, name)) < 0 || (rc = puts_(out, ">")) < 0)
        return rc;
    char num[64];
    switch (json_typeof(v)) {
    case JSON_STRING:
        rc = render_xml_text(out, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        rc = puts_(out, num);
        break;
    case JSON_REAL:
        snprintf(num, sizeof(num), "%.15g", json_real_value(v));
        rc = puts_(out, num);
        break;
    case JSON_TRUE:
        rc = puts_(out, "true");
        break;
    case JSON_FALSE:
        rc = puts_(out, "false");
        break;
    case JSON_OBJECT:
        rc = xml_children(out, v);
        break;
    case JSON_ARRAY: {
        char item[64];
        size_t n = strlen(name);
        snprintf(item, sizeof(item), "%.*s", (int)(n > 1 && name[n - 1] == 's' ? n - 1 : n), name);
        rc = xml_array(out, v, item);
        break;
    }
    default:
        rc = 0;
    }
    if (rc < 0 || (rc = puts_(out, "</")) < 0 || (rc = puts_(out, name)) < 0 ||
        (rc = puts_(out, ">")) < 0)
        return rc;
    return 0;
}

int render_xml(const json_t *doc, const char *root, const char *item, struct gd_buf *out)
{
    int rc = puts_(out, "<?xml version=\"1.0\" encoding=\"utf-8\"?>");
    if (rc < 0)
        return rc;
    if (json_is_array(doc)) {
        if ((rc = puts_(out, "<")) < 0 || (rc = puts_(out, root)) < 0 ||
            (rc = puts_(out, ">")) < 0 || (rc = xml_array(out, doc, item)) < 0 ||
            (rc = puts_(out, "</")) < 0 || (rc = puts_(out, root)) < 0 ||
            (rc = puts_(out, ">")) < 0)
            return rc;
        return 0;
    }
    return xml_value(out, root, doc);
}

int render_json(const json_t *doc, struct gd_buf *out)
{
    char *s = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        return -ENOMEM;
    int rc = puts_(out, s);
    free(s);
    return rc;
}
