/* gd-samples.c - sample GDP/1 messages of every type for unit tests and the fuzz corpus. */
#include <limits.h>
#include <string.h>

#include "gd-samples.h"

static const struct gd_str attachments2[2] = {
    {"https://media.example.org/a/1.jpg", 33},
    {"https://media.example.org/a/2.jpg", 33},
};

static struct gd_location full_location(void)
{
    return (struct gd_location){.unit = GD_STR("500113002001001"),
                                .address = GD_STR("龙海大道 18 号"),
                                .has_coords = true,
                                .lat = 29.402,
                                .lon = 106.541};
}

static struct gd_reporter full_reporter(void)
{
    return (struct gd_reporter){.name = GD_STR("张三"),
                                .phone = GD_STR("+86 138 0000 0000"),
                                .address = GD_STR("幸福小区 3-2-501")};
}

static struct gd_incident full_incident(void)
{
    struct gd_incident in = {
        .id = 123456789012ull,
        .version = 7,
        .state = GD_ST_IN_PROGRESS,
        .priority = GD_PRIO_URGENT,
        .level = GD_LEVEL_COMMUNITY,
        .source = GD_STR("hotline"),
        .external_id = GD_STR("12345-20240601-000123"),
        .category = GD_STR("road.manhole"),
        .queue = GD_STR("500113002001"),
        .owner = GD_STR("500113002001"),
        .location = full_location(),
        .located_by = GD_STR("position"),
        .description = GD_STR(GD_SAMPLE_DESC_ZH),
        .has_reporter = true,
        .reporter = full_reporter(),
        .reported_at = 1717200000000,
        .received_at = 1717200001234,
        .sign_due = 1717203601234,
        .resolve_due = 1717804801234,
        .extension_pending = 1718409601234,
        .attempts = 2,
        .escalations = 1,
        .flagged = true,
        .n_attachments = 2,
    };
    memcpy(in.attachments, attachments2, sizeof(attachments2));
    return in;
}

static struct gd_incident min_incident(void)
{
    return (struct gd_incident){.id = 1,
                                .version = 1,
                                .state = GD_ST_QUEUED,
                                .priority = GD_PRIO_NORMAL,
                                .source = GD_STR("app"),
                                .external_id = GD_STR("x")};
}

const struct gd_event gd_sample_events[3] = {
    {.version = 1,
     .at = 1717200001234,
     .kind = GD_EV_RECEIVE,
     .from = GD_ST_RECEIVED,
     .to = GD_ST_QUEUED,
     .queue = GD_STR("500113002001"),
     .actor = GD_STR(""),
     .note = GD_STR("")},
    {.version = 2,
     .at = 1717200002000,
     .kind = GD_EV_DELIVER,
     .from = GD_ST_QUEUED,
     .to = GD_ST_DELIVERED,
     .queue = GD_STR("500113002001"),
     .actor = GD_STR("w-07")},
    {.version = 3,
     .at = 1717200003000,
     .kind = GD_EV_RETURN,
     .from = GD_ST_DELIVERED,
     .to = GD_ST_QUEUED,
     .queue = GD_STR("500113002"),
     .actor = GD_STR("w-07"),
     .note = GD_STR("不属于本社区")},
};

/* A batch: every field of a transition set, then only the required ones
 * (topic, incident_id, version, at, event, from, to). */
const struct gd_status_transition gd_sample_transitions[2] = {
    {.topic = GD_STR("inc.500113002.500113002001.500113002001001"),
     .incident_id = 77,
     .version = 3,
     .at = 1717200003000,
     .event = GD_EV_SIGN,
     .from = GD_ST_DELIVERED,
     .to = GD_ST_SIGNED,
     .priority = GD_PRIO_URGENT,
     .level = GD_LEVEL_GRID,
     .category = GD_STR("road.manhole"),
     .queue = GD_STR("500113002001001"),
     .unit = GD_STR("500113002001001"),
     .located_by = GD_STR("address"),
     .source = GD_STR("hotline"),
     .received_at = 1717200000000,
     .sign_due = 1717203600000,
     .resolve_due = 1717804800000,
     .flagged = true},
    {.topic = GD_STR("inc.triage"), .incident_id = 1, .version = 1, .at = 1,
     .priority = GD_PRIO_NORMAL},
};

const struct gd_gauge gd_sample_gauges[2] = {
    {.queue = GD_STR("500113002001"),
     .depth = 12,
     .in_flight = 3,
     .oldest_age_ms = 60000,
     .overdue = 1,
     .consumers = 2,
     .in_rate = 0.25,
     .out_rate = 0.5},
    {.queue = GD_STR("500113002.livelihood")},
};

const enum gd_type gd_sample_types[GD_SAMPLE_N_TYPES] = {
    GD_T_SUBMIT,   GD_T_QUERY,    GD_T_FEEDBACK, GD_T_SNAPSHOT, GD_T_DISPATCH,  GD_T_ACCEPTED,
    GD_T_REJECTED, GD_T_BUSY,     GD_T_INCIDENT, GD_T_GAUGES,   GD_T_DONE,      GD_T_HELLO,
    GD_T_CREDIT,   GD_T_SIGN,     GD_T_PROGRESS, GD_T_EXTEND,   GD_T_RETURN,    GD_T_RESOLVE,
    GD_T_WARN,     GD_T_ESCALATE, GD_T_WELCOME,  GD_T_DENIED,   GD_T_DELIVER,   GD_T_OK,
    GD_T_ERR,      GD_T_DEADLINE, GD_T_CLEAR,    GD_T_SYNCED,   GD_T_HEARTBEAT, GD_T_BYE,
    GD_T_APPROVE,  GD_T_SUBMITS,  GD_T_SUBMITTED,
};

const struct gd_submit gd_sample_submits[2] = {
    {.ref = 1,
     .source = GD_STR("hotline"),
     .external_id = GD_STR("12345-20240601-000124"),
     .category = GD_STR("road.manhole"),
     .priority = GD_PRIO_URGENT,
     .location = {.unit = GD_STR("500113002001001")},
     .description = GD_STR(GD_SAMPLE_DESC_ZH)},
    {.ref = 2, .source = GD_STR("app"), .external_id = GD_STR("a2")},
};

const struct gd_submit_result gd_sample_results[3] = {
    {.ref = 1,
     .code = GD_OK,
     .incident_id = 78,
     .version = 1,
     .state = GD_ST_QUEUED,
     .queue = GD_STR("500113002001")},
    {.ref = 2, .code = GD_E_BUSY, .retry_ms = 200, .reason = GD_STR("backlog")},
    {.ref = 3,
     .code = GD_E_BAD_VALUE,
     .message = GD_STR("reported_at is in the future"),
     .field = GD_STR("reported_at")},
};

unsigned gd_sample_full(enum gd_type type, struct gd_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    switch (type) {
    case GD_T_SUBMIT: {
        struct gd_submit *s = &m->u.submit;
        s->ref = 42;
        s->source = GD_STR("hotline");
        s->external_id = GD_STR("12345-20240601-000123");
        s->category = GD_STR("road.manhole");
        s->priority = GD_PRIO_EMERGENCY;
        s->location = full_location();
        s->description = GD_STR(GD_SAMPLE_DESC_ZH);
        s->reporter = full_reporter();
        s->reported_at = 1717200000000;
        s->n_attachments = 2;
        memcpy(s->attachments, attachments2, sizeof(attachments2));
        return 10;
    }
    case GD_T_QUERY:
        m->u.query = (struct gd_query){.ref = 9, .incident_id = 77, .events = false};
        return 3;
    case GD_T_FEEDBACK:
        m->u.feedback = (struct gd_feedback){
            .ref = 9, .incident_id = 77, .satisfied = true, .comment = GD_STR("很满意")};
        return 4;
    case GD_T_SNAPSHOT:
        m->u.snapshot = (struct gd_snapshot){.ref = 1, .prefix = GD_STR("500113")};
        return 2;
    case GD_T_DISPATCH:
        m->u.dispatch = (struct gd_dispatch){.ref = 3,
                                             .incident_id = 77,
                                             .version = 4,
                                             .unit = GD_STR("500113002001"),
                                             .note = GD_STR("路灯归社区")};
        return 5;
    case GD_T_APPROVE:
        m->u.approve = (struct gd_approve){.ref = 9,
                                           .incident_id = 77,
                                           .version = 6,
                                           .approve = true,
                                           .note = GD_STR("同意延期至周五")};
        return 5;
    case GD_T_ACCEPTED:
        m->u.accepted = (struct gd_accepted){.ref = 42,
                                             .incident_id = 77,
                                             .version = 2,
                                             .duplicate = true,
                                             .state = GD_ST_QUEUED,
                                             .queue = GD_STR("500113002001")};
        return 6;
    case GD_T_REJECTED:
    case GD_T_ERR:
    case GD_T_DENIED:
        m->u.error = (struct gd_error_reply){.ref = 42,
                                             .code = GD_E_TOO_LONG,
                                             .message = GD_STR("description too long"),
                                             .field = GD_STR("description")};
        return 4;
    case GD_T_BUSY:
        m->u.busy = (struct gd_busy){.ref = 42, .retry_ms = 500, .reason = GD_STR("database_down")};
        return 3;
    case GD_T_INCIDENT:
        m->u.incident.ref = 5;
        m->u.incident.incident = full_incident();
        m->u.incident.n_events = 3;
        m->u.incident.events = gd_sample_events;
        m->u.incident.truncated = true;
        return 4;
    case GD_T_SUBMITS:
        m->u.submits = (struct gd_submits){.ref = 6, .n_items = 2, .items = gd_sample_submits};
        return 2;
    case GD_T_SUBMITTED:
        m->u.submitted =
            (struct gd_submitted){.ref = 6, .n_results = 3, .results = gd_sample_results};
        return 2;
    case GD_T_GAUGES:
        m->u.gauges = (struct gd_gauges){.ref = 5,
                                         .at = 1717200000000,
                                         .n_gauges = 2,
                                         .gauges = gd_sample_gauges,
                                         .truncated = true};
        return 4;
    case GD_T_DONE:
        m->u.done = (struct gd_done){.ref = 5,
                                     .incident_id = 77,
                                     .version = 9,
                                     .state = GD_ST_CLOSED,
                                     .queue = GD_STR("500113002001")};
        return 5;
    case GD_T_HELLO: {
        struct gd_hello *h = &m->u.hello;
        h->role = GD_ROLE_WORKER;
        h->name = GD_STR("community-500113002001-a");
        h->credit = 16;
        h->n_queues = 2;
        h->queues[0] = GD_STR("500113002001");
        h->queues[1] = GD_STR("500113002002");
        return 4;
    }
    case GD_T_CREDIT:
        m->u.credit.credit = 32;
        return 1;
    case GD_T_SIGN:
        m->u.command =
            (struct gd_command){.ref = 1, .incident_id = 77, .version = 3, .delivery_id = 99};
        return 4;
    case GD_T_PROGRESS:
    case GD_T_RESOLVE:
        m->u.command = (struct gd_command){
            .ref = 1, .incident_id = 77, .version = 4, .text = GD_STR("已派人到场")};
        return 4;
    case GD_T_EXTEND:
        m->u.command = (struct gd_command){.ref = 1,
                                           .incident_id = 77,
                                           .version = 4,
                                           .until = 1718000000000,
                                           .text = GD_STR("等待配件")};
        return 5;
    case GD_T_RETURN:
        m->u.command = (struct gd_command){.ref = 1,
                                           .incident_id = 77,
                                           .version = 4,
                                           .text = GD_STR("不属于本网格"),
                                           .rule = GD_STR("网格事项准入清单 第12条")};
        return 5;
    case GD_T_WARN:
    case GD_T_ESCALATE:
        m->u.command =
            (struct gd_command){.ref = 1, .incident_id = 77, .version = 4, .kind = GD_DL_RESOLVE};
        return 4;
    case GD_T_WELCOME:
        m->u.welcome = (struct gd_welcome){.session = 5, .heartbeat_ms = 1000, .liveness = 3};
        return 3;
    case GD_T_DELIVER:
        m->u.deliver.delivery_id = 99;
        m->u.deliver.attempt = 2;
        m->u.deliver.incident = full_incident();
        return 3;
    case GD_T_OK:
        m->u.ok = (struct gd_ok){.ref = 1, .incident_id = 77, .version = 5, .applied = true};
        return 4;
    case GD_T_DEADLINE:
        m->u.deadline = (struct gd_deadline){.incident_id = 77,
                                             .version = 5,
                                             .kind = GD_DL_RESOLVE,
                                             .town = GD_STR("500113002"),
                                             .level = GD_LEVEL_GRID,
                                             .warn_at = 1717300000000,
                                             .due_at = 1717400000000};
        return 7;
    case GD_T_CLEAR:
        m->u.clear = (struct gd_clear){.incident_id = 77, .version = 6, .kind = GD_DL_RESOLVE};
        return 3;
    case GD_T_SYNCED:
        m->u.synced.count = 12000;
        return 1;
    case GD_T_HEARTBEAT:
        return 0;
    case GD_T_BYE:
        m->u.bye.reason = GD_STR("shutdown");
        return 1;
    case GD_T_NONE:
        break;
    }
    return UINT_MAX;
}

unsigned gd_sample_min(enum gd_type type, struct gd_msg *m)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    switch (type) {
    case GD_T_SUBMIT:
        m->u.submit.source = GD_STR("app");
        m->u.submit.external_id = GD_STR("a1");
        m->u.submit.priority = GD_PRIO_NORMAL;
        return 2;
    case GD_T_QUERY:
        m->u.query.incident_id = 1;
        m->u.query.events = true;
        return 1;
    case GD_T_FEEDBACK:
        m->u.feedback.incident_id = 1;
        return 2; /* satisfied is required, false is sent */
    case GD_T_SNAPSHOT:
    case GD_T_HEARTBEAT:
    case GD_T_BYE:
        return 0;
    case GD_T_DISPATCH:
        m->u.dispatch = (struct gd_dispatch){.incident_id = 1, .version = 1, .unit = GD_STR("5")};
        return 3;
    case GD_T_APPROVE:
        m->u.approve = (struct gd_approve){.incident_id = 1, .version = 1};
        return 3; /* approve is required, false is sent */
    case GD_T_ACCEPTED:
        m->u.accepted =
            (struct gd_accepted){.incident_id = 1, .version = 1, .state = GD_ST_RECEIVED};
        return 3;
    case GD_T_REJECTED:
    case GD_T_ERR:
    case GD_T_DENIED:
        m->u.error = (struct gd_error_reply){.code = GD_E_DENIED, .message = GD_STR("no")};
        return 2;
    case GD_T_BUSY:
        return 1; /* retry_ms 0 is sent */
    case GD_T_INCIDENT:
        m->u.incident.incident = min_incident();
        return 1;
    case GD_T_SUBMITS:
        m->u.submits = (struct gd_submits){.n_items = 1, .items = gd_sample_submits + 1};
        return 1;
    case GD_T_SUBMITTED:
        m->u.submitted = (struct gd_submitted){.n_results = 1, .results = gd_sample_results + 1};
        return 1;
    case GD_T_GAUGES:
        m->u.gauges.at = 1;
        return 1;
    case GD_T_DONE:
        m->u.done = (struct gd_done){.incident_id = 1, .version = 2};
        return 2;
    case GD_T_HELLO:
        m->u.hello.role = GD_ROLE_WORKER;
        m->u.hello.credit = 1;
        m->u.hello.n_queues = 1;
        m->u.hello.queues[0] = GD_STR("triage");
        return 3;
    case GD_T_CREDIT:
        return 1; /* credit 0 pauses deliveries */
    case GD_T_SIGN:
        m->u.command = (struct gd_command){.incident_id = 1, .delivery_id = 5};
        return 2;
    case GD_T_PROGRESS:
    case GD_T_RESOLVE:
        m->u.command = (struct gd_command){.incident_id = 1, .version = 1};
        return 2;
    case GD_T_EXTEND:
        m->u.command =
            (struct gd_command){.incident_id = 1, .version = 1, .until = 2, .text = GD_STR("r")};
        return 4;
    case GD_T_RETURN:
        m->u.command = (struct gd_command){.incident_id = 1, .version = 1, .text = GD_STR("r")};
        return 3;
    case GD_T_WARN:
    case GD_T_ESCALATE:
        m->u.command = (struct gd_command){.incident_id = 1, .version = 1, .kind = GD_DL_SIGN};
        return 3;
    case GD_T_WELCOME:
        m->u.welcome = (struct gd_welcome){.session = 1, .heartbeat_ms = 1, .liveness = 1};
        return 3;
    case GD_T_DELIVER:
        m->u.deliver.delivery_id = 1;
        m->u.deliver.incident = min_incident();
        return 2;
    case GD_T_OK:
        m->u.ok = (struct gd_ok){.incident_id = 1, .version = 1};
        return 2;
    case GD_T_DEADLINE:
        m->u.deadline = (struct gd_deadline){.incident_id = 1, .version = 1, .due_at = 1};
        return 4;
    case GD_T_CLEAR:
        m->u.clear = (struct gd_clear){.incident_id = 1, .version = 1};
        return 3;
    case GD_T_SYNCED:
        return 1;
    case GD_T_NONE:
        break;
    }
    return UINT_MAX;
}

unsigned gd_sample_status_full(enum gd_status_kind kind, struct gd_status *s)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    switch (kind) {
    case GD_STATUS_TRANSITIONS:
        s->u.transitions = (struct gd_status_transitions){.n_items = 2,
                                                          .items = gd_sample_transitions};
        return 2;
    case GD_STATUS_GAUGES:
        s->u.gauges = (struct gd_status_gauges){.n_items = 2, .items = gd_sample_gauges};
        return 2;
    case GD_STATUS_BROKER:
        s->u.broker = (struct gd_status_broker){.at = 1717200000000,
                                                .started_at = 1717100000000,
                                                .db_up = true,
                                                .active = true,
                                                .open_incidents = 5000,
                                                .sessions = 40,
                                                .commit_backlog = 3,
                                                .commit_p50_us = 900,
                                                .commit_p99_us = 4000,
                                                .n_counters = 2};
        s->u.broker.counters[0] = (struct gd_counter){GD_STR("submit_accepted"), 1ull << 40};
        s->u.broker.counters[1] = (struct gd_counter){GD_STR("submit_rejected"), 3};
        return 11;
    case GD_STATUS_ALARM:
        s->u.alarm = (struct gd_status_alarm){.at = 1,
                                              .kind = GD_STR("poison"),
                                              .severity = GD_STR("critical"),
                                              .incident_id = 77,
                                              .queue = GD_STR("500113002001"),
                                              .message = GD_STR("5 deliveries not signed")};
        return 7;
    case GD_STATUS_SLA:
        s->u.sla = (struct gd_status_sla){.at = 1,
                                          .breach = true,
                                          .incident_id = 77,
                                          .version = 4,
                                          .kind = GD_DL_RESOLVE,
                                          .level = GD_LEVEL_TOWN,
                                          .queue = GD_STR("q"),
                                          .due_at = 2};
        return 9;
    case GD_STATUS_COUNT:
        break;
    }
    return UINT_MAX;
}

unsigned gd_sample_status_min(enum gd_status_kind kind, struct gd_status *s)
{
    memset(s, 0, sizeof(*s));
    s->kind = kind;
    switch (kind) {
    case GD_STATUS_TRANSITIONS:
        s->u.transitions = (struct gd_status_transitions){.n_items = 1,
                                                          .items = &gd_sample_transitions[1]};
        return 2; /* kind, items */
    case GD_STATUS_GAUGES: {
        static const struct gd_gauge only_queue = {.queue = GD_STR("q")};
        s->u.gauges = (struct gd_status_gauges){.n_items = 1, .items = &only_queue};
        return 2; /* kind, items */
    }
    case GD_STATUS_BROKER:
        s->u.broker.at = 1;
        return 4; /* kind, at, db_up, active */
    case GD_STATUS_ALARM:
        s->u.alarm = (struct gd_status_alarm){
            .at = 1, .kind = GD_STR("db_down"), .severity = GD_STR("warning")};
        return 4;
    case GD_STATUS_SLA:
        s->u.sla = (struct gd_status_sla){.at = 1, .incident_id = 1, .due_at = 1};
        return 7; /* kind, at, breach, incident_id, version, deadline, due_at */
    case GD_STATUS_COUNT:
        break;
    }
    return 0;
}
