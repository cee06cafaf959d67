/* auth.c - CurveZMQ authentication (the ZAP handler), principals, their roles and scopes. */
#include "auth.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "peers.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define MAX_PRINCIPALS 10000
#define MAX_SCOPE 64

static const char *const role_names[AUTH_ROLE_COUNT] = {"intake", "worker", "sla", "dashboard",
                                                        "admin"};

const char *auth_role_name(enum auth_role r)
{
    return (unsigned)r < AUTH_ROLE_COUNT ? role_names[r] : NULL;
}

int auth_role_parse(const char *s)
{
    for (int i = 0; i < AUTH_ROLE_COUNT; i++)
        if (strcmp(s, role_names[i]) == 0)
            return i;
    return -1;
}

/* Which roles may connect to which endpoint (ZAP domain). */
static bool domain_allows(const char *domain, enum auth_role r)
{
    if (strcmp(domain, "intake") == 0)
        return r == AUTH_INTAKE || r == AUTH_DASHBOARD || r == AUTH_ADMIN;
    if (strcmp(domain, "work") == 0)
        return r == AUTH_WORKER || r == AUTH_SLA;
    if (strcmp(domain, "status") == 0)
        return r == AUTH_DASHBOARD || r == AUTH_ADMIN;
    return false;
}

/* ---- files ---- */

struct keyfile {
    char public[41], secret[41];
};

static int keyfile_entry(void *user, const char *section, const char *name, const char *value)
{
    struct keyfile *k = user;
    (void)section;
    if (strcmp(name, "public") == 0)
        snprintf(k->public, sizeof(k->public), "%s", value);
    else if (strcmp(name, "secret") == 0)
        snprintf(k->secret, sizeof(k->secret), "%s", value);
    else
        return 0;
    return 1;
}

static void principal_free(struct principal *p)
{
    if (p) {
        free(p->scope);
        free(p);
    }
}

static void principals_free(struct principal **by_key, struct principal **by_name)
{
    struct principal *p, *tmp;
    HASH_ITER(hn, *by_name, p, tmp) {
        HASH_DELETE(hn, *by_name, p);
        HASH_DELETE(hk, *by_key, p);
        principal_free(p);
    }
}

struct loading {
    struct broker *b;
    struct principal *by_key, *by_name;
    struct principal *cur; /* the section being read */
    uint32_t n;
    char err[256];
};

/* Adds the finished section `l->cur`, checking it is complete. */
static bool finish_section(struct loading *l)
{
    struct principal *p = l->cur;
    if (!p)
        return true;
    l->cur = NULL;
    bool has_key = false;
    for (int i = 0; i < 32; i++)
        has_key = has_key || p->key[i];
    const char *missing = !has_key ? "key" : (int)p->role < 0 ? "role"
                                            : !p->everywhere && !p->n_scope ? "scope" : NULL;
    if (missing) {
        snprintf(l->err, sizeof(l->err), "principal [%s] has no %s", p->name, missing);
        principal_free(p);
        return false;
    }
    struct principal *dup = NULL;
    HASH_FIND(hk, l->by_key, p->key, sizeof(p->key), dup);
    if (dup) {
        snprintf(l->err, sizeof(l->err), "principals [%s] and [%s] have the same key", dup->name,
                 p->name);
        principal_free(p);
        return false;
    }
    HASH_ADD(hk, l->by_key, key, sizeof(p->key), p);
    HASH_ADD_KEYPTR(hn, l->by_name, p->name, strlen(p->name), p);
    l->n++;
    return true;
}

static int principal_entry(void *user, const char *section, const char *name, const char *value)
{
    struct loading *l = user;
    if (l->err[0])
        return 0; /* report the first problem only */
    if (!l->cur || strcmp(l->cur->name, section) != 0) {
        if (!finish_section(l))
            return 0;
        struct principal *seen = NULL;
        HASH_FIND(hn, l->by_name, section, strlen(section), seen);
        if (seen) {
            snprintf(l->err, sizeof(l->err), "principal [%s] appears twice", section);
            return 0;
        }
        if (!*section || strlen(section) >= sizeof(l->cur->name)) {
            snprintf(l->err, sizeof(l->err), "a principal needs a [name] of 1-63 bytes");
            return 0;
        }
        if (l->n >= MAX_PRINCIPALS) {
            snprintf(l->err, sizeof(l->err), "more than %d principals", MAX_PRINCIPALS);
            return 0;
        }
        l->cur = calloc(1, sizeof(*l->cur));
        if (!l->cur) {
            snprintf(l->err, sizeof(l->err), "out of memory");
            return 0;
        }
        snprintf(l->cur->name, sizeof(l->cur->name), "%s", section);
        l->cur->role = (enum auth_role)-1;
    }
    struct principal *p = l->cur;
    if (strcmp(name, "key") == 0) {
        if (strlen(value) != 40 || !zmq_z85_decode(p->key, value)) {
            snprintf(l->err, sizeof(l->err), "key of [%s] is not a 40-character Z85 public key",
                     section);
            return 0;
        }
    } else if (strcmp(name, "role") == 0) {
        int r = auth_role_parse(value);
        if (r < 0) {
            snprintf(l->err, sizeof(l->err),
                     "role '%s' of [%s]: use intake, worker, sla, dashboard or admin", value,
                     section);
            return 0;
        }
        p->role = (enum auth_role)r;
    } else if (strcmp(name, "scope") == 0) {
        char buf[2048];
        snprintf(buf, sizeof(buf), "%s", value);
        free(p->scope);
        p->scope = calloc(MAX_SCOPE, sizeof(*p->scope));
        p->n_scope = 0;
        if (!p->scope) {
            snprintf(l->err, sizeof(l->err), "out of memory");
            return 0;
        }
        char *save = NULL;
        for (char *code = strtok_r(buf, ", \t", &save); code; code = strtok_r(NULL, ", \t", &save)) {
            struct unit *u = org_unit(&l->b->org, code, strlen(code));
            if (!u) {
                snprintf(l->err, sizeof(l->err), "scope of [%s]: no org unit '%s'", section,
                         code);
                return 0;
            }
            if (u == l->b->org.district)
                p->everywhere = true;
            if (p->n_scope == MAX_SCOPE) {
                snprintf(l->err, sizeof(l->err), "scope of [%s]: more than %d units", section,
                         MAX_SCOPE);
                return 0;
            }
            p->scope[p->n_scope++] = u;
        }
    } else {
        snprintf(l->err, sizeof(l->err), "unknown key '%s' in [%s] (key, role, scope)", name,
                 section);
        return 0;
    }
    return 1;
}

/* Loads `path` into new tables; on success replaces the broker's. */
static int load_principals(struct broker *b, const char *path, char *err, size_t errlen)
{
    struct loading l = {.b = b};
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open principals file %s: %s", path, strerror(errno));
        return -1;
    }
    /* ini_parse_file returns the line of the first problem */
    int rc = ini_parse_file(f, principal_entry, &l);
    fclose(f);
    if (rc == 0 && !l.err[0] && !finish_section(&l))
        rc = -2;
    if (rc != 0 || l.err[0]) {
        principal_free(l.cur);
        principals_free(&l.by_key, &l.by_name);
        if (rc > 0 && l.err[0])
            snprintf(err, errlen, "%s:%d: %s", path, rc, l.err);
        else if (l.err[0])
            snprintf(err, errlen, "%s: %s", path, l.err);
        else
            snprintf(err, errlen, "%s:%d: not `key = value`", path, rc);
        return -1;
    }
    principals_free(&b->auth.by_key, &b->auth.by_name);
    b->auth.by_key = l.by_key;
    b->auth.by_name = l.by_name;
    b->auth.n_principals = l.n;
    return 0;
}

/* ---- the ZAP handler ---- */

static void zap_reply(struct broker *b, zmq_msg_t *request_id, const char *code, const char *text,
                      const char *user)
{
    const void *parts[6] = {"1.0", zmq_msg_data(request_id), code, text, user, ""};
    size_t lens[6] = {3, zmq_msg_size(request_id), strlen(code), strlen(text), strlen(user), 0};
    zsock_send(&b->auth.zap, parts, lens, 6);
}

/* A ZAP request: [version][request id][domain][address][identity]
 * [mechanism][credentials...] (RFC 27). Every endpoint has a ZAP domain,
 * so every handshake comes here, with CURVE or without. */
static void on_zap(struct zsock *zs, zmq_msg_t *frames, size_t n, bool overflow)
{
    struct broker *b = zs->data;
    if (n < 6 || overflow) {
        if (n >= 2)
            zap_reply(b, &frames[1], "500", "malformed ZAP request", "");
        return;
    }
    /* The connection asking was reported accepted before it asked: once
     * the events are read, one beyond its endpoint's limit is shut down
     * and cannot finish its handshake, whatever the answer. */
    peers_sync(b);
    if (!b->auth.enabled) {
        zap_reply(b, &frames[1], "200", "OK", "");
        return;
    }
    char domain[32], mechanism[16];
    snprintf(domain, sizeof(domain), "%.*s", (int)zmq_msg_size(&frames[2]),
             (const char *)zmq_msg_data(&frames[2]));
    snprintf(mechanism, sizeof(mechanism), "%.*s", (int)zmq_msg_size(&frames[5]),
             (const char *)zmq_msg_data(&frames[5]));
    if (strcmp(mechanism, "CURVE") != 0 || n < 7 || zmq_msg_size(&frames[6]) != 32) {
        zap_reply(b, &frames[1], "400", "CURVE required", "");
        auth_refused(b, "(no key)", "connect without CURVE");
        return;
    }
    struct principal *p = NULL;
    HASH_FIND(hk, b->auth.by_key, zmq_msg_data(&frames[6]), 32, p);
    if (!p) {
        char z85[41];
        zmq_z85_encode(z85, zmq_msg_data(&frames[6]), 32);
        /* the public key is no secret, and the operator needs it to add
         * the principal */
        char what[128];
        snprintf(what, sizeof(what), "connect to %s with unknown key %.8s…", domain, z85);
        zap_reply(b, &frames[1], "400", "unknown key", "");
        auth_refused(b, "(unknown)", what);
        return;
    }
    if (!domain_allows(domain, p->role)) {
        char what[96];
        snprintf(what, sizeof(what), "connect to the %s endpoint as %s", domain,
                 auth_role_name(p->role));
        zap_reply(b, &frames[1], "400", "role not allowed on this endpoint", "");
        auth_refused(b, p->name, what);
        return;
    }
    zap_reply(b, &frames[1], "200", "OK", p->name);
}

/* The ZAP handler, bound before any endpoint: with a ZAP domain set and
 * no handler, libzmq would let every peer in. */
static int open_zap(struct broker *b, char *err, size_t errlen)
{
    struct zsock_options o = {
        .type = ZMQ_REP, .endpoint = ZAP_ENDPOINT, .maxmsg = 4096, .sndhwm = 1000, .rcvhwm = 1000};
    return zsock_bind(&b->auth.zap, b->loop, b->zctx, &o, on_zap, b, err, errlen) < 0 ? -1 : 0;
}

/* ---- public ---- */

int auth_open(struct broker *b, char *err, size_t errlen)
{
    if (!b->cfg.curve_key) {
        if (b->cfg.principals) {
            snprintf(err, errlen, "--principals needs --curve-key (the broker's key pair)");
            return -1;
        }
        log_warn("auth", "no --curve-key: endpoints are open to every peer (no CurveZMQ)");
        return open_zap(b, err, errlen);
    }
    if (!b->cfg.principals) {
        snprintf(err, errlen, "--curve-key needs --principals (who may connect)");
        return -1;
    }
    struct keyfile k = {{0}, {0}};
    int rc = ini_parse(b->cfg.curve_key, keyfile_entry, &k);
    if (rc != 0) {
        snprintf(err, errlen, "%s: %s", b->cfg.curve_key,
                 rc < 0 ? "cannot read it" : "not a key file (public = …, secret = …)");
        return -1;
    }
    if (strlen(k.public) != 40 || strlen(k.secret) != 40 ||
        !zmq_z85_decode(b->auth.public_key, k.public) ||
        !zmq_z85_decode(b->auth.secret_key, k.secret)) {
        snprintf(err, errlen, "%s: needs public and secret, 40 Z85 characters each",
                 b->cfg.curve_key);
        return -1;
    }
    if (load_principals(b, b->cfg.principals, err, errlen) < 0)
        return -1;
    if (open_zap(b, err, errlen) < 0)
        return -1;
    b->auth.enabled = true;
    log_info("auth", "CurveZMQ on every endpoint; %u principals", b->auth.n_principals);
    return 0;
}

int auth_reload(struct broker *b, char *err, size_t errlen)
{
    if (!b->auth.enabled)
        return 0;
    if (load_principals(b, b->cfg.principals, err, errlen) < 0)
        return -1;
    log_info("auth", "principals reloaded: %u", b->auth.n_principals);
    return 0;
}

void auth_endpoint(struct broker *b, const char *domain, struct zsock_options *o)
{
    o->zap_domain = domain;
    o->curve_secret_key = b->auth.enabled ? b->auth.secret_key : NULL;
    o->handshake_ms = (int)b->cfg.handshake_ms;
}

const struct principal *auth_peer(struct broker *b, zmq_msg_t *frame, bool *ret_unknown)
{
    *ret_unknown = false;
    if (!b->auth.enabled)
        return NULL;
    const char *user = zmq_msg_gets(frame, "User-Id");
    struct principal *p = NULL;
    if (user)
        HASH_FIND(hn, b->auth.by_name, user, strlen(user), p);
    *ret_unknown = p == NULL;
    return p;
}

bool auth_in_scope(const struct principal *p, const struct unit *u)
{
    if (p->everywhere)
        return true;
    for (; u; u = u->parent)
        for (uint32_t i = 0; i < p->n_scope; i++)
            if (p->scope[i] == u)
                return true;
    return false;
}

void auth_refused(struct broker *b, const char *who, const char *what)
{
    b->counters.denied++;
    char msg[256];
    snprintf(msg, sizeof(msg), "%s may not %s", who, what);
    b->fx.alarm(b->fx.ctx, "denied", "warning", 0, NULL, msg);
}

void auth_close(struct broker *b)
{
    zsock_close(&b->auth.zap);
    principals_free(&b->auth.by_key, &b->auth.by_name);
    memset(b->auth.secret_key, 0, sizeof(b->auth.secret_key));
}
