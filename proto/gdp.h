/* gdp.h - GDP/1 wire protocol: message types, limits and the msgpack codec.
 *
 * This header is the whole public API of the protocol library shared by the
 * broker, the workers and the tools. proto/PROTOCOL.md describes the same
 * protocol for implementers in other languages; the two must agree.
 *
 * Framing (ROUTER/DEALER endpoints): every message is two ZeroMQ frames,
 *   [header: 5 bytes "GDP1" + type byte] [body: one msgpack map]
 * (a ROUTER socket sees the peer's routing id frame before them).
 * Status endpoint (XPUB): [topic] [msgpack map]; no header frame.
 *
 * Strings are views (pointer + length) into the buffer they were decoded
 * from: a decoded message is valid only while its body buffer is alive and
 * until the next gd_decode() on the same decoder. Arrays of events and
 * gauges in decoded messages live in the decoder's arena with the same
 * lifetime.
 */
#ifndef GD_PROTO_GDP_H
#define GD_PROTO_GDP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GD_SIGNATURE "GDP1"
#define GD_SIGNATURE_LEN 4
#define GD_HEADER_LEN 5

/* Hard protocol limits. A frame or field beyond them is refused by the
 * decoder before anything is allocated for it. Byte counts, not characters. */
#define GD_MAX_BODY (64 * 1024)     /* body frame size */
#define GD_MAX_TOPIC 128            /* status topic frame */
#define GD_MAX_DEPTH 4              /* nesting of maps/arrays in a body */
#define GD_MAX_MAP_KEYS 64          /* keys in any one map */
#define GD_MAX_CODE 32              /* source, category, org-unit codes, kinds */
#define GD_MAX_EXTERNAL_ID 64       /* (source, external_id) idempotency key */
#define GD_MAX_QUEUE 64             /* queue names */
#define GD_MAX_NAME 64              /* reporter name, worker/principal name */
#define GD_MAX_PHONE 32
#define GD_MAX_ADDRESS 256
#define GD_MAX_DESCRIPTION 16384    /* ~4000 CJK characters (Open311) */
#define GD_MAX_TEXT 1024            /* reasons, notes, results, messages */
#define GD_MAX_URL 512              /* attachment (media) URLs */
#define GD_MAX_ATTACHMENTS 8
#define GD_MAX_QUEUES 256           /* queues in one HELLO */
#define GD_MAX_SHARD 128            /* town codes in one SLA HELLO */
#define GD_MAX_EVENTS 512           /* events in one INCIDENT reply */
#define GD_MAX_GAUGES 4096          /* gauges in one GAUGES reply */
#define GD_MAX_COUNTERS 64          /* counters in a broker status message */
#define GD_MAX_BATCH 256            /* transitions in one status batch */
#define GD_MAX_SUBMITS 256          /* incidents in one SUBMITS */
#define GD_TOWN_CODE_LEN 9          /* county (6) + town (3): inc.<town>, queue.<town> */
#define GD_MAX_CREDIT 1024          /* worker credit */

/* Error codes. On the wire they travel as the lower-case names returned by
 * gd_code_name() ("too_long", "stale_version", ...). GD_OK is 0; library
 * functions return the negated code on failure. */
enum gd_code {
    GD_OK = 0,
    /* frame and decoding errors */
    GD_E_BAD_HEADER,     /* header frame is not "GDP1" + type */
    GD_E_UNKNOWN_TYPE,   /* type byte names no message (or not valid here) */
    GD_E_TOO_LARGE,      /* frame longer than GD_MAX_BODY / GD_MAX_TOPIC */
    GD_E_TRUNCATED,      /* frame ends inside a msgpack value */
    GD_E_MALFORMED,      /* invalid msgpack, or bytes after the body map */
    GD_E_NOT_MAP,        /* body is not a msgpack map */
    GD_E_TOO_DEEP,       /* nesting beyond GD_MAX_DEPTH */
    GD_E_TOO_MANY,       /* array/map element count beyond its limit */
    GD_E_TOO_LONG,       /* string beyond its field's limit */
    GD_E_WRONG_TYPE,     /* field holds the wrong msgpack type */
    GD_E_UNKNOWN_FIELD,  /* key not defined for this message */
    GD_E_DUPLICATE_FIELD,/* key appears twice */
    GD_E_MISSING_FIELD,  /* required key absent */
    GD_E_BAD_VALUE,      /* enum name unknown, out of range, invalid UTF-8,
                            forbidden characters */
    /* request errors reported by the broker */
    GD_E_NOT_FOUND,      /* no such incident / queue / unit */
    GD_E_STALE_VERSION,  /* the incident moved on; re-read it */
    GD_E_BAD_STATE,      /* transition not allowed from the current state */
    GD_E_NOT_OWNER,      /* delivery belongs to another session/queue */
    GD_E_NO_SESSION,     /* work command before WELCOME, or after BYE */
    GD_E_DENIED,         /* not authorised */
    GD_E_LIMIT,          /* a configured resource limit was reached */
    GD_E_POLICY,         /* refused by policy (e.g. extension too long) */
    GD_E_OVERLAP,        /* SLA shard overlaps another worker's */
    GD_E_BUSY,           /* temporarily unavailable; retry later */
    GD_E_INTERNAL,       /* broker bug or unexpected database error */
    GD_CODE_COUNT
};

/* Message types: the fifth byte of the header frame. */
enum gd_type {
    GD_T_NONE = 0,
    /* intake endpoint, client -> broker */
    GD_T_SUBMIT = 1,
    GD_T_QUERY = 2,
    GD_T_FEEDBACK = 3,
    GD_T_SNAPSHOT = 4,
    GD_T_DISPATCH = 5,   /* admin: route a triage item by hand */
    GD_T_APPROVE = 6,    /* admin: approve or deny a requested extension */
    GD_T_SUBMITS = 7,    /* many SUBMITs in one message */
    /* intake endpoint, broker -> client */
    GD_T_ACCEPTED = 16,
    GD_T_REJECTED = 17,
    GD_T_BUSY = 18,
    GD_T_INCIDENT = 19,
    GD_T_GAUGES = 20,
    GD_T_DONE = 21,      /* success answer to FEEDBACK, DISPATCH and APPROVE */
    GD_T_SUBMITTED = 22, /* the answer to SUBMITS: one result per item */
    /* work endpoint, worker/SLA -> broker */
    GD_T_HELLO = 32,
    GD_T_CREDIT = 33,
    GD_T_SIGN = 34,
    GD_T_PROGRESS = 35,
    GD_T_EXTEND = 36,
    GD_T_RETURN = 37,
    GD_T_RESOLVE = 38,
    GD_T_WARN = 39,
    GD_T_ESCALATE = 40,
    /* work endpoint, broker -> worker/SLA */
    GD_T_WELCOME = 48,
    GD_T_DENIED = 49,
    GD_T_DELIVER = 50,
    GD_T_OK = 51,
    GD_T_ERR = 52,
    GD_T_DEADLINE = 53,  /* SLA: a deadline set or moved */
    GD_T_CLEAR = 54,     /* SLA: a deadline no longer applies */
    GD_T_SYNCED = 55,    /* SLA: end of the initial full set */
    /* work endpoint, both ways */
    GD_T_HEARTBEAT = 64,
    GD_T_BYE = 65,
};

enum gd_priority { GD_PRIO_EMERGENCY = 0, GD_PRIO_URGENT = 1, GD_PRIO_NORMAL = 2, GD_PRIO_COUNT };

/* Organisation levels, finest first. A special grid (school, hospital,
 * park) is a grid-level unit. */
enum gd_level {
    GD_LEVEL_MICRO_GRID = 0,
    GD_LEVEL_GRID,
    GD_LEVEL_COMMUNITY,
    GD_LEVEL_TOWN,
    GD_LEVEL_DISTRICT,
    GD_LEVEL_COUNT
};

enum gd_state {
    GD_ST_RECEIVED = 0,
    GD_ST_QUEUED,
    GD_ST_DELIVERED,
    GD_ST_SIGNED,
    GD_ST_IN_PROGRESS,
    GD_ST_RESOLVED,
    GD_ST_CLOSED,
    GD_ST_COUNT
};

enum gd_role { GD_ROLE_WORKER = 0, GD_ROLE_SLA, GD_ROLE_COUNT };

enum gd_deadline_kind { GD_DL_SIGN = 0, GD_DL_RESOLVE, GD_DL_COUNT };

/* Event kinds recorded in the incident history. */
enum gd_event_kind {
    GD_EV_RECEIVE = 0, /* stored; from nothing to QUEUED (routed) */
    GD_EV_DELIVER,     /* QUEUED -> DELIVERED */
    GD_EV_REQUEUE,     /* DELIVERED -> QUEUED (worker lost, broker restart) */
    GD_EV_SIGN,        /* DELIVERED -> SIGNED */
    GD_EV_PROGRESS,    /* SIGNED/IN_PROGRESS -> IN_PROGRESS */
    GD_EV_EXTEND,      /* same state, new resolve deadline */
    GD_EV_RETURN,      /* DELIVERED/SIGNED -> QUEUED at parent or triage */
    GD_EV_RESOLVE,     /* open -> RESOLVED */
    GD_EV_REOPEN,      /* RESOLVED -> QUEUED (feedback not satisfied) */
    GD_EV_CLOSE,       /* RESOLVED -> CLOSED (feedback satisfied / timeout) */
    GD_EV_ESCALATE,    /* open -> QUEUED one level up */
    GD_EV_FLAG,        /* overdue at the top level: flagged (挂账) */
    GD_EV_DISPATCH,    /* triage -> QUEUED at a chosen queue */
    GD_EV_WARN,        /* SLA warning threshold passed (no state change) */
    GD_EV_EXTEND_REQUEST, /* extension asked beyond the automatic limit */
    GD_EV_EXTEND_DENY,    /* the requested extension was refused */
    GD_EV_COUNT
};

struct gd_str {
    const char *ptr;
    uint32_t len;
};

#define GD_STR(lit) ((struct gd_str){(lit), (uint32_t)(sizeof(lit) - 1)})
#define GD_STR_NULL ((struct gd_str){NULL, 0})

/* Where an incident happened. `unit` is the finest org-unit code known
 * (micro-grid, grid, community or town); all fields are optional. */
struct gd_location {
    struct gd_str unit;
    struct gd_str address;
    bool has_coords;
    double lat, lon;
};

/* Reporter contact data: personal information. Travels only in SUBMIT,
 * in DELIVER to the owning worker and in INCIDENT replies. */
struct gd_reporter {
    struct gd_str name;
    struct gd_str phone;
    struct gd_str address;
};

/* An incident as the broker shows it (DELIVER, INCIDENT). */
struct gd_incident {
    uint64_t id;
    uint32_t version;
    enum gd_state state;
    enum gd_priority priority;
    enum gd_level level;       /* level of the owning unit */
    struct gd_str source;
    struct gd_str external_id;
    struct gd_str category;    /* empty when unknown (triage) */
    struct gd_str queue;       /* owning queue */
    struct gd_str owner;       /* owning org-unit code */
    struct gd_location location; /* location.unit: the unit it was located at */
    struct gd_str located_by;    /* "given", "position", "address"; empty: not located */
    struct gd_str description;
    bool has_reporter;
    struct gd_reporter reporter;
    int64_t reported_at;       /* ms since the Unix epoch, UTC; 0 = unknown */
    int64_t received_at;
    int64_t sign_due;          /* 0 = no deadline */
    int64_t resolve_due;
    uint32_t attempts;         /* deliveries not signed */
    uint32_t escalations;
    bool flagged;              /* overdue at the top level (挂账) */
    int64_t extension_pending; /* requested new resolve deadline awaiting
                                  approval; 0 = none */
    uint32_t n_attachments;
    struct gd_str attachments[GD_MAX_ATTACHMENTS];
};

struct gd_event {
    uint32_t version;
    int64_t at;
    enum gd_event_kind kind;
    enum gd_state from, to;
    struct gd_str queue;       /* queue after the event */
    struct gd_str actor;       /* principal or worker name; empty = broker */
    struct gd_str note;        /* reason, result, comment */
};

struct gd_gauge {
    struct gd_str queue;
    uint32_t depth;            /* queued, not delivered */
    uint32_t in_flight;        /* delivered, not finished */
    int64_t oldest_age_ms;     /* age of the oldest queued item; 0 if none */
    uint32_t overdue;          /* open items past a deadline */
    uint32_t consumers;        /* worker sessions serving the queue */
    double in_rate;            /* items entering per second, last period */
    double out_rate;           /* items finished per second, last period */
};

/* ---- intake endpoint ---- */

struct gd_submit {
    uint64_t ref;              /* client correlation id, echoed in replies */
    struct gd_str source;      /* [a-z0-9_-]{1,32}: hotline, app, patrol... */
    struct gd_str external_id; /* 1..64 bytes, unique per source */
    struct gd_str category;    /* catalogue code; unknown -> triage */
    enum gd_priority priority; /* default normal */
    struct gd_location location;
    struct gd_str description;
    struct gd_reporter reporter;
    int64_t reported_at;       /* 0 = not given */
    uint32_t n_attachments;
    struct gd_str attachments[GD_MAX_ATTACHMENTS];
};

struct gd_accepted {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    bool duplicate;            /* (source, external_id) was already known */
    enum gd_state state;
    struct gd_str queue;
};

/* SUBMITS: up to GD_MAX_SUBMITS SUBMIT bodies, each with its own ref. */
struct gd_submits {
    uint64_t ref;
    uint32_t n_items;
    const struct gd_submit *items;
};

/* One item's outcome in SUBMITTED, in item order. `code` says which:
 * GD_OK accepted (incident_id, version, duplicate, state, queue),
 * GD_E_BUSY not now (retry_ms, reason), any other refused (message,
 * field), as ACCEPTED, BUSY and REJECTED would have said it. */
struct gd_submit_result {
    uint64_t ref;
    enum gd_code code;
    uint64_t incident_id;
    uint32_t version;
    bool duplicate;
    enum gd_state state;
    struct gd_str queue;
    struct gd_str message;
    struct gd_str field;
    uint32_t retry_ms;
    struct gd_str reason;
};

struct gd_submitted {
    uint64_t ref;              /* the SUBMITS' ref */
    uint32_t n_results;
    const struct gd_submit_result *results;
};

/* REJECTED (intake), ERR (work) and DENIED (work) share this body. */
struct gd_error_reply {
    uint64_t ref;
    enum gd_code code;
    struct gd_str message;     /* for a person; never contains PII */
    struct gd_str field;       /* offending field, empty if none */
};

struct gd_busy {
    uint64_t ref;
    uint32_t retry_ms;
    struct gd_str reason;      /* "database_down", "backlog", "shutdown" */
};

/* Either incident_id, or source + external_id. */
struct gd_query {
    uint64_t ref;
    uint64_t incident_id;
    struct gd_str source;
    struct gd_str external_id;
    bool events;               /* include the history; default true */
};

struct gd_incident_reply {
    uint64_t ref;
    struct gd_incident incident;
    uint32_t n_events;
    const struct gd_event *events;
    bool truncated;            /* history longer than GD_MAX_EVENTS */
};

struct gd_feedback {
    uint64_t ref;
    uint64_t incident_id;
    bool satisfied;
    struct gd_str comment;
};

struct gd_snapshot {
    uint64_t ref;
    struct gd_str prefix;      /* only queues whose name starts so */
};

struct gd_gauges {
    uint64_t ref;
    int64_t at;
    uint32_t n_gauges;
    const struct gd_gauge *gauges;
    bool truncated;
};

struct gd_dispatch {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    struct gd_str unit;        /* org unit to own it; its queue is derived */
    struct gd_str note;
};

/* An administrator's decision on a requested extension (EXTEND beyond the
 * automatic limit). */
struct gd_approve {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    bool approve;              /* true: the deadline moves; false: refused */
    struct gd_str note;
};

/* DONE: success answer to FEEDBACK, DISPATCH and APPROVE. */
struct gd_done {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    enum gd_state state;
    struct gd_str queue;
};

/* ---- work endpoint ---- */

struct gd_hello {
    enum gd_role role;
    struct gd_str name;        /* worker's name for logs and events */
    uint32_t credit;           /* worker: max deliveries in flight, 1..GD_MAX_CREDIT */
    uint32_t n_queues;         /* worker: queues served */
    struct gd_str queues[GD_MAX_QUEUES];
    uint32_t n_shard;          /* sla: town codes; 0 = all towns */
    struct gd_str shard[GD_MAX_SHARD];
};

struct gd_welcome {
    uint64_t session;
    uint32_t heartbeat_ms;     /* both sides send at least this often */
    uint32_t liveness;         /* heartbeats missed before the peer is dead */
};

struct gd_credit {
    uint32_t credit;           /* new absolute credit */
};

struct gd_deliver {
    uint64_t delivery_id;
    uint32_t attempt;          /* 1 for the first delivery */
    struct gd_incident incident;
};

/* SIGN, PROGRESS, EXTEND, RETURN, RESOLVE, WARN, ESCALATE.
 * `version` is the incident version the sender last saw (from DELIVER, OK
 * or DEADLINE); SIGN may carry delivery_id instead. */
struct gd_command {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;
    uint64_t delivery_id;      /* SIGN */
    int64_t until;             /* EXTEND: requested new resolve deadline */
    enum gd_deadline_kind kind;/* WARN, ESCALATE */
    struct gd_str text;        /* PROGRESS note, EXTEND/RETURN reason,
                                  RESOLVE result */
    struct gd_str rule;        /* RETURN: the rule or duty list cited */
};

struct gd_ok {
    uint64_t ref;
    uint64_t incident_id;
    uint32_t version;          /* incident version after the command */
    bool applied;              /* false: it had already been applied, or was
                                  stale and ignored (SLA) */
};

struct gd_deadline {
    uint64_t incident_id;
    uint32_t version;
    enum gd_deadline_kind kind;
    struct gd_str town;        /* shard key */
    enum gd_level level;
    int64_t warn_at;           /* ms since epoch; 0 = no warning */
    int64_t due_at;
};

struct gd_clear {
    uint64_t incident_id;
    uint32_t version;
    enum gd_deadline_kind kind;
};

struct gd_synced {
    uint32_t count;            /* DEADLINEs sent in the initial set */
};

struct gd_bye {
    struct gd_str reason;
};

struct gd_msg {
    enum gd_type type;
    union {
        struct gd_submit submit;
        struct gd_submits submits;
        struct gd_submitted submitted;
        struct gd_accepted accepted;
        struct gd_error_reply error;   /* REJECTED, ERR, DENIED */
        struct gd_busy busy;
        struct gd_query query;
        struct gd_incident_reply incident;
        struct gd_feedback feedback;
        struct gd_snapshot snapshot;
        struct gd_gauges gauges;
        struct gd_dispatch dispatch;
        struct gd_approve approve;
        struct gd_done done;
        struct gd_hello hello;
        struct gd_welcome welcome;
        struct gd_credit credit;
        struct gd_deliver deliver;
        struct gd_command command;     /* SIGN ... ESCALATE */
        struct gd_ok ok;
        struct gd_deadline deadline;
        struct gd_clear clear;
        struct gd_synced synced;
        struct gd_bye bye;
        /* HEARTBEAT has an empty body */
    } u;
};

/* ---- status topic messages ---- */

enum gd_status_kind {
    GD_STATUS_TRANSITIONS = 0, /* inc.<town>: a batch of transitions */
    GD_STATUS_GAUGES,         /* queue.<town>: the gauges of one period */
    GD_STATUS_BROKER,         /* broker */
    GD_STATUS_ALARM,          /* alarm.<kind> */
    GD_STATUS_SLA,            /* sla.warn.<...>, sla.breach.<...> */
    GD_STATUS_COUNT
};

/* An incident transition, one item of a batch; never carries reporter
 * data. */
struct gd_status_transition {
    struct gd_str topic;       /* inc.<town>.<community>.<grid> of the location */
    uint64_t incident_id;
    uint32_t version;
    int64_t at;
    enum gd_event_kind event;
    enum gd_state from, to;
    enum gd_priority priority;
    enum gd_level level;
    struct gd_str category;
    struct gd_str queue;
    struct gd_str unit;        /* location unit code */
    struct gd_str located_by;  /* how it was found (as in gd_incident) */
    struct gd_str source;
    int64_t received_at;
    int64_t sign_due;
    int64_t resolve_due;
    bool flagged;
};

/* The transitions committed in a short window for one town (§12). */
struct gd_status_transitions {
    uint32_t n_items;
    const struct gd_status_transition *items;
};

/* One gauge period's figures for the queues of one town (§12.1). */
struct gd_status_gauges {
    uint32_t n_items;
    const struct gd_gauge *items;
};

struct gd_counter {
    struct gd_str name;
    uint64_t value;
};

struct gd_status_broker {
    int64_t at;
    int64_t started_at;
    bool db_up;
    bool active;               /* holds the active-broker lock */
    uint32_t open_incidents;
    uint32_t sessions;
    uint32_t commit_backlog;   /* changes waiting for a commit */
    uint32_t commit_p50_us;    /* commit latency, last period */
    uint32_t commit_p99_us;
    uint32_t n_counters;
    struct gd_counter counters[GD_MAX_COUNTERS];
};

struct gd_status_alarm {
    int64_t at;
    struct gd_str kind;        /* poison, no_sla_worker, flagged, db_down, denied, ...;
                                  wire key "alarm" ("kind" is the status kind) */
    struct gd_str severity;    /* info, warning, critical */
    uint64_t incident_id;      /* 0 if none */
    struct gd_str queue;
    struct gd_str message;
};

struct gd_status_sla {
    int64_t at;
    bool breach;               /* false: warning */
    uint64_t incident_id;
    uint32_t version;
    enum gd_deadline_kind kind;/* wire key "deadline" ("kind" is the status kind) */
    enum gd_level level;
    struct gd_str queue;
    int64_t due_at;
};

struct gd_status {
    enum gd_status_kind kind;
    union {
        struct gd_status_transitions transitions;
        struct gd_status_gauges gauges;
        struct gd_status_broker broker;
        struct gd_status_alarm alarm;
        struct gd_status_sla sla;
    } u;
};

/* ---- buffers ---- */

/* A growable byte buffer. Zero-initialise it; gd_buf_fini frees it. */
struct gd_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* Empties the buffer, keeping its allocation. */
void gd_buf_reset(struct gd_buf *b);
/* Frees the buffer's memory; accepts a zeroed or NULL buffer. */
void gd_buf_fini(struct gd_buf *b);
/* Appends len bytes; 0, or -GD_E_INTERNAL when out of memory. */
int gd_buf_append(struct gd_buf *b, const void *p, size_t len);

/* ---- decoder ---- */

/* Details of a decode failure, for the REJECTED/ERR reply. `field` names
 * the offending key as a dotted path ("source", "location.lat",
 * "events[3].kind", an unknown key as received with non-printable bytes
 * shown as '?'), or "" when the whole frame is bad. It is owned by the
 * decoder: valid until the next decode with it or gd_decoder_free(); at
 * most GD_MAX_NAME bytes, so it always fits gd_error_reply.field. */
struct gd_decode_error {
    enum gd_code code;
    const char *field;
    uint64_t ref;   /* the body's "ref" if it could be read (a positive
                       integer at the top level of a valid map), else 0 */
};

/* Decoding state: an arena for arrays in decoded messages, reused across
 * calls. Opaque. */
struct gd_decoder;

/* Allocates a decoder. Returns NULL when out of memory. */
struct gd_decoder *gd_decoder_new(void);
/* Frees a decoder and everything its last decode produced; accepts NULL. */
void gd_decoder_free(struct gd_decoder *d);

/* Decodes one message from its header and body frames into *ret_msg.
 *
 * Every limit above is checked before any allocation; unknown keys,
 * duplicate keys, wrong types, missing required fields and bad enum
 * names are refused. Returns 0 on success, or -code on failure, with
 * *ret_err (if not NULL) filled in; *ret_msg is unspecified on failure.
 * The result points into `body` and into the decoder: see the file
 * comment for lifetimes. */
int gd_decode(struct gd_decoder *d, const void *header, size_t header_len, const void *body,
              size_t body_len, struct gd_msg *ret_msg, struct gd_decode_error *ret_err);

/* Decodes a status message body; `topic` is not interpreted. Same rules
 * and return values as gd_decode(). A body that is a zstd frame (§12.1)
 * is decompressed first, into the decoder: its declared content size must
 * be at most GD_MAX_BODY (else -GD_E_TOO_LARGE), and a frame that does
 * not decompress to exactly that is -GD_E_MALFORMED. */
int gd_decode_status(struct gd_decoder *d, const void *body, size_t body_len,
                     struct gd_status *ret_status, struct gd_decode_error *ret_err);

/* ---- encoder ---- */

/* Writes the 5-byte header frame for `type` into out. */
void gd_encode_header(enum gd_type type, uint8_t out[GD_HEADER_LEN]);

/* Appends the msgpack body of `m` to `body`. Fields are validated against
 * the same limits as on decode, so what we send can always be decoded.
 * Returns 0, -GD_E_TOO_LONG/-GD_E_TOO_MANY/-GD_E_BAD_VALUE for a value
 * beyond the protocol (including an empty required string or a zero
 * required id or time), -GD_E_MISSING_FIELD when a rule across fields
 * fails (SIGN without version or delivery_id, QUERY without incident_id
 * or source+external_id, worker HELLO without queues or credit),
 * -GD_E_DUPLICATE_FIELD for two counters of one name, -GD_E_UNKNOWN_TYPE
 * for a type not in enum gd_type, -GD_E_TOO_LARGE if the body would
 * exceed GD_MAX_BODY, or -GD_E_INTERNAL when out of memory; on failure
 * `body` is restored to its length before the call. Optional fields equal
 * to their default (0, empty, false, priority normal) are left out. */
int gd_encode(const struct gd_msg *m, struct gd_buf *body);

/* Same for a status message body; -GD_E_BAD_VALUE for an unknown kind. */
int gd_encode_status(const struct gd_status *s, struct gd_buf *body);

/* Batches built one item at a time, for a publisher that collects
 * transitions before it sends them: gd_encode_transition appends one item
 * (a transition map) to `items`, with the same checks and return values
 * as gd_encode_status; gd_encode_transitions appends to `body` the batch
 * body holding the `n` items encoded in `items` (0 < n <= GD_MAX_BATCH),
 * or returns -GD_E_TOO_MANY / -GD_E_TOO_LARGE. */
int gd_encode_transition(const struct gd_status_transition *t, struct gd_buf *items);
int gd_encode_transitions(uint32_t n, const struct gd_buf *items, struct gd_buf *body);
/* The same for a gauges body (0 < n <= GD_MAX_GAUGES items). */
int gd_encode_gauge(const struct gd_gauge *g, struct gd_buf *items);
int gd_encode_gauges(uint32_t n, const struct gd_buf *items, struct gd_buf *body);

/* A SUBMITS body from SUBMIT bodies already encoded, for a client that
 * keeps each order's encoded SUBMIT to send it alone or in a batch:
 * appends to `body` {"ref": ref, "items": [items[0] .. items[n-1]]} (ref
 * left out when 0), the same bytes gd_encode writes for a gd_submits of
 * those items. Each items[i] must hold exactly one body gd_encode wrote for
 * a GD_T_SUBMIT (not checked again). Returns 0, -GD_E_TOO_MANY unless
 * 0 < n <= GD_MAX_SUBMITS, -GD_E_TOO_LARGE when the body would exceed
 * GD_MAX_BODY, or -GD_E_INTERNAL when out of memory; on failure `body` is
 * restored to its length before the call. */
int gd_encode_submits(uint64_t ref, uint32_t n, const struct gd_buf *const *items,
                      struct gd_buf *body);

/* The most bytes a SUBMITS body adds to its items (map header, "ref" and
 * its uint64, "items" and an array header for up to GD_MAX_SUBMITS):
 * items adding up to GD_MAX_BODY - GD_SUBMITS_OVERHEAD bytes always fit. */
#define GD_SUBMITS_OVERHEAD (1 + 4 + 9 + 6 + 3)

/* The first bytes of a zstd frame: a status body starting with them is
 * compressed (§12.1); a MessagePack map never starts with 0x28. */
#define GD_ZSTD_MAGIC "\x28\xb5\x2f\xfd"

/* ---- names ---- */

/* The wire name of each enumeration value ("too_long", "SUBMIT", "urgent",
 * "community", "IN_PROGRESS", "sla", "resolve", "escalate"). Return NULL
 * for values out of range. */
const char *gd_code_name(enum gd_code code);
const char *gd_type_name(enum gd_type type);
const char *gd_priority_name(enum gd_priority p);
const char *gd_level_name(enum gd_level l);
const char *gd_state_name(enum gd_state s);
const char *gd_role_name(enum gd_role r);
const char *gd_deadline_kind_name(enum gd_deadline_kind k);
const char *gd_event_kind_name(enum gd_event_kind k);
const char *gd_status_kind_name(enum gd_status_kind k);

/* A one-line English explanation of an error code, for people. */
const char *gd_code_message(enum gd_code code);

/* Reverse lookups: return the value, or -1 when `s` names none. */
int gd_priority_parse(struct gd_str s);
int gd_level_parse(struct gd_str s);
int gd_state_parse(struct gd_str s);

/* ---- small helpers ---- */

static inline struct gd_str gd_str_make(const char *p, size_t len)
{
    return (struct gd_str){p, (uint32_t)len};
}

/* NUL-terminated string as a view; NULL gives the empty view. */
struct gd_str gd_str_c(const char *s);
bool gd_str_eq(struct gd_str a, struct gd_str b);
bool gd_str_eq_c(struct gd_str a, const char *s);
/* True if the bytes are valid UTF-8 without NUL bytes. */
bool gd_utf8_valid(struct gd_str s);

#endif
