"""Active/standby: two gd-broker processes on one PostgreSQL, clients and workers that list both.

The active broker holds the advisory lock 7347002 on a dedicated
connection for its whole life; a second broker started on the same
database waits for that lock before it loads anything or binds its
endpoints. When the active one dies (kill -9) or stops (SIGTERM) the lock
frees, the standby fences off what the dead one left, loads and serves.
Clients, gd-worker, gd-sla and the test's Python workers list both
endpoints and move on by themselves. checker.py then finds no ACCEPTED
incident lost and no signed incident delivered again.

The failover time is measured by tests/faults/failover-bench.py, not here.
A multi-host DSN (the way the broker reaches a Patroni cluster) is tested
here against a refusing and a read-only server; the PostgreSQL failovers
themselves are in test_patroni.py.
"""

import os
import signal
import subprocess
import time

import psycopg2
import psycopg2.extensions
import pytest

import faultload
import gdclient

HA_OPTIONS = {"heartbeat_ms": 100, "liveness": 5}


@pytest.fixture
def pair(make_broker, pg):
    """Broker A active, broker B standing by (both registered for teardown)."""
    faultload.make_fast_category(pg)
    a = make_broker(**HA_OPTIONS)
    b = make_broker(start=False, **HA_OPTIONS)
    faultload.launch(b)
    faultload.wait_standby(pg.dsn)
    yield a, b
    for x in (a, b):   # a standby killed by SIGTERM while waiting is not a crash
        if x.alive() and not faultload.is_ready(x):
            x.proc.send_signal(signal.SIGTERM)
            x.proc.wait(10)
            x.reported = True


def test_standby_waits_on_the_lock_without_binding_its_endpoints(pair, pg):
    a, b = pair
    assert faultload.lock_waiters(pg.dsn) == (1, 1)
    assert not faultload.is_ready(b)
    r = a.intake().query(source="ha", external_id="none")
    assert r.type == "REJECTED" and r["code"] == "not_found"
    probe = b.hub.intake(b.intake_ep)
    with pytest.raises(gdclient.Timeout):
        probe.query(source="ha", external_id="none", timeout=0.3)
    assert b.alive() and not faultload.is_ready(b), "the standby must still be waiting"


@pytest.mark.parametrize("how", ["kill -9", "SIGTERM"])
def test_standby_takes_over_and_clients_fail_over_by_themselves(pair, pg, tmp_path, how):
    a, b = pair
    load = faultload.Load([a.intake_ep, b.intake_ep], [a.work_ep, b.work_ep],
                          tmp_path / "load", name="ha").start()
    try:
        active, standby = a, b
        failovers = 3
        for _ in range(failovers):
            load.wait_progress(n=20)
            if how == "kill -9":
                active.proc.kill()
            else:
                active.proc.send_signal(signal.SIGTERM)
            rc = active.proc.wait(15)
            assert rc in (0, -9), f"the active broker exited with {rc}"
            faultload.wait_ready(standby)
            # the restarted old active is the new standby
            faultload.launch(active)
            faultload.wait_standby(pg.dsn)
            active, standby = standby, active
        load.wait_progress(n=20)
        load.stop()
    finally:
        for s in load.submitters + load.workers:
            s.stopping.set()
        for g in load.gd_workers:
            g.kill()
        load.kill_sla()
    v = load.check(pg.conn, f"HA {how}")
    print(f"checker [HA {how}]: {failovers} failovers; client endpoint switches "
          f"{sum(len(s.failovers) for s in load.submitters)}")
    assert v.valid, v.report(f"HA {how}")
    assert all(s.failovers for s in load.submitters), "a client never moved to the other broker"
    assert all(w.welcomes > failovers for w in load.workers)


def test_only_one_broker_is_active_after_postgresql_restarts(pair, pg):
    a, b = pair
    pg.close()
    faultload.pg_stop("fast")
    faultload.pg_start()
    pg.__init__(pg.dsn)
    # the active broker serves again on its own
    intake = a.intake()
    gdclient.wait_until(lambda: intake.query(source="ha", external_id="none").type == "REJECTED",
                        20, "the active broker serving after the restart")
    if not b.alive():                 # a supervisor starts the standby again
        faultload.launch(b)
    # the standby must go back to waiting, with the active holding the lock
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not faultload.is_ready(b):
        time.sleep(0.05)
    assert a.alive()
    assert not faultload.is_ready(b), "a second broker became active beside the running one"
    assert faultload.lock_waiters(pg.dsn) == (1, 1)


def test_the_active_broker_keeps_its_place_after_an_outage_longer_than_the_grace(make_broker, pg):
    """A database failover takes longer than takeover_grace_ms (a Patroni
    ttl of seconds): the standby must still let the active broker take its
    lock back first once the database answers again."""
    a = make_broker(takeover_grace_ms=1000, **HA_OPTIONS)
    b = make_broker(start=False, takeover_grace_ms=1000, **HA_OPTIONS)
    faultload.launch(b)
    faultload.wait_standby(pg.dsn)
    pg.close()
    faultload.pg_stop("fast")
    time.sleep(2.5)               # the outage outlasts the grace
    faultload.pg_start()
    pg.__init__(pg.dsn)
    intake = a.intake()
    gdclient.wait_until(lambda: intake.query(source="ha", external_id="none").type == "REJECTED",
                        20, "the active broker serving after the outage")
    faultload.wait_standby(pg.dsn)
    time.sleep(1.5)               # past the standby's grace after reconnecting
    assert a.alive(), f"the active broker stopped: {a.log_text()[-2000:]}"
    assert not faultload.is_ready(b), "the standby took over from a live active broker"
    assert faultload.lock_waiters(pg.dsn) == (1, 1)
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(10)
    b.reported = True


@pytest.fixture
def read_only_server(tmp_path, pg):
    """A second server whose sessions are read-only (as a standby's are), holding
    a database of the test database's name; yields its (socket dir, port)."""
    pgctl = os.environ["GD_PGCTL"]
    d = tmp_path / "ro"
    subprocess.run([pgctl, "start", str(d)], check=True, capture_output=True, timeout=120)
    try:
        env = dict(line.split("=", 1) for line in (d / "env").read_text().splitlines())
        env = {k: v.strip("'") for k, v in env.items()}
        name = psycopg2.extensions.parse_dsn(pg.dsn)["dbname"]
        conn = psycopg2.connect(env["GD_DB_DSN"])
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {name}")
            cur.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            cur.execute("SELECT pg_reload_conf()")
        conn.close()
        yield env["PGHOST"], env["PGPORT"]
    finally:
        subprocess.run([pgctl, "stop", str(d)], capture_output=True, timeout=120)


# target_session_attrs: the broker's default, or written in the DSN
@pytest.mark.parametrize("attrs", [None, "read-write"])
def test_multi_host_dsn_skips_refusing_and_read_only_servers_and_relocks_after_a_restart(
        make_broker, pg, read_only_server, tmp_path, attrs):
    ro_host, ro_port = read_only_server
    opts = psycopg2.extensions.parse_dsn(pg.dsn)
    nowhere = tmp_path / "no-server"       # a socket directory nobody listens in
    nowhere.mkdir()
    extra = {"target_session_attrs": attrs} if attrs else {}
    dsn = psycopg2.extensions.make_dsn(
        pg.dsn, host=f"{nowhere},{ro_host},{opts['host']}",
        port=f"{opts['port']},{ro_port},{opts['port']}", **extra)
    b = make_broker(start=False)
    b.dsn = dsn
    b.start()           # loads, takes the lock and connects its lanes through the list
    intake = b.intake()
    r = intake.submit(source="ha", external_id="mh-1", category="LH-0101",
                      location={"unit": faultload.GRID})
    assert r.type == "ACCEPTED", r
    assert faultload.lock_waiters(pg.dsn) == (1, 0)
    # the writable server restarts: the lock session ends; it is taken again there
    pg.close()
    faultload.pg_stop("fast")
    faultload.pg_start()
    pg.__init__(pg.dsn)

    def accepted():
        r = intake.submit(source="ha", external_id="mh-2", category="LH-0101",
                          location={"unit": faultload.GRID})
        return r if r.type == "ACCEPTED" else None
    gdclient.wait_until(accepted, 20, "ACCEPTED after the restart")
    assert faultload.lock_waiters(pg.dsn) == (1, 0)
    assert "the active-broker lock is ours again" in b.log_text()
    # both stored on the writable server: nothing was sent to the read-only one
    assert pg.scalar("SELECT count(*) FROM incident WHERE source = 'ha'") == 2
