/* auth.h - CurveZMQ authentication (the ZAP handler), principals, their roles and scopes.
 *
 * Security is on when the broker has a CURVE key (--curve-key): every
 * endpoint is then a CURVE server, and a ZAP handler bound before them
 * lets in only the public keys listed in the principals file
 * (--principals), each on the endpoints its role uses. Every request is
 * then authorised on the ZAP user id (the principal's name) that ZeroMQ
 * attaches to the frames — never on the routing id — against the role
 * and the scope (org-unit subtrees) of the principal as the file says
 * now: SIGHUP reloads it, and a removed principal is refused from the
 * next message on, even on a connection already open.
 */
#ifndef GD_BROKER_AUTH_H
#define GD_BROKER_AUTH_H

#include <stdbool.h>
#include <uthash.h>
#include <zmq.h>

#include "zsock.h"

struct broker;
struct unit;

enum auth_role {
    AUTH_INTAKE = 0, /* SUBMIT, QUERY, FEEDBACK, SNAPSHOT within its scope */
    AUTH_WORKER,     /* HELLO as a worker for queues within its scope */
    AUTH_SLA,        /* HELLO as an SLA timer for towns within its scope */
    AUTH_DASHBOARD,  /* status topics, SNAPSHOT */
    AUTH_ADMIN,      /* everything: DISPATCH, APPROVE, QUERY with reporter data */
    AUTH_ROLE_COUNT
};

struct principal {
    char name[64];
    uint8_t key[32];          /* CURVE public key */
    enum auth_role role;
    bool everywhere;          /* scope covers the whole district */
    struct unit **scope;      /* subtrees (unit and everything under it) */
    uint32_t n_scope;
    UT_hash_handle hk;        /* by key */
    UT_hash_handle hn;        /* by name */
};

struct auth {
    bool enabled;
    uint8_t public_key[32];
    uint8_t secret_key[32];
    struct principal *by_key;
    struct principal *by_name;
    uint32_t n_principals;
    struct zsock zap;         /* REP on inproc://zeromq.zap.01, with or without CURVE */
};

/* Name of a role ("intake", ...), and back (-1 when unknown). */
const char *auth_role_name(enum auth_role r);
int auth_role_parse(const char *s);

/* Binds the ZAP handler (call before binding any endpoint: every endpoint
 * has a ZAP domain, and its handshakes wait for the handler, which also
 * holds back connections beyond the endpoint's limit, see peers.h). With
 * --curve-key it first reads the broker's key and the principals file,
 * and the handler lets in only listed keys; without it every peer may
 * do everything (a warning is logged). Returns 0, or -1 with a message
 * in err. */
int auth_open(struct broker *b, char *err, size_t errlen);

/* Reads the principals file again (SIGHUP). On failure the previous set
 * stays in force. Returns 0 or -1 with a message in err. */
int auth_reload(struct broker *b, char *err, size_t errlen);

/* Sets the ZAP domain `domain` of an endpoint in `o`, its handshake
 * timeout (--handshake-ms), and when security is on, its CURVE server key. */
void auth_endpoint(struct broker *b, const char *domain, struct zsock_options *o);

/* The principal that sent `frame` (from its ZAP user id), or NULL when
 * security is off. When it is on and the principal is no longer listed,
 * sets *ret_unknown. */
const struct principal *auth_peer(struct broker *b, zmq_msg_t *frame, bool *ret_unknown);

/* True if `u` lies in p's scope; `u` NULL (no or unknown location) is
 * only in a district-wide scope. */
bool auth_in_scope(const struct principal *p, const struct unit *u);

/* Counts and publishes (alarm.denied, no secrets) a refusal of `who` to
 * do `what`. */
void auth_refused(struct broker *b, const char *who, const char *what);

void auth_close(struct broker *b);

#endif
