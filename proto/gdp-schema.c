/* gdp-schema.c - GDP/1 message shapes: a field table per map, and rules across fields. */
#include <float.h>
#include <stddef.h>

#include "gdp-internal.h"

/* clang-format off */
#define KEY(k) .key = (k), .key_len = (uint8_t)(sizeof(k) - 1)
#define REQ_LO(fl) (((fl) & GD__REQ) ? 1 : 0)

/* Ids and times: 0 means "none", so a required one must not be 0. */
#define F_U64(k, S, m, fl)                                                                         \
    {KEY(k), .type = GD__F_U64, .flags = (fl), .off = offsetof(S, m), .lo = REQ_LO(fl)}
#define F_TIME(k, S, m, fl)                                                                        \
    {KEY(k), .type = GD__F_TIME, .flags = (fl), .off = offsetof(S, m), .lo = REQ_LO(fl),          \
     .hi = INT64_MAX}
#define F_U32(k, S, m, fl, l, h)                                                                   \
    {KEY(k), .type = GD__F_U32, .flags = (fl), .off = offsetof(S, m), .lo = (l), .hi = (h)}
#define F_COUNT(k, S, m, fl) F_U32(k, S, m, fl, 0, UINT32_MAX)
#define F_BOOL(k, S, m, fl, d)                                                                     \
    {KEY(k), .type = GD__F_BOOL, .flags = (fl), .off = offsetof(S, m), .def = (d)}
#define F_F64(k, S, m, fl, l, h)                                                                   \
    {KEY(k), .type = GD__F_F64, .flags = (fl), .off = offsetof(S, m), .flo = (l), .fhi = (h)}
#define F_COORD(k, S, m, has, l, h)                                                                \
    {KEY(k),           .type = GD__F_F64, .flags = GD__COORD, .off = offsetof(S, m),              \
     .aux_off = offsetof(S, has), .flo = (l), .fhi = (h)}
#define F_STR(k, S, m, fl, mx)                                                                     \
    {KEY(k), .type = GD__F_STR, .flags = (fl), .off = offsetof(S, m), .max = (mx)}
#define F_ENUM_R(k, S, m, fl, tbl, l, d)                                                           \
    {KEY(k),         .type = GD__F_ENUM, .flags = (fl), .off = offsetof(S, m),                     \
     .names = &(tbl), .lo = (l),         .def = (d)}
#define F_ENUM(k, S, m, fl, tbl, d) F_ENUM_R(k, S, m, fl, tbl, 0, d)
#define F_MAP(k, S, m, fl, t)                                                                      \
    {KEY(k), .type = GD__F_MAP, .flags = (fl), .off = offsetof(S, m), .sub = &(t)}
#define F_MAP_P(k, S, m, has, t)                                                                   \
    {KEY(k),           .type = GD__F_MAP, .flags = GD__PRESENT, .off = offsetof(S, m),            \
     .aux_off = offsetof(S, has), .sub = &(t)}
#define F_STRS(k, S, m, n, mx, imx)                                                                \
    {KEY(k),           .type = GD__F_STRS, .off = offsetof(S, m), .aux_off = offsetof(S, n),      \
     .max = (mx),      .item_max = (imx)}
#define F_ARR(k, ty, S, m, n, mx, t)                                                               \
    {KEY(k), .type = (ty), .off = offsetof(S, m), .aux_off = offsetof(S, n), .max = (mx),         \
     .sub = &(t)}
#define F_ARR_R(k, ty, S, m, n, mx, t)                                                             \
    {KEY(k), .type = (ty), .flags = GD__REQ, .off = offsetof(S, m), .aux_off = offsetof(S, n),    \
     .max = (mx), .sub = &(t)}
#define F_COUNTERS(k, S, m, n, mx, imx)                                                            \
    {KEY(k),           .type = GD__F_COUNTERS, .off = offsetof(S, m), .aux_off = offsetof(S, n),  \
     .max = (mx),      .item_max = (imx)}

#define TABLE(nm, S, f, chk)                                                                       \
    {.name = (nm),                                                                                 \
     .fields = (f),                                                                                \
     .n_fields = (uint8_t)(sizeof(f) / sizeof((f)[0])),                                            \
     .size = sizeof(S),                                                                            \
     .check = (chk)}

#define R GD__REQ
/* clang-format on */

/* ---- nested maps ---- */

static const struct gd__field location_fields[] = {
    F_STR("unit", struct gd_location, unit, 0, GD_MAX_CODE),
    F_STR("address", struct gd_location, address, 0, GD_MAX_ADDRESS),
    F_COORD("lat", struct gd_location, lat, has_coords, -90.0, 90.0),
    F_COORD("lon", struct gd_location, lon, has_coords, -180.0, 180.0),
};
static const struct gd__table location_table =
    TABLE("location", struct gd_location, location_fields, NULL);

static const struct gd__field reporter_fields[] = {
    F_STR("name", struct gd_reporter, name, 0, GD_MAX_NAME),
    F_STR("phone", struct gd_reporter, phone, 0, GD_MAX_PHONE),
    F_STR("address", struct gd_reporter, address, 0, GD_MAX_ADDRESS),
};
static const struct gd__table reporter_table =
    TABLE("reporter", struct gd_reporter, reporter_fields, NULL);

#define I struct gd_incident
static const struct gd__field incident_fields[] = {
    F_U64("id", I, id, R),
    F_U32("version", I, version, R, 0, UINT32_MAX),
    F_ENUM("state", I, state, R, gd__state_names, 0),
    F_ENUM("priority", I, priority, 0, gd__priority_names, GD_PRIO_NORMAL),
    F_ENUM("level", I, level, 0, gd__level_names, 0),
    F_STR("source", I, source, R | GD__SOURCE, GD_MAX_CODE),
    F_STR("external_id", I, external_id, R, GD_MAX_EXTERNAL_ID),
    F_STR("category", I, category, 0, GD_MAX_CODE),
    F_STR("queue", I, queue, 0, GD_MAX_QUEUE),
    F_STR("owner", I, owner, 0, GD_MAX_CODE),
    F_MAP("location", I, location, 0, location_table),
    F_STR("located_by", I, located_by, 0, GD_MAX_CODE),
    F_STR("description", I, description, 0, GD_MAX_DESCRIPTION),
    F_MAP_P("reporter", I, reporter, has_reporter, reporter_table),
    F_TIME("reported_at", I, reported_at, 0),
    F_TIME("received_at", I, received_at, 0),
    F_TIME("sign_due", I, sign_due, 0),
    F_TIME("resolve_due", I, resolve_due, 0),
    F_TIME("extension_pending", I, extension_pending, 0),
    F_COUNT("attempts", I, attempts, 0),
    F_COUNT("escalations", I, escalations, 0),
    F_BOOL("flagged", I, flagged, 0, 0),
    F_STRS("attachments", I, attachments, n_attachments, GD_MAX_ATTACHMENTS, GD_MAX_URL),
};
#undef I

/* located_by, when present, names one of the ways a unit is found. */
static bool located_by_ok(struct gd_str v)
{
    return v.len == 0 || gd_str_eq(v, GD_STR("given")) || gd_str_eq(v, GD_STR("position")) ||
           gd_str_eq(v, GD_STR("address"));
}

static int check_incident(const void *base, const char **field)
{
    const struct gd_incident *i = base;
    if (!located_by_ok(i->located_by)) {
        *field = "located_by";
        return -GD_E_BAD_VALUE;
    }
    return 0;
}

static const struct gd__table incident_table =
    TABLE("incident", struct gd_incident, incident_fields, check_incident);

#define E struct gd_event
static const struct gd__field event_fields[] = {
    F_U32("version", E, version, R, 0, UINT32_MAX),
    F_TIME("at", E, at, R),
    F_ENUM("kind", E, kind, R, gd__event_kind_names, 0),
    F_ENUM("from", E, from, R, gd__state_names, 0),
    F_ENUM("to", E, to, R, gd__state_names, 0),
    F_STR("queue", E, queue, 0, GD_MAX_QUEUE),
    F_STR("actor", E, actor, 0, GD_MAX_NAME),
    F_STR("note", E, note, 0, GD_MAX_TEXT),
};
#undef E
static const struct gd__table event_table = TABLE("event", struct gd_event, event_fields, NULL);

/* Gauge fields at an offset into the struct that holds the gauge, so that
 * the same list serves the GAUGES array and the "gauge" status message. */
/* clang-format off */
#define GAUGE_FIELDS(S, p)                                                                         \
    F_STR("queue", S, p queue, R, GD_MAX_QUEUE), F_COUNT("depth", S, p depth, 0),                  \
        F_COUNT("in_flight", S, p in_flight, 0),                                                   \
        F_TIME("oldest_age_ms", S, p oldest_age_ms, 0), F_COUNT("overdue", S, p overdue, 0),       \
        F_COUNT("consumers", S, p consumers, 0),                                                   \
        F_F64("in_rate", S, p in_rate, 0, 0.0, DBL_MAX),                                           \
        F_F64("out_rate", S, p out_rate, 0, 0.0, DBL_MAX)

/* clang-format on */
static const struct gd__field gauge_fields[] = {GAUGE_FIELDS(struct gd_gauge, )};
const struct gd__table gd__gauge_table = TABLE("gauge", struct gd_gauge, gauge_fields, NULL);

/* ---- rules across fields ---- */

static int check_query(const void *base, const char **field)
{
    const struct gd_query *q = base;
    if (q->incident_id != 0) {
        if (q->source.len != 0 || q->external_id.len != 0) {
            *field = q->source.len != 0 ? "source" : "external_id";
            return -GD_E_BAD_VALUE; /* ambiguous: one way of naming it */
        }
        return 0;
    }
    if (q->source.len == 0 && q->external_id.len == 0) {
        *field = "incident_id";
        return -GD_E_MISSING_FIELD;
    }
    if (q->source.len == 0) {
        *field = "source";
        return -GD_E_MISSING_FIELD;
    }
    if (q->external_id.len == 0) {
        *field = "external_id";
        return -GD_E_MISSING_FIELD;
    }
    return 0;
}

static int check_hello(const void *base, const char **field)
{
    const struct gd_hello *h = base;
    if (h->role == GD_ROLE_WORKER) {
        if (h->n_queues == 0) {
            *field = "queues";
            return -GD_E_MISSING_FIELD;
        }
        if (h->credit == 0) {
            *field = "credit";
            return -GD_E_MISSING_FIELD;
        }
        if (h->n_shard != 0) {
            *field = "shard";
            return -GD_E_BAD_VALUE;
        }
        return 0;
    }
    /* sla: no queues, no credit; the broker streams deadlines unasked */
    if (h->n_queues != 0) {
        *field = "queues";
        return -GD_E_BAD_VALUE;
    }
    if (h->credit != 0) {
        *field = "credit";
        return -GD_E_BAD_VALUE;
    }
    return 0;
}

static int check_sign(const void *base, const char **field)
{
    const struct gd_command *c = base;
    if (c->version == 0 && c->delivery_id == 0) {
        *field = "version";
        return -GD_E_MISSING_FIELD;
    }
    return 0;
}

static int check_alarm(const void *base, const char **field)
{
    const struct gd_status *s = base;
    struct gd_str sev = s->u.alarm.severity;
    if (!gd_str_eq_c(sev, "info") && !gd_str_eq_c(sev, "warning") &&
        !gd_str_eq_c(sev, "critical")) {
        *field = "severity";
        return -GD_E_BAD_VALUE;
    }
    return 0;
}

/* ---- intake endpoint ---- */

#define S struct gd_submit
static const struct gd__field submit_fields[] = {
    F_U64("ref", S, ref, 0),
    F_STR("source", S, source, R | GD__SOURCE, GD_MAX_CODE),
    F_STR("external_id", S, external_id, R, GD_MAX_EXTERNAL_ID),
    F_STR("category", S, category, 0, GD_MAX_CODE),
    F_ENUM("priority", S, priority, 0, gd__priority_names, GD_PRIO_NORMAL),
    F_MAP("location", S, location, 0, location_table),
    F_STR("description", S, description, 0, GD_MAX_DESCRIPTION),
    F_MAP("reporter", S, reporter, 0, reporter_table),
    F_TIME("reported_at", S, reported_at, 0),
    F_STRS("attachments", S, attachments, n_attachments, GD_MAX_ATTACHMENTS, GD_MAX_URL),
};
#undef S

static const struct gd__table submit_table;

#define S struct gd_submits
static const struct gd__field submits_fields[] = {
    F_U64("ref", S, ref, 0),
    F_ARR_R("items", GD__F_SUBMITS, S, items, n_items, GD_MAX_SUBMITS, submit_table),
};
#undef S

static int check_submits(const void *base, const char **field)
{
    const struct gd_submits *m = base;
    if (m->n_items == 0) {
        *field = "items";
        return -GD_E_BAD_VALUE; /* nothing to submit */
    }
    return 0;
}

#define S struct gd_submit_result
static const struct gd__field submit_result_fields[] = {
    F_U64("ref", S, ref, 0),
    F_ENUM_R("code", S, code, R, gd__code_names, 0, 0),
    F_U64("incident_id", S, incident_id, 0),
    F_U32("version", S, version, 0, 0, UINT32_MAX),
    F_BOOL("duplicate", S, duplicate, 0, 0),
    F_ENUM("state", S, state, 0, gd__state_names, 0),
    F_STR("queue", S, queue, 0, GD_MAX_QUEUE),
    F_STR("message", S, message, 0, GD_MAX_TEXT),
    F_STR("field", S, field, 0, GD_MAX_NAME),
    F_U32("retry_ms", S, retry_ms, 0, 0, UINT32_MAX),
    F_STR("reason", S, reason, 0, GD_MAX_CODE),
};
#undef S

/* Each outcome carries what its single answer would: ok as ACCEPTED,
 * busy as BUSY, any other code as REJECTED. */
static int check_submit_result(const void *base, const char **field)
{
    const struct gd_submit_result *r = base;
    if (r->code == GD_OK) {
        if (r->incident_id == 0) {
            *field = "incident_id";
            return -GD_E_MISSING_FIELD;
        }
        if (r->message.len || r->field.len || r->retry_ms || r->reason.len) {
            *field = r->message.len ? "message" : r->field.len ? "field"
                   : r->retry_ms    ? "retry_ms"
                                    : "reason";
            return -GD_E_BAD_VALUE; /* an accepted item has no refusal */
        }
        return 0;
    }
    if (r->incident_id || r->version || r->duplicate || r->queue.len) {
        *field = r->incident_id ? "incident_id" : r->version ? "version"
               : r->duplicate   ? "duplicate"
                                : "queue";
        return -GD_E_BAD_VALUE; /* only an accepted item names an incident */
    }
    if (r->code == GD_E_BUSY)
        return 0;
    if (r->message.len == 0) {
        *field = "message";
        return -GD_E_MISSING_FIELD;
    }
    return 0;
}

const struct gd__table gd__submit_result_table = TABLE(
    "SUBMITTED result", struct gd_submit_result, submit_result_fields, check_submit_result);

#define S struct gd_submitted
static const struct gd__field submitted_fields[] = {
    F_U64("ref", S, ref, 0),
    F_ARR_R("results", GD__F_RESULTS, S, results, n_results, GD_MAX_SUBMITS,
            gd__submit_result_table),
};
#undef S

#define S struct gd_query
static const struct gd__field query_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, 0),
    F_STR("source", S, source, GD__SOURCE, GD_MAX_CODE),
    F_STR("external_id", S, external_id, 0, GD_MAX_EXTERNAL_ID),
    F_BOOL("events", S, events, 0, 1),
};
#undef S

#define S struct gd_feedback
static const struct gd__field feedback_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_BOOL("satisfied", S, satisfied, R, 0),
    F_STR("comment", S, comment, 0, GD_MAX_TEXT),
};
#undef S

#define S struct gd_snapshot
static const struct gd__field snapshot_fields[] = {
    F_U64("ref", S, ref, 0),
    F_STR("prefix", S, prefix, 0, GD_MAX_QUEUE),
};
#undef S

#define S struct gd_dispatch
static const struct gd__field dispatch_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_STR("unit", S, unit, R, GD_MAX_CODE),
    F_STR("note", S, note, 0, GD_MAX_TEXT),
};
#undef S

#define S struct gd_approve
static const struct gd__field approve_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_BOOL("approve", S, approve, R, 0),
    F_STR("note", S, note, 0, GD_MAX_TEXT),
};
#undef S

#define S struct gd_accepted
static const struct gd__field accepted_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_BOOL("duplicate", S, duplicate, 0, 0),
    F_ENUM("state", S, state, R, gd__state_names, 0),
    F_STR("queue", S, queue, 0, GD_MAX_QUEUE),
};
#undef S

#define S struct gd_error_reply
static const struct gd__field error_fields[] = {
    F_U64("ref", S, ref, 0),
    F_ENUM_R("code", S, code, R, gd__code_names, 1, 0),
    F_STR("message", S, message, R, GD_MAX_TEXT),
    F_STR("field", S, field, 0, GD_MAX_NAME),
};
#undef S

#define S struct gd_busy
static const struct gd__field busy_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U32("retry_ms", S, retry_ms, R, 0, UINT32_MAX),
    F_STR("reason", S, reason, 0, GD_MAX_CODE),
};
#undef S

#define S struct gd_incident_reply
static const struct gd__field incident_reply_fields[] = {
    F_U64("ref", S, ref, 0),
    F_MAP("incident", S, incident, R, incident_table),
    F_ARR("events", GD__F_EVENTS, S, events, n_events, GD_MAX_EVENTS, event_table),
    F_BOOL("truncated", S, truncated, 0, 0),
};
#undef S

#define S struct gd_gauges
static const struct gd__field gauges_fields[] = {
    F_U64("ref", S, ref, 0),
    F_TIME("at", S, at, R),
    F_ARR("gauges", GD__F_GAUGES, S, gauges, n_gauges, GD_MAX_GAUGES, gd__gauge_table),
    F_BOOL("truncated", S, truncated, 0, 0),
};
#undef S

#define S struct gd_done
static const struct gd__field done_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_ENUM("state", S, state, 0, gd__state_names, 0),
    F_STR("queue", S, queue, 0, GD_MAX_QUEUE),
};
#undef S

/* ---- work endpoint ---- */

#define S struct gd_hello
static const struct gd__field hello_fields[] = {
    F_ENUM("role", S, role, R, gd__role_names, 0),
    F_STR("name", S, name, 0, GD_MAX_NAME),
    F_U32("credit", S, credit, 0, 0, GD_MAX_CREDIT),
    F_STRS("queues", S, queues, n_queues, GD_MAX_QUEUES, GD_MAX_QUEUE),
    F_STRS("shard", S, shard, n_shard, GD_MAX_SHARD, GD_MAX_CODE),
};
#undef S

#define S struct gd_welcome
static const struct gd__field welcome_fields[] = {
    F_U64("session", S, session, R),
    F_U32("heartbeat_ms", S, heartbeat_ms, R, 1, UINT32_MAX),
    F_U32("liveness", S, liveness, R, 1, UINT32_MAX),
};
#undef S

#define S struct gd_credit
static const struct gd__field credit_fields[] = {
    F_U32("credit", S, credit, R, 0, GD_MAX_CREDIT),
};
#undef S

#define S struct gd_deliver
static const struct gd__field deliver_fields[] = {
    F_U64("delivery_id", S, delivery_id, R),
    F_COUNT("attempt", S, attempt, 0),
    F_MAP("incident", S, incident, R, incident_table),
};
#undef S

#define S struct gd_command
/* clang-format off */
#define CMD_HEAD(vfl)                                                                              \
    F_U64("ref", S, ref, 0), F_U64("incident_id", S, incident_id, R),                              \
        F_U32("version", S, version, (vfl), 0, UINT32_MAX)
/* clang-format on */
static const struct gd__field sign_fields[] = {
    CMD_HEAD(0),
    F_U64("delivery_id", S, delivery_id, 0),
};
static const struct gd__field progress_fields[] = {
    CMD_HEAD(R),
    F_STR("note", S, text, 0, GD_MAX_TEXT),
};
static const struct gd__field extend_fields[] = {
    CMD_HEAD(R),
    F_TIME("until", S, until, R),
    F_STR("reason", S, text, R, GD_MAX_TEXT),
};
static const struct gd__field return_fields[] = {
    CMD_HEAD(R),
    F_STR("reason", S, text, R, GD_MAX_TEXT),
    F_STR("rule", S, rule, 0, GD_MAX_TEXT),
};
static const struct gd__field resolve_fields[] = {
    CMD_HEAD(R),
    F_STR("result", S, text, 0, GD_MAX_TEXT),
};
static const struct gd__field sla_cmd_fields[] = {
    CMD_HEAD(R),
    F_ENUM("kind", S, kind, R, gd__deadline_kind_names, 0),
};
#undef CMD_HEAD
#undef S

#define S struct gd_ok
static const struct gd__field ok_fields[] = {
    F_U64("ref", S, ref, 0),
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_BOOL("applied", S, applied, 0, 0),
};
#undef S

#define S struct gd_deadline
static const struct gd__field deadline_fields[] = {
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_ENUM("kind", S, kind, R, gd__deadline_kind_names, 0),
    F_STR("town", S, town, 0, GD_MAX_CODE),
    F_ENUM("level", S, level, 0, gd__level_names, 0),
    F_TIME("warn_at", S, warn_at, 0),
    F_TIME("due_at", S, due_at, R),
};
#undef S

#define S struct gd_clear
static const struct gd__field clear_fields[] = {
    F_U64("incident_id", S, incident_id, R),
    F_U32("version", S, version, R, 0, UINT32_MAX),
    F_ENUM("kind", S, kind, R, gd__deadline_kind_names, 0),
};
#undef S

#define S struct gd_synced
static const struct gd__field synced_fields[] = {
    F_COUNT("count", S, count, R),
};
#undef S

#define S struct gd_bye
static const struct gd__field bye_fields[] = {
    F_STR("reason", S, reason, 0, GD_MAX_TEXT),
};
#undef S

static const struct gd__table submit_table = TABLE("SUBMIT", struct gd_submit, submit_fields, NULL);
static const struct gd__table submits_table =
    TABLE("SUBMITS", struct gd_submits, submits_fields, check_submits);
static const struct gd__table submitted_table =
    TABLE("SUBMITTED", struct gd_submitted, submitted_fields, NULL);
static const struct gd__table query_table =
    TABLE("QUERY", struct gd_query, query_fields, check_query);
static const struct gd__table feedback_table =
    TABLE("FEEDBACK", struct gd_feedback, feedback_fields, NULL);
static const struct gd__table snapshot_table =
    TABLE("SNAPSHOT", struct gd_snapshot, snapshot_fields, NULL);
static const struct gd__table dispatch_table =
    TABLE("DISPATCH", struct gd_dispatch, dispatch_fields, NULL);
static const struct gd__table approve_table =
    TABLE("APPROVE", struct gd_approve, approve_fields, NULL);
static const struct gd__table accepted_table =
    TABLE("ACCEPTED", struct gd_accepted, accepted_fields, NULL);
static const struct gd__table error_table =
    TABLE("REJECTED/ERR/DENIED", struct gd_error_reply, error_fields, NULL);
static const struct gd__table busy_table = TABLE("BUSY", struct gd_busy, busy_fields, NULL);
static const struct gd__table incident_reply_table =
    TABLE("INCIDENT", struct gd_incident_reply, incident_reply_fields, NULL);
static const struct gd__table gauges_table = TABLE("GAUGES", struct gd_gauges, gauges_fields, NULL);
static const struct gd__table done_table = TABLE("DONE", struct gd_done, done_fields, NULL);
static const struct gd__table hello_table =
    TABLE("HELLO", struct gd_hello, hello_fields, check_hello);
static const struct gd__table welcome_table =
    TABLE("WELCOME", struct gd_welcome, welcome_fields, NULL);
static const struct gd__table credit_table = TABLE("CREDIT", struct gd_credit, credit_fields, NULL);
static const struct gd__table deliver_table =
    TABLE("DELIVER", struct gd_deliver, deliver_fields, NULL);
static const struct gd__table sign_table =
    TABLE("SIGN", struct gd_command, sign_fields, check_sign);
static const struct gd__table progress_table =
    TABLE("PROGRESS", struct gd_command, progress_fields, NULL);
static const struct gd__table extend_table =
    TABLE("EXTEND", struct gd_command, extend_fields, NULL);
static const struct gd__table return_table =
    TABLE("RETURN", struct gd_command, return_fields, NULL);
static const struct gd__table resolve_table =
    TABLE("RESOLVE", struct gd_command, resolve_fields, NULL);
static const struct gd__table sla_cmd_table =
    TABLE("WARN/ESCALATE", struct gd_command, sla_cmd_fields, NULL);
static const struct gd__table ok_table = TABLE("OK", struct gd_ok, ok_fields, NULL);
static const struct gd__table deadline_table =
    TABLE("DEADLINE", struct gd_deadline, deadline_fields, NULL);
static const struct gd__table clear_table = TABLE("CLEAR", struct gd_clear, clear_fields, NULL);
static const struct gd__table synced_table = TABLE("SYNCED", struct gd_synced, synced_fields, NULL);
static const struct gd__table bye_table = TABLE("BYE", struct gd_bye, bye_fields, NULL);
static const struct gd__table heartbeat_table = {.name = "HEARTBEAT", .n_fields = 0, .size = 0};

const struct gd__table *gd__msg_table(enum gd_type type)
{
    switch (type) {
    case GD_T_SUBMIT:
        return &submit_table;
    case GD_T_SUBMITS:
        return &submits_table;
    case GD_T_SUBMITTED:
        return &submitted_table;
    case GD_T_QUERY:
        return &query_table;
    case GD_T_FEEDBACK:
        return &feedback_table;
    case GD_T_SNAPSHOT:
        return &snapshot_table;
    case GD_T_DISPATCH:
        return &dispatch_table;
    case GD_T_APPROVE:
        return &approve_table;
    case GD_T_ACCEPTED:
        return &accepted_table;
    case GD_T_REJECTED:
    case GD_T_ERR:
    case GD_T_DENIED:
        return &error_table;
    case GD_T_BUSY:
        return &busy_table;
    case GD_T_INCIDENT:
        return &incident_reply_table;
    case GD_T_GAUGES:
        return &gauges_table;
    case GD_T_DONE:
        return &done_table;
    case GD_T_HELLO:
        return &hello_table;
    case GD_T_CREDIT:
        return &credit_table;
    case GD_T_SIGN:
        return &sign_table;
    case GD_T_PROGRESS:
        return &progress_table;
    case GD_T_EXTEND:
        return &extend_table;
    case GD_T_RETURN:
        return &return_table;
    case GD_T_RESOLVE:
        return &resolve_table;
    case GD_T_WARN:
    case GD_T_ESCALATE:
        return &sla_cmd_table;
    case GD_T_WELCOME:
        return &welcome_table;
    case GD_T_DELIVER:
        return &deliver_table;
    case GD_T_OK:
        return &ok_table;
    case GD_T_DEADLINE:
        return &deadline_table;
    case GD_T_CLEAR:
        return &clear_table;
    case GD_T_SYNCED:
        return &synced_table;
    case GD_T_HEARTBEAT:
        return &heartbeat_table;
    case GD_T_BYE:
        return &bye_table;
    case GD_T_NONE:
        break;
    }
    return NULL;
}

/* ---- status messages: the table's base is struct gd_status ---- */

#define TR struct gd_status_transition
static const struct gd__field transition_fields[] = {
    F_STR("topic", TR, topic, R, GD_MAX_TOPIC),
    F_U64("incident_id", TR, incident_id, R),
    F_U32("version", TR, version, R, 0, UINT32_MAX),
    F_TIME("at", TR, at, R),
    F_ENUM("event", TR, event, R, gd__event_kind_names, 0),
    F_ENUM("from", TR, from, R, gd__state_names, 0),
    F_ENUM("to", TR, to, R, gd__state_names, 0),
    F_ENUM("priority", TR, priority, 0, gd__priority_names, GD_PRIO_NORMAL),
    F_ENUM("level", TR, level, 0, gd__level_names, 0),
    F_STR("category", TR, category, 0, GD_MAX_CODE),
    F_STR("queue", TR, queue, 0, GD_MAX_QUEUE),
    F_STR("unit", TR, unit, 0, GD_MAX_CODE),
    F_STR("located_by", TR, located_by, 0, GD_MAX_CODE),
    F_STR("source", TR, source, GD__SOURCE, GD_MAX_CODE),
    F_TIME("received_at", TR, received_at, 0),
    F_TIME("sign_due", TR, sign_due, 0),
    F_TIME("resolve_due", TR, resolve_due, 0),
    F_BOOL("flagged", TR, flagged, 0, 0),
};
#undef TR

static int check_transition(const void *base, const char **field)
{
    const struct gd_status_transition *t = base;
    if (!located_by_ok(t->located_by)) {
        *field = "located_by";
        return -GD_E_BAD_VALUE;
    }
    return 0;
}

const struct gd__table gd__transition_table =
    TABLE("transition", struct gd_status_transition, transition_fields, check_transition);

#define ST struct gd_status
/* clang-format off */
#define KIND_FIELD F_ENUM("kind", ST, kind, R, gd__status_kind_names, 0)
/* clang-format on */
static const struct gd__field st_transitions_fields[] = {
    KIND_FIELD,
    F_ARR("items", GD__F_TRANSITIONS, ST, u.transitions.items, u.transitions.n_items,
          GD_MAX_BATCH, gd__transition_table),
};
static const struct gd__field st_gauges_fields[] = {
    KIND_FIELD,
    F_ARR("items", GD__F_GAUGES, ST, u.gauges.items, u.gauges.n_items, GD_MAX_GAUGES,
          gd__gauge_table),
};
static const struct gd__field st_broker_fields[] = {
    KIND_FIELD,
    F_TIME("at", ST, u.broker.at, R),
    F_TIME("started_at", ST, u.broker.started_at, 0),
    F_BOOL("db_up", ST, u.broker.db_up, R, 0),
    F_BOOL("active", ST, u.broker.active, R, 0),
    F_COUNT("open_incidents", ST, u.broker.open_incidents, 0),
    F_COUNT("sessions", ST, u.broker.sessions, 0),
    F_COUNT("commit_backlog", ST, u.broker.commit_backlog, 0),
    F_COUNT("commit_p50_us", ST, u.broker.commit_p50_us, 0),
    F_COUNT("commit_p99_us", ST, u.broker.commit_p99_us, 0),
    F_COUNTERS("counters", ST, u.broker.counters, u.broker.n_counters, GD_MAX_COUNTERS,
               GD_MAX_NAME),
};
/* The alarm's and the SLA alert's own "kind" travel as "alarm" and
 * "deadline": "kind" is the status discriminator. */
static const struct gd__field st_alarm_fields[] = {
    KIND_FIELD,
    F_TIME("at", ST, u.alarm.at, R),
    F_STR("alarm", ST, u.alarm.kind, R, GD_MAX_CODE),
    F_STR("severity", ST, u.alarm.severity, R, GD_MAX_CODE),
    F_U64("incident_id", ST, u.alarm.incident_id, 0),
    F_STR("queue", ST, u.alarm.queue, 0, GD_MAX_QUEUE),
    F_STR("message", ST, u.alarm.message, 0, GD_MAX_TEXT),
};
static const struct gd__field st_sla_fields[] = {
    KIND_FIELD,
    F_TIME("at", ST, u.sla.at, R),
    F_BOOL("breach", ST, u.sla.breach, R, 0),
    F_U64("incident_id", ST, u.sla.incident_id, R),
    F_U32("version", ST, u.sla.version, R, 0, UINT32_MAX),
    F_ENUM("deadline", ST, u.sla.kind, R, gd__deadline_kind_names, 0),
    F_ENUM("level", ST, u.sla.level, 0, gd__level_names, 0),
    F_STR("queue", ST, u.sla.queue, 0, GD_MAX_QUEUE),
    F_TIME("due_at", ST, u.sla.due_at, R),
};
#undef KIND_FIELD

/* clang-format off */
#define ST_TABLE(nm, m, f, chk)                                                                    \
    {.name = (nm),                                                                                 \
     .fields = (f),                                                                                \
     .n_fields = (uint8_t)(sizeof(f) / sizeof((f)[0])),                                            \
     .size = offsetof(ST, u) + sizeof(((ST *)0)->u.m),                                             \
     .check = (chk)}

/* clang-format on */
static const struct gd__table status_tables[GD_STATUS_COUNT] = {
    [GD_STATUS_TRANSITIONS] = ST_TABLE("transitions", transitions, st_transitions_fields, NULL),
    [GD_STATUS_GAUGES] = ST_TABLE("gauges", gauges, st_gauges_fields, NULL),
    [GD_STATUS_BROKER] = ST_TABLE("broker", broker, st_broker_fields, NULL),
    [GD_STATUS_ALARM] = ST_TABLE("alarm", alarm, st_alarm_fields, check_alarm),
    [GD_STATUS_SLA] = ST_TABLE("sla", sla, st_sla_fields, NULL),
};
#undef ST

const struct gd__table *gd__status_table(enum gd_status_kind kind)
{
    if ((int)kind < 0 || kind >= GD_STATUS_COUNT)
        return NULL;
    return &status_tables[kind];
}
