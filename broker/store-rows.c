/* store-rows.c - the rows of the incident writes and the event log: statements, their row types, a batch's parameters. */
#include "store-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"

/* ---- statements ----
 *
 * Each write statement is described by its columns: the statement's text,
 * and a composite type of its rows made on every connection (pg_temp),
 * come from the list. A batch fills one binary array per column
 * (pgarray.h) and sends them as one array of rows, expanded with
 * unnest(). A column is added with one line in its list and one in the
 * function that fills a row. (Temporary types need the TEMPORARY
 * privilege on the database, which PUBLIC has unless revoked; the CSV
 * imports' temporary tables need it too.) */

struct column {
    const char *name;       /* of the table's column, and of the unnested one */
    enum pgarray_type type; /* of the array parameter */
    const char *value;      /* what is stored, in terms of the unnested columns; NULL: name */
};

/* Attachments travel as one JSON array text per row (unnest() cannot
 * expand an array of arrays of different lengths). */
#define ATTACHMENTS_VALUE                              \
    "CASE WHEN attachments IS NULL THEN '{}'::text[] " \
    "ELSE ARRAY(SELECT json_array_elements_text(attachments::json)) END"

/* STORE_NEW: the incident row. */
enum {
    NEW_ID,
    NEW_SOURCE,
    NEW_EXTERNAL_ID,
    NEW_CATEGORY,
    NEW_PRIORITY,
    NEW_STATE,
    NEW_VERSION,
    NEW_QUEUE,
    NEW_OWNER_UNIT,
    NEW_OWNER_LEVEL,
    NEW_LOCATION_UNIT,
    NEW_ADDRESS,
    NEW_LAT,
    NEW_LON,
    NEW_DESCRIPTION,
    NEW_REPORTER_NAME,
    NEW_REPORTER_PHONE,
    NEW_REPORTER_ADDRESS,
    NEW_ATTACHMENTS,
    NEW_REPORTED_AT,
    NEW_RECEIVED_AT,
    NEW_SIGN_DUE,
    NEW_RESOLVE_DUE,
    NEW_UPDATED_AT,
    NEW_SIGN_WARN,
    NEW_RESOLVE_WARN,
    NEW_LOCATED_BY,
    NEW_COLUMNS
};
static const struct column new_columns[NEW_COLUMNS] = {
    [NEW_ID] = {"id", PGARRAY_INT8, NULL},
    [NEW_SOURCE] = {"source", PGARRAY_TEXT, NULL},
    [NEW_EXTERNAL_ID] = {"external_id", PGARRAY_TEXT, NULL},
    [NEW_CATEGORY] = {"category", PGARRAY_TEXT, NULL},
    [NEW_PRIORITY] = {"priority", PGARRAY_TEXT, NULL},
    [NEW_STATE] = {"state", PGARRAY_TEXT, NULL},
    [NEW_VERSION] = {"version", PGARRAY_INT4, NULL},
    [NEW_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [NEW_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [NEW_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [NEW_LOCATION_UNIT] = {"location_unit", PGARRAY_TEXT, NULL},
    [NEW_ADDRESS] = {"address", PGARRAY_TEXT, NULL},
    [NEW_LAT] = {"lat", PGARRAY_FLOAT8, NULL},
    [NEW_LON] = {"lon", PGARRAY_FLOAT8, NULL},
    [NEW_DESCRIPTION] = {"description", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_NAME] = {"reporter_name", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_PHONE] = {"reporter_phone", PGARRAY_TEXT, NULL},
    [NEW_REPORTER_ADDRESS] = {"reporter_address", PGARRAY_TEXT, NULL},
    [NEW_ATTACHMENTS] = {"attachments", PGARRAY_TEXT, ATTACHMENTS_VALUE},
    [NEW_REPORTED_AT] = {"reported_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RECEIVED_AT] = {"received_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_UPDATED_AT] = {"updated_at", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_SIGN_WARN] = {"sign_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_RESOLVE_WARN] = {"resolve_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [NEW_LOCATED_BY] = {"located_by", PGARRAY_TEXT, NULL},
};

/* STORE_TRANSITION: the projection after the last change of an incident
 * in the batch. The first column is the key; the rest are set. */
enum {
    UPD_ID,
    UPD_STATE,
    UPD_VERSION,
    UPD_QUEUE,
    UPD_OWNER_UNIT,
    UPD_OWNER_LEVEL,
    UPD_SIGN_DUE,
    UPD_RESOLVE_DUE,
    UPD_ATTEMPTS,
    UPD_ESCALATIONS,
    UPD_FLAGGED,
    UPD_UPDATED_AT,
    UPD_SIGN_WARN,
    UPD_RESOLVE_WARN,
    UPD_EXTENSION_PENDING,
    UPD_COLUMNS
};
static const struct column update_columns[UPD_COLUMNS] = {
    [UPD_ID] = {"id", PGARRAY_INT8, NULL},
    [UPD_STATE] = {"state", PGARRAY_TEXT, NULL},
    [UPD_VERSION] = {"version", PGARRAY_INT4, NULL},
    [UPD_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [UPD_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [UPD_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [UPD_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_ATTEMPTS] = {"attempts", PGARRAY_INT4, NULL},
    [UPD_ESCALATIONS] = {"escalations", PGARRAY_INT4, NULL},
    [UPD_FLAGGED] = {"flagged", PGARRAY_BOOL, NULL},
    [UPD_UPDATED_AT] = {"updated_at", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_SIGN_WARN] = {"sign_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_RESOLVE_WARN] = {"resolve_warn", PGARRAY_TIMESTAMPTZ, NULL},
    [UPD_EXTENSION_PENDING] = {"extension_pending", PGARRAY_TIMESTAMPTZ, NULL},
};

/* Every change: its event row. */
enum {
    EV_INCIDENT_ID,
    EV_VERSION,
    EV_AT,
    EV_KIND,
    EV_FROM_STATE,
    EV_TO_STATE,
    EV_QUEUE,
    EV_OWNER_UNIT,
    EV_OWNER_LEVEL,
    EV_ACTOR,
    EV_NOTE,
    EV_SIGN_DUE,
    EV_RESOLVE_DUE,
    EV_LOCATION_UNIT,
    EV_LOCATED_BY,
    EV_COLUMNS
};
static const struct column event_columns[EV_COLUMNS] = {
    [EV_INCIDENT_ID] = {"incident_id", PGARRAY_INT8, NULL},
    [EV_VERSION] = {"version", PGARRAY_INT4, NULL},
    [EV_AT] = {"at", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_KIND] = {"kind", PGARRAY_TEXT, NULL},
    [EV_FROM_STATE] = {"from_state", PGARRAY_TEXT, NULL},
    [EV_TO_STATE] = {"to_state", PGARRAY_TEXT, NULL},
    [EV_QUEUE] = {"queue", PGARRAY_TEXT, NULL},
    [EV_OWNER_UNIT] = {"owner_unit", PGARRAY_TEXT, NULL},
    [EV_OWNER_LEVEL] = {"owner_level", PGARRAY_TEXT, NULL},
    [EV_ACTOR] = {"actor", PGARRAY_TEXT, NULL},
    [EV_NOTE] = {"note", PGARRAY_TEXT, NULL},
    [EV_SIGN_DUE] = {"sign_due", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_RESOLVE_DUE] = {"resolve_due", PGARRAY_TIMESTAMPTZ, NULL},
    [EV_LOCATION_UNIT] = {"location_unit", PGARRAY_TEXT, NULL},
    [EV_LOCATED_BY] = {"located_by", PGARRAY_TEXT, NULL},
};

/* Every statement is prepared once per connection, and planned once
 * (generic plans): parsing and planning them for each batch would cost
 * more than a small batch's rows (for the update, a quarter of a
 * millisecond: more than it takes to run). The update is a join, whose
 * generic plan depends on the table: one made while the table was small
 * (a seq scan of incident hashed against the rows) would go on scanning
 * the whole table for every batch as the table grows, until PostgreSQL
 * next analyses it. So the write connections plan with seq scans, hash
 * and merge joins off (session_make): the only plan left is the one that
 * is right at every size, a nested loop probing the primary key for each
 * row. Everything else these connections run is a lookup by key, planned
 * the same way with or without those settings. */
static const struct {
    const char *name; /* of the prepared statement */
    const char *row_type; /* of its rows, a temporary type of each connection */
    const struct column *columns;
    int n;
} statements[ST_COUNT] = {
    [ST_NEW] = {"gd_new", "gd_new_row", new_columns, NEW_COLUMNS},
    [ST_UPDATE] = {"gd_update", "gd_update_row", update_columns, UPD_COLUMNS},
    [ST_EVENTS] = {"gd_events", "gd_event_row", event_columns, EV_COLUMNS},
};

#define MAX_COLUMNS NEW_COLUMNS /* the most of any statement */

/* The text of statement `st` (`type`: false) or of the CREATE TYPE of
 * its rows (true), malloc'd; NULL when out of memory. */
static char *sql_make(enum statement st, bool type)
{
    const struct column *cols = statements[st].columns;
    int n = statements[st].n;
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        return NULL;
    if (type) {
        fprintf(f, "CREATE TYPE pg_temp.%s AS (", statements[st].row_type);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s %s", i ? ", " : "", cols[i].name, pgarray_sql_element(cols[i].type));
        fputc(')', f);
    } else if (st == ST_UPDATE) {
        /* guarded by version: sending a batch twice changes nothing more */
        fputs("UPDATE incident i SET ", f);
        for (int i = 1; i < n; i++)
            fprintf(f, "%s%s = u.%s", i > 1 ? ", " : "", cols[i].name,
                    cols[i].value ? cols[i].value : cols[i].name);
        fprintf(f, " FROM unnest($1::pg_temp.%s[]) AS u", statements[st].row_type);
        fprintf(f, " WHERE i.%s = u.%s AND i.version < u.version", cols[0].name, cols[0].name);
    } else {
        fprintf(f, "INSERT INTO %s (", st == ST_NEW ? "incident" : "incident_event");
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", cols[i].name);
        fputs(") SELECT ", f);
        for (int i = 0; i < n; i++)
            fprintf(f, "%s%s", i ? ", " : "", cols[i].value ? cols[i].value : cols[i].name);
        fprintf(f, " FROM unnest($1::pg_temp.%s[]) AS r", statements[st].row_type);
    }
    if (fclose(f) != 0) {
        free(sql);
        return NULL;
    }
    return sql;
}

/* What each new write connection runs first, in one text: the CREATE
 * TYPEs of every statement's rows, and the planner settings the prepared
 * statements are planned under (above); NULL when out of memory. It runs
 * over a blocking connection on the loop, and creating a type writes the
 * catalogs: with synchronous replication that commit would wait for a
 * synchronous standby, and right after a failover (Patroni's strict
 * synchronous mode) there is none for a second or more, the loop standing
 * still all that time. Types of one session need not outlive its server,
 * so that commit does not wait for the standby. */
static char *session_make(void)
{
    char *sql = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&sql, &len);
    if (!f)
        return NULL;
    fputs("BEGIN; SET LOCAL synchronous_commit TO local; ", f);
    bool ok = true;
    for (int i = 0; ok && i < ST_COUNT; i++) {
        char *one = sql_make((enum statement)i, true);
        ok = one != NULL;
        if (ok)
            fprintf(f, "%s; ", one);
        free(one);
    }
    fputs("COMMIT; SET plan_cache_mode TO force_generic_plan; SET enable_seqscan TO off; "
          "SET enable_hashjoin TO off; SET enable_mergejoin TO off",
          f);
    if (fclose(f) != 0 || !ok) {
        free(sql);
        return NULL;
    }
    return sql;
}

/* One statement's rows being built: an array per column, made into one
 * array of rows for the lane that sends them (pgarray_rows). */
struct params {
    struct pgarray a[MAX_COLUMNS];
    struct pgarray rows;
};

static void params_begin(struct params *p, enum statement st)
{
    for (int i = 0; i < statements[st].n; i++)
        pgarray_begin(&p->a[i], statements[st].columns[i].type);
}

/* Returns 0, or -ENOMEM when a parameter could not be built. */
static int params_end(struct params *p, enum statement st)
{
    for (int i = 0; i < statements[st].n; i++) {
        if (pgarray_end(&p->a[i]) < 0)
            return -ENOMEM;
    }
    return 0;
}

/* The write statements' text, and the parameters of the batch being
 * sent (one at a time, by whichever lane sends). */
struct batch {
    char *sql[ST_COUNT];
    char *session_sql; /* what each new connection runs first */
    struct params params[ST_COUNT];
    struct gd_buf scratch; /* a row's attachments as JSON */
};

static void params_fini(struct params *p)
{
    for (int i = 0; i < MAX_COLUMNS; i++)
        pgarray_fini(&p->a[i]);
    pgarray_fini(&p->rows);
}

/* A JSON array of strings, into a's buffer (reset first); false when out of memory. */
static bool json_strings(struct gd_buf *b, char *const *v, uint32_t n)
{
    gd_buf_reset(b);
    bool ok = gd_buf_append(b, "[", 1) == 0;
    for (uint32_t i = 0; ok && i < n; i++) {
        ok = (!i || gd_buf_append(b, ",", 1) == 0) && gd_buf_append(b, "\"", 1) == 0;
        for (const unsigned char *p = (const unsigned char *)v[i]; ok && *p; p++) {
            char esc[8];
            if (*p == '"' || *p == '\\') {
                esc[0] = '\\';
                esc[1] = (char)*p;
                ok = gd_buf_append(b, esc, 2) == 0;
            } else if (*p < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", *p);
                ok = gd_buf_append(b, esc, 6) == 0;
            } else {
                ok = gd_buf_append(b, (const char *)p, 1) == 0;
            }
        }
        ok = ok && gd_buf_append(b, "\"", 1) == 0;
    }
    return ok && gd_buf_append(b, "]", 2) == 0; /* with the NUL */
}

static void add_new_row(struct params *p, struct gd_buf *scratch, const struct store_change *c)
{
    const struct incident *inc = c->inc;
    struct pgarray *a = p->a;
    pgarray_int8(&a[NEW_ID], (int64_t)inc->id);
    pgarray_text(&a[NEW_SOURCE], inc->source);
    pgarray_text(&a[NEW_EXTERNAL_ID], inc->external_id);
    pgarray_text(&a[NEW_CATEGORY], inc->category_code);
    pgarray_text(&a[NEW_PRIORITY], gd_priority_name(inc->priority));
    pgarray_text(&a[NEW_STATE], gd_state_name(c->to));
    pgarray_int4(&a[NEW_VERSION], (int32_t)c->version);
    pgarray_text(&a[NEW_QUEUE], c->queue);
    pgarray_text(&a[NEW_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[NEW_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_text(&a[NEW_LOCATION_UNIT], inc->location_code);
    pgarray_text(&a[NEW_ADDRESS], inc->address);
    if (inc->has_coords) {
        pgarray_float8(&a[NEW_LAT], inc->lat);
        pgarray_float8(&a[NEW_LON], inc->lon);
    } else {
        pgarray_null(&a[NEW_LAT]);
        pgarray_null(&a[NEW_LON]);
    }
    pgarray_text(&a[NEW_DESCRIPTION], inc->description);
    pgarray_text(&a[NEW_REPORTER_NAME], inc->reporter_name);
    pgarray_text(&a[NEW_REPORTER_PHONE], inc->reporter_phone);
    pgarray_text(&a[NEW_REPORTER_ADDRESS], inc->reporter_address);
    if (!inc->n_attachments)
        pgarray_null(&a[NEW_ATTACHMENTS]);
    else if (json_strings(scratch, inc->attachments, inc->n_attachments))
        pgarray_text(&a[NEW_ATTACHMENTS], scratch->data);
    else
        a[NEW_ATTACHMENTS].failed = true;
    pgarray_time_ms(&a[NEW_REPORTED_AT], inc->reported_at);
    pgarray_time_ms(&a[NEW_RECEIVED_AT], inc->received_at);
    pgarray_time_ms(&a[NEW_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[NEW_RESOLVE_DUE], c->resolve_due);
    pgarray_time_ms(&a[NEW_UPDATED_AT], c->at);
    pgarray_time_ms(&a[NEW_SIGN_WARN], c->sign_warn);
    pgarray_time_ms(&a[NEW_RESOLVE_WARN], c->resolve_warn);
    pgarray_text(&a[NEW_LOCATED_BY], locate_method_name((enum locate_method)inc->located_by));
}

static void add_update_row(struct params *p, const struct store_change *c)
{
    struct pgarray *a = p->a;
    pgarray_int8(&a[UPD_ID], (int64_t)c->incident_id);
    pgarray_text(&a[UPD_STATE], gd_state_name(c->to));
    pgarray_int4(&a[UPD_VERSION], (int32_t)c->version);
    pgarray_text(&a[UPD_QUEUE], c->queue);
    pgarray_text(&a[UPD_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[UPD_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_time_ms(&a[UPD_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[UPD_RESOLVE_DUE], c->resolve_due);
    pgarray_int4(&a[UPD_ATTEMPTS], (int32_t)c->attempts);
    pgarray_int4(&a[UPD_ESCALATIONS], (int32_t)c->escalations);
    pgarray_bool(&a[UPD_FLAGGED], c->flagged);
    pgarray_time_ms(&a[UPD_UPDATED_AT], c->at);
    pgarray_time_ms(&a[UPD_SIGN_WARN], c->sign_warn);
    pgarray_time_ms(&a[UPD_RESOLVE_WARN], c->resolve_warn);
    pgarray_time_ms(&a[UPD_EXTENSION_PENDING], c->extension_pending);
}

static void add_event_row(struct params *p, const struct store_change *c)
{
    struct pgarray *a = p->a;
    bool first = c->kind == STORE_NEW;
    pgarray_int8(&a[EV_INCIDENT_ID], (int64_t)c->incident_id);
    pgarray_int4(&a[EV_VERSION], (int32_t)c->version);
    pgarray_time_ms(&a[EV_AT], c->at);
    pgarray_text(&a[EV_KIND], gd_event_kind_name(c->event));
    if (first)
        pgarray_null(&a[EV_FROM_STATE]);
    else
        pgarray_text(&a[EV_FROM_STATE], gd_state_name(c->from));
    pgarray_text(&a[EV_TO_STATE], gd_state_name(c->to));
    pgarray_text(&a[EV_QUEUE], c->queue);
    pgarray_text(&a[EV_OWNER_UNIT], c->owner_unit);
    pgarray_text(&a[EV_OWNER_LEVEL], gd_level_name(c->owner_level));
    pgarray_text(&a[EV_ACTOR], c->actor);
    pgarray_text(&a[EV_NOTE], c->note);
    /* the deadlines in force after the event, for the reports */
    pgarray_time_ms(&a[EV_SIGN_DUE], c->sign_due);
    pgarray_time_ms(&a[EV_RESOLVE_DUE], c->resolve_due);
    /* where the incident was located, and how: on its receive event */
    pgarray_text(&a[EV_LOCATION_UNIT], first ? c->inc->location_code : "");
    pgarray_text(&a[EV_LOCATED_BY],
                 first ? locate_method_name((enum locate_method)c->inc->located_by) : "");
}

int store__rows_build(struct batch *s, const struct store_change *changes,
                      const uint32_t row_type[ST_COUNT], bool has[ST_COUNT])
{
    for (int i = 0; i < ST_COUNT; i++) {
        params_begin(&s->params[i], (enum statement)i);
        has[i] = false;
    }
    for (const struct store_change *c = changes; c; c = c->next) {
        add_event_row(&s->params[ST_EVENTS], c);
        has[ST_EVENTS] = true;
        if (c->kind == STORE_NEW) {
            add_new_row(&s->params[ST_NEW], &s->scratch, c);
            has[ST_NEW] = true;
            continue;
        }
        /* The projection: only the last change of each incident in this
         * batch is written (UPDATE ... FROM cannot apply two rows to one
         * target row). */
        bool last = true;
        for (const struct store_change *d = c->next; d; d = d->next)
            if (d->incident_id == c->incident_id && d->kind == STORE_TRANSITION) {
                last = false;
                break;
            }
        if (last) {
            add_update_row(&s->params[ST_UPDATE], c);
            has[ST_UPDATE] = true;
        }
    }
    for (int i = 0; i < ST_COUNT; i++)
        if (has[i] && params_end(&s->params[i], (enum statement)i) < 0)
            return -ENOMEM;
    for (int i = 0; i < ST_COUNT; i++) {
        struct params *p = &s->params[i];
        if (has[i] && pgarray_rows(&p->rows, row_type[i], p->a, statements[i].n) < 0)
            return -ENOMEM;
    }
    return 0;
}

int store__rows_new(struct batch **ret)
{
    struct batch *b = calloc(1, sizeof(*b));
    bool ok = b != NULL;
    for (int i = 0; ok && i < ST_COUNT; i++)
        ok = (b->sql[i] = sql_make((enum statement)i, false)) != NULL;
    if (ok)
        ok = (b->session_sql = session_make()) != NULL;
    if (!ok) {
        store__rows_free(b);
        return -ENOMEM;
    }
    *ret = b;
    return 0;
}

void store__rows_free(struct batch *b)
{
    if (!b)
        return;
    free(b->session_sql);
    for (int i = 0; i < ST_COUNT; i++) {
        free(b->sql[i]);
        params_fini(&b->params[i]);
    }
    gd_buf_fini(&b->scratch);
    free(b);
}

const char *store__rows_session_sql(const struct batch *b)
{
    return b->session_sql;
}

const char *store__rows_sql(const struct batch *b, enum statement st)
{
    return b->sql[st];
}

const char *store__statement_name(enum statement st)
{
    return statements[st].name;
}

const char *store__statement_row_type(enum statement st)
{
    return statements[st].row_type;
}

const struct pgarray *store__rows_param(const struct batch *b, enum statement st)
{
    return &b->params[st].rows;
}
