"""hacluster.py - the Patroni cluster of tests/pg/with-patroni.sh, seen and driven from a test.

The cluster (deploy/lib-patroni.sh) is one etcd and three Patroni members
m0 m1 m2 with synchronous replication. Reads come from Patroni's REST API
(GET /cluster on any member that answers); the faults go through the
shell library: a member killed as its host would die (SIGKILL to Patroni,
the postmaster and every backend at once), a member started again, and a
failover requested with patronictl.
"""

import json
import math
import os
import subprocess
import time
import urllib.request

import psycopg2
import psycopg2.extensions
import pytest

import gdclient


def _lib(func, *args, timeout=120):
    lib, d = os.environ.get("GD_HA_LIB"), os.environ.get("GD_HA_DIR")
    if not lib or not d:
        pytest.fail("GD_HA_LIB/GD_HA_DIR not set: run under tests/pg/with-patroni.sh")
    r = subprocess.run(["bash", "-c", '. "$1"; shift; "$@"', "_", lib, func, d, *args],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"{func} {' '.join(args)} failed ({r.returncode}):\n"
                             f"{r.stdout}\n{r.stderr}")
    return r.stdout


def rest_urls():
    return dict(e.split("=", 1) for e in os.environ["GD_HA_REST"].split())


def members():
    """The members as GET /cluster lists them ([] when no member answers)."""
    for url in rest_urls().values():
        try:
            with urllib.request.urlopen(url + "/cluster", timeout=1) as r:
                return json.load(r).get("members", [])
        except OSError:
            continue
    return []


def leader():
    """Name of the running leader, or None."""
    for m in members():
        if m.get("role") == "leader" and m.get("state") == "running":
            return m["name"]
    return None


def sync_standby():
    """Name of the synchronous standby, or None."""
    for m in members():
        if m.get("role") == "sync_standby" and m.get("state") in ("running", "streaming"):
            return m["name"]
    return None


def timeline():
    for m in members():
        if m.get("role") == "leader":
            return m.get("timeline")
    return None


def wait_healthy(timeout=120.0):
    """Waits until the cluster is whole again: a running leader, a synchronous
    standby, all three members running with no replication lag."""
    _lib("gdha_wait_healthy", str(int(timeout)), timeout=timeout + 30)


def kill(member):
    """SIGKILL to the member's Patroni, postmaster and backends at once."""
    _lib("gdha_kill", member)


def start(member):
    _lib("gdha_member_start", member)


def failover(candidate):
    """patronictl failover to `candidate` (the leader is demoted)."""
    return _lib("gdha_ctl", "failover", "--candidate", candidate, "--force", timeout=90)


def wait_new_leader(old, timeout=60.0):
    """Waits until a member other than `old` is the running leader; returns its name."""
    def new():
        name = leader()
        return name if name and name != old else None
    return gdclient.wait_until(new, timeout, f"a new leader instead of {old}", interval=0.05)


def member_dsns(dbname="postgres"):
    """One single-host DSN per member (name -> DSN), from GD_DB_DSN's host and port lists."""
    opts = psycopg2.extensions.parse_dsn(os.environ["GD_DB_DSN"])
    hosts, ports = opts["host"].split(","), opts["port"].split(",")
    names = os.environ["GD_HA_MEMBERS"].split()
    return {m: psycopg2.extensions.make_dsn(host=h, port=p, user=opts["user"], dbname=dbname)
            for m, h, p in zip(names, hosts, ports)}


def admin_exec(sql):
    """Runs one statement (autocommit) on the primary."""
    conn = psycopg2.connect(psycopg2.extensions.make_dsn(os.environ["GD_DB_DSN"],
                                                         dbname="postgres"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def wait_database_everywhere(name, timeout=60.0):
    """Waits until every member has replayed the creation of database `name`."""
    def everywhere():
        for dsn in member_dsns().values():
            try:
                conn = psycopg2.connect(dsn)
            except psycopg2.OperationalError:
                return False
            try:
                with conn.cursor() as cur:
                    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                    if cur.fetchone() is None:
                        return False
            finally:
                conn.close()
        return True
    gdclient.wait_until(everywhere, timeout, f"database {name} on every member", interval=0.05)


def wait_drained(dsn, queues, timeout=30.0):
    """Waits until no incident is QUEUED on `queues` (their workers took
    everything); returns the ids still queued then ([] when drained)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT id FROM incident WHERE state = 'QUEUED' AND queue = ANY(%s) "
                            "ORDER BY id", (list(queues),))
                left = [r[0] for r in cur.fetchall()]
        finally:
            conn.close()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


def percentile(values, p):
    """The p-th percentile (nearest rank) of a non-empty list."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100.0 * len(v)) - 1)]


def outage_end(accepted_at, t0, horizon):
    """When intake came back after a fault at t0: the end of the longest gap
    between ACCEPTED answers (or between t0 and the first of them) within
    [t0, horizon]. Returns (gap start, gap end), or None when no ACCEPTED
    came after t0."""
    times = sorted(t for t in accepted_at if t0 <= t <= horizon)
    if not times:
        return None
    best = (t0, times[0])
    for a, b in zip(times, times[1:]):
        if b - a > best[1] - best[0]:
            best = (a, b)
    return best


def wait_time(pred, timeout, what):
    """gdclient.wait_until, returning time.monotonic() when pred first held."""
    def probe():
        return time.monotonic() if pred() else None
    return gdclient.wait_until(probe, timeout, what, interval=0.01)
