/* store-recover.c - reading incidents back from PostgreSQL: the open ones at start-up, one by its row. */
#include "store-recover.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "incident.h"
#include "log.h"
#include "queue.h"
#include "route.h"
#include "tally.h"

/* is_open is state <> 'CLOSED', kept by PostgreSQL (0009_hot_updates.sql):
 * the partial index of open incidents is on it */
static const char sql_open[] =
    "SELECT " INCIDENT_COLUMNS " FROM incident i WHERE i.is_open "
    "ORDER BY CASE i.priority WHEN 'emergency' THEN 0 WHEN 'urgent' THEN 1 ELSE 2 END, "
    "i.updated_at, i.id";

/* Attachments come back as a JSON array of strings that we wrote
 * ourselves; only \" and \\ escapes and \u00XX control characters occur.
 * Decodes them into `buf` (at least as long as `json`) as views in m. */
static void parse_attachments(struct gd_submit *m, const char *json, char *buf)
{
    const char *p = strchr(json, '"');
    while (p && m->n_attachments < GD_MAX_ATTACHMENTS) {
        char *out = buf;
        size_t n = 0;
        for (p++; *p && *p != '"'; p++) {
            if (*p == '\\' && p[1] == 'u' && strlen(p) >= 6) {
                out[n++] = (char)strtol((char[]){p[2], p[3], p[4], p[5], 0}, NULL, 16);
                p += 5;
            } else if (*p == '\\' && p[1]) {
                out[n++] = *++p;
            } else {
                out[n++] = *p;
            }
        }
        m->attachments[m->n_attachments++] = gd_str_make(out, n);
        buf += n;
        p = *p ? strchr(p + 1, '"') : NULL;
    }
}

struct incident *incident_from_row(struct broker *b, const PGresult *res, int i)
{
    struct gd_submit m = {
        .source = gd_str_c(PQgetvalue(res, i, 1)),
        .external_id = gd_str_c(PQgetvalue(res, i, 2)),
        .category = gd_str_c(PQgetvalue(res, i, 3)),
        .location = {.unit = gd_str_c(PQgetvalue(res, i, 10)),
                     .address = gd_str_c(PQgetvalue(res, i, 11))},
        .description = gd_str_c(PQgetvalue(res, i, 14)),
        .reporter = {.name = gd_str_c(PQgetvalue(res, i, 15)),
                     .phone = gd_str_c(PQgetvalue(res, i, 16)),
                     .address = gd_str_c(PQgetvalue(res, i, 17))},
    };
    int prio = gd_priority_parse(gd_str_c(PQgetvalue(res, i, 4)));
    m.priority = prio < 0 ? GD_PRIO_NORMAL : (enum gd_priority)prio;
    if (!PQgetisnull(res, i, 12) && !PQgetisnull(res, i, 13)) {
        m.location.has_coords = true;
        m.location.lat = strtod(PQgetvalue(res, i, 12), NULL);
        m.location.lon = strtod(PQgetvalue(res, i, 13), NULL);
    }
    struct category *cat = org_category(&b->org, m.category.ptr, m.category.len);
    struct unit *loc = org_unit(&b->org, m.location.unit.ptr, m.location.unit.len);
    uint64_t id = strtoull(PQgetvalue(res, i, 0), NULL, 10);
    const char *json = PQgetvalue(res, i, 18);
    char *buf = malloc(strlen(json) + 1);
    if (!buf)
        return NULL;
    parse_attachments(&m, json, buf);
    struct incident *inc = incident_from_submit(&m, cat, loc, id, 0);
    free(buf);
    if (!inc)
        return NULL;
    inc->reported_at = strtoll(PQgetvalue(res, i, 19), NULL, 10);
    inc->received_at = strtoll(PQgetvalue(res, i, 20), NULL, 10);
    inc->sign_due = strtoll(PQgetvalue(res, i, 21), NULL, 10);
    inc->resolve_due = strtoll(PQgetvalue(res, i, 22), NULL, 10);
    inc->attempts = (uint32_t)strtoul(PQgetvalue(res, i, 23), NULL, 10);
    inc->escalations = (uint32_t)strtoul(PQgetvalue(res, i, 24), NULL, 10);
    inc->flagged = PQgetvalue(res, i, 25)[0] == 't';
    inc->sign_warn = strtoll(PQgetvalue(res, i, 26), NULL, 10);
    inc->resolve_warn = strtoll(PQgetvalue(res, i, 27), NULL, 10);
    inc->extension_pending = strtoll(PQgetvalue(res, i, 28), NULL, 10);
    int located_by = locate_method_parse(PQgetvalue(res, i, 29));
    inc->located_by = (uint8_t)(located_by < 0 ? LOCATE_NONE : located_by);
    inc->version = (uint32_t)strtoul(PQgetvalue(res, i, 6), NULL, 10);
    int st = gd_state_parse(gd_str_c(PQgetvalue(res, i, 5)));
    inc->state = st < 0 ? GD_ST_QUEUED : (enum gd_state)st;
    inc->durable = true;
    return inc;
}

int store_recover(struct broker *b, PGconn *conn,
                  void (*delivered)(void *ctx, struct incident *inc), void *ctx, char *err,
                  size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT coalesce(max(id), 0) FROM incident");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    b->next_id = strtoull(PQgetvalue(res, 0, 0), NULL, 10) + 1;
    PQclear(res);

    res = PQexec(conn, sql_open);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "%s", PQresultErrorMessage(res));
        PQclear(res);
        return -1;
    }
    int64_t now = broker_now(b);
    uint32_t requeued = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        if (i % 4096 == 0)
            svcnotify_watchdog(&b->notify); /* a million rows take seconds */
        struct incident *inc = incident_from_row(b, res, i);
        if (!inc) {
            PQclear(res);
            snprintf(err, errlen, "out of memory loading open incidents");
            return -1;
        }
        const char *qname = PQgetvalue(res, i, 7);
        const char *owner = PQgetvalue(res, i, 8);
        struct queue *q = queue_lookup(b, qname, strlen(qname));
        struct route r;
        if (!q) {
            /* its queue no longer exists (org tree changed): triage */
            log_warn("store", "incident %llu: queue %s no longer exists; sent to triage",
                     (unsigned long long)inc->id, qname);
            route_resolve(b, NULL, NULL, &r);
            q = r.queue;
        }
        inc->queue = q;
        inc->owner = org_unit(&b->org, owner, strlen(owner));
        inc->level = inc->owner ? inc->owner->level : GD_LEVEL_DISTRICT;
        if (incident_index(b, inc) < 0) {
            incident_free(inc);
            PQclear(res);
            snprintf(err, errlen, "out of memory indexing open incidents");
            return -1;
        }
        deadline_recovered(b, inc, now);
        tally_track(b, inc);
        if (inc->state == GD_ST_QUEUED) {
            queue_push(q, inc, false, now);
        } else if (inc->state == GD_ST_DELIVERED) {
            inc->queue->in_flight++;
            delivered(ctx, inc);
            requeued++;
        } else if (incident_in_hand(inc->state)) {
            q->in_flight++;
        }
    }
    log_info("store", "recovered %d open incidents (%u put back in their queues); next id %llu",
             PQntuples(res), requeued, (unsigned long long)b->next_id);
    PQclear(res);
    return 0;
}
