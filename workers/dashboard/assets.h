/* assets.h - the page, script and style sheet compiled into gd-dashboard (generated assets.c). */
#ifndef GD_DASH_ASSETS_H
#define GD_DASH_ASSETS_H

#include <stddef.h>

struct dash_asset {
    const char *path; /* URL path, e.g. "/app.js" */
    const char *type; /* Content-Type */
    const unsigned char *data;
    size_t len;
};

extern const struct dash_asset dash_assets[];
extern const size_t dash_n_assets;

#endif
