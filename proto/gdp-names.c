/* gdp-names.c - wire names of the GDP/1 enumerations and their reverse lookups. */
#include <string.h>

#include "gdp-internal.h"

static const char *const code_names[GD_CODE_COUNT] = {
    [GD_OK] = "ok",
    [GD_E_BAD_HEADER] = "bad_header",
    [GD_E_UNKNOWN_TYPE] = "unknown_type",
    [GD_E_TOO_LARGE] = "too_large",
    [GD_E_TRUNCATED] = "truncated",
    [GD_E_MALFORMED] = "malformed",
    [GD_E_NOT_MAP] = "not_map",
    [GD_E_TOO_DEEP] = "too_deep",
    [GD_E_TOO_MANY] = "too_many",
    [GD_E_TOO_LONG] = "too_long",
    [GD_E_WRONG_TYPE] = "wrong_type",
    [GD_E_UNKNOWN_FIELD] = "unknown_field",
    [GD_E_DUPLICATE_FIELD] = "duplicate_field",
    [GD_E_MISSING_FIELD] = "missing_field",
    [GD_E_BAD_VALUE] = "bad_value",
    [GD_E_NOT_FOUND] = "not_found",
    [GD_E_STALE_VERSION] = "stale_version",
    [GD_E_BAD_STATE] = "bad_state",
    [GD_E_NOT_OWNER] = "not_owner",
    [GD_E_NO_SESSION] = "no_session",
    [GD_E_DENIED] = "denied",
    [GD_E_LIMIT] = "limit",
    [GD_E_POLICY] = "policy",
    [GD_E_OVERLAP] = "overlap",
    [GD_E_BUSY] = "busy",
    [GD_E_INTERNAL] = "internal",
};

static const char *const code_messages[GD_CODE_COUNT] = {
    [GD_OK] = "success",
    [GD_E_BAD_HEADER] = "header frame is not \"GDP1\" followed by a type byte",
    [GD_E_UNKNOWN_TYPE] = "unknown message type, or a type not accepted on this endpoint",
    [GD_E_TOO_LARGE] = "frame larger than the protocol allows",
    [GD_E_TRUNCATED] = "frame ends inside a msgpack value",
    [GD_E_MALFORMED] = "invalid msgpack, or bytes after the body map",
    [GD_E_NOT_MAP] = "body is not a msgpack map",
    [GD_E_TOO_DEEP] = "maps and arrays nested too deeply",
    [GD_E_TOO_MANY] = "array or map has more elements than allowed",
    [GD_E_TOO_LONG] = "string longer than the field allows",
    [GD_E_WRONG_TYPE] = "field has the wrong msgpack type",
    [GD_E_UNKNOWN_FIELD] = "field not defined for this message",
    [GD_E_DUPLICATE_FIELD] = "field appears twice",
    [GD_E_MISSING_FIELD] = "required field is missing",
    [GD_E_BAD_VALUE] = "field value is not allowed (range, name, encoding)",
    [GD_E_NOT_FOUND] = "no such incident, queue or unit",
    [GD_E_STALE_VERSION] = "the incident has changed since that version; re-read it",
    [GD_E_BAD_STATE] = "not allowed in the incident's current state",
    [GD_E_NOT_OWNER] = "the delivery belongs to another session or queue",
    [GD_E_NO_SESSION] = "no session: send HELLO first",
    [GD_E_DENIED] = "not authorised",
    [GD_E_LIMIT] = "a configured resource limit was reached",
    [GD_E_POLICY] = "refused by policy",
    [GD_E_OVERLAP] = "SLA shard overlaps another worker's",
    [GD_E_BUSY] = "temporarily unavailable; retry later",
    [GD_E_INTERNAL] = "internal error",
};

static const char *const priority_names[GD_PRIO_COUNT] = {
    [GD_PRIO_EMERGENCY] = "emergency",
    [GD_PRIO_URGENT] = "urgent",
    [GD_PRIO_NORMAL] = "normal",
};

static const char *const level_names[GD_LEVEL_COUNT] = {
    [GD_LEVEL_MICRO_GRID] = "micro_grid", [GD_LEVEL_GRID] = "grid",
    [GD_LEVEL_COMMUNITY] = "community",   [GD_LEVEL_TOWN] = "town",
    [GD_LEVEL_DISTRICT] = "district",
};

static const char *const state_names[GD_ST_COUNT] = {
    [GD_ST_RECEIVED] = "RECEIVED",       [GD_ST_QUEUED] = "QUEUED",
    [GD_ST_DELIVERED] = "DELIVERED",     [GD_ST_SIGNED] = "SIGNED",
    [GD_ST_IN_PROGRESS] = "IN_PROGRESS", [GD_ST_RESOLVED] = "RESOLVED",
    [GD_ST_CLOSED] = "CLOSED",
};

static const char *const role_names[GD_ROLE_COUNT] = {
    [GD_ROLE_WORKER] = "worker",
    [GD_ROLE_SLA] = "sla",
};

static const char *const deadline_kind_names[GD_DL_COUNT] = {
    [GD_DL_SIGN] = "sign",
    [GD_DL_RESOLVE] = "resolve",
};

static const char *const event_kind_names[GD_EV_COUNT] = {
    [GD_EV_RECEIVE] = "receive",   [GD_EV_DELIVER] = "deliver",   [GD_EV_REQUEUE] = "requeue",
    [GD_EV_SIGN] = "sign",         [GD_EV_PROGRESS] = "progress", [GD_EV_EXTEND] = "extend",
    [GD_EV_RETURN] = "return",     [GD_EV_RESOLVE] = "resolve",   [GD_EV_REOPEN] = "reopen",
    [GD_EV_CLOSE] = "close",       [GD_EV_ESCALATE] = "escalate", [GD_EV_FLAG] = "flag",
    [GD_EV_DISPATCH] = "dispatch", [GD_EV_WARN] = "warn",
    [GD_EV_EXTEND_REQUEST] = "extend_request", [GD_EV_EXTEND_DENY] = "extend_deny",
};

static const char *const status_kind_names[GD_STATUS_COUNT] = {
    [GD_STATUS_TRANSITIONS] = "transitions",
    [GD_STATUS_GAUGES] = "gauges",
    [GD_STATUS_BROKER] = "broker",
    [GD_STATUS_ALARM] = "alarm",
    [GD_STATUS_SLA] = "sla",
};

const struct gd__names gd__code_names = {code_names, GD_CODE_COUNT};
const struct gd__names gd__priority_names = {priority_names, GD_PRIO_COUNT};
const struct gd__names gd__level_names = {level_names, GD_LEVEL_COUNT};
const struct gd__names gd__state_names = {state_names, GD_ST_COUNT};
const struct gd__names gd__role_names = {role_names, GD_ROLE_COUNT};
const struct gd__names gd__deadline_kind_names = {deadline_kind_names, GD_DL_COUNT};
const struct gd__names gd__event_kind_names = {event_kind_names, GD_EV_COUNT};
const struct gd__names gd__status_kind_names = {status_kind_names, GD_STATUS_COUNT};

static const char *name_of(const struct gd__names *t, int v)
{
    if (v < 0 || v >= t->count)
        return NULL;
    return t->names[v];
}

int gd__names_parse(const struct gd__names *t, const char *s, size_t len)
{
    for (int i = 0; i < t->count; i++) {
        const char *n = t->names[i];
        if (strlen(n) == len && memcmp(n, s, len) == 0)
            return i;
    }
    return -1;
}

const char *gd_code_name(enum gd_code code)
{
    return name_of(&gd__code_names, (int)code);
}

const char *gd_code_message(enum gd_code code)
{
    if ((int)code < 0 || code >= GD_CODE_COUNT)
        return "unknown error code";
    return code_messages[code];
}

const char *gd_type_name(enum gd_type type)
{
    switch (type) {
    case GD_T_NONE:
        return NULL;
    case GD_T_SUBMIT:
        return "SUBMIT";
    case GD_T_QUERY:
        return "QUERY";
    case GD_T_FEEDBACK:
        return "FEEDBACK";
    case GD_T_SNAPSHOT:
        return "SNAPSHOT";
    case GD_T_DISPATCH:
        return "DISPATCH";
    case GD_T_APPROVE:
        return "APPROVE";
    case GD_T_SUBMITS:
        return "SUBMITS";
    case GD_T_ACCEPTED:
        return "ACCEPTED";
    case GD_T_REJECTED:
        return "REJECTED";
    case GD_T_BUSY:
        return "BUSY";
    case GD_T_INCIDENT:
        return "INCIDENT";
    case GD_T_GAUGES:
        return "GAUGES";
    case GD_T_DONE:
        return "DONE";
    case GD_T_SUBMITTED:
        return "SUBMITTED";
    case GD_T_HELLO:
        return "HELLO";
    case GD_T_CREDIT:
        return "CREDIT";
    case GD_T_SIGN:
        return "SIGN";
    case GD_T_PROGRESS:
        return "PROGRESS";
    case GD_T_EXTEND:
        return "EXTEND";
    case GD_T_RETURN:
        return "RETURN";
    case GD_T_RESOLVE:
        return "RESOLVE";
    case GD_T_WARN:
        return "WARN";
    case GD_T_ESCALATE:
        return "ESCALATE";
    case GD_T_WELCOME:
        return "WELCOME";
    case GD_T_DENIED:
        return "DENIED";
    case GD_T_DELIVER:
        return "DELIVER";
    case GD_T_OK:
        return "OK";
    case GD_T_ERR:
        return "ERR";
    case GD_T_DEADLINE:
        return "DEADLINE";
    case GD_T_CLEAR:
        return "CLEAR";
    case GD_T_SYNCED:
        return "SYNCED";
    case GD_T_HEARTBEAT:
        return "HEARTBEAT";
    case GD_T_BYE:
        return "BYE";
    }
    return NULL;
}

const char *gd_priority_name(enum gd_priority p)
{
    return name_of(&gd__priority_names, (int)p);
}

const char *gd_level_name(enum gd_level l)
{
    return name_of(&gd__level_names, (int)l);
}

const char *gd_state_name(enum gd_state s)
{
    return name_of(&gd__state_names, (int)s);
}

const char *gd_role_name(enum gd_role r)
{
    return name_of(&gd__role_names, (int)r);
}

const char *gd_deadline_kind_name(enum gd_deadline_kind k)
{
    return name_of(&gd__deadline_kind_names, (int)k);
}

const char *gd_event_kind_name(enum gd_event_kind k)
{
    return name_of(&gd__event_kind_names, (int)k);
}

const char *gd_status_kind_name(enum gd_status_kind k)
{
    return name_of(&gd__status_kind_names, (int)k);
}

int gd_priority_parse(struct gd_str s)
{
    return gd__names_parse(&gd__priority_names, s.ptr ? s.ptr : "", s.len);
}

int gd_level_parse(struct gd_str s)
{
    return gd__names_parse(&gd__level_names, s.ptr ? s.ptr : "", s.len);
}

int gd_state_parse(struct gd_str s)
{
    return gd__names_parse(&gd__state_names, s.ptr ? s.ptr : "", s.len);
}
