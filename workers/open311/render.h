/* render.h - gd-open311's output: a jansson document as GeoReport JSON or as escaped XML. */
#ifndef GD_OPEN311_RENDER_H
#define GD_OPEN311_RENDER_H

#include <jansson.h>
#include <stddef.h>

#include "gdp.h"

/* Appends `s` (`len` bytes of UTF-8) to `out` as XML character data: & < >
 * " ' become entities; bytes XML 1.0 cannot carry at all (control
 * characters other than tab, LF and CR; U+FFFE, U+FFFF; invalid UTF-8)
 * become U+FFFD. Returns 0 or -ENOMEM. */
int render_xml_text(struct gd_buf *out, const char *s, size_t len);

/* Writes `doc` as an XML document into `out`: an array becomes <root> with
 * one <item> per element; an object becomes <root> with one element per
 * key. Nested arrays use their key as the container and the key without
 * its final 's' for each element (attributes/attribute). null becomes an
 * empty element. Keys must be XML names (ours are). Returns 0 or -ENOMEM. */
int render_xml(const json_t *doc, const char *root, const char *item, struct gd_buf *out);

/* Writes `doc` as compact JSON (UTF-8, not escaped to ASCII) into `out`.
 * Returns 0 or -ENOMEM. */
int render_json(const json_t *doc, struct gd_buf *out);

#endif
