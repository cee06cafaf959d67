"""The PostgreSQL primary lost under steady intake: Patroni fails over, the broker follows.

Runs under tests/pg/with-patroni.sh: one etcd and three Patroni members,
synchronous_mode (strict), and a broker whose DSN lists the three members
with target_session_attrs=read-write. The city load of the other fault
tests (faultload.Load: submitters that retry with the same external_id,
Python workers, gd-workers, gd-sla) runs while the primary is lost, in one
of two ways:

  kill -9              the primary's host dies: SIGKILL to its Patroni, its
                       postmaster and every backend at once; the leader key
                       expires (ttl), Patroni promotes the synchronous
                       standby; the dead member is started again and
                       rejoins as a standby (pg_rewind);
  patronictl failover  the primary is demoted and the synchronous standby
                       promoted on request.

While there is no primary, intake answers BUSY (database_down). The broker
takes its active-broker lock again on the new primary before a connection
writes anything. ACCEPTED is sent only after COMMIT returned, and a COMMIT
returns only once the synchronous standby has the transaction, so the
checker, reading the primary that survived all cycles, finds nothing lost
and nothing duplicated. Each cycle reports the time from the fault to the
first ACCEPTED again; the test prints p50/p99 over its cycles.

GD_FAULTS_SCALE (default 1) is the number of cycles of each kind
(tests/faults/run-long.sh uses 10). The long run also kills the primary
under an active/standby pair of brokers (SCALE / 5 cycles): the active
one must keep its place.
"""

import os
import signal
import time
import uuid

import psycopg2
import psycopg2.extensions
import pytest

import faultload
import hacluster

SCALE = float(os.environ.get("GD_FAULTS_SCALE", "1"))
# the kill last: its dead member rejoins while the test ends, not before the next one
FAULTS = ["patronictl failover", "kill -9"]
LOCK_AGAIN = "the active-broker lock is ours again"


@pytest.fixture(scope="module", autouse=True)
def cluster():
    if not os.environ.get("GD_HA_DIR"):
        pytest.fail("GD_HA_DIR is not set: run this file under tests/pg/with-patroni.sh")
    hacluster.wait_healthy()


@pytest.fixture
def dsn(gd_template):
    """conftest's fresh database, once every member has it: libpq tries the
    hosts of the DSN in order and does not go on to the next one when a
    standby that has not replayed CREATE DATABASE yet says it does not exist."""
    hacluster.wait_healthy()
    name = "gd_it_" + uuid.uuid4().hex[:12]
    hacluster.admin_exec(f"CREATE DATABASE {name} TEMPLATE {gd_template}")
    try:
        hacluster.wait_database_everywhere(name)
        yield psycopg2.extensions.make_dsn(os.environ["GD_DB_DSN"], dbname=name)
    finally:
        hacluster.admin_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def check_lock_taken_before_writing(log_text):
    """Every connection the broker made after losing the database was made
    after it took the active-broker lock again (store verify hook)."""
    need_lock = False
    relocks = 0
    for line in log_text.splitlines():
        if "database connection lost" in line:
            need_lock = True
        elif LOCK_AGAIN in line:
            need_lock = False
            relocks += 1
        elif "database connected (lane" in line:
            assert not need_lock, f"a lane connected before the lock was taken again: {line}"
    return relocks


@pytest.mark.parametrize("fault", FAULTS)
def test_primary_lost_under_intake_loses_and_duplicates_nothing(fault, make_broker, pg, tmp_path):
    cycles = max(1, round(SCALE))
    faultload.make_fast_category(pg)
    broker = make_broker()
    load = faultload.Load([broker.intake_ep], [broker.work_ep], tmp_path / "load",
                          name="patroni", rate=30.0).start()
    outages = []
    try:
        for cycle in range(cycles):
            hacluster.wait_healthy()
            load.wait_progress(n=10, timeout=60)
            old = hacluster.leader()
            tl = hacluster.timeline()
            if fault == "kill -9":
                t0 = time.monotonic()
                hacluster.kill(old)
            else:
                candidate = hacluster.sync_standby()
                assert candidate, "no synchronous standby to fail over to"
                t0 = time.monotonic()
                hacluster.failover(candidate)
            new = hacluster.wait_new_leader(old, timeout=60)
            promoted = time.monotonic()
            if fault == "kill -9":
                hacluster.start(old)      # its host is back: it rejoins as a standby
            # intake serves again, on the new primary
            hacluster.wait_time(lambda: any((s.last_accepted_at or 0) > promoted
                                            for s in load.submitters),
                                60, "an ACCEPTED after the promotion")
            horizon = time.monotonic()
            assert broker.alive(), "gd-broker exited during the failover"
            accepted_at = [t for s in load.submitters for t, _ in list(s.accepted_via)]
            gap = hacluster.outage_end(accepted_at, t0, horizon)
            assert gap, "no ACCEPTED after the fault"
            busy = sum(1 for s in load.submitters for t in list(s.busy_at)
                       if gap[0] <= t <= gap[1])
            outages.append(gap[1] - t0)
            print(f"patroni [{fault}] cycle {cycle + 1}: leader {old} -> {new} "
                  f"(timeline {tl} -> {hacluster.timeline()}); fault -> first ACCEPTED again "
                  f"{gap[1] - t0:.2f} s (no ACCEPTED for {gap[1] - gap[0]:.2f} s, "
                  f"{busy} BUSY answers meanwhile); fault -> new leader {promoted - t0:.2f} s")
            assert busy > 0, "intake did not answer BUSY while there was no primary"
            # the active broker holds its lock on the new primary, nobody waits for it
            assert faultload.lock_waiters(broker.dsn) == (1, 0)
        # the load moves on and stops; the workers drain their grids: an
        # incident ACCEPTED but forgotten by the broker (a commit sent again
        # after the loss, taken for a stranger's duplicate) would stay queued
        load.wait_progress(n=10, timeout=60)
        for sub in load.submitters:
            sub.stop()
        for sub in load.submitters:
            sub.join(60)
        stranded = hacluster.wait_drained(broker.dsn, (faultload.GRID, faultload.GD_GRID))
        assert not stranded, f"ACCEPTED incidents left queued on served grids: {stranded[:10]}"
        load.stop()
        # the checker reads the primary that survived every cycle (gd-sla still
        # running: the escalations due meanwhile are checked too)
        conn = psycopg2.connect(broker.dsn)
        try:
            v = load.check(conn, f"patroni {fault}")
        finally:
            conn.close()
    finally:
        for s in load.submitters + load.workers:
            s.stopping.set()
        for g in load.gd_workers:
            g.kill()
        load.kill_sla()
    log_text = broker.log_text()
    relocks = check_lock_taken_before_writing(log_text)
    # the broker's loop never stood still waiting for the new primary: it
    # heard every worker's heartbeat meanwhile and lost no session for it
    stalled = [line for line in log_text.splitlines() if ") lost: silent for" in line]
    busy = sum(s.busy for s in load.submitters)
    print(f"patroni [{fault}]: {cycles} cycles, {load.accepted()} accepted, {busy} BUSY, "
          f"lock taken again {relocks} times; fault -> first ACCEPTED again "
          f"p50 {hacluster.percentile(outages, 50):.2f} s "
          f"p99 {hacluster.percentile(outages, 99):.2f} s max {max(outages):.2f} s")
    assert v.valid, v.report(f"patroni {fault}")
    assert relocks >= cycles, f"the lock was taken again {relocks} times in {cycles} failovers"
    assert not stalled, f"sessions lost while the broker's loop stood still: {stalled[:4]}"


def test_active_standby_pair_keeps_its_active_broker_across_primary_losses(make_broker, pg,
                                                                           tmp_path):
    """Two brokers (active/standby) on the cluster, the primary's host killed:
    both lose the database for longer than takeover_grace_ms; the active one
    takes its lock back on the new primary and serves on, the standby goes
    back to waiting, and nothing ACCEPTED is lost or duplicated."""
    if SCALE < 2:
        pytest.skip("long run only (tests/faults/run-long.sh): the pair adds ~25 s a cycle")
    cycles = max(1, round(SCALE / 5))
    faultload.make_fast_category(pg)
    opts = {"heartbeat_ms": 100, "liveness": 5, "takeover_grace_ms": 2000}
    a = make_broker(**opts)
    b = make_broker(start=False, **opts)
    broker_dsn = a.dsn
    faultload.launch(b)
    faultload.wait_standby(broker_dsn)
    load = faultload.Load([a.intake_ep, b.intake_ep], [a.work_ep, b.work_ep],
                          tmp_path / "load", name="patroni-pair", rate=30.0).start()
    try:
        for cycle in range(cycles):
            hacluster.wait_healthy()
            load.wait_progress(n=10, timeout=60)
            old = hacluster.leader()
            hacluster.kill(old)
            new = hacluster.wait_new_leader(old, timeout=60)
            hacluster.start(old)
            promoted = time.monotonic()
            hacluster.wait_time(lambda: any((s.last_accepted_at or 0) > promoted
                                            for s in load.submitters),
                                60, "an ACCEPTED after the promotion")
            faultload.wait_standby(broker_dsn, timeout=30)
            time.sleep(opts["takeover_grace_ms"] / 1000 + 1)
            print(f"patroni [pair kill -9] cycle {cycle + 1}: leader {old} -> {new}; "
                  f"active broker still active: {a.alive()}, standby ready: "
                  f"{faultload.is_ready(b)}")
            assert a.alive(), "the active broker stopped after the failover"
            assert not faultload.is_ready(b), "the standby took over from a live active broker"
            assert faultload.lock_waiters(broker_dsn) == (1, 1)
        load.wait_progress(n=10, timeout=60)
        load.stop()
        conn = psycopg2.connect(broker_dsn)
        try:
            v = load.check(conn, "patroni pair kill -9")
        finally:
            conn.close()
    finally:
        for s in load.submitters + load.workers:
            s.stopping.set()
        for g in load.gd_workers:
            g.kill()
        load.kill_sla()
        if b.alive() and not faultload.is_ready(b):   # a waiting standby's end is no crash
            b.proc.send_signal(signal.SIGTERM)
            b.proc.wait(10)
            b.reported = True
    assert v.valid, v.report("patroni pair kill -9")
