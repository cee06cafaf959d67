/* city.c - the city configuration: which shard (one broker + one database) owns which town, and
 * which shard a SUBMIT goes to. */
#include "city.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct town {
    char code[CITY_TOWN_CODE_LEN + 1];
    int shard;
};

struct city {
    size_t n_shards;
    struct city_shard shards[CITY_MAX_SHARDS];
    char default_name[CITY_MAX_NAME + 2]; /* one more: a too long name is caught */
    bool has_default;
    int default_shard;
    size_t n_towns;
    struct town towns[CITY_MAX_TOWNS]; /* sorted by code after parsing */
};

/* State of one parse. */
struct parse {
    struct city *c;
    char section[CITY_MAX_NAME + 16]; /* the section of the previous key */
    int shard;                        /* its shard, or -1 for [city] */
    bool nomem;
    char why[256]; /* the first problem, without the line */
};

static bool fail(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool fail(struct parse *p, const char *fmt, ...)
{
    if (!p->why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->why, sizeof(p->why), fmt, ap);
        va_end(ap);
    }
    return false;
}

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CITY_MAX_NAME)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

/* Enters section `section` (the first key of it, or a key after another
 * section). Returns false after fail(). */
static bool enter_section(struct parse *p, const char *section)
{
    size_t len = strlen(section);
    if (len >= sizeof(p->section))
        return fail(p, "section [%.40s...] is too long", section);
    if (!strcmp(section, p->section))
        return true;
    memcpy(p->section, section, len + 1);
    if (!strcmp(section, "city")) {
        p->shard = -1;
        return true;
    }
    if (strncmp(section, "shard ", 6) != 0)
        return fail(p, "unknown section [%s] (use [city] or [shard NAME])", section);
    const char *name = section + 6;
    if (!valid_name(name))
        return fail(p, "shard name '%s': 1 to %d of a-z, 0-9, '_' and '-'", name, CITY_MAX_NAME);
    struct city *c = p->c;
    for (size_t i = 0; i < c->n_shards; i++)
        if (!strcmp(c->shards[i].name, name))
            return fail(p, "shard %s is defined twice", name);
    if (c->n_shards == CITY_MAX_SHARDS)
        return fail(p, "more than %d shards", CITY_MAX_SHARDS);
    p->shard = (int)c->n_shards++;
    snprintf(c->shards[p->shard].name, sizeof(c->shards[p->shard].name), "%s", name);
    return true;
}

/* Adds the towns listed in `value` to shard `p->shard`. */
static bool add_towns(struct parse *p, const char *value)
{
    struct city *c = p->c;
    const char *s = value;
    for (;;) {
        s += strspn(s, " \t,");
        if (!*s)
            return true;
        size_t n = strcspn(s, " \t,");
        if (n != CITY_TOWN_CODE_LEN || !all_digits(s, n))
            return fail(p, "town '%.*s': a town code is %d digits (county + town)",
                        (int)(n > 40 ? 40 : n), s, CITY_TOWN_CODE_LEN);
        if (c->n_towns == CITY_MAX_TOWNS)
            return fail(p, "more than %d towns", CITY_MAX_TOWNS);
        struct town *t = &c->towns[c->n_towns++];
        memcpy(t->code, s, n);
        t->code[n] = '\0';
        t->shard = p->shard;
        c->shards[p->shard].n_towns++;
        s += n;
    }
}

static bool set_value(struct parse *p, char **slot, const char *key, const char *value)
{
    if (*slot)
        return fail(p, "%s is set twice in shard %s", key, p->c->shards[p->shard].name);
    if (!*value)
        return fail(p, "%s is empty", key);
    if (strlen(value) > CITY_MAX_VALUE)
        return fail(p, "%s is longer than %d bytes", key, CITY_MAX_VALUE);
    *slot = strdup(value);
    if (!*slot) {
        p->nomem = true;
        return fail(p, "out of memory");
    }
    return true;
}

static int on_key(void *user, const char *section, const char *key, const char *value)
{
    struct parse *p = user;
    if (p->why[0])
        return 0; /* only the first problem is reported */
    if (!enter_section(p, section))
        return 0;
    if (p->shard < 0) {
        if (strcmp(key, "default") != 0)
            return fail(p, "unknown key '%s' in [city] (known: default)", key);
        if (p->c->has_default)
            return fail(p, "default is set twice");
        if (strlen(value) > CITY_MAX_NAME)
            return fail(p, "default: no shard has a name that long");
        snprintf(p->c->default_name, sizeof(p->c->default_name), "%s", value);
        p->c->has_default = true;
        return 1;
    }
    struct city_shard *sh = &p->c->shards[p->shard];
    if (!strcmp(key, "intake"))
        return set_value(p, &sh->intake, key, value);
    if (!strcmp(key, "work"))
        return set_value(p, &sh->work, key, value);
    if (!strcmp(key, "status"))
        return set_value(p, &sh->status, key, value);
    if (!strcmp(key, "db"))
        return set_value(p, &sh->db, key, value);
    if (!strcmp(key, "towns"))
        return add_towns(p, value);
    return fail(p, "unknown key '%s' in shard %s (known: intake, work, status, db, towns)", key,
                sh->name);
}

static int town_cmp(const void *a, const void *b)
{
    return strcmp(((const struct town *)a)->code, ((const struct town *)b)->code);
}

/* The checks that need the whole file. Returns 0 or -EINVAL with err. */
static int check_city(struct city *c, const char *name, char *err, size_t errlen)
{
    if (c->n_shards == 0) {
        snprintf(err, errlen, "%s: no [shard NAME] section", name);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n_shards; i++) {
        const struct city_shard *sh = &c->shards[i];
        const char *missing = !sh->intake   ? "intake"
                              : !sh->work   ? "work"
                              : !sh->status ? "status"
                              : !sh->db     ? "db"
                                            : NULL;
        if (missing) {
            snprintf(err, errlen, "%s: shard %s has no %s", name, sh->name, missing);
            return -EINVAL;
        }
    }
    c->default_shard = -1;
    if (c->has_default) {
        c->default_shard = city_find_shard(c, c->default_name);
        if (c->default_shard < 0) {
            snprintf(err, errlen, "%s: default '%s' is not a shard of the file", name,
                     c->default_name);
            return -EINVAL;
        }
    }
    qsort(c->towns, c->n_towns, sizeof(*c->towns), town_cmp);
    for (size_t k = 1; k < c->n_towns; k++) {
        if (strcmp(c->towns[k - 1].code, c->towns[k].code) != 0)
            continue;
        int a = c->towns[k - 1].shard, b = c->towns[k].shard;
        if (a == b)
            snprintf(err, errlen, "%s: town %s is listed twice in shard %s", name, c->towns[k].code,
                     c->shards[a].name);
        else
            snprintf(err, errlen, "%s: town %s is in two shards, %s and %s", name, c->towns[k].code,
                     c->shards[a < b ? a : b].name, c->shards[a < b ? b : a].name);
        return -EINVAL;
    }
    return 0;
}

/* Finishes a parse whose inih result is `rc`. */
static int finish(struct parse *p, int rc, const char *name, struct city **ret, char *err,
                  size_t errlen)
{
    if (p->nomem || rc == -2) {
        city_free(p->c);
        return -ENOMEM;
    }
    if (rc == -1) {
        snprintf(err, errlen, "%s: cannot open the file", name);
        city_free(p->c);
        return -EINVAL;
    }
    if (rc > 0) {
        snprintf(err, errlen, "%s:%d: %s", name, rc,
                 p->why[0] ? p->why : "not an INI line (KEY = VALUE or [SECTION])");
        city_free(p->c);
        return -EINVAL;
    }
    int crc = check_city(p->c, name, err, errlen);
    if (crc < 0) {
        city_free(p->c);
        return crc;
    }
    *ret = p->c;
    return 0;
}

int city_parse(const char *text, const char *name, struct city **ret, char *err, size_t errlen)
{
    struct parse p = {.c = calloc(1, sizeof(struct city)), .shard = -1};
    if (!p.c)
        return -ENOMEM;
    return finish(&p, ini_parse_string(text, on_key, &p), name, ret, err, errlen);
}

int city_load(const char *path, struct city **ret, char *err, size_t errlen)
{
    struct parse p = {.c = calloc(1, sizeof(struct city)), .shard = -1};
    if (!p.c)
        return -ENOMEM;
    return finish(&p, ini_parse(path, on_key, &p), path, ret, err, errlen);
}

void city_free(struct city *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->n_shards; i++) {
        free(c->shards[i].intake);
        free(c->shards[i].work);
        free(c->shards[i].status);
        free(c->shards[i].db);
    }
    free(c);
}

int city_intake_endpoints(const char *path, struct city **ret,
                          const char *ret_endpoints[CITY_MAX_SHARDS], size_t *ret_n, char *err,
                          size_t errlen)
{
    struct city *c = NULL;
    int rc = city_load(path, &c, err, errlen);
    if (rc < 0)
        return rc;
    if (c->default_shard < 0) {
        snprintf(err, errlen,
                 "%s: set [city] default: a report whose town no shard owns goes to its triage",
                 path);
        city_free(c);
        return -EINVAL;
    }
    for (size_t i = 0; i < c->n_shards; i++)
        ret_endpoints[i] = c->shards[i].intake;
    *ret_n = c->n_shards;
    *ret = c;
    return 0;
}

size_t city_n_shards(const struct city *c)
{
    return c->n_shards;
}

const struct city_shard *city_shard(const struct city *c, size_t i)
{
    return &c->shards[i];
}

int city_find_shard(const struct city *c, const char *name)
{
    for (size_t i = 0; i < c->n_shards; i++)
        if (!strcmp(c->shards[i].name, name))
            return (int)i;
    return -1;
}

int city_default_shard(const struct city *c)
{
    return c->default_shard;
}

int city_shard_of_unit(const struct city *c, const char *unit, size_t len)
{
    if (!unit || len < CITY_TOWN_CODE_LEN || !all_digits(unit, CITY_TOWN_CODE_LEN))
        return -1;
    struct town key;
    memcpy(key.code, unit, CITY_TOWN_CODE_LEN);
    key.code[CITY_TOWN_CODE_LEN] = '\0';
    const struct town *t = bsearch(&key, c->towns, c->n_towns, sizeof(*c->towns), town_cmp);
    return t ? t->shard : -1;
}

size_t city_n_towns(const struct city *c)
{
    return c->n_towns;
}

const char *city_town(const struct city *c, size_t k, int *ret_shard)
{
    if (ret_shard)
        *ret_shard = c->towns[k].shard;
    return c->towns[k].code;
}
