/* cmd_report.c - gdctl report: the KPI report (SQL gd_report over the event log) as a table, CSV
 * or JSON; with --city, run on every shard's database and combined. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gdctl.h"

/* Columns of gd_report() in order; `kind` says how to print them. */
enum col_kind { COL_TEXT, COL_TIME, COL_INT, COL_RATE, COL_SECONDS };

/* How a column of several shards' rows for one period and group combines. */
enum col_combine {
    COMB_KEY,     /* period and group: equal in the rows combined */
    COMB_FIRST,   /* group_name: the first shard's that has one */
    COMB_SUM,     /* a count */
    COMB_RATE,    /* recomputed from the summed counts of num / den (den2 added to den) */
    COMB_MEAN,    /* weighted by the count column `num` */
    COMB_DROPPED, /* a percentile: not computable from per-shard percentiles, NULL */
};

static const struct {
    const char *name;
    const char *head; /* table heading: Chinese / English */
    enum col_kind kind;
    enum col_combine comb;
    int num, den, den2; /* COMB_RATE / COMB_MEAN: column indexes; -1 none */
} cols[] = {
    {"period_start", "起 from", COL_TIME, COMB_KEY, -1, -1, -1},
    {"period_end", "止 to", COL_TIME, COMB_FIRST, -1, -1, -1},
    {"group_key", "代码 code", COL_TEXT, COMB_KEY, -1, -1, -1},
    {"group_name", "名称 name", COL_TEXT, COMB_FIRST, -1, -1, -1},
    {"received", "受理 received", COL_INT, COMB_SUM, -1, -1, -1},
    {"signed", "签收 signed", COL_INT, COMB_SUM, -1, -1, -1},
    {"signed_on_time", "按时签收 signed in time", COL_INT, COMB_SUM, -1, -1, -1},
    {"resolved", "办结 resolved", COL_INT, COMB_SUM, -1, -1, -1},
    {"resolved_on_time", "按时办结 resolved in time", COL_INT, COMB_SUM, -1, -1, -1},
    {"on_time_rate", "按时率 on-time", COL_RATE, COMB_RATE, 8, 7, -1},
    {"sign_mean_s", "签收均时 sign mean", COL_SECONDS, COMB_MEAN, 5, -1, -1},
    {"sign_p90_s", "签收P90 sign p90", COL_SECONDS, COMB_DROPPED, -1, -1, -1},
    {"resolve_mean_s", "办结均时 resolve mean", COL_SECONDS, COMB_MEAN, 7, -1, -1},
    {"resolve_p90_s", "办结P90 resolve p90", COL_SECONDS, COMB_DROPPED, -1, -1, -1},
    {"escalations", "上报 escalated", COL_INT, COMB_SUM, -1, -1, -1},
    {"returns", "退单 returned", COL_INT, COMB_SUM, -1, -1, -1},
    {"extensions", "延期 extended", COL_INT, COMB_SUM, -1, -1, -1},
    {"closed", "满意结案 closed", COL_INT, COMB_SUM, -1, -1, -1},
    {"reopened", "重办 reopened", COL_INT, COMB_SUM, -1, -1, -1},
    {"satisfaction_rate", "满意率 satisfaction", COL_RATE, COMB_RATE, 17, 17, 18},
    {"backlog", "积压 backlog", COL_INT, COMB_SUM, -1, -1, -1},
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

/* `city`: the shards combined, or NULL for one database. */
static int print_json(const PGresult *r, const char *by, const char *period, const char *tz,
                      const struct city *city)
{
    json_t *rows = json_array();
    json_t *doc =
        json_pack("{s:s,s:s,s:s,s:o}", "by", by, "period", period, "tz", tz, "rows", rows);
    if (!doc)
        return EXIT_LOCAL;
    if (city) {
        json_t *shards = json_array(), *dropped = json_array();
        bool ok = json_object_set_new(doc, "shards", shards) == 0 &&
                  json_object_set_new(doc, "not_combined", dropped) == 0;
        for (size_t i = 0; ok && i < city_n_shards(city); i++)
            ok = json_array_append_new(shards, json_string(city_shard(city, i)->name)) == 0;
        for (size_t c = 0; ok && c < N_COLS; c++)
            if (cols[c].comb == COMB_DROPPED)
                ok = json_array_append_new(dropped, json_string(cols[c].name)) == 0;
        if (!ok) {
            json_decref(doc);
            return EXIT_LOCAL;
        }
    }
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

/* Rows of all shards' results, in at most this many: a limit on what the
 * combination allocates (a grid report by day over a month is ~560,000). */
#define REPORT_MAX_ROWS 2000000

struct shard_row {
    const PGresult *r;
    int row;
    size_t shard;
};

static int shard_row_cmp(const void *a, const void *b)
{
    const struct shard_row *x = a, *y = b;
    int c = strcmp(PQgetvalue(x->r, x->row, 0), PQgetvalue(y->r, y->row, 0));
    if (c == 0)
        c = strcmp(PQgetvalue(x->r, x->row, 2), PQgetvalue(y->r, y->row, 2));
    if (c == 0)
        c = x->shard < y->shard ? -1 : x->shard > y->shard;
    return c;
}

static long long sum_col(const struct shard_row *g, size_t n, int c)
{
    long long t = 0;
    for (size_t k = 0; k < n; k++)
        if (!PQgetisnull(g[k].r, g[k].row, c))
            t += strtoll(PQgetvalue(g[k].r, g[k].row, c), NULL, 10);
    return t;
}

/* Column `c` of the rows g[0..n) (one period and group, several shards)
 * combined into out; false for NULL. */
static bool combine_cell(const struct shard_row *g, size_t n, size_t c, char *out, size_t size)
{
    switch (cols[c].comb) {
    case COMB_KEY:
    case COMB_FIRST:
        for (size_t k = 0; k < n; k++)
            if (!PQgetisnull(g[k].r, g[k].row, (int)c)) {
                snprintf(out, size, "%s", PQgetvalue(g[k].r, g[k].row, (int)c));
                return true;
            }
        return false;
    case COMB_SUM:
        snprintf(out, size, "%lld", sum_col(g, n, (int)c));
        return true;
    case COMB_RATE: {
        /* as gd_report: round(num / den, 4), half away from zero */
        long long num = sum_col(g, n, cols[c].num), den = sum_col(g, n, cols[c].den);
        if (cols[c].den2 >= 0)
            den += sum_col(g, n, cols[c].den2);
        if (den <= 0)
            return false;
        long long q = (num * 20000 + den) / (2 * den);
        snprintf(out, size, "%lld.%04lld", q / 10000, q % 10000);
        return true;
    }
    case COMB_MEAN: {
        double total = 0;
        long long weight = 0;
        for (size_t k = 0; k < n; k++) {
            if (PQgetisnull(g[k].r, g[k].row, (int)c))
                continue;
            long long w = strtoll(PQgetvalue(g[k].r, g[k].row, cols[c].num), NULL, 10);
            total += strtod(PQgetvalue(g[k].r, g[k].row, (int)c), NULL) * (double)w;
            weight += w;
        }
        if (weight <= 0)
            return false;
        snprintf(out, size, "%.1f", total / (double)weight);
        return true;
    }
    case COMB_DROPPED:
        return false;
    }
    return false;
}

/* Combines the shards' results res[0..n) (same report, same columns) into
 * one: a row per period and group, counts summed, rates recomputed from
 * the sums, means weighted by their counts, percentiles NULL. Returns it
 * (PQclear it), or NULL with *ret_err = -ENOMEM or -E2BIG (too many rows). */
static PGresult *combine(PGresult *const *res, size_t n, int *ret_err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (size_t)PQntuples(res[i]);
    if (total > REPORT_MAX_ROWS) {
        *ret_err = -E2BIG;
        return NULL;
    }
    *ret_err = -ENOMEM;
    struct shard_row *rows = malloc((total ? total : 1) * sizeof(*rows));
    if (!rows)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        for (int row = 0; row < PQntuples(res[i]); row++)
            rows[k++] = (struct shard_row){res[i], row, i};
    qsort(rows, total, sizeof(*rows), shard_row_cmp);
    PGresult *out = PQcopyResult(res[0], PG_COPYRES_ATTRS);
    if (!out)
        goto free_rows;
    int tup = 0;
    char buf[256];
    for (size_t a = 0; a < total;) {
        size_t b = a + 1;
        while (
            b < total &&
            !strcmp(PQgetvalue(rows[a].r, rows[a].row, 0), PQgetvalue(rows[b].r, rows[b].row, 0)) &&
            !strcmp(PQgetvalue(rows[a].r, rows[a].row, 2), PQgetvalue(rows[b].r, rows[b].row, 2)))
            b++;
        for (size_t c = 0; c < N_COLS; c++) {
            bool set = combine_cell(rows + a, b - a, c, buf, sizeof(buf));
            if (!PQsetvalue(out, tup, (int)c, set ? buf : NULL, set ? (int)strlen(buf) : -1))
                goto clear_out;
        }
        tup++;
        a = b;
    }
    free(rows);
    return out;

clear_out:
    PQclear(out);
free_rows:
    free(rows);
    return NULL;
}

/* Runs the report on `db`. Returns its result, or NULL after reporting the
 * failure (*ret_exit: EXIT_REFUSED for bad arguments, else
 * EXIT_UNAVAILABLE); `where` names the database in the message. */
static PGresult *run_report(struct gdctl *g, PGconn *db, const char *const params[5],
                            const char *where, int *ret_exit)
{
    /* --from/--to are local dates, both included; default today */
    static const char sql[] =
        "SELECT * FROM gd_report($1, "
        "coalesce($2::date, (now() AT TIME ZONE $5)::date)::timestamp AT TIME ZONE $5, "
        "(coalesce($3::date, $2::date, (now() AT TIME ZONE $5)::date) + 1)::timestamp "
        "AT TIME ZONE $5, $4, $5)";
    PGresult *r = PQexecParams(db, sql, 5, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQnfields(r) == (int)N_COLS)
        return r;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    bool bad_input = state && (!strncmp(state, "22", 2)); /* data exception: the arguments */
    *ret_exit = gdctl_fail(g, bad_input ? EXIT_REFUSED : EXIT_UNAVAILABLE,
                           bad_input ? "bad_value" : "database", "report failed%s%s: %s",
                           where ? " on shard " : "", where ? where : "", PQerrorMessage(db));
    PQclear(r);
    return NULL;
}

/* --city: the report of every shard, combined. Any shard that cannot answer
 * fails the whole report: a city figure is never made from some shards.
 * Every session is set to the report's time zone so that the shards'
 * period starts compare equal. Returns the result or NULL (*ret_exit). */
static PGresult *city_report(struct gdctl *g, const char *const params[5], int *ret_exit)
{
    int rc = gdctl_city(g);
    if (rc != EXIT_OK) {
        *ret_exit = rc;
        return NULL;
    }
    size_t n = city_n_shards(g->city);
    PGresult *res[CITY_MAX_SHARDS] = {0};
    PGresult *out = NULL;
    size_t got = 0;
    for (; got < n; got++) {
        const struct city_shard *sh = city_shard(g->city, got);
        PGconn *db = gdctl_db_dsn(g, sh->db);
        if (!db) {
            *ret_exit = EXIT_UNAVAILABLE;
            goto clear;
        }
        const char *tzp[1] = {params[4]};
        PGresult *t = PQexecParams(db, "SELECT set_config('TimeZone', $1, false)", 1, NULL, tzp,
                                   NULL, NULL, 0);
        bool tz_ok = PQresultStatus(t) == PGRES_TUPLES_OK;
        PQclear(t);
        if (!tz_ok) {
            *ret_exit = gdctl_fail(g, EXIT_REFUSED, "bad_value", "time zone %s on shard %s: %s",
                                   params[4], sh->name, PQerrorMessage(db));
            PQfinish(db);
            goto clear;
        }
        res[got] = run_report(g, db, params, sh->name, ret_exit);
        PQfinish(db);
        if (!res[got])
            goto clear;
    }
    int err;
    out = combine(res, n, &err);
    if (!out)
        *ret_exit = err == -E2BIG ? gdctl_fail(g, EXIT_REFUSED, "too_large",
                                               "more than %d rows from the shards: narrow the "
                                               "range or the grouping",
                                               REPORT_MAX_ROWS)
                                  : gdctl_fail(g, EXIT_LOCAL, "local", "out of memory");
clear:
    for (size_t i = 0; i < got; i++)
        PQclear(res[i]);
    return out;
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
        case 'b':
            by = optarg;
            break;
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'p':
            period = optarg;
            break;
        case 'z':
            tz = optarg;
            break;
        case 'F':
            format = optarg;
            break;
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
    const char *const params[5] = {by, from, to, period, tz};
    int rc = EXIT_OK;
    PGresult *r;
    if (g->city_file) {
        r = city_report(g, params, &rc);
    } else {
        PGconn *db = gdctl_db(g);
        if (!db)
            return EXIT_UNAVAILABLE;
        r = run_report(g, db, params, NULL, &rc);
        PQfinish(db);
    }
    if (!r)
        return rc;
    if (!strcmp(format, "json")) {
        rc = print_json(r, by, period, tz, g->city_file ? g->city : NULL);
    } else if (!strcmp(format, "csv")) {
        print_csv(r);
    } else {
        print_table(r);
        if (g->city_file)
            printf("(%zu shards combined; P90 columns are not combined: a percentile does "
                   "not follow from the shards' percentiles)\n",
                   city_n_shards(g->city));
    }
    PQclear(r);
    fflush(stdout);
    return rc;
}
