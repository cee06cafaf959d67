/* model.h - the dashboard's in-memory picture of the district: org tree, queue gauges, today's
 * counts, live feed. */
#ifndef GD_DASH_MODEL_H
#define GD_DASH_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uthash.h>

#include "gdp.h"

/* The four sectors of a town command centre, plus "other" for items with
 * no (known) category: triage. Index order is the display order. */
enum dash_sector {
    DASH_PARTY = 0,
    DASH_ECONOMY,
    DASH_LIVELIHOOD,
    DASH_SAFETY,
    DASH_OTHER,
    DASH_SECTORS
};

/* Hard limits on what the status stream can make the model allocate. */
#define DASH_MAX_UNITS   200000 /* org units loaded at start */
#define DASH_MAX_QUEUES  65536  /* distinct queue names seen in gauges */
#define DASH_FEED_LEN    256    /* live feed ring (most recent items) */
#define DASH_MAX_TRACKED 262144 /* incidents remembered as "delivered once" */
#define DASH_MAX_SEEN    262144 /* (incident, version) pairs from the start-up seed */
#define DASH_LAT_BUCKETS 14     /* dispatch-latency histogram buckets (+Inf excluded) */
#define DASH_MAX_SHARDS  32     /* brokers whose status is combined (CITY_MAX_SHARDS) */

/* Today's counts for one unit's subtree and one sector (local day). */
struct dash_day {
    uint32_t received;
    uint32_t signed_;
    uint32_t resolved;
    uint32_t resolved_on_time; /* resolve at or before its resolve deadline */
    uint32_t escalated;
    uint32_t returned;
    uint32_t warned;   /* sla.warn seen */
    uint32_t breached; /* sla.breach seen */
};

struct dash_unit {
    char code[GD_MAX_CODE + 1];
    char *name; /* owned */
    enum gd_level level;
    struct dash_unit *parent; /* NULL for the district */
    struct dash_unit *child;  /* first child (towns/communities/grids) */
    struct dash_unit *next;   /* next sibling */
    uint32_t n_children;
    struct dash_day day[DASH_SECTORS];
    UT_hash_handle hh;
};

struct dash_category {
    char code[GD_MAX_CODE + 1];
    enum dash_sector sector;
    UT_hash_handle hh;
};

/* Last gauge of one queue of one shard's broker: every shard has its own
 * "triage" and district queues, so (shard, name) is the key. `unit` is the
 * org unit the queue belongs to (town for "<town>.<sector>", the district
 * for "triage"); NULL when the name matches no unit. */
struct dash_queue {
    uint32_t shard;              /* index of the broker it came from; the key starts here */
    char name[GD_MAX_QUEUE + 1]; /* zero-padded: part of the key */
    struct dash_unit *unit;
    enum dash_sector sector; /* DASH_OTHER unless "<town>.<sector>" */
    uint32_t depth, in_flight, overdue, consumers;
    int64_t oldest_age_ms;
    double in_rate, out_rate;
    int64_t updated_at; /* local clock, ms */
    UT_hash_handle hh;
};

/* Kinds of feed items beside the transitions' own event names. */
enum dash_feed_kind { DASH_FEED_TRANSITION = 0, DASH_FEED_WARN, DASH_FEED_BREACH, DASH_FEED_ALARM };

/* One line of the live feed: no personal data (the status stream has none). */
struct dash_feed_item {
    uint64_t seq; /* 1, 2, ... in arrival order */
    enum dash_feed_kind kind;
    int64_t at;
    uint64_t incident_id;
    uint32_t version;
    char event[24];             /* event kind, deadline kind, or alarm kind */
    char from[16], to[16];      /* states (transitions) */
    char unit[GD_MAX_CODE + 1]; /* location unit code (or "") */
    char queue[GD_MAX_QUEUE + 1];
    char category[GD_MAX_CODE + 1];
    char severity[16]; /* alarms */
    char message[160]; /* alarms: truncated at a character boundary */
    enum dash_sector sector;
    bool late; /* resolve after its deadline */
};

struct dash_counter {
    char name[GD_MAX_NAME + 1];
    uint64_t value;
};

/* The last `broker` message of one shard's broker. */
struct dash_broker {
    bool seen;
    int64_t at, started_at, received_at; /* received_at: local clock */
    bool db_up, active;
    uint32_t open_incidents, sessions, commit_backlog, commit_p50_us, commit_p99_us;
    uint32_t n_counters;
    struct dash_counter counters[GD_MAX_COUNTERS];
};

/* Cumulative histogram of seconds from receipt to first delivery. */
struct dash_histogram {
    uint64_t le[DASH_LAT_BUCKETS]; /* cumulative counts for dash_latency_bounds[i] */
    uint64_t count;
    double sum;
};
extern const double dash_latency_bounds[DASH_LAT_BUCKETS];

struct dash_seen;  /* (incident, version) set: opaque */
struct dash_track; /* incident id set: opaque */

struct dash_model {
    struct dash_unit *units; /* hash by code */
    struct dash_unit *root;  /* the district */
    uint32_t n_units;
    struct dash_category *categories;
    struct dash_queue *queues; /* hash by name */
    uint32_t n_queues;
    uint64_t queues_dropped; /* gauges refused: DASH_MAX_QUEUES reached */

    int32_t utc_offset_min; /* local day = calendar day at this offset */
    int64_t day_start;      /* ms, start of the local day being counted */

    struct dash_feed_item feed[DASH_FEED_LEN];
    uint64_t feed_seq; /* items ever added; feed[(seq-1) % LEN] is the newest */

    /* One broker without a city; with one, a broker per shard, in the city
     * file's order. Names are the caller's (NULL without a city). */
    uint32_t n_shards;
    const char *shard_name[DASH_MAX_SHARDS];
    struct dash_broker broker[DASH_MAX_SHARDS];
    struct dash_histogram dispatch_latency;
    struct dash_track *delivered; /* (shard, incident) whose first delivery was measured */
    uint32_t n_delivered;

    struct dash_seen *seen; /* seed dedupe by (shard, incident, version); dash_seed_done() */
    uint32_t n_seen;
    int64_t seed_cutoff[DASH_MAX_SHARDS]; /* a shard's transitions before it were in the seed */

    uint64_t transitions, gauges, sla_events, alarms, decode_errors;
    uint64_t resubscribes; /* status subscriptions made anew: the broker fell silent */
    uint64_t reseeds;      /* today's counts read again from the event log after a gap */
    uint64_t version;      /* bumped by every change: renderers cache on it */
};

/* Initialises an empty model of one broker (shard 0, unnamed) counting
 * local days at `utc_offset_min` minutes east of UTC; `now` (ms) fixes the
 * current day. */
void dash_model_init(struct dash_model *m, int32_t utc_offset_min, int64_t now);
/* Makes the model combine `n` brokers, shard i named names[i] (the strings
 * must outlive the model). Call before anything is applied. Returns 0, or
 * -E2BIG when n is 0 or over DASH_MAX_SHARDS (nothing changed). */
int dash_model_set_shards(struct dash_model *m, uint32_t n, const char *const *names);
/* Frees everything the model owns; accepts a zeroed model. */
void dash_model_fini(struct dash_model *m);

/* Adds an org unit. `parent_code` NULL or "" for the district (exactly
 * one). Units must come parents first (the loader orders by level).
 * Returns 0, -EEXIST for a duplicate code, -ENOENT for an unknown parent,
 * -E2BIG past DASH_MAX_UNITS, -EINVAL for a bad code/level, -ENOMEM. */
int dash_model_add_unit(struct dash_model *m, const char *code, const char *name,
                        enum gd_level level, const char *parent_code);
/* Adds a category with its sector name ("party", ...). Returns 0,
 * -EINVAL for an unknown sector or bad code, -ENOMEM. A repeated code
 * replaces the sector. */
int dash_model_add_category(struct dash_model *m, const char *code, const char *sector);

struct dash_unit *dash_model_unit(const struct dash_model *m, const char *code);
/* Sector of a category code; DASH_OTHER when unknown or empty. */
enum dash_sector dash_model_sector(const struct dash_model *m, struct gd_str category);
const char *dash_sector_name(enum dash_sector s); /* "party" ... "other" */

/* The start-up seed: adds `n` events of `kind` (an event kind name, or
 * "warn_sla"/"breach") counted today for location unit `unit` and
 * `category`; `on_time` of them resolved in time. Unknown units count at
 * the district. */
void dash_seed_count(struct dash_model *m, const char *unit, const char *category, const char *kind,
                     uint32_t n, uint32_t on_time);
/* Remembers one event of `shard`'s database that the seed counted, so the
 * same transition arriving on that shard's stream is not counted twice
 * (incident ids repeat across shards). Returns 0 or -E2BIG when
 * DASH_MAX_SEEN are remembered (the pair is then not remembered). */
int dash_seed_mark(struct dash_model *m, uint32_t shard, uint64_t incident_id, uint32_t version);
/* `shard`'s transitions stamped before `cutoff` (ms) were all in the seed. */
void dash_seed_set_cutoff(struct dash_model *m, uint32_t shard, int64_t cutoff);
/* Forgets the seed's pairs (call when no stream message can predate it). */
void dash_seed_done(struct dash_model *m);

/* Zeroes today's counts (and forgets the seed's marks), before they are
 * seeded again from the event log: after a gap in the status stream. */
void dash_model_reset_day(struct dash_model *m);

/* Rolls the day counters over when `now` is in a later local day. */
void dash_model_tick(struct dash_model *m, int64_t now);

/* Applies one decoded status message received from shard `shard`'s broker
 * (0 without a city; must be below n_shards) on `topic` at local time
 * `now` (ms). Returns true when the model changed. */
bool dash_model_apply(struct dash_model *m, uint32_t shard, const char *topic, size_t topic_len,
                      const struct gd_status *st, int64_t now);
/* Applies a gauge of `shard` (from a queue.* message or a GAUGES reply). */
void dash_model_gauge(struct dash_model *m, uint32_t shard, const struct gd_gauge *g, int64_t now);

/* Sums of the queues in `u`'s subtree, per sector (town sector queues by
 * their sector, other queues under DASH_OTHER) in out[], and their total
 * in *ret_total. oldest_age_ms is the maximum. */
void dash_model_queue_totals(const struct dash_model *m, const struct dash_unit *u,
                             struct dash_queue out[DASH_SECTORS], struct dash_queue *ret_total);

/* A counter of broker `b`, or 0 when absent. */
uint64_t dash_broker_counter(const struct dash_broker *b, const char *name);

/* True when broker `b`'s status arrived within the last 10 s at `now`. */
bool dash_broker_up(const struct dash_broker *b, int64_t now);

/* The whole city's broker state in *ret: seen when any shard's broker was,
 * db_up and active when every shard's are (an unseen one's are not), and
 * of the shards seen: open incidents, sessions, backlog and counters summed
 * (counters by name, the first GD_MAX_COUNTERS names), at and received_at
 * the oldest, started_at and commit percentiles the largest. With one
 * broker, a copy of it. */
void dash_model_city_broker(const struct dash_model *m, struct dash_broker *ret);

/* The newest feed item with seq > after, oldest first: calls fn for each
 * (at most DASH_FEED_LEN). */
void dash_model_feed_since(const struct dash_model *m, uint64_t after,
                           void (*fn)(const struct dash_feed_item *it, void *arg), void *arg);

#endif
