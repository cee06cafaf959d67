/* cmd_submit.c - gdctl submit: report a new incident (SUBMIT) and print where it went. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gdctl.h"

/* A fresh external id "gdctl-<32 hex digits>" from the kernel's random pool. */
static int fresh_external_id(char out[64])
{
    uint8_t r[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, r, sizeof(r));
    close(fd);
    if (n != (ssize_t)sizeof(r))
        return -EIO;
    int off = snprintf(out, 64, "gdctl-");
    for (size_t i = 0; i < sizeof(r); i++)
        off += snprintf(out + off, (size_t)(64 - off), "%02x", r[i]);
    return 0;
}

static int parse_double(const char *s, double *ret)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end)
        return -1;
    *ret = v;
    return 0;
}

/* The shard of the town whose boundary covers lat/lon, asked of the
 * database --db names (one query); -1 when none covers it. Returns
 * EXIT_OK with *ret_shard, or a failure reported. */
static int shard_at(struct gdctl *g, double lat, double lon, int *ret_shard)
{
    PGconn *db = gdctl_db(g);
    if (!db)
        return EXIT_UNAVAILABLE;
    char la[32], lo[32];
    snprintf(la, sizeof(la), "%.9f", lat);
    snprintf(lo, sizeof(lo), "%.9f", lon);
    const char *params[2] = {la, lo};
    PGresult *r = PQexecParams(db, CITY_TOWN_AT_SQL, 2, NULL, params, NULL, NULL, 0);
    int rc = EXIT_OK;
    *ret_shard = -1;
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = gdctl_fail(g, EXIT_UNAVAILABLE, "database", "town boundaries: %s", PQerrorMessage(db));
    else if (PQntuples(r) == 1)
        *ret_shard = city_shard_of_unit(g->city, PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0));
    PQclear(r);
    PQfinish(db);
    return rc;
}

/* With --city: points g->intake_ep at the intake of the shard that owns the
 * SUBMIT's town: by its unit code; else, for --lat/--lon with --db given,
 * by the town boundary covering the point in that database; else the
 * default shard's (whose triage queue takes it). Returns EXIT_OK with
 * *ret_shard, or a failure reported. */
static int pick_shard(struct gdctl *g, const struct gd_submit *s, const char **ret_shard)
{
    int rc = gdctl_city(g);
    if (rc != EXIT_OK)
        return rc;
    int i = city_shard_of_unit(g->city, s->location.unit.ptr, s->location.unit.len);
    if (i < 0 && s->location.has_coords && g->dsn) {
        rc = shard_at(g, s->location.lat, s->location.lon, &i);
        if (rc != EXIT_OK)
            return rc;
    }
    if (i < 0)
        i = city_default_shard(g->city);
    if (i < 0)
        return gdctl_fail(g, EXIT_REFUSED, "no_shard",
                          "no shard of %s owns the town of unit '%.*s', and the city names no "
                          "default shard",
                          g->city_file, (int)s->location.unit.len,
                          s->location.unit.ptr ? s->location.unit.ptr : "");
    const struct city_shard *sh = city_shard(g->city, (size_t)i);
    g->intake_ep = sh->intake;
    *ret_shard = sh->name;
    return EXIT_OK;
}

int cmd_submit(struct gdctl *g, int argc, char **argv)
{
    static const struct option opts[] = {
        GDCTL_COMMON_OPTIONS,
        {"source", required_argument, NULL, 's'},
        {"external-id", required_argument, NULL, 'x'},
        {"category", required_argument, NULL, 'c'},
        {"priority", required_argument, NULL, 'p'},
        {"unit", required_argument, NULL, 'u'},
        {"address", required_argument, NULL, 'a'},
        {"lat", required_argument, NULL, 'L'},
        {"lon", required_argument, NULL, 'O'},
        {"description", required_argument, NULL, 'd'},
        {"attachment", required_argument, NULL, 'A'},
        {"reporter-name", required_argument, NULL, 'N'},
        {"reporter-phone", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    struct gd_msg m = {.type = GD_T_SUBMIT};
    struct gd_submit *s = &m.u.submit;
    s->source = GD_STR("gdctl");
    s->priority = GD_PRIO_NORMAL;
    bool has_lat = false, has_lon = false;
    char xid[64];
    int opt;
    while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (opt) {
        case 's':
            s->source = gd_str_c(optarg);
            break;
        case 'x':
            s->external_id = gd_str_c(optarg);
            break;
        case 'c':
            s->category = gd_str_c(optarg);
            break;
        case 'p': {
            int p = gd_priority_parse(gd_str_c(optarg));
            if (p < 0) {
                fprintf(stderr, "gdctl: --priority is emergency, urgent or normal\n");
                return EXIT_USAGE;
            }
            s->priority = (enum gd_priority)p;
            break;
        }
        case 'u':
            s->location.unit = gd_str_c(optarg);
            break;
        case 'a':
            s->location.address = gd_str_c(optarg);
            break;
        case 'L':
            if (parse_double(optarg, &s->location.lat) < 0)
                return gdctl_usage("submit");
            has_lat = true;
            break;
        case 'O':
            if (parse_double(optarg, &s->location.lon) < 0)
                return gdctl_usage("submit");
            has_lon = true;
            break;
        case 'd':
            s->description = gd_str_c(optarg);
            break;
        case 'A':
            if (s->n_attachments == GD_MAX_ATTACHMENTS) {
                fprintf(stderr, "gdctl: at most %d attachments\n", GD_MAX_ATTACHMENTS);
                return EXIT_USAGE;
            }
            s->attachments[s->n_attachments++] = gd_str_c(optarg);
            break;
        case 'N':
            s->reporter.name = gd_str_c(optarg);
            break;
        case 'P':
            s->reporter.phone = gd_str_c(optarg);
            break;
        case 'h':
            return gdctl_usage("submit");
        default:
            if (gdctl_common_option(g, opt, optarg) < 0)
                return gdctl_usage("submit");
        }
    }
    if (optind != argc || has_lat != has_lon) {
        if (has_lat != has_lon)
            fprintf(stderr, "gdctl: --lat and --lon go together\n");
        return gdctl_usage("submit");
    }
    s->location.has_coords = has_lat;
    if (!s->external_id.len) {
        if (fresh_external_id(xid) < 0)
            return gdctl_fail(g, EXIT_LOCAL, "local", "cannot read /dev/urandom");
        s->external_id = gd_str_c(xid);
    }
    const char *shard = NULL;
    if (g->city_file) {
        int prc = pick_shard(g, s, &shard);
        if (prc != EXIT_OK)
            return prc;
    }
    struct gd_msg r;
    int rc = gdctl_call(g, &m, &r);
    if (rc != EXIT_OK)
        return rc;
    if (r.type != GD_T_ACCEPTED)
        return gdctl_fail(g, EXIT_LOCAL, "local", "unexpected answer %s", gd_type_name(r.type));
    const struct gd_accepted *a = &r.u.accepted;
    if (g->json) {
        json_t *doc =
            json_pack("{s:I,s:I,s:s,s:o,s:b,s:s%}", "incident_id", (json_int_t)a->incident_id,
                      "version", (json_int_t)a->version, "state", gd_state_name(a->state), "queue",
                      gdctl_json_str(a->queue), "duplicate", a->duplicate, "external_id",
                      s->external_id.ptr, (size_t)s->external_id.len);
        if (doc && shard && json_object_set_new(doc, "shard", json_string(shard)) < 0) {
            json_decref(doc);
            doc = NULL;
        }
        return gdctl_print_json(doc);
    }
    printf("incident %" PRIu64 " %s%s, queue %.*s, external id %.*s%s%s\n", a->incident_id,
           gd_state_name(a->state), a->duplicate ? " (duplicate: already reported)" : "",
           (int)a->queue.len, a->queue.ptr ? a->queue.ptr : "", (int)s->external_id.len,
           s->external_id.ptr, shard ? ", shard " : "", shard ? shard : "");
    return EXIT_OK;
}
