/* store-setup.c - start-up work on a blocking connection: migrations, and fencing out a dead broker. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

static int sql_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".sql") == 0;
}

int store_migrate(PGconn *conn, const char *dir, char *err, size_t errlen)
{
    struct dirent **names;
    int n = scandir(dir, &names, sql_file, alphasort);
    if (n < 0) {
        snprintf(err, errlen, "cannot read migrations directory %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (rc == 0) {
            FILE *f = fopen(path, "r");
            char *sql = NULL;
            size_t len = 0;
            if (f) {
                FILE *mem = open_memstream(&sql, &len);
                char chunk[8192];
                size_t got;
                while (mem && (got = fread(chunk, 1, sizeof(chunk), f)) > 0)
                    fwrite(chunk, 1, got, mem);
                if (mem)
                    fclose(mem);
                fclose(f);
            }
            if (!sql) {
                snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
                rc = -1;
            } else {
                PGresult *res = PQexec(conn, sql);
                ExecStatusType st = PQresultStatus(res);
                if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
                    snprintf(err, errlen, "%s: %s", path, PQresultErrorMessage(res));
                    err[strcspn(err, "\n")] = '\0';
                    rc = -1;
                    /* leave no transaction half open on this connection */
                    PQclear(PQexec(conn, "ROLLBACK"));
                }
                PQclear(res);
                free(sql);
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int store_check_schema(PGconn *conn, char *err, size_t errlen)
{
    /* to_regclass: a database never migrated has no schema_version */
    PGresult *res = PQexec(conn, "SELECT CASE WHEN to_regclass('schema_version') IS NULL THEN 0 "
                                 "ELSE (SELECT coalesce(max(version), 0) FROM schema_version) END");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        snprintf(err, errlen, "cannot read the schema version: %s", PQerrorMessage(conn));
        PQclear(res);
        return -1;
    }
    long found = strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    if (found >= STORE_SCHEMA_VERSION)
        return 0;
    snprintf(err, errlen,
             "the database has schema version %ld, this broker needs %d: apply broker/sql/ "
             "(gdctl migrate, or start the broker with --migrations DIR)",
             found, STORE_SCHEMA_VERSION);
    return -1;
}

/* Takes the active-broker lock on `conn`: at once when it is free;
 * otherwise tells w->standby, then waits for it, calling w->tick at least
 * every w->tick_ms. Returns the lock query's result, or NULL when the
 * connection failed (PQerrorMessage says why). */
static PGresult *take_lock(PGconn *conn, const struct store_wait *w)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT pg_try_advisory_lock(%d)", STORE_ACTIVE_LOCK);
    PGresult *res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        return res;
    PQclear(res);
    if (w && w->standby)
        w->standby(w->ctx);
    snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%d)", STORE_ACTIVE_LOCK);
    if (!PQsendQuery(conn, sql))
        return NULL;
    int timeout = w && w->tick_ms ? (int)w->tick_ms : -1;
    for (;;) {
        struct pollfd pfd = {.fd = PQsocket(conn), .events = POLLIN};
        int n = poll(&pfd, 1, timeout);
        if (n < 0 && errno != EINTR)
            return NULL;
        if (n > 0 && !PQconsumeInput(conn))
            return NULL;
        if (!PQisBusy(conn))
            break;
        if (w && w->tick)
            w->tick(w->ctx);
    }
    res = PQgetResult(conn);
    for (PGresult *more; (more = PQgetResult(conn)) != NULL;)
        PQclear(more);
    return res;
}

int store_fence(PGconn *conn, const struct store_wait *w, char *err, size_t errlen)
{
    PGresult *res = take_lock(conn, w);
    if (!res) {
        snprintf(err, errlen, "%s", PQerrorMessage(conn));
        err[strcspn(err, "\n")] = '\0';
        return -1;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        goto fail;
    PQclear(res);
    /* The lock is ours, so no other broker is active; but a broker that
     * died may still have a transaction running on a backend that has not
     * noticed. End those, and wait until they are gone, before reading
     * anything: otherwise a late commit could change what we loaded. */
    for (int i = 0; i < 100; i++) {
        res = PQexec(conn, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE application_name = '" STORE_APPLICATION_NAME "' "
                           "AND pid <> pg_backend_pid() AND datname = current_database()");
        if (PQresultStatus(res) != PGRES_TUPLES_OK)
            goto fail;
        bool none = strcmp(PQgetvalue(res, 0, 0), "0") == 0;
        PQclear(res);
        if (none)
            return 0;
        usleep(100 * 1000);
    }
    snprintf(err, errlen, "connections of a previous broker did not end within 10 s");
    return -1;
fail:
    snprintf(err, errlen, "%s", PQresultErrorMessage(res));
    err[strcspn(err, "\n")] = '\0';
    PQclear(res);
    return -1;
}
