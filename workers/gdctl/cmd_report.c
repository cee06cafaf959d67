/* cmd_report.c - gdctl report: the KPI report (SQL gd_report over the event log) as a table, CSV or JSON. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gdctl.h"

/* Columns of gd_report() in order; `kind` says how to print them. */
enum col_kind { COL_TEXT, COL_TIME, COL_INT, COL_RATE, COL_SECONDS };

static const struct {
    const char *name;
    const char *head;  /* table heading: Chinese / English */
    enum col_kind kind;
} cols[] = {
    {"period_start", "起 from", COL_TIME},
    {"period_end", "止 to", COL_TIME},
    {"group_key", "代码 code", COL_TEXT},
    {"group_name", "名称 name", COL_TEXT},
    {"received", "受理 received", COL_INT},
    {"signed", "签收 signed", COL_INT},
    {"signed_on_time", "按时签收 signed in time", COL_INT},
    {"resolved", "办结 resolved", COL_INT},
    {"resolved_on_time", "按时办结 resolved in time", COL_INT},
    {"on_time_rate", "按时率 on-time", COL_RATE},
    {"sign_mean_s", "签收均时 sign mean", COL_SECONDS},
    {"sign_p90_s", "签收P90 sign p90", COL_SECONDS},
    {"resolve_mean_s", "办结均时 resolve mean", COL_SECONDS},
    {"resolve_p90_s", "办结P90 resolve p90", COL_SECONDS},
    {"escalations", "上报 escalated", COL_INT},
    {"returns", "退单 returned", COL_INT},
    {"extensions", "延期 extended", COL_INT},
    {"closed", "满意结案 closed", COL_INT},
    {"reopened", "重办 reopened", COL_INT},
    {"satisfaction_rate", "满意率 satisfaction", COL_RATE},
    {"backlog", "积压 backlog", COL_INT},
};
#define N_COLS (sizeof(cols) / sizeof(*cols))

static bool is_date(const char *s)
{
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return false;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
            return false;
    return true;
}

static bool one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (!strcmp(s, *set))
            return true;
    return false;
}

/* Display width of a UTF-8 string: CJK (3-byte sequences) count 2 columns. */
static int width(const char *s)
{
    int w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p & 0xC0) == 0x80)
            continue;
        w += *p >= 0xE0 ? 2 : 1;
    }
    return w;
}

/* The table text of one cell into out. */
static void cell_text(const PGresult *r, int row, int c, char *out, size_t size)
{
    if (PQgetisnull(r, row, c)) {
        snprintf(out, size, "-");
        return;
    }
    const char *v = PQgetvalue(r, row, c);
    switch (cols[c].kind) {
    case COL_RATE:
        snprintf(out, size, "%.1f%%", strtod(v, NULL) * 100.0);
        break;
    case COL_SECONDS: {
        double s = strtod(v, NULL);
        if (s < 60)
            snprintf(out, size, "%.0fs", s);
        else if (s < 3600)
            snprintf(out, size, "%.1fm", s / 60);
        else
            snprintf(out, size, "%.1fh", s / 3600);
        break;
    }
    case COL_TIME:
        snprintf(out, size, "%.16s", v); /* YYYY-MM-DD HH:MM */
        break;
    default:
        snprintf(out, size, "%s", v);
    }
}

static void print_table(const PGresult *r)
{
    int n = PQntuples(r);
    int w[N_COLS];
    char buf[256];
    for (size_t c = 0; c < N_COLS; c++) {
        w[c] = width(cols[c].head);
        for (int i = 0; i < n; i++) {
            cell_text(r, i, (int)c, buf, sizeof(buf));
            if (width(buf) > w[c])
                w[c] = width(buf);
        }
    }
    for (size_t c = 0; c < N_COLS; c++)
        printf("%s%s%*s", c ? "  " : "", cols[c].head, w[c] - width(cols[c].head), "");
    putchar('\n');
    for (int i = 0; i < n; i++) {
        for (size_t c = 0; c < N_COLS; c++) {
            cell_text(r, i, (int)c, buf, sizeof(buf));
            int pad = w[c] - width(buf);
            bool right = cols[c].kind != COL_TEXT && cols[c].kind != COL_TIME;
            printf("%s%*s%s%*s", c ? "  " : "", right ? pad : 0, "", buf, right ? 0 : pad, "");
        }
        putchar('\n');
    }
    if (n == 0)
        printf("(no incidents in the range)\n");
}

static void csv_field(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++) {
        if (*s == '"')
            putchar('"');
        putchar(*s);
    }
    putchar('"');
}

static void print_csv(const PGresult *r)
{
    for (size_t c = 0; c < N_COLS; c++)
        printf("%s%s", c ? "," : "", cols[c].name);
    putchar('\n');
    for (int i = 0; i < PQntuples(r); i++) {
        for (size_t c = 0; c < N_COLS; c++) {
            if (c)
                putchar(',');
            csv_field(PQgetisnull(r, i, (int)c) ? "" : PQgetvalue(r, i, (int)c));
        }
        putchar('\n');
    }
}

static int print_json(const PGresult *r, const char *by, const char *period, const char *tz)
{
    json_t *rows = json_array();
    json_t *doc = json_pack("{s:s,s:s,s:s,s:o}", "by", by, "period", period, "tz", tz, "rows", rows);
    if (!doc)
        return EXIT_LOCAL;
    for (int i = 0; i < PQntuples(r); i++) {
        json_t *o = json_object();
        if (!o || json_array_append_new(rows, o) < 0) {
            json_decref(doc);
            return EXIT_LOCAL;
        }
        for (size_t c = 0; c < N_COLS; c++) {
            const char *v = PQgetvalue(r, i, (int)c);
            json_t *j;
            if (PQgetisnull(r, i, (int)c))
                j = json_null();
            else if (cols[c].kind == COL_INT)
                j = json_integer(strtoll(v, NULL, 10));
            else if (cols[c].kind == COL_RATE || cols[c].kind == COL_SECONDS)
                j = json_real(strtod(v, NULL));
            else
                j = json_string(v);
            json_object_set_new(o, cols[c].name, j);
        }
    }
    return gdctl_print_json(doc);
}

int cmd_report(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS,
        {"by", required_argument, NULL, 'b'},
        {"from", required_argument, NULL, 'f'},
        {"to", required_argument, NULL, 't'},
        {"period", required_argument, NULL, 'p'},
        {"tz", required_argument, NULL, 'z'},
        {"format", required_argument, NULL, 'F'},
        {NULL, 0, NULL, 0},
    };
    static const char *const groups[] = {"district", "town", "community", "grid", "category", NULL};
    static const char *const periods[] = {"all", "day", "week", "month", NULL};
    static const char *const formats[] = {"table", "csv", "json", NULL};
    const char *by = "town", *from = NULL, *to = NULL, *period = "all", *tz = "Asia/Shanghai";
    const char *format = "table";
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 'b': by = optarg; break;
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'p': period = optarg; break;
        case 'z': tz = optarg; break;
        case 'F': format = optarg; break;
        default:
            if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
                return gdctl_usage("report");
        }
    }
    if (g->json)
        format = "json";
    if (optind < argc || !one_of(by, groups) || !one_of(period, periods) ||
        !one_of(format, formats) || (from && !is_date(from)) || (to && !is_date(to)) ||
        strlen(tz) > 64)
        return gdctl_usage("report");
    PGconn *db = gdctl_db(g);
    if (!db)
        return EXIT_UNAVAILABLE;
    /* --from/--to are local dates, both included; default today */
    const char *params[5] = {by, from, to, period, tz};
    PGresult *r = PQexecParams(
        db,
        "SELECT * FROM gd_report($1, "
        "coalesce($2::date, (now() AT TIME ZONE $5)::date)::timestamp AT TIME ZONE $5, "
        "(coalesce($3::date, $2::date, (now() AT TIME ZONE $5)::date) + 1)::timestamp AT TIME ZONE $5, "
        "$4, $5)",
        5, NULL, params, NULL, NULL, 0);
    int rc = EXIT_OK;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != (int)N_COLS) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        bool bad_input = state && (!strncmp(state, "22", 2)); /* data exception: the arguments */
        rc = gdctl_fail(g, bad_input ? EXIT_REFUSED : EXIT_UNAVAILABLE,
                        bad_input ? "bad_value" : "database", "report failed: %s",
                        PQerrorMessage(db));
    } else if (!strcmp(format, "json")) {
        rc = print_json(r, by, period, tz);
    } else if (!strcmp(format, "csv")) {
        print_csv(r);
    } else {
        print_table(r);
    }
    PQclear(r);
    PQfinish(db);
    fflush(stdout);
    return rc;
}
