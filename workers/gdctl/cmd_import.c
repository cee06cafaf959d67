/* cmd_import.c - gdctl import: COPY a CSV (or GeoJSON) file into a staging table and run its
 * gd_import_* function, in one transaction. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gdctl.h"

struct kind {
    const char *name;
    const char *table;
    const char *columns;
    const char *function; /* returns the row count */
    const char *what;     /* "org units" */
    bool geo;             /* read by the broker: remind of SIGHUP; GeoJSON accepted */
};

/* Staging tables and functions: broker/sql/0002_import.sql, 0003_working_hours.sql,
 * 0008_geo_import.sql. */
static const struct kind kinds[] = {
    {"org", "import_org_unit", "code, name, level, kind, parent, households",
     "gd_import_org_units()", "org units", false},
    {"categories", "import_category",
     "code, name, sector, admitted_level, default_priority, group_name", "gd_import_categories()",
     "categories", false},
    {"sla", "import_category_sla",
     "category, priority, basis, sign_limit_s, resolve_limit_s, warn_percent, max_extension_s",
     "gd_import_categories()", "SLA rows", false},
    {"calendar", "import_calendar_day", "day, working, name", "gd_import_calendar()",
     "calendar days", false},
    {"hours", "import_working_hours", "starts, ends", "gd_import_working_hours()",
     "working periods", false},
    {"boundaries", "import_unit_boundary", "code, wkt", "gd_import_boundaries()", "unit boundaries",
     true},
    {"addresses", "import_address_point", "road, number, lon, lat, label", "gd_import_addresses()",
     "addresses", true},
};

/* Limits of a GeoJSON file, which gdctl reads whole into memory (jansson
 * takes several times the file's size). The feature and vertex limits are
 * those of broker/sql/0008_geo_import.sql (gd_geo_max_features(),
 * gd_geo_max_vertices()); a CSV file is streamed and limited there. */
#define GEOJSON_MAX_BYTES    (64L * 1024 * 1024)
#define GEOJSON_MAX_FEATURES 100000
#define GEOJSON_MAX_VERTICES 50000

static void on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "gdctl: %s: %s\n", PQresultErrorField(res, PG_DIAG_SEVERITY), msg ? msg : "");
}

/* Reports a failed statement with its detail and hint; data problems
 * (class 22, 23: the file's content) are EXIT_REFUSED, a lost connection
 * EXIT_UNAVAILABLE. */
static int db_fail(struct gdctl *g, PGconn *db, const PGresult *res, const char *what)
{
    if (PQstatus(db) != CONNECTION_OK)
        return gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "%s: connection lost: %s", what,
                          PQerrorMessage(db));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
    const char *hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : NULL;
    bool data = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
    return gdctl_fail(g, data ? EXIT_REFUSED : EXIT_LOCAL, data ? "refused" : "database",
                      "%s failed; nothing was changed: %s%s%s%s%s%s%s", what,
                      msg ? msg : PQerrorMessage(db), detail ? "\n" : "", detail ? detail : "",
                      context && strstr(context, "COPY") ? "\n" : "",
                      context && strstr(context, "COPY") ? context : "", hint ? "\nhint: " : "",
                      hint ? hint : "");
}

static int exec_ok(PGconn *db, const char *sql, PGresult **ret)
{
    PGresult *res = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(res);
    *ret = res;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
}

/* The column list of an address CSV file: `label` is optional, so the
 * header line decides (HEADER match then checks it). */
static const char *address_columns(FILE *f)
{
    char line[256];
    const char *cols = "road, number, lon, lat, label";
    if (fgets(line, sizeof(line), f)) {
        char *p = line;
        if (memcmp(p, "\xef\xbb\xbf", 3) == 0)
            p += 3;
        p[strcspn(p, "\r\n")] = '\0';
        if (strcmp(p, "road,number,lon,lat") == 0)
            cols = "road, number, lon, lat";
    }
    rewind(f);
    return cols;
}

/* COPY `path` into `k`'s staging table. Returns EXIT_OK or a reported
 * failure. A UTF-8 byte order mark (Excel) is skipped. */
static int copy_file(struct gdctl *g, PGconn *db, const struct kind *k, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gdctl_fail(g, EXIT_LOCAL, "local", "cannot read %s: %s", path, strerror(errno));
    char sql[512];
    snprintf(sql, sizeof(sql),
             "COPY %s (%s) FROM STDIN WITH (FORMAT csv, HEADER match, ENCODING 'UTF8')", k->table,
             strcmp(k->name, "addresses") == 0 ? address_columns(f) : k->columns);
    int rc = EXIT_OK;
    PGresult *res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = db_fail(g, db, res, "COPY");
        PQclear(res);
        goto close_file;
    }
    PQclear(res);
    char buf[65536];
    size_t n;
    bool first = true;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
        const char *p = buf;
        if (first && n >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0) {
            p += 3;
            n -= 3;
        }
        first = false;
        if (PQputCopyData(db, p, (int)n) != 1)
            break;
    }
    const char *abort_msg = ferror(f) ? "gdctl could not read the file" : NULL;
    if (abort_msg)
        rc = gdctl_fail(g, EXIT_LOCAL, "local", "cannot read %s: %s", path, strerror(errno));
    PQputCopyEnd(db, abort_msg);
    while ((res = PQgetResult(db)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == EXIT_OK)
            rc = db_fail(g, db, res, "COPY");
        PQclear(res);
    }
close_file:
    fclose(f);
    return rc;
}

/* One COPY text-format row being built. */
struct copy_row {
    char *buf;
    size_t len, cap;
    bool oom;
};

static void row_put(struct copy_row *r, const char *s, size_t n)
{
    if (r->oom)
        return;
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->buf, cap);
        if (!b) {
            r->oom = true;
            return;
        }
        r->buf = b;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
}

/* Appends field `s` (NULL: SQL NULL), escaped for COPY's text format, and
 * the tab or newline after it. */
static void row_field(struct copy_row *r, const char *s, bool last)
{
    if (!s) {
        row_put(r, "\\N", 2);
    } else {
        for (const char *p = s; *p; p++) {
            const char *esc = *p == '\\'   ? "\\\\"
                              : *p == '\t' ? "\\t"
                              : *p == '\n' ? "\\n"
                              : *p == '\r' ? "\\r"
                                           : NULL;
            if (esc)
                row_put(r, esc, 2);
            else
                row_put(r, p, 1);
        }
    }
    row_put(r, last ? "\n" : "\t", 1);
}

/* How many positions (arrays of numbers) GeoJSON coordinates `v` hold,
 * counting no further than just past `limit`. */
static long count_positions(const json_t *v, long limit)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return 0;
    if (json_is_number(json_array_get(v, 0)))
        return 1;
    long n = 0;
    for (size_t i = 0; i < json_array_size(v) && n <= limit; i++)
        n += count_positions(json_array_get(v, i), limit - n);
    return n;
}

/* Property `key` of a feature as text: a string as it is, an integer in
 * decimal (spreadsheets export codes as numbers). NULL when absent or null;
 * *bad is set when it is of another type. */
static const char *prop_text(const json_t *props, const char *key, char out[32], bool *bad)
{
    const json_t *v = json_is_object(props) ? json_object_get(props, key) : NULL;
    if (!v || json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(out, 32, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return out;
    }
    *bad = true;
    return NULL;
}

/* Builds the staging row of feature `feat` of a boundary file into `r`. */
static void boundary_row(struct copy_row *r, const json_t *feat)
{
    char num[32], what[160];
    const char *problem = NULL;
    char *geojson = NULL;
    bool bad = false;
    const json_t *props = json_object_get(feat, "properties");
    const json_t *geom = json_object_get(feat, "geometry");
    const char *code = prop_text(props, "code", num, &bad);
    if (!json_is_object(feat) || !json_is_string(json_object_get(feat, "type")) ||
        strcmp(json_string_value(json_object_get(feat, "type")), "Feature") != 0) {
        problem = "is not a GeoJSON Feature (an object with \"type\": \"Feature\")";
    } else if (bad) {
        problem = "properties.code is neither a string nor an integer";
    } else if (!json_is_object(geom)) {
        problem = "has no geometry";
    } else {
        long n = count_positions(json_object_get(geom, "coordinates"), GEOJSON_MAX_VERTICES);
        if (n > GEOJSON_MAX_VERTICES) {
            snprintf(what, sizeof(what),
                     "has more than %d vertices; at most %d are allowed per feature (simplify it)",
                     GEOJSON_MAX_VERTICES, GEOJSON_MAX_VERTICES);
            problem = what;
        } else if (!(geojson = json_dumps(geom, JSON_COMPACT))) {
            r->oom = true;
        }
    }
    row_field(r, code, false);
    row_field(r, geojson, false);
    row_field(r, problem, false);
    row_field(r, "t", true);
    free(geojson);
}

/* Builds the staging row of feature `feat` of an address file into `r`. */
static void address_row(struct copy_row *r, const json_t *feat)
{
    char nroad[32], nnum[32], lon[64] = "", lat[64] = "";
    const char *problem = NULL;
    bool bad = false;
    const json_t *props = json_object_get(feat, "properties");
    const json_t *geom = json_object_get(feat, "geometry");
    const char *road = prop_text(props, "road", nroad, &bad);
    const char *number = prop_text(props, "number", nnum, &bad);
    const json_t *label = json_is_object(props) ? json_object_get(props, "label") : NULL;
    const json_t *xy = json_object_get(geom, "coordinates");
    if (!json_is_object(feat) || !json_is_string(json_object_get(feat, "type")) ||
        strcmp(json_string_value(json_object_get(feat, "type")), "Feature") != 0)
        problem = "is not a GeoJSON Feature (an object with \"type\": \"Feature\")";
    else if (bad)
        problem = "properties.road or properties.number is neither a string nor an integer";
    else if (label && !json_is_string(label) && !json_is_null(label))
        problem = "properties.label is not a string";
    else if (!json_is_object(geom) || !json_is_string(json_object_get(geom, "type")) ||
             strcmp(json_string_value(json_object_get(geom, "type")), "Point") != 0 ||
             !json_is_array(xy) || json_array_size(xy) < 2 ||
             !json_is_number(json_array_get(xy, 0)) || !json_is_number(json_array_get(xy, 1)))
        problem = "geometry is not a Point with coordinates [lon, lat]";
    if (!problem) {
        snprintf(lon, sizeof(lon), "%.10f", json_number_value(json_array_get(xy, 0)));
        snprintf(lat, sizeof(lat), "%.10f", json_number_value(json_array_get(xy, 1)));
    }
    row_field(r, road, false);
    row_field(r, number, false);
    row_field(r, problem ? NULL : lon, false);
    row_field(r, problem ? NULL : lat, false);
    row_field(r, json_is_string(label) ? json_string_value(label) : NULL, false);
    row_field(r, problem, false);
    row_field(r, "t", true);
}

/* Reads GeoJSON FeatureCollection `path` and COPYs one staging row per
 * feature into `k`'s table (boundaries or addresses); what is wrong with a
 * single feature goes into its row for the import function to report with
 * the others. Returns EXIT_OK, or a reported failure: EXIT_REFUSED when the
 * file is not such a collection or exceeds the limits, EXIT_LOCAL when it
 * cannot be read or memory runs out. */
static int copy_geojson(struct gdctl *g, PGconn *db, const struct kind *k, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return gdctl_fail(g, EXIT_LOCAL, "local", "cannot read %s: %s", path, strerror(errno));
    int rc = EXIT_OK;
    json_t *root = NULL;
    struct copy_row row = {0};
    struct stat st;
    if (fstat(fileno(f), &st) < 0) {
        rc = gdctl_fail(g, EXIT_LOCAL, "local", "cannot read %s: %s", path, strerror(errno));
        goto close_file;
    }
    if (st.st_size > GEOJSON_MAX_BYTES) {
        rc = gdctl_fail(g, EXIT_REFUSED, "refused",
                        "import refused, nothing was changed: %s is %lld bytes; a GeoJSON file may "
                        "have at most %ld (split it, e.g. by "
                        "town, or use CSV)",
                        path, (long long)st.st_size, GEOJSON_MAX_BYTES);
        goto close_file;
    }
    json_error_t err;
    root = json_loadf(f, 0, &err);
    if (!root) {
        rc = gdctl_fail(
            g, EXIT_REFUSED, "refused",
            "import refused, nothing was changed: %s is not JSON: line %d, column %d: %s", path,
            err.line, err.column, err.text);
        goto close_file;
    }
    const json_t *type = json_object_get(root, "type");
    const json_t *features = json_object_get(root, "features");
    if (!json_is_string(type) || strcmp(json_string_value(type), "FeatureCollection") != 0 ||
        !json_is_array(features)) {
        rc = gdctl_fail(g, EXIT_REFUSED, "refused",
                        "import refused, nothing was changed: %s is not a GeoJSON "
                        "FeatureCollection (an object with \"type\": "
                        "\"FeatureCollection\" and a \"features\" array)",
                        path);
        goto free_json;
    }
    if (json_array_size(features) > GEOJSON_MAX_FEATURES) {
        rc = gdctl_fail(g, EXIT_REFUSED, "refused",
                        "import refused, nothing was changed: %s has %zu features; at most %d are "
                        "allowed in one import (split it)",
                        path, json_array_size(features), GEOJSON_MAX_FEATURES);
        goto free_json;
    }
    bool boundaries = strcmp(k->name, "boundaries") == 0;
    char sql[256];
    snprintf(sql, sizeof(sql), "COPY %s (%s) FROM STDIN WITH (FORMAT text, ENCODING 'UTF8')",
             k->table,
             boundaries ? "code, geojson, problem, feature"
                        : "road, number, lon, lat, label, problem, feature");
    PGresult *res = PQexec(db, sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        rc = db_fail(g, db, res, "COPY");
        PQclear(res);
        goto free_json;
    }
    PQclear(res);
    const char *abort_msg = NULL;
    for (size_t i = 0; i < json_array_size(features) && !abort_msg; i++) {
        row.len = 0;
        if (boundaries)
            boundary_row(&row, json_array_get(features, i));
        else
            address_row(&row, json_array_get(features, i));
        if (row.oom)
            abort_msg = "gdctl ran out of memory";
        else if (PQputCopyData(db, row.buf, (int)row.len) != 1)
            break;
    }
    if (abort_msg)
        rc = gdctl_fail(g, EXIT_LOCAL, "local", "reading %s: out of memory", path);
    PQputCopyEnd(db, abort_msg);
    while ((res = PQgetResult(db)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == EXIT_OK)
            rc = db_fail(g, db, res, "COPY");
        PQclear(res);
    }
    free(row.buf);
free_json:
    json_decref(root);
close_file:
    fclose(f);
    return rc;
}

/* Whether `path` names a GeoJSON file by its extension (.geojson, .json). */
static bool is_geojson_name(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (strcasecmp(dot, ".geojson") == 0 || strcasecmp(dot, ".json") == 0);
}

int cmd_import(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {GDCTL_COMMON_OPTIONS,
                                         {"sla", required_argument, NULL, 's'},
                                         {"format", required_argument, NULL, 'f'},
                                         {NULL, 0, NULL, 0}};
    const char *sla_file = NULL;
    const char *format = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 's')
            sla_file = optarg;
        else if (opt == 'f')
            format = optarg;
        else if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage("import");
    }
    if (argc - optind != 2)
        return gdctl_usage("import");
    const struct kind *k = NULL;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strcmp(kinds[i].name, argv[optind]) == 0)
            k = &kinds[i];
    if (!k || (sla_file && strcmp(k->name, "categories") != 0)) {
        fprintf(stderr, "gdctl: KIND is org, categories, sla, calendar, hours, boundaries or "
                        "addresses; --sla goes only with categories\n");
        return gdctl_usage("import");
    }
    if (format && (!k->geo || (strcmp(format, "csv") != 0 && strcmp(format, "geojson") != 0))) {
        fprintf(stderr, "gdctl: --format is csv or geojson, and only for boundaries and "
                        "addresses\n");
        return gdctl_usage("import");
    }
    bool geojson =
        format ? strcmp(format, "geojson") == 0 : k->geo && is_geojson_name(argv[optind + 1]);
    PGconn *db = gdctl_db(g);
    if (!db)
        return EXIT_UNAVAILABLE;
    PQsetNoticeProcessor(db, NULL, NULL);
    PQsetNoticeReceiver(db, on_notice, NULL);
    int rc = EXIT_OK;
    PGresult *res = NULL;
    if (exec_ok(db, "BEGIN", &res) < 0) {
        rc = db_fail(g, db, res, "BEGIN");
        goto clear;
    }
    PQclear(res);
    res = NULL;
    rc = geojson ? copy_geojson(g, db, k, argv[optind + 1]) : copy_file(g, db, k, argv[optind + 1]);
    if (rc == EXIT_OK && sla_file)
        rc = copy_file(g, db, &kinds[2], sla_file);
    if (rc != EXIT_OK)
        goto finish;
    long sla_rows = 0;
    if (sla_file || strcmp(k->name, "sla") == 0) {
        /* the import function empties the staging tables: count first */
        if (exec_ok(db, "SELECT count(*) FROM import_category_sla", &res) < 0) {
            rc = db_fail(g, db, res, "import");
            goto clear;
        }
        sla_rows = strtol(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    char sql[128];
    snprintf(sql, sizeof(sql), "SELECT %s", k->function);
    if (exec_ok(db, sql, &res) < 0) {
        rc = db_fail(g, db, res, "import");
        goto clear;
    }
    long rows = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (exec_ok(db, "COMMIT", &res) < 0) {
        rc = db_fail(g, db, res, "COMMIT");
        goto clear;
    }
    if (strcmp(k->name, "sla") == 0)
        rows = sla_rows;
    if (g->json)
        rc = gdctl_print_json(json_pack("{s:s,s:I,s:I}", "kind", k->name, "rows", (json_int_t)rows,
                                        "sla_rows", (json_int_t)sla_rows));
    else if (sla_file)
        printf("imported %ld categories and %ld SLA rows\n", rows, sla_rows);
    else if (k->geo)
        printf("imported %ld %s\n"
               "the broker reads them at start and on SIGHUP: systemctl reload gd-broker\n",
               rows, k->what);
    else
        printf("imported %ld %s\n", rows, k->what);
clear:
    PQclear(res);
finish:
    PQfinish(db); /* without COMMIT the transaction rolls back */
    return rc;
}
