/* config.h - the broker's settings: defaults, an INI file, the environment and the command line. */
#ifndef GD_BROKER_CONFIG_H
#define GD_BROKER_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_STRINGS_MAX 16384 /* bytes of all string values in a config file */

struct config {
    const char *db_dsn;          /* libpq conninfo; env GD_DB_DSN */
    const char *intake_endpoint; /* ZeroMQ endpoint the intake ROUTER binds */
    const char *work_endpoint;   /* ... the work ROUTER */
    const char *status_endpoint; /* ... the status XPUB */
    const char *migrations_dir;  /* apply *.sql from here at start; NULL: don't */
    const char *district;        /* district code: top of the escalation ladder */
    const char *curve_key;       /* broker's CURVE key pair file: security on */
    const char *principals;      /* who may connect: keys, roles, scopes */

    uint32_t flush_ms;      /* longest a change waits before its commit starts */
    uint32_t batch_max;     /* most changes in one transaction */
    uint32_t backlog_max;   /* uncommitted changes before new work gets BUSY */
    uint32_t busy_retry_ms; /* retry hint sent with BUSY */
    uint32_t db_retry_ms;   /* pause between reconnection attempts */
    uint32_t db_lanes;      /* database connections committing in parallel */
    uint32_t db_pipeline;   /* commits in flight on each of them */
    uint32_t takeover_grace_ms; /* a standby's pause after losing the database while
                                   waiting for the lock, so the active one takes it back */

    uint32_t heartbeat_ms; /* heartbeat interval, both directions */
    uint32_t liveness;     /* missed heartbeats before a worker is dead */
    uint32_t max_attempts; /* unsigned deliveries before moving up + alarm */
    uint32_t max_sessions; /* worker/SLA sessions at once */
    uint32_t max_credit;   /* cap on a worker's credit */
    uint32_t max_pending;  /* unanswered requests per intake client */
    uint32_t max_open;     /* open incidents held in memory */
    uint32_t max_boundary_vertices; /* vertices of all grid boundaries held */
    uint32_t max_addresses;         /* address rows held */
    uint32_t max_intake_clients; /* connections to the intake endpoint */
    uint32_t max_workers;        /* connections to the work endpoint */
    uint32_t max_subscribers;    /* connections to the status endpoint */
    uint32_t max_subscriber_bytes; /* bytes one subscriber may send (TCP) */
    uint32_t handshake_ms;       /* a connection's handshake must end by then */
    uint32_t snapshot_rate;      /* SNAPSHOTs answered per second, all clients */
    uint32_t work_hwm;           /* messages queued for one work connection */
    uint32_t status_hwm;         /* messages queued for one status subscriber */

    uint32_t gauge_ms;       /* period of queue.* and broker status */
    uint32_t status_batch_ms; /* longest wait of a transition for its batch */
    uint32_t overdue_verify;  /* gauge periods between checks of the overdue counts */
    uint32_t sla_alarm_ms;   /* period of the no_sla_worker check */
    int32_t utc_offset_min;  /* local time of the calendar = UTC + this */
    bool extension_approval; /* beyond a category's automatic limit, an
                                extension needs APPROVE from an admin */
    int log_level;

    const char *config_file; /* --config FILE, or NULL */
    /* Values read from the config file live here (no heap: nothing to free). */
    char strings[CONFIG_STRINGS_MAX];
    size_t strings_used;
};

/* Fills `cfg` from, lowest precedence first: the defaults, the INI file
 * named by --config FILE (section [gd-broker], keys = the long option
 * names, '-' or '_'), the environment (GD_DB_DSN), and argv. Returns 0;
 * 1 when --help, --version or --check-config was handled (exit 0; the
 * latter printed the effective configuration to stdout); -1 after
 * printing a usage or configuration error to `err`, bad file lines as
 * "FILE:LINE: ..." (exit 2). */
int config_parse(struct config *cfg, int argc, char **argv, FILE *err);

/* Prints the effective configuration as an INI file ([gd-broker], one
 * "key = value" per line) that --config reads back, with the password in
 * the DSN masked. */
void config_print(const struct config *cfg, FILE *out);

#endif
