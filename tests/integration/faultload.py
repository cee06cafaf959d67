"""faultload.py - continuous city load around one broker (or an HA pair), and the faults to inject.

Load puts together what every fault scenario runs: intake submitters
(chaos.Submitter) on a grid served by Python workers (chaos.Worker, which
sign everything and resolve half, so signed work sits across the faults),
on a grid served by gd-worker processes, and on a grid nobody serves with
a category whose deadlines are seconds long, so that gd-sla keeps
escalating incidents up the ladder to a flag. Load.check() runs checker.py
over the database and every log and prints the verdict.

Also here: stopping PostgreSQL in a given mode (fast, immediate) and
starting it again, a gd-worker process, and a database made from the
migrations and the demo district for the scripts under tests/faults/.
"""

import os
import random
import signal
import subprocess
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extensions

import chaos
import checker
import gdclient
from slaworker import SlaWorker

REPO = Path(os.environ.get("GD_SOURCE_DIR") or Path(__file__).resolve().parents[2])
LIB_PG = REPO / "deploy" / "lib-pg.sh"

TOWN = "500113001"
GRID = "500113001001001"           # served by chaos.Worker threads
GD_GRID = "500113001001002"        # served by gd-worker processes
SLA_GRID = "500113001012001"       # served by nobody: the SLA ladder
CAT_GRID = "LH-0101"               # 暴露垃圾, admitted at grid level, SLA in days
CAT_FAST = "T-FAST"                # test category: sign 1 s, resolve 3 s (wall clock)
ESCALATION_GRACE_MS = 5000


def make_fast_category(pg, sign_s=1, resolve_s=3, warn=50):
    """Adds T-FAST (before the broker starts: it loads categories once)."""
    pg.all("INSERT INTO category (code, name, sector, admitted_level) "
           "VALUES (%s, '测试快速事项', 'safety', 'grid') RETURNING code", CAT_FAST)
    pg.all("INSERT INTO category_sla (category, priority, basis, sign_limit_s, resolve_limit_s, "
           "warn_percent, max_extension_s) VALUES (%s, 'normal', 'wall', %s, %s, %s, 60) "
           "RETURNING category", CAT_FAST, sign_s, resolve_s, warn)


def gd_worker_binary():
    return Path(os.environ["GD_BUILD_DIR"]) / "workers" / "gd-worker" / "gd-worker"


class GdWorker:
    """One gd-worker process whose handler resolves at once (/bin/true)."""

    def __init__(self, directory, endpoints, queue, name):
        self.name = name
        self.log_path = Path(directory) / f"{name}.log"
        self.ini = Path(directory) / f"{name}.ini"
        conf = {"endpoints": ", ".join(endpoints), "queues": queue, "name": name,
                "credit": 4, "handler": "/bin/true", "handler_timeout_ms": 5000,
                "kill_grace_ms": 200, "hello_timeout_ms": 500, "request_timeout_ms": 1000,
                "reconnect_min_ms": 20, "reconnect_max_ms": 200, "log_level": "info"}
        self.ini.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        self.proc = None
        self.starts = 0

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([str(gd_worker_binary()), "--config", str(self.ini)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self, timeout=10):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()


class Load:
    """Intake, workers and gd-sla running against `endpoints` (intake, work) lists.

    rate: incidents/s per submitter on the served grids (None: as fast as a
    window of 10 allows)."""

    def __init__(self, intake_eps, work_eps, directory, name="faults", rate=60.0,
                 sla_rate=8.0, gd_workers=2, chaos_workers=1, sla=True, seed=1):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.rng = random.Random(seed)
        self.work_eps = list(work_eps)
        self.intake_eps = list(intake_eps)
        flat = (lambda r: (lambda now: r)) if rate else (lambda r: None)
        self.submitters = [
            chaos.Submitter(self.intake_eps, f"{name}-a", GRID, CAT_GRID, window=10,
                            rate=flat(rate), log_path=self.dir / "client-a.jsonl"),
            chaos.Submitter(self.intake_eps, f"{name}-g", GD_GRID, CAT_GRID, window=10,
                            rate=flat(rate / 4 if rate else None),
                            log_path=self.dir / "client-g.jsonl"),
            chaos.Submitter(self.intake_eps, f"{name}-s", SLA_GRID, CAT_FAST, window=5,
                            rate=flat(sla_rate), log_path=self.dir / "client-s.jsonl"),
        ]
        self.workers = [chaos.Worker(self.work_eps, GRID, credit=10, resolve_every=2,
                                     name=f"chaos-{i}", log_path=self.dir / f"worker-{i}.jsonl")
                        for i in range(chaos_workers)]
        self.gd_workers = [GdWorker(self.dir, self.work_eps, GD_GRID, f"gdw-{i}")
                           for i in range(gd_workers)]
        self.sla = SlaWorker(self.dir, self.work_eps, retry_ms=200, hello_timeout_ms=500,
                             log_level="info") if sla else None
        self.extra_clients = []     # checker.ClientLog of ad-hoc clients

    def start(self):
        for t in self.submitters + self.workers:
            t.start()
        for g in self.gd_workers:
            g.start()
        if self.sla:
            self.sla.start()
        return self

    def accepted(self):
        return sum(len(s.accepted) for s in self.submitters)

    def wait_accepted(self, more_than, timeout=30.0, what="incidents accepted"):
        return gdclient.wait_until(lambda: self.accepted() > more_than, timeout, what)

    def wait_progress(self, n=20, timeout=30.0):
        """Waits until every submitter got `n` more ACCEPTED and a worker signed more."""
        before = [len(s.accepted) for s in self.submitters]
        signed = sum(len(w.log.signed) for w in self.workers)
        def moved():
            return (all(len(s.accepted) >= b + n for s, b in zip(self.submitters, before))
                    and (not self.workers or
                         sum(len(w.log.signed) for w in self.workers) > signed))
        gdclient.wait_until(moved, timeout, f"{n} more ACCEPTED per submitter and a new SIGN")

    def stop(self, timeout=60.0):
        """Stops intake (every SUBMIT sent is answered first), then the workers."""
        for s in self.submitters:
            s.stop()
        deadline = time.monotonic() + timeout
        for s in self.submitters:
            s.join(max(0.1, deadline - time.monotonic()))
            assert not s.is_alive(), f"{s.name} still has {len(s.outstanding)} unanswered SUBMITs"
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.join(5)
        for g in self.gd_workers:
            g.stop()
        errors = [f"{t.name}: {t.error!r}" for t in self.submitters + self.workers if t.error]
        assert not errors, errors

    def kill_sla(self):
        if self.sla:
            self.sla.kill()

    def stop_sla(self):
        if self.sla and self.sla.alive():
            self.sla.stop()

    def client_logs(self):
        return [s.log for s in self.submitters] + self.extra_clients

    def worker_logs(self):
        logs = [w.log for w in self.workers]
        wl = checker.WorkerLog()
        for g in self.gd_workers:
            if g.log_path.exists():
                for line in g.log_path.read_text(errors="replace").splitlines():
                    wl.add_gd_worker_line(line, g.name)
        return logs + [wl]

    def check(self, conn, scenario, sla_grace_ms=ESCALATION_GRACE_MS):
        """Runs the checker, prints its verdict; returns it."""
        v = checker.check(conn, self.client_logs(), self.worker_logs(),
                          sources=("chaos",), sla_grace_ms=sla_grace_ms)
        print(v.report(scenario))
        return v


# ---- PostgreSQL stops and starts (the cluster of tests/pg/with-pg.sh) ----

def pg_stop(mode, pg_dir=None):
    """pg_ctl stop -m MODE (fast: sessions ended, checkpoint; immediate: no checkpoint,
    crash recovery at the next start)."""
    pg_dir = pg_dir or os.environ["GD_PG_DIR"]
    script = ('. "$1"; root=$(gdpg_root "$2"); bin=$(gdpg_bindir) || exit 1; '
              'gdpg_as_owner "$bin/pg_ctl" -D "$root/data" -m "$3" -w -t 60 -s stop')
    subprocess.run(["bash", "-c", script, "_", str(LIB_PG), pg_dir, mode], check=True,
                   capture_output=True, text=True, timeout=90)


def pg_start(pg_dir=None):
    pg_dir = pg_dir or os.environ["GD_PG_DIR"]
    subprocess.run([os.environ["GD_PGCTL"], "resume", pg_dir], check=True, capture_output=True,
                   text=True, timeout=120)


# ---- a database for the scripts (tests/faults/*.py) ----

def create_database(base_dsn, template=None):
    """A new database with the migrations and the demo district; returns its DSN."""
    from conftest import LOAD_DEMO, MIGRATIONS, _psql
    name = "gd_faults_" + uuid.uuid4().hex[:10]
    admin = psycopg2.connect(base_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    admin.close()
    dsn = psycopg2.extensions.make_dsn(base_dsn, dbname=name)
    for f in MIGRATIONS:
        _psql(dsn, "-f", str(f))
    subprocess.run([str(LOAD_DEMO), dsn], check=True, capture_output=True, text=True)
    return dsn


# ---- brokers of an HA pair (conftest.Broker objects) ----

ACTIVE_LOCK = 7347002     # broker/store.h STORE_ACTIVE_LOCK


def launch(broker):
    """Starts the broker's process without waiting for `ready:` (a standby
    waits for the active-broker lock). Returns the log offset of this run."""
    assert not broker.alive(), "broker already running"
    broker.runs += 1
    with open(broker.log_path, "ab") as log:
        log.write(f"==== start #{broker.runs} (HA): {' '.join(broker.argv())}\n".encode())
        log.flush()
        broker.offset = log.tell()
        broker.proc = subprocess.Popen(broker.argv(), stdin=subprocess.DEVNULL, stdout=log,
                                       stderr=log)
    return broker.offset


def is_ready(broker):
    """True once this run of the broker logged `ready:`."""
    with open(broker.log_path, "rb") as f:
        f.seek(getattr(broker, "offset", 0))
        return b"ready:" in f.read()


def wait_ready(broker, timeout=15.0, interval=0.002):
    """Polls the log until `ready:`; returns time.monotonic() when seen."""
    def ready():
        if is_ready(broker):
            return time.monotonic()
        assert broker.alive(), f"gd-broker exited with {broker.proc.returncode}:\n" \
                               f"{broker.log_text()[-4000:]}"
        return None
    return gdclient.wait_until(ready, timeout, f"{broker.log_path}: ready:", interval=interval)


def lock_waiters(dsn):
    """(holders, waiters) of the active-broker advisory lock on this test's database
    (other tests' brokers on the same cluster hold their own)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FILTER (WHERE granted), count(*) FILTER (WHERE NOT granted) "
                        "FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())",
                        (ACTIVE_LOCK,))
            return cur.fetchone()
    finally:
        conn.close()


def wait_standby(dsn, timeout=15.0):
    """Waits until one broker holds the lock and one waits for it."""
    return gdclient.wait_until(lambda: lock_waiters(dsn) == (1, 1), timeout,
                               "one broker active and one waiting on the lock")


# ---- the broker behind an endpoint replaced, as subscribers see it ----

REPLACEMENTS = ("kill -9", "hung")


def replace_broker(make_broker, broker, how):
    """Puts a new broker process behind `broker`'s endpoints; returns the Broker serving now.

    "kill -9": the process is killed and started again (the same endpoints,
    the same database); every connection to it breaks, and the clients'
    ZeroMQ sockets reconnect by themselves.
    "hung": the process is frozen (SIGSTOP), so its connections stay open
    and silent, as they do when its host hangs or a failover moves the
    address to another host; its database sessions are ended, which frees
    the active-broker lock, and a second broker is started bound to the same
    endpoints (on ipc:// the new bind replaces the socket file). Connections
    made before stay with the frozen one until their owner gives them up.
    Call end_frozen(broker) before the test ends."""
    assert how in REPLACEMENTS, how
    if how == "kill -9":
        broker.proc.kill()
        broker.proc.wait()
        return broker.start()
    broker.proc.send_signal(signal.SIGSTOP)
    conn = psycopg2.connect(broker.dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        conn.close()
    standby = make_broker(start=False, **broker.options)
    standby.intake_ep, standby.work_ep, standby.status_ep = (broker.intake_ep, broker.work_ep,
                                                             broker.status_ep)
    return standby.start()


def end_frozen(broker):
    """Kills a broker frozen by replace_broker(how="hung"); its end is no crash."""
    if broker.alive():
        broker.proc.kill()
        broker.proc.wait()
    broker.reported = True
