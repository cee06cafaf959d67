/* cmd_migrate.c - gdctl migrate: apply the *.sql files of a directory in name order; the migrations
 * are idempotent. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gdctl.h"

/* Largest migration file read: a bound, not a expectation (they are KBs). */
#define MAX_FILE  (8 * 1024 * 1024)
#define MAX_FILES 1000

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, const char **ret_err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *ret_err = strerror(errno);
        return NULL;
    }
    char *data = NULL;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > MAX_FILE) {
        *ret_err = "larger than 8 MiB";
        goto close_file;
    }
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        *ret_err = "out of memory";
        goto close_file;
    }
    size_t n = fread(data, 1, (size_t)st.st_size, f);
    if (n != (size_t)st.st_size) {
        *ret_err = "short read";
        free(data);
        data = NULL;
        goto close_file;
    }
    data[n] = '\0';
close_file:
    fclose(f);
    return data;
}

int cmd_migrate(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {GDCTL_COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (opt == 'h' || gdctl_common_option(g, opt, optarg) < 0)
            return gdctl_usage("migrate");
    if (argc - optind > 1)
        return gdctl_usage("migrate");
    const char *dir = optind < argc ? argv[optind] : GD_SQL_DIR;

    DIR *d = opendir(dir);
    if (!d)
        return gdctl_fail(g, EXIT_LOCAL, "local", "cannot open %s: %s", dir, strerror(errno));
    char *names[MAX_FILES];
    size_t n = 0;
    int rc = EXIT_OK;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len < 5 || strcmp(e->d_name + len - 4, ".sql") != 0 || e->d_name[0] == '.')
            continue;
        if (n == MAX_FILES) {
            rc = gdctl_fail(g, EXIT_LOCAL, "local", "more than %d files in %s", MAX_FILES, dir);
            goto free_names;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = EXIT_LOCAL;
            goto free_names;
        }
        n++;
    }
    if (n == 0) {
        rc = gdctl_fail(g, EXIT_LOCAL, "local", "no *.sql files in %s", dir);
        goto free_names;
    }
    qsort(names, n, sizeof(names[0]), by_name);
    PGconn *db = gdctl_db(g);
    if (!db) {
        rc = EXIT_UNAVAILABLE;
        goto free_names;
    }
    /* "NOTICE: relation exists, skipping" and the like are noise here */
    PQexec(db, "SET client_min_messages = warning");
    json_t *applied = json_array();
    for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        const char *why = NULL;
        char *sql = read_file(path, &why);
        if (!sql) {
            rc = gdctl_fail(g, EXIT_LOCAL, "local", "cannot read %s: %s", path, why);
            break;
        }
        PGresult *res = PQexec(db, sql); /* the file holds its own BEGIN/COMMIT */
        free(sql);
        ExecStatusType st = PQresultStatus(res);
        if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
            rc = gdctl_fail(g, PQstatus(db) == CONNECTION_OK ? EXIT_REFUSED : EXIT_UNAVAILABLE,
                            "refused", "%s failed: %s", names[i], PQerrorMessage(db));
        } else {
            if (!g->json)
                printf("applied %s\n", names[i]);
            json_array_append_new(applied, json_string(names[i]));
        }
        PQclear(res);
    }
    if (rc == EXIT_OK && g->json)
        rc = gdctl_print_json(json_pack("{s:s,s:O}", "dir", dir, "applied", applied));
    json_decref(applied);
    PQfinish(db);
free_names:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    closedir(d);
    return rc;
}
