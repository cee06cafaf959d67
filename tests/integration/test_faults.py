"""Fault injection under continuous load: whatever crashes, the checker finds nothing lost, duplicated or inconsistent.

Every scenario runs intake at a steady rate, chaos.Worker threads and
gd-worker processes that sign (and mostly resolve) what they get, and a
gd-sla that escalates incidents of a seconds-long category nobody serves;
it injects one kind of fault, lets the load run on, and then checker.py
compares the database with what every client and worker was told and
prints its verdict (`checker [scenario]: VALID ...`).

GD_FAULTS_SCALE (default 1) multiplies cycles and durations: the CI run is
short; tests/faults/run-long.sh runs the same file with a large scale.
"""

import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import msgpack
import pytest
import zmq

import chaos
import checker
import faultload
import gdclient
from faultload import CAT_GRID, GRID

SCALE = float(os.environ.get("GD_FAULTS_SCALE", "1"))
SEED = int(os.environ.get("GD_FAULTS_SEED", "0")) or random.randrange(1, 1 << 30)


def cycles(n):
    return max(1, round(n * SCALE))


@pytest.fixture
def rng():
    print(f"GD_FAULTS_SEED={SEED}")
    return random.Random(SEED)


@pytest.fixture
def city(make_broker, pg, tmp_path, rng):
    """A broker with the fast SLA category, and a started Load around it."""
    faultload.make_fast_category(pg)
    broker = make_broker(heartbeat_ms=100, liveness=5)
    load = faultload.Load([broker.intake_ep], [broker.work_ep], tmp_path / "load",
                          seed=rng.random()).start()
    load.broker = broker
    yield load
    for s in load.submitters + load.workers:
        s.stopping.set()
    for g in load.gd_workers:
        g.kill()
    if load.sla:
        load.sla.kill()


def finish(load, pg, scenario, counts=""):
    """Lets the load move on after the last fault, stops it, and checks the run."""
    load.wait_progress(n=10)
    load.stop()
    verdict = load.check(pg.conn, scenario)
    if counts:
        print(f"checker [{scenario}]: {counts}")
    assert verdict.valid, verdict.report(scenario)
    assert verdict.counts["accepted"] > 50, f"too little intake: {verdict.counts}"
    return verdict


def reconnect(pg):
    pg.close()
    pg.__init__(pg.dsn)


def test_broker_killed_with_sigkill_at_random_moments_loses_and_repeats_nothing(city, pg, rng):
    b = city.broker
    n = cycles(4)
    for _ in range(n):
        city.wait_accepted(city.accepted() + rng.randint(5, 60))
        welcomed = [w.welcomes for w in city.workers]
        b.proc.kill()
        b.proc.wait()
        b.start()
        # each kill must find workers holding live sessions: wait until every
        # worker has been welcomed by the new broker before the next kill
        gdclient.wait_until(lambda: all(w.welcomes > k for w, k in zip(city.workers, welcomed)),
                            30.0, "every worker welcomed again after the restart")
    v = finish(city, pg, "kill -9", f"{n} kill -9 cycles")
    assert all(w.welcomes > n for w in city.workers), "the workers never had to reconnect"
    assert v.counts["signed"] > 0
    # the same verdict from the checker as a program, on the logs as files
    logs = city.dir
    argv = ["/usr/bin/python3", str(Path(checker.__file__)), "--dsn", pg.dsn, "--name", "cli"]
    argv += [a for p in sorted(logs.glob("client-*.jsonl")) for a in ("--client", str(p))]
    argv += [a for p in sorted(logs.glob("worker-*.jsonl")) for a in ("--worker", str(p))]
    argv += [a for p in sorted(logs.glob("gdw-*.log")) for a in ("--gd-worker-log", str(p))]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    print(r.stdout.strip())
    assert r.returncode == 0 and f"accepted={v.counts['accepted']} " in r.stdout, r.stdout + r.stderr


def test_broker_stopped_beyond_the_heartbeat_timeouts_resumes_and_loses_nothing(city, pg, rng):
    b = city.broker
    n = cycles(2)
    for _ in range(n):
        city.wait_progress(n=5)
        b.proc.send_signal(signal.SIGSTOP)
        try:
            # longer than liveness x heartbeat (0.5 s) and than the workers'
            # and clients' patience (1 s): everybody gives up and reconnects
            time.sleep(rng.uniform(1.5, 2.5))
        finally:
            b.proc.send_signal(signal.SIGCONT)
    assert b.alive()
    finish(city, pg, "SIGSTOP/SIGCONT", f"{n} stops of 1.5-2.5 s")
    assert all(w.hellos > n for w in city.workers)


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgresql_stopped_and_restarted_answers_busy_then_recovers(city, pg, mode, rng):
    b = city.broker
    n = cycles(1)
    for _ in range(n):
        city.wait_progress(n=10)
        busy = sum(s.busy for s in city.submitters)
        pg.close()
        faultload.pg_stop(mode)
        try:
            gdclient.wait_until(lambda: sum(s.busy for s in city.submitters) > busy, 20,
                                "BUSY while PostgreSQL is down")
            assert b.alive(), "the broker died with the database"
        finally:
            faultload.pg_start()
        reconnect(pg)
    finish(city, pg, f"postgres {mode} stop", f"{n} {mode} stops")
    assert b.alive()


def test_worker_crash_storm_leaves_no_signed_incident_redelivered(city, pg, rng):
    storm = city.gd_workers + [faultload.GdWorker(city.dir, city.work_eps, faultload.GD_GRID,
                                                  "gdw-storm").start()]
    city.gd_workers = storm
    kills = 0
    end = time.monotonic() + 3 * SCALE
    while time.monotonic() < end:
        victim = rng.choice(storm)
        victim.kill()
        kills += 1
        time.sleep(rng.uniform(0.05, 0.3))       # dead for a while: the broker must notice
        victim.start()
    gdclient.wait_until(lambda: all(g.alive() for g in storm), 5, "workers restarted")
    v = finish(city, pg, "worker crash storm", f"{kills} gd-worker kill -9")
    signed = sum(1 for w in city.worker_logs()[-1:] for _ in w.signed)
    assert signed > 0, "the gd-workers signed nothing"
    assert v.counts["signed"] >= signed


def test_sla_worker_crashes_leave_no_overdue_incident_unescalated(city, pg, rng):
    n = cycles(4)
    for _ in range(n):
        time.sleep(rng.uniform(0.3, 1.0))      # the SLA worker at work
        city.kill_sla()
        time.sleep(rng.uniform(0.2, 1.5))      # deadlines pass while nobody watches
        city.sla.start()
    v = finish(city, pg, "gd-sla crashes", f"{n} gd-sla kill -9")
    # the checker's escalation check needs deadlines that did pass
    assert v.counts["escalated"] > 0 and v.counts["flagged"] > 0, v.counts


def test_clients_and_workers_that_disconnect_mid_request_do_no_harm(city, pg, rng):
    b = city.broker
    ctx = zmq.Context.instance()
    hit_and_run = checker.ClientLog()
    city.extra_clients.append(hit_and_run)
    for i in range(cycles(200)):
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 2000 if i % 2 else 0)   # sent, or maybe not even that
        s.connect(b.intake_ep)
        ext = f"gone-{i}"
        hit_and_run.submit("chaos", ext)
        s.send_multipart(chaos.frames("SUBMIT", {
            "ref": 1, "source": "chaos", "external_id": ext, "category": CAT_GRID,
            "location": {"unit": GRID}}))
        s.close()
    # a worker that signs and vanishes before the OK
    for i in range(cycles(5)):
        w = ctx.socket(zmq.DEALER)
        w.setsockopt(zmq.LINGER, 2000)
        w.connect(b.work_ep)
        w.send_multipart(chaos.frames("HELLO", {"role": "worker", "name": f"vanish-{i}",
                                                "queues": [GRID], "credit": 3}))
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and w.poll(int((deadline - time.monotonic()) * 1000)):
            t, body = chaos.parse(w.recv_multipart())
            if t == "DELIVER":
                w.send_multipart(chaos.frames("SIGN", {
                    "ref": 1, "incident_id": body["incident"]["id"],
                    "delivery_id": body["delivery_id"]}))
                break
        w.close()
    assert b.alive()
    finish(city, pg, "disconnect mid-request",
           f"{cycles(200)} SUBMITs abandoned, {cycles(5)} SIGNs abandoned")
    stored = pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'gone-%%'")
    print(f"checker [disconnect mid-request]: {stored} abandoned SUBMITs were stored (recovered)")


@pytest.fixture
def wal_on_small_disk(tmp_path):
    """A dedicated cluster whose pg_wal lives on a 256 MB tmpfs (root only).

    Yields (env dict of the cluster, mount point)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system for pg_wal needs root")
    pgdir = tmp_path / "pg"
    mnt = Path(tempfile.mkdtemp(prefix="gd-wal-"))
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m,mode=0777", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        mnt.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    pgctl = os.environ["GD_PGCTL"]
    try:
        subprocess.run([pgctl, "start", str(pgdir)], check=True, capture_output=True,
                       timeout=120)
        env = dict(line.split("=", 1) for line in (pgdir / "env").read_text().splitlines())
        env = {k: v.strip("'") for k, v in env.items()}
        subprocess.run([pgctl, "halt", str(pgdir)], check=True, capture_output=True, timeout=60)
        root = Path((pgdir / "root").read_text().strip()) if (pgdir / "root").exists() else pgdir
        wal = root / "data" / "pg_wal"
        shutil.copytree(wal, mnt / "pg_wal", symlinks=True)
        shutil.chown(mnt / "pg_wal", *(2 * [wal.owner()]))
        for p in (mnt / "pg_wal").rglob("*"):
            shutil.chown(p, wal.owner(), wal.group())
        shutil.rmtree(wal)
        wal.symlink_to(mnt / "pg_wal")
        subprocess.run([pgctl, "resume", str(pgdir)], check=True, capture_output=True,
                       timeout=120)
        yield env, mnt, pgdir
    finally:
        subprocess.run([pgctl, "stop", str(pgdir)], capture_output=True, timeout=120)
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(mnt, ignore_errors=True)


def test_full_wal_disk_answers_busy_loses_nothing_and_recovers(wal_on_small_disk, hub, tmp_path):
    import conftest
    env, mnt, pgdir = wal_on_small_disk
    dsn = faultload.create_database(env["GD_DB_DSN"])
    pg = conftest.Pg(dsn)
    faultload.make_fast_category(pg)
    print("wal full: pg_wal after the demo load: %d MB of %d" % (
        shutil.disk_usage(mnt).used >> 20, shutil.disk_usage(mnt).total >> 20))
    broker = conftest.Broker(conftest.broker_binary(), dsn, hub,
                             dict(conftest.BROKER_DEFAULTS, **{"heartbeat-ms": 100,
                                                               "liveness": 5}))
    load = None
    try:
        broker.start()
        load = faultload.Load([broker.intake_ep], [broker.work_ep], tmp_path / "load").start()
        load.wait_progress(n=20)
        # fill the WAL file system, then make PostgreSQL need a new segment
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        busy = sum(s.busy for s in load.submitters)
        pg.close()
        try:
            admin = conftest.Pg(dsn)
            for _ in range(50):
                admin.scalar("SELECT pg_switch_wal()")
            admin.close()
        except Exception as e:   # PANIC: the server went down under us
            print(f"wal full: {type(e).__name__}: {str(e).strip()[:200]}")
        gdclient.wait_until(lambda: sum(s.busy for s in load.submitters) > busy or
                            not subprocess.run([os.environ["GD_PGCTL"], "status", str(pgdir)],
                                               capture_output=True).returncode, 30,
                            "BUSY answers or PostgreSQL down with a full pg_wal")
        accepted = load.accepted()
        filler.unlink()
        subprocess.run([os.environ["GD_PGCTL"], "resume", str(pgdir)], check=True,
                       capture_output=True, timeout=120)
        load.wait_accepted(accepted + 50, timeout=60, what="intake after the disk has room")
        assert broker.alive()
        pg = conftest.Pg(dsn)
        finish(load, pg, "pg_wal disk full")
        log = (pgdir / "log" / "postgres.log").read_text(errors="replace")
        print("wal full: postgres said: " + "; ".join(
            sorted({line.split("] ", 1)[-1][:120] for line in log.splitlines()
                    if "No space left" in line or "PANIC" in line}))[:600])
    finally:
        if load:
            for s in load.submitters + load.workers:
                s.stopping.set()
            for g in load.gd_workers:
                g.kill()
            load.kill_sla()
        broker.stop()
        hub.close()
        shutil.rmtree(broker.dir, ignore_errors=True)


def test_checker_finds_lost_phantom_inconsistent_overdue_and_redelivered(pg):
    """The checker can fail: one planted anomaly of each kind is reported."""
    def incident(iid, ext, state, version, sign_due="NULL"):
        pg.all("INSERT INTO incident (id, source, external_id, priority, state, version, queue, "
               "owner_level, received_at, updated_at, sign_due) VALUES (%s, 'chaos', %s, "
               f"'normal', %s, %s, %s, 'grid', now(), now(), {sign_due}) RETURNING id",
               iid, ext, state, version, GRID)

    def events(iid, *evs):
        for v, (kind, frm, to) in enumerate(evs, 1):
            pg.all("INSERT INTO incident_event (incident_id, version, at, kind, from_state, "
                   "to_state) VALUES (%s, %s, now(), %s, %s, %s) RETURNING version",
                   iid, v, kind, frm, to)

    clients, workers = checker.ClientLog(), checker.WorkerLog()
    for ext, iid in (("lost", 9001), ("bad-path", 9003), ("overdue", 9005), ("signed", 9006)):
        clients.submit("chaos", ext)
        clients.accept("chaos", ext, iid)
    incident(9002, "phantom", "QUEUED", 1)
    events(9002, ("receive", "RECEIVED", "QUEUED"))
    incident(9003, "bad-path", "SIGNED", 2)
    events(9003, ("receive", "RECEIVED", "QUEUED"), ("sign", "QUEUED", "SIGNED"))
    incident(9005, "overdue", "QUEUED", 1, sign_due="now() - interval '1 minute'")
    events(9005, ("receive", "RECEIVED", "QUEUED"))
    incident(9006, "signed", "SIGNED", 3)
    events(9006, ("receive", "RECEIVED", "QUEUED"), ("deliver", "QUEUED", "DELIVERED"),
           ("sign", "DELIVERED", "SIGNED"))
    workers.add({"op": "signed", "incident_id": 9006, "version": 3})
    workers.add({"op": "deliver", "incident_id": 9006, "version": 4, "delivery_id": 7})
    v = checker.check(pg.conn, clients, workers, sla_grace_ms=5000)
    print(v.report("planted anomalies"))
    assert not v.valid
    for anomaly in ("lost", "unexpected", "bad-history", "missed-escalation",
                    "redelivered-after-sign"):
        assert len(v.found[anomaly]) == 1, (anomaly, v.found)
    assert not v.found["duplicated"] and not v.found["bad-projection"]
