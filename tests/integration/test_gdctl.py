"""gdctl against the real broker and PostgreSQL: every subcommand, its exit codes and --json output."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg2
import psycopg2.extensions
import pytest

import faultload
import gdclient

GRID = "500113001001001"
CATEGORY = "LH-0101"


def gdctl_binary():
    p = Path(os.environ.get("GD_BUILD_DIR", "")) / "workers" / "gdctl" / "gdctl"
    if not p.is_file():
        pytest.fail(f"no gdctl at {p}: set GD_BUILD_DIR")
    return p


def gdctl(*args, broker=None, dsn=None, timeout=20, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k not in ("GD_INTAKE", "GD_STATUS")}
    env["GD_DB_DSN"] = dsn or ""
    if broker is not None:
        env["GD_INTAKE"] = broker.intake_ep
        env["GD_STATUS"] = broker.status_ep
    env.update(env_extra or {})
    return subprocess.run([str(gdctl_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def json_out(r):
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert lines, f"no JSON on stdout; stderr: {r.stderr}"
    return json.loads(lines[-1])


def test_help_and_usage_errors_exit_2():
    r = gdctl("--help")
    assert r.returncode == 0 and "exit codes" in r.stdout
    for name in ("submit", "show", "queues", "watch", "import", "migrate", "dispatch",
                 "approve", "deny"):
        assert name in r.stdout
    assert gdctl().returncode == 2
    assert gdctl("frobnicate").returncode == 2
    assert gdctl("show").returncode == 2
    assert gdctl("show", "not-a-number").returncode == 2
    assert gdctl("dispatch", "1").returncode == 2
    assert gdctl("import", "people", "/dev/null").returncode == 2
    assert gdctl("submit", "--priority", "whenever").returncode == 2
    assert gdctl("submit", "--lat", "29.5").returncode == 2


def test_submit_show_and_queues_in_both_formats(broker, pg):
    r = gdctl("submit", "--external-id", "cli-1", "--category", CATEGORY, "--unit", GRID,
              "--description", "井盖破损", "--reporter-phone", "13800000000", broker=broker)
    assert r.returncode == 0, r.stderr
    assert "QUEUED" in r.stdout and GRID in r.stdout
    r = gdctl("--json", "submit", "--external-id", "cli-1", broker=broker)
    assert r.returncode == 0, r.stderr
    sub = json_out(r)
    assert sub["duplicate"] is True and sub["state"] == "QUEUED" and sub["queue"] == GRID
    inc = sub["incident_id"]
    assert pg.incident(inc)["external_id"] == "cli-1"

    r = gdctl("show", str(inc), broker=broker)
    assert r.returncode == 0, r.stderr
    assert "receive" in r.stdout and "QUEUED" in r.stdout
    assert "13800000000" not in r.stdout, "reporter data only with --reporter"
    r = gdctl("show", "--reporter", str(inc), broker=broker)
    assert "13800000000" in r.stdout
    shown = json_out(gdctl("show", str(inc), "--json", broker=broker))
    assert shown["incident"]["id"] == inc and shown["incident"]["source"] == "gdctl"
    assert "reporter" not in shown["incident"]
    assert [e["kind"] for e in shown["events"]] == ["receive"]
    by_key = json_out(gdctl("--json", "show", "--source", "gdctl", "--external-id", "cli-1",
                            broker=broker))
    assert by_key["incident"]["id"] == inc

    def queued():
        q = json_out(gdctl("--json", "queues", GRID[:9], broker=broker))
        return next((g for g in q["queues"] if g["queue"] == GRID and g["depth"] >= 1), None)
    g = gdclient.wait_until(queued, 5, "the queue gauge")
    assert g["consumers"] == 0 and g["in_flight"] == 0
    r = gdctl("queues", broker=broker)
    assert r.returncode == 0 and "DEPTH" in r.stdout and GRID in r.stdout


def test_refusals_not_found_and_unreachable_exit_codes(broker, tmp_path):
    r = gdctl("show", "999999999", broker=broker)
    assert r.returncode == 4, (r.stdout, r.stderr)
    err = json_out(gdctl("--json", "show", "999999999", broker=broker))
    assert err["error"]["code"] == "not_found" and err["error"]["exit"] == 4
    r = gdctl("--json", "submit", "--source", "Bad Source", broker=broker)
    assert r.returncode == 2, "a value the protocol cannot carry is refused before sending"
    # the broker refuses a reported_at far in the future: exercised through dispatch instead
    r = gdctl("--json", "dispatch", "999999999", GRID, broker=broker)
    assert r.returncode == 4
    nobody = f"ipc://{tmp_path}/nobody"
    r = gdctl("--timeout", "300", "--intake", nobody, "show", "1")
    assert r.returncode == 3 and "no answer" in r.stderr
    r = gdctl("--json", "--timeout", "300", "--intake", nobody, "queues")
    assert r.returncode == 3 and json_out(r)["error"]["code"] == "timeout"


def test_dispatch_routes_a_triage_item(broker, pg):
    intake = broker.intake()
    acc = intake.submit(source="t", external_id="triage-1", description="无位置")
    assert acc["queue"] == "triage"
    inc = acc["incident_id"]
    r = gdctl("--json", "dispatch", str(inc), GRID, "派往网格", broker=broker)
    assert r.returncode == 0, r.stderr
    done = json_out(r)
    assert done["done"] == "dispatched" and done["queue"] == GRID
    row = pg.incident(inc)
    assert row["queue"] == GRID and pg.kinds(inc)[-1] == "dispatch"
    assert pg.events(inc)[-1]["note"] == "派往网格"
    r = gdctl("dispatch", str(inc), "no-such-unit", broker=broker)
    assert r.returncode in (1, 4), (r.stdout, r.stderr)
    assert "refused" in r.stderr


def test_approve_and_deny_a_pending_extension(make_broker, pg):
    pg.all("UPDATE category_sla SET auto_extension_s = 0, max_extension_s = 100000 "
           "WHERE category = %s RETURNING category", CATEGORY)
    broker = make_broker(extension_approval="above")
    intake = broker.intake()
    w = broker.worker()
    w.hello([GRID], credit=2)
    incs = []
    for x in ("ext-a", "ext-d"):
        inc = intake.submit(source="t", external_id=x, category=CATEGORY,
                            location={"unit": GRID})["incident_id"]
        ok = w.sign(w.deliver())
        due = pg.incident(inc)["resolve_due_ms"]
        req = w.extend(inc, ok["version"], until=due + 60000, reason="需要协调")
        assert req.type == "OK", req
        assert pg.incident(inc)["extension_pending"] is not None
        incs.append((inc, due))
    (a, due_a), (d, due_d) = incs
    shown = json_out(gdctl("--json", "show", str(a), broker=broker))
    assert shown["incident"]["extension_pending"] > 0
    r = gdctl("--json", "approve", str(a), "同意", broker=broker)
    assert r.returncode == 0, r.stderr
    assert json_out(r)["done"] == "approved"
    assert pg.incident(a)["resolve_due_ms"] == due_a + 60000
    r = gdctl("deny", str(d), "不同意", broker=broker)
    assert r.returncode == 0, r.stderr and "denied" in r.stdout
    row = pg.incident(d)
    assert row["resolve_due_ms"] == due_d and row["extension_pending"] is None
    r = gdctl("--json", "approve", str(d), broker=broker)
    assert r.returncode == 1 and json_out(r)["error"]["code"] == "bad_state"


def test_watch_prints_transitions_under_a_prefix(broker):
    out = {}

    def run():
        out["r"] = gdctl("--json", "watch", "--count", "1", "--seconds", "10", "inc.500113001",
                         broker=broker)
    t = threading.Thread(target=run)
    t.start()
    time.sleep(0.5)   # the SUB connection and subscription
    intake = broker.intake()
    other = intake.submit(source="t", external_id="w-0", category=CATEGORY,
                          location={"unit": "500113002001001"})
    inc = intake.submit(source="t", external_id="w-1", category=CATEGORY,
                        location={"unit": GRID})["incident_id"]
    t.join(15)
    r = out["r"]
    assert r.returncode == 0, r.stderr
    msg = json_out(r)
    assert msg["kind"] == "transition" and msg["incident_id"] == inc, (msg, other)
    assert msg["topic"].startswith("inc.500113001") and msg["event"] == "receive"
    assert "reporter" not in msg
    r = gdctl("watch", "--seconds", "1.5", "broker", broker=broker)
    assert r.returncode == 0 and "db up" in r.stdout


class Lines:
    """The stdout lines of a running process, read by a thread."""

    def __init__(self, proc):
        self.lines = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, f):
        for line in f:
            self.lines.append(line)

    def json(self):
        return [json.loads(l) for l in list(self.lines) if l.strip()]


@pytest.mark.parametrize("how", faultload.REPLACEMENTS)
def test_watch_follows_a_new_broker_on_the_same_endpoint(make_broker, how):
    """`gdctl watch inc.` goes on printing transitions when a new broker serves the status
    endpoint: the old one killed and restarted, or hung while a second one takes over
    (faultload.replace_broker)."""
    broker = make_broker()
    env = {k: v for k, v in os.environ.items() if k not in ("GD_INTAKE", "GD_STATUS")}
    proc = subprocess.Popen([str(gdctl_binary()), "--json", "--status", broker.status_ep, "watch",
                             "--seconds", "60", "inc."], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    out = Lines(proc)
    serving = broker
    submitted = []

    def shown_after(n):
        """Submits one more incident; true once one of those from the n-th on was printed."""
        submitted.append(serving.intake().submit(
            source="t", external_id=f"rw-{len(submitted)}", category=CATEGORY,
            location={"unit": GRID})["incident_id"])
        time.sleep(0.3)
        printed = {m.get("incident_id") for m in out.json()}
        return any(i in printed for i in submitted[n:])
    try:
        gdclient.wait_until(lambda: shown_after(0), 10, "a transition before the broker goes")
        serving = faultload.replace_broker(make_broker, broker, how)
        n = len(submitted)
        gdclient.wait_until(lambda: shown_after(n), 15,
                            f"a transition submitted after {how} and a new broker")
    finally:
        if serving is not broker:
            faultload.end_frozen(broker)
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    err = proc.stderr.read()
    assert proc.returncode == 0, err
    kinds = {m["kind"] for m in out.json()}
    assert kinds == {"transition"}, kinds   # what the watch subscribes to for itself stays hidden
    if how == "hung":   # nothing broke the old connection: the silence did
        assert "no broker status for" in err and "broker status again" in err, err


@pytest.fixture
def empty_dsn(gd_template):
    base = os.environ["GD_DB_DSN"]
    name = "gd_ctl_" + str(os.getpid()) + "_" + str(int(time.time() * 1000) % 100000)
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    try:
        yield psycopg2.extensions.make_dsn(base, dbname=name)
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def test_migrate_an_empty_database_twice(empty_dsn):
    sql_dir = Path(os.environ.get("GD_SOURCE_DIR", Path(__file__).resolve().parents[2])) / \
        "broker" / "sql"
    r = gdctl("--json", "migrate", str(sql_dir), dsn=empty_dsn)
    assert r.returncode == 0, r.stderr
    files = sorted(p.name for p in sql_dir.glob("*.sql"))
    assert json_out(r)["applied"] == files
    r = gdctl("migrate", str(sql_dir), dsn=empty_dsn)
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("applied") == len(files)
    conn = psycopg2.connect(empty_dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM schema_version")
        assert cur.fetchone()[0] == len(files)
    conn.close()
    r = gdctl("migrate", "/nonexistent-dir", dsn=empty_dsn)
    assert r.returncode == 5
    r = gdctl("migrate", str(sql_dir), dsn="host=/nonexistent-socket-dir dbname=x")
    assert r.returncode == 3


def test_import_org_units_categories_and_refusals(dsn, pg, tmp_path):
    org = tmp_path / "org.csv"
    org.write_bytes("\ufeffcode,name,level,kind,parent,households\n"
                    "500113001901,测试社区,community,regular,500113001,1200\n"
                    "500113001901001,测试网格,grid,regular,500113001901,300\n".encode())
    r = gdctl("import", "org", str(org), dsn=dsn)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "imported 2 org units"
    assert pg.scalar("SELECT name FROM org_unit WHERE code = '500113001901001'") == "测试网格"

    bad = tmp_path / "bad.csv"
    bad.write_text("code,name,level,kind,parent,households\n"
                   "500113001902,好社区,community,regular,500113001,1\n"
                   "500113001903,坏社区,county,regular,500113001,1\n")
    r = gdctl("--json", "import", "org", str(bad), dsn=dsn)
    assert r.returncode == 1
    e = json_out(r)["error"]
    assert "line 3" in e["message"] and "county" in e["message"]
    assert pg.scalar("SELECT count(*) FROM org_unit WHERE code = '500113001902'") == 0, \
        "one transaction: nothing of a refused file is kept"
    assert pg.scalar("SELECT count(*) FROM import_org_unit") == 0

    cats = tmp_path / "cats.csv"
    cats.write_text("code,name,sector,admitted_level,default_priority,group_name\n"
                    "ZZ-0001,测试事项,livelihood,grid,normal,测试组\n")
    sla = tmp_path / "sla.csv"
    sla.write_text("category,priority,basis,sign_limit_s,resolve_limit_s,warn_percent,"
                   "max_extension_s\nZZ-0001,normal,wall,3600,86400,80,0\n")
    r = gdctl("--json", "import", "categories", str(cats), "--sla", str(sla), dsn=dsn)
    assert r.returncode == 0, r.stderr
    assert json_out(r) == {"kind": "categories", "rows": 1, "sla_rows": 1}
    assert pg.scalar("SELECT group_name FROM category WHERE code = 'ZZ-0001'") == "测试组"

    wrong_header = tmp_path / "hdr.csv"
    wrong_header.write_text("day,name,working\n2026-10-01,国庆,false\n")
    r = gdctl("import", "calendar", str(wrong_header), dsn=dsn)
    assert r.returncode == 1, (r.stdout, r.stderr)
    cal = tmp_path / "cal.csv"
    cal.write_text("day,working,name\n2031-10-01,false,国庆\n")
    r = gdctl("import", "calendar", str(cal), dsn=dsn)
    assert r.returncode == 0 and "imported 1 calendar days" in r.stdout, r.stderr
    hours = tmp_path / "hours.csv"
    hours.write_text("starts,ends\n09:00,12:00\n14:00,17:30\n")
    r = gdctl("import", "hours", str(hours), dsn=dsn)
    assert r.returncode == 0 and "imported 2 working periods" in r.stdout, r.stderr
    assert gdctl("import", "org", str(tmp_path / "missing.csv"), dsn=dsn).returncode == 5
