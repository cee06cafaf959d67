/* cmd_import.c - gdctl import: COPY a CSV file into a staging table and run its gd_import_*
 * function, in one transaction. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gdctl.h"

struct kind {
    const char *name;
    const char *table;
    const char *columns;
    const char *function; /* returns the row count */
    const char *what;     /* "org units" */
};

/* Staging tables and functions: broker/sql/0002_import.sql, 0003_working_hours.sql. */
static const struct kind kinds[] = {
    {"org", "import_org_unit", "code, name, level, kind, parent, households",
     "gd_import_org_units()", "org units"},
    {"categories", "import_category",
     "code, name, sector, admitted_level, default_priority, group_name", "gd_import_categories()",
     "categories"},
    {"sla", "import_category_sla",
     "category, priority, basis, sign_limit_s, resolve_limit_s, warn_percent, max_extension_s",
     "gd_import_categories()", "SLA rows"},
    {"calendar", "import_calendar_day", "day, working, name", "gd_import_calendar()",
     "calendar days"},
    {"hours", "import_working_hours", "starts, ends", "gd_import_working_hours()",
     "working periods"},
};

static void on_notice(void *arg, const PGresult *res)
{
    (void)arg;
    const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    fprintf(stderr, "gdctl: %s: %s\n", PQresultErrorField(res, PG_DIAG_SEVERITY), msg ? msg : "");
}

/* Reports a failed statement; data problems (class 22, 23: the file's
 * content) are EXIT_REFUSED, a lost connection EXIT_UNAVAILABLE. */
static int db_fail(struct gdctl *g, PGconn *db, const PGresult *res, const char *what)
{
    if (PQstatus(db) != CONNECTION_OK)
        return gdctl_fail(g, EXIT_UNAVAILABLE, "unavailable", "%s: connection lost: %s", what,
                          PQerrorMessage(db));
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *context = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
    bool data = state && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0);
    return gdctl_fail(g, data ? EXIT_REFUSED : EXIT_LOCAL, data ? "refused" : "database",
                      "%s failed; nothing was changed: %s%s%s%s%s", what,
                      msg ? msg : PQerrorMessage(db), detail ? "\n" : "", detail ? detail : "",
                      context && strstr(context, "COPY") ? "\n" : "",
                      context && strstr(context, "COPY") ? context : "");
}

static int exec_ok(PGconn *db, const char *sql, PGresult **ret)
{
    PGresult *res = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(res);
    *ret = res;
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
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
             k->columns);
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

int cmd_import(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS, {"sla", required_argument, NULL, 's'}, {NULL, 0, NULL, 0}};
    const char *sla_file = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (opt == 's')
            sla_file = optarg;
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
        fprintf(stderr, "gdctl: KIND is org, categories, sla, calendar or hours; --sla goes "
                        "only with categories\n");
        return gdctl_usage("import");
    }
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
    rc = copy_file(g, db, k, argv[optind + 1]);
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
    else
        printf("imported %ld %s\n", rows, k->what);
clear:
    PQclear(res);
finish:
    PQfinish(db); /* without COMMIT the transaction rolls back */
    return rc;
}
