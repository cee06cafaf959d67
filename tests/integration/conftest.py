"""Fixtures of the broker integration tests: databases, the real gd-broker, clients.

Run under tests/pg/with-pg.sh, which exports GD_DB_DSN (a superuser on a
throw-away cluster). Once per cluster a template database `gd_template` is
built (migrations applied with psql in file-name order, demo district loaded
with deploy/demo/load.sh: org tree, categories, calendar, working hours, every
unit's boundary and the demo addresses); every test gets a fresh copy of it (CREATE
DATABASE ... TEMPLATE gd_template), dropped afterwards. Tests of the imports
start from `gd_schema_template` instead: the migrations and no rows.

The broker binary is $GD_BUILD_DIR/broker/gd-broker (meson sets
GD_BUILD_DIR), else $GD_BROKER. Each broker listens on ipc:// endpoints in a
private directory, logs to a file that is attached to the report of a failing
test, and is stopped with SIGTERM at teardown (it must exit 0 within a few
seconds; a crash or a hang fails the test).
"""

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras
import pytest

import gdclient

REPO = Path(os.environ.get("GD_SOURCE_DIR") or Path(__file__).resolve().parents[2])
MIGRATIONS = sorted((REPO / "broker" / "sql").glob("*.sql"))
LOAD_DEMO = REPO / "deploy" / "demo" / "load.sh"
DEMO_DATA = sorted((REPO / "deploy" / "demo" / "data").glob("*.csv"))
TEMPLATE = "gd_template"
SCHEMA_TEMPLATE = "gd_schema_template"
TEMPLATE_LOCK = 7347101      # advisory lock: one process builds the template

# Small intervals so that liveness, gauges and commits happen within a test.
# liveness 5 x 100 ms: a worker is dead 0.5 s after its last message; the
# clients heartbeat every ~33 ms while a test waits on anything.
BROKER_DEFAULTS = {
    "heartbeat-ms": 100,
    "liveness": 5,
    "gauge-ms": 200,
    "overdue-verify": 5,   # every second: a change the overdue counts missed fails the test
    "flush-ms": 2,
    "max-attempts": 3,
    "db-retry-ms": 100,
    "log-level": "debug",
}
READY_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0


# ---- failure reports carry the broker logs ----

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for b in getattr(item, "_gd_brokers", []):
            rep.sections.append((f"gd-broker log ({b.log_path})", b.log_text()[-60000:]))


# ---- databases ----

def _admin_dsn():
    dsn = os.environ.get("GD_DB_DSN")
    if not dsn:
        pytest.fail("GD_DB_DSN is not set: run the tests under tests/pg/with-pg.sh")
    return dsn


def _fingerprint(files):
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return "griddispatch test template " + h.hexdigest()[:16]


def _psql(dsn, *args):
    subprocess.run(["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dsn, *args], check=True,
                   capture_output=True, text=True,
                   env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"})


def migrate(dsn):
    """Applies broker/sql/*.sql to `dsn` in file-name order, as psql would."""
    for f in MIGRATIONS:
        _psql(dsn, "-f", str(f))


def _template(name, with_demo):
    """Builds template database `name` once per cluster (again when the
    migrations or demo files changed): migrated, and with the demo district
    when `with_demo`. Returns `name`."""
    base = _admin_dsn()
    want = _fingerprint(MIGRATIONS + (DEMO_DATA + [LOAD_DEMO] if with_demo else []))
    admin = psycopg2.connect(base)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", (TEMPLATE_LOCK,))
            cur.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                        "WHERE datname = %s", (name,))
            row = cur.fetchone()
            if row is None or row[0] != want:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                cur.execute(f"CREATE DATABASE {name}")
                dsn = psycopg2.extensions.make_dsn(base, dbname=name)
                try:
                    migrate(dsn)
                    if with_demo:
                        subprocess.run([str(LOAD_DEMO), dsn], check=True, capture_output=True,
                                       text=True)
                except subprocess.CalledProcessError as e:
                    pytest.fail(f"building {name} failed: {e.cmd}\n{e.stdout}\n{e.stderr}")
                cur.execute(f"COMMENT ON DATABASE {name} IS %s", (want,))
            cur.execute("SELECT pg_advisory_unlock(%s)", (TEMPLATE_LOCK,))
    finally:
        admin.close()
    return name


def write_csv(path, header, rows):
    """Writes a CSV file with `header` and `rows` as an import reads it; returns `path`."""
    import csv
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture(scope="session")
def gd_template():
    """Name of the migrated template database holding the demo district."""
    return _template(TEMPLATE, with_demo=True)


@pytest.fixture(scope="session")
def gd_schema_template():
    """Name of a template database with the migrations only (no rows)."""
    return _template(SCHEMA_TEMPLATE, with_demo=False)


def fresh_database(template, prefix):
    """Context manager: the DSN of a new copy of `template`, dropped after."""
    import contextlib

    @contextlib.contextmanager
    def made():
        base = _admin_dsn()
        name = prefix + uuid.uuid4().hex[:12]
        admin = psycopg2.connect(base)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
            yield psycopg2.extensions.make_dsn(base, dbname=name)
        finally:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.close()
    return made()


@pytest.fixture
def dsn(make_db):
    """DSN of a fresh database copied from the template, dropped after the test."""
    return make_db()


@pytest.fixture
def make_db(gd_template):
    """Factory: make_db() returns the DSN of one more fresh copy of the
    template (one per shard of a test), each dropped after the test."""
    base = _admin_dsn()
    made = []

    def admin_exec(sql):
        # a fresh connection each time: a test may restart the server
        admin = psycopg2.connect(base)
        admin.autocommit = True
        try:
            with admin.cursor() as cur:
                cur.execute(sql)
        finally:
            admin.close()

    def make():
        name = "gd_it_" + uuid.uuid4().hex[:12]
        admin_exec(f"CREATE DATABASE {name} TEMPLATE {gd_template}")
        made.append(name)
        return psycopg2.extensions.make_dsn(base, dbname=name)

    try:
        yield make
    finally:
        for name in made:
            admin_exec(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class Pg:
    """Reads of the test database (autocommit, rows as dicts, times as ms)."""

    INCIDENT = ("SELECT *, gd_ms(received_at) AS received_ms, gd_ms(reported_at) AS reported_ms, "
                "gd_ms(sign_due) AS sign_due_ms, gd_ms(resolve_due) AS resolve_due_ms "
                "FROM incident")

    def __init__(self, dsn):
        self.dsn = dsn
        self.conn = psycopg2.connect(dsn)
        self.conn.autocommit = True

    def close(self):
        self.conn.close()

    def all(self, sql, *args):
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, args)
            return [dict(r) for r in cur.fetchall()]

    def one(self, sql, *args):
        rows = self.all(sql, *args)
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def scalar(self, sql, *args):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()[0]

    def incident(self, incident_id):
        return self.one(self.INCIDENT + " WHERE id = %s", incident_id)

    def incident_by_key(self, source, external_id):
        return self.one(self.INCIDENT + " WHERE source = %s AND external_id = %s",
                        source, external_id)

    def events(self, incident_id):
        return self.all("SELECT *, gd_ms(at) AS at_ms FROM incident_event "
                        "WHERE incident_id = %s ORDER BY version", incident_id)

    def kinds(self, incident_id):
        return [e["kind"] for e in self.events(incident_id)]

    def wait_incident(self, incident_id, pred, timeout=gdclient.DEFAULT_TIMEOUT, hub=None,
                      what="incident state"):
        """Polls the incident row until pred(row) holds; returns the row."""
        def probe():
            row = self.incident(incident_id)
            return row if row is not None and pred(row) else None
        return gdclient.wait_until(probe, timeout, f"{what} of incident {incident_id}", hub)


@pytest.fixture
def pg(dsn):
    p = Pg(dsn)
    yield p
    p.close()


# ---- clients ----

@pytest.fixture
def hub():
    h = gdclient.Hub()
    yield h
    h.close()


# ---- the broker ----

def broker_binary():
    build = os.environ.get("GD_BUILD_DIR")
    if build and (Path(build) / "broker" / "gd-broker").is_file():
        return Path(build) / "broker" / "gd-broker"
    path = os.environ.get("GD_BROKER")
    if path and Path(path).is_file():
        return Path(path)
    pytest.fail("no gd-broker: set GD_BUILD_DIR (meson does) or GD_BROKER to the binary")


class Broker:
    """One gd-broker process on ipc:// endpoints in its own directory."""

    def __init__(self, binary, dsn, hub, options):
        self.binary = binary
        self.dsn = dsn
        self.hub = hub
        self.options = options
        self.dir = tempfile.mkdtemp(prefix="gdb-", dir="/tmp")  # short: ipc paths <= 107
        self.intake_ep = f"ipc://{self.dir}/intake"
        self.work_ep = f"ipc://{self.dir}/work"
        self.status_ep = f"ipc://{self.dir}/status"
        self.log_path = Path(self.dir) / "broker.log"
        self.proc = None
        self.runs = 0
        self.reported = False

    def argv(self):
        args = [str(self.binary), "--db", self.dsn, "--intake", self.intake_ep,
                "--work", self.work_ep, "--status", self.status_ep]
        for k, v in self.options.items():
            args += [f"--{k}", str(v)]
        return args

    def start(self):
        assert self.proc is None or self.proc.poll() is not None, "broker already running"
        self.runs += 1
        with open(self.log_path, "ab") as log:
            log.write(f"==== start #{self.runs}: {' '.join(self.argv())}\n".encode())
            log.flush()
            offset = log.tell()
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log)
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                if b"ready:" in f.read():
                    self._wait_for_database(deadline)
                    return self
            if self.proc.poll() is not None:
                self.reported = True   # the test fails with this; teardown need not repeat it
                raise AssertionError(f"gd-broker exited with {self.proc.returncode} before "
                                     f"ready:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"gd-broker not ready after {READY_TIMEOUT}s:\n"
                                     f"{self.log_text()}")
            time.sleep(0.01)

    def _wait_for_database(self, deadline):
        """Waits until a QUERY goes through to the database.

        `ready:` is logged when the endpoints are bound; the broker's own
        database connection may still be on its way, and until then new
        work is answered BUSY database_down. A QUERY for an incident that
        does not exist is answered not_found only by a working store.
        (With CurveZMQ on, the probe has no key: `ready:` is then enough,
        as the broker logs it only once its database is reached.)"""
        if "curve-key" in self.options:
            return
        probe = gdclient.Intake(self.hub, self.intake_ep)
        try:
            while True:
                r = probe.query(source="gd-test-probe", external_id="ready",
                                timeout=max(0.1, deadline - time.monotonic()))
                if r.type == "REJECTED" and r["code"] == "not_found":
                    return
                assert r.type == "BUSY", f"readiness probe answered {r!r}"
                if time.monotonic() > deadline:
                    raise AssertionError(f"gd-broker still BUSY after {READY_TIMEOUT}s: {r!r}")
                time.sleep(0.01)
        finally:
            probe.close()

    def stop(self, timeout=STOP_TIMEOUT):
        """SIGTERM; returns the exit status (the process is killed if it hangs)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"gd-broker did not stop within {timeout}s of SIGTERM")
        return self.proc.returncode

    def restart(self):
        rc = self.stop()
        assert rc == 0, f"gd-broker exited with {rc} on SIGTERM"
        return self.start()

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # clients of this broker
    def intake(self):
        return self.hub.intake(self.intake_ep)

    def worker(self, **hello):
        return self.hub.worker(self.work_ep, **hello)

    def status(self, *topics, ready=True):
        s = self.hub.status(self.status_ep, *topics)
        return s.ready() if ready else s


@pytest.fixture
def make_broker(request, dsn, hub):
    """Factory: make_broker(liveness=3, ...) starts a gd-broker on this test's database.

    Keyword arguments are command-line options (underscores become dashes)
    on top of BROKER_DEFAULTS; start=False returns it unstarted; db=DSN puts
    it on another database (a second shard)."""
    made = []
    request.node._gd_brokers = made

    def make(start=True, db=None, **opts):
        options = dict(BROKER_DEFAULTS)
        options.update({k.replace("_", "-"): v for k, v in opts.items()})
        b = Broker(broker_binary(), db or dsn, hub, options)
        made.append(b)
        return b.start() if start else b

    yield make
    problems = []
    for b in made:
        if b.proc is None:
            continue
        crashed = b.proc.poll()
        if crashed is not None and crashed != 0:
            if not b.reported:
                problems.append(f"gd-broker died during the test with status {crashed}")
            continue
        try:
            rc = b.stop()
            if rc != 0:
                problems.append(f"gd-broker exited with {rc} on SIGTERM")
        except AssertionError as e:
            problems.append(str(e))
    hub.close()   # before the sockets' directories go
    for b in made:
        if b.log_path.exists() and "counts rebuilt" in b.log_text():
            problems.append("the queues' overdue counts drifted (a change was not tracked)")
    for b in made:
        shutil.rmtree(b.dir, ignore_errors=True)
    if problems:
        pytest.fail("; ".join(problems) + "\n" + "\n".join(b.log_text()[-20000:] for b in made))


@pytest.fixture
def broker(make_broker):
    """A gd-broker with the default test options, running."""
    return make_broker()
