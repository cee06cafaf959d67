/* config.h - gd-hotline's settings: defaults, an INI file (libinih), the environment and argv. */
#ifndef GD_HOTLINE_CONFIG_H
#define GD_HOTLINE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "pump.h"

#define HOTLINE_STRINGS_MAX 8192 /* bytes of all string values in a config file */

struct hotline_config {
    const char *intake; /* broker intake endpoint; env GD_INTAKE */
    const char *city;   /* city configuration (shards): replaces intake */
    const char *input;  /* the feed; "-" is stdin */
    const char *state;  /* durable resume position */
    const char *reject; /* bad lines go here */
    bool follow;        /* keep reading as the file grows */
    long max_line;      /* longest line in bytes */
    struct pump_config pump;

    const char *config_file;           /* --config FILE, or NULL */
    char strings[HOTLINE_STRINGS_MAX]; /* values read from the file (nothing to free) */
    size_t strings_used;
};

/* Fills `cfg` from, lowest precedence first: the defaults, the INI file
 * named by --config (section [gd-hotline], keys = the long option names,
 * '-' or '_'), the environment (GD_INTAKE) and argv. Returns 0; 1 when
 * --help, --version or --check-config was handled (exit 0; the latter
 * printed the effective configuration); -1 after printing the problem to
 * `err`, a bad file line as "FILE:LINE: ..." (exit 2). */
int hotline_config_parse(struct hotline_config *cfg, int argc, char **argv, FILE *err);

/* Prints the effective configuration as an INI file --config reads back. */
void hotline_config_print(const struct hotline_config *cfg, FILE *out);

#endif
