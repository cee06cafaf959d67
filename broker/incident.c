/* incident.c - an incident in memory: building it, freeing it, finding it, viewing it; no I/O. */
#include "incident.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <utlist.h>

bool incident_in_hand(enum gd_state s)
{
    return s == GD_ST_DELIVERED || s == GD_ST_SIGNED || s == GD_ST_IN_PROGRESS;
}

/* Copies `v` into the string area at *cursor, NUL-terminated; returns the copy. */
static char *place(char **cursor, struct gd_str v)
{
    char *p = *cursor;
    if (v.len)
        memcpy(p, v.ptr, v.len);
    p[v.len] = '\0';
    *cursor += (size_t)v.len + 1;
    return p;
}

struct incident *incident_from_submit(const struct gd_submit *m, struct category *cat,
                                      struct unit *location, uint64_t id, int64_t now)
{
    /* One allocation: the struct, then every string (open incidents are
     * held by the million; a dozen small mallocs each would double that). */
    const struct gd_str fields[] = {m->source,           m->external_id,     m->category,
                                    m->location.unit,    m->location.address, m->description,
                                    m->reporter.name,    m->reporter.phone,  m->reporter.address};
    size_t strings = (size_t)m->source.len + m->external_id.len + 2; /* the key */
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        strings += (size_t)fields[i].len + 1;
    for (uint32_t i = 0; i < m->n_attachments; i++)
        strings += (size_t)m->attachments[i].len + 1;
    struct incident *inc = calloc(1, sizeof(*inc) + strings);
    if (!inc)
        return NULL;
    char *cursor = (char *)(inc + 1);
    inc->source = place(&cursor, m->source);
    inc->external_id = place(&cursor, m->external_id);
    inc->category_code = place(&cursor, m->category);
    inc->location_code = place(&cursor, m->location.unit);
    inc->address = place(&cursor, m->location.address);
    inc->description = place(&cursor, m->description);
    inc->reporter_name = place(&cursor, m->reporter.name);
    inc->reporter_phone = place(&cursor, m->reporter.phone);
    inc->reporter_address = place(&cursor, m->reporter.address);
    for (uint32_t i = 0; i < m->n_attachments; i++)
        inc->attachments[i] = place(&cursor, m->attachments[i]);
    inc->n_attachments = m->n_attachments;
    inc->key = cursor;
    memcpy(cursor, m->source.ptr, m->source.len);
    cursor[m->source.len] = '\x1f';
    memcpy(cursor + m->source.len + 1, m->external_id.ptr, m->external_id.len);
    inc->key_len = (uint16_t)(m->source.len + 1 + m->external_id.len);
    cursor[inc->key_len] = '\0';
    inc->id = id;
    inc->priority = m->priority;
    inc->has_coords = m->location.has_coords;
    inc->lat = m->location.lat;
    inc->lon = m->location.lon;
    inc->category = cat;
    inc->location = location;
    inc->reported_at = m->reported_at;
    inc->received_at = now;
    inc->state = GD_ST_RECEIVED;
    return inc;
}

void incident_free(struct incident *inc)
{
    if (!inc)
        return;
    while (inc->waiters) {
        struct waiter *w = inc->waiters;
        inc->waiters = w->next;
        free(w);
    }
    free(inc); /* its strings live in the same block */
}

/* A key to look up in b->by_key: source "\x1f" external_id. */
struct key_view {
    const char *ptr;
    size_t len;
};

static bool has_id(const void *entry, const void *id)
{
    return ((const struct incident *)entry)->id == *(const uint64_t *)id;
}

static bool has_key(const void *entry, const void *key)
{
    const struct incident *inc = entry;
    const struct key_view *k = key;
    return inc->key_len == k->len && memcmp(inc->key, k->ptr, k->len) == 0;
}

int incident_index(struct broker *b, struct incident *inc)
{
    uint64_t by_id = index_hash_u64(inc->id);
    if (index_add(&b->incidents, by_id, inc) < 0)
        return -ENOMEM;
    if (index_add(&b->by_key, index_hash_bytes(inc->key, inc->key_len), inc) < 0) {
        index_remove(&b->incidents, by_id, inc);
        return -ENOMEM;
    }
    DL_APPEND2(b->open, inc, oprev, onext);
    b->n_open++;
    return 0;
}

void incident_unindex(struct broker *b, struct incident *inc)
{
    index_remove(&b->incidents, index_hash_u64(inc->id), inc);
    index_remove(&b->by_key, index_hash_bytes(inc->key, inc->key_len), inc);
    DL_DELETE2(b->open, inc, oprev, onext);
    inc->oprev = inc->onext = NULL;
    b->n_open--;
}

struct incident *incident_by_id(struct broker *b, uint64_t id)
{
    return index_find(&b->incidents, index_hash_u64(id), has_id, &id);
}

struct incident *incident_by_key(struct broker *b, struct gd_str source, struct gd_str external_id)
{
    char key[GD_MAX_CODE + GD_MAX_EXTERNAL_ID + 2];
    if ((size_t)source.len + external_id.len + 2 > sizeof(key))
        return NULL;
    memcpy(key, source.ptr, source.len);
    key[source.len] = '\x1f';
    memcpy(key + source.len + 1, external_id.ptr, external_id.len);
    struct key_view k = {key, (size_t)source.len + 1 + external_id.len};
    return index_find(&b->by_key, index_hash_bytes(k.ptr, k.len), has_key, &k);
}

void incident_free_all(struct broker *b)
{
    while (b->open) {
        struct incident *inc = b->open;
        DL_DELETE2(b->open, inc, oprev, onext);
        incident_free(inc);
    }
    index_free(&b->incidents);
    index_free(&b->by_key);
    b->n_open = 0;
}

struct waiter *waiter_for_client(struct client *c, enum gd_type type, uint64_t ref)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (w) {
        w->type = type;
        w->ref = ref;
        w->client = c;
        w->applied = true;
    }
    return w;
}

struct waiter *waiter_for_session(uint64_t session_id, uint64_t ref)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (w) {
        w->type = GD_T_OK;
        w->ref = ref;
        w->session_id = session_id;
        w->applied = true;
    }
    return w;
}

void incident_view(const struct incident *inc, bool with_reporter, struct gd_incident *ret)
{
    *ret = (struct gd_incident){
        .id = inc->id,
        .version = inc->version,
        .state = inc->state,
        .priority = inc->priority,
        .level = inc->level,
        .source = gd_str_c(inc->source),
        .external_id = gd_str_c(inc->external_id),
        .category = gd_str_c(inc->category_code),
        .queue = gd_str_c(inc->queue ? inc->queue->name : ""),
        .owner = gd_str_c(inc->owner ? inc->owner->code : ""),
        .location = {.unit = gd_str_c(inc->location_code),
                     .address = gd_str_c(inc->address),
                     .has_coords = inc->has_coords,
                     .lat = inc->lat,
                     .lon = inc->lon},
        .located_by = gd_str_c(locate_method_name((enum locate_method)inc->located_by)),
        .description = gd_str_c(inc->description),
        .reported_at = inc->reported_at,
        .received_at = inc->received_at,
        .sign_due = inc->sign_due,
        .resolve_due = inc->resolve_due,
        .extension_pending = inc->extension_pending,
        .attempts = inc->attempts,
        .escalations = inc->escalations,
        .flagged = inc->flagged,
        .n_attachments = inc->n_attachments,
    };
    for (uint32_t i = 0; i < inc->n_attachments; i++)
        ret->attachments[i] = gd_str_c(inc->attachments[i]);
    if (with_reporter) {
        ret->has_reporter = true;
        ret->reporter = (struct gd_reporter){
            .name = gd_str_c(inc->reporter_name),
            .phone = gd_str_c(inc->reporter_phone),
            .address = gd_str_c(inc->reporter_address),
        };
    }
}

struct session *incident_detach(struct incident *inc)
{
    struct session *s = inc->session;
    if (!s)
        return NULL;
    DL_DELETE2(s->deliveries, inc, sprev, snext);
    inc->sprev = inc->snext = NULL;
    inc->session = NULL;
    s->in_flight--;
    return s;
}
