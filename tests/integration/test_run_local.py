"""deploy/run-local.sh, headless: the whole stack comes up, demo orders flow end to end, some escalate, SIGTERM stops it all.

Runs the README's run command against the build under test (--no-build), with
its database, configs and demo files in a temporary directory and free ports
(--var, --ports auto), so it collides with nothing. Needs no database of the
harness: run-local.sh makes its own cluster.
"""

import glob
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import psycopg2
import pytest

SOURCE = Path(os.environ.get("GD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("GD_BUILD_DIR", SOURCE / "build" / "test"))
FLOW_DEADLINE_S = 75   # start-up (initdb, demo district) plus the 20 s sign limit of LV-9901
STOP_DEADLINE_S = 40


def session_pids(sid):
    """Pids of live processes in session `sid` (zombies excluded)."""
    pids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(stat.split("/")[2]))
    return pids


def read_env(path):
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        env[key] = value.strip("'")
    return env


def pg_bindir():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_controldata"),
                   key=lambda p: [int(x) for x in re.findall(r"\d+", p)])
    return Path(found[-1]).parent


def counts(dsn):
    """(incidents RESOLVED or CLOSED, escalate events, incidents)."""
    with psycopg2.connect(dsn, connect_timeout=3) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FILTER (WHERE state IN ('RESOLVED', 'CLOSED')), count(*)"
                    "  FROM incident")
        resolved, total = cur.fetchone()
        cur.execute("SELECT count(*) FROM incident_event WHERE kind = 'escalate'")
        escalated = cur.fetchone()[0]
    conn.close()
    return resolved, escalated, total


@pytest.fixture
def run_dir():
    with tempfile.TemporaryDirectory(prefix="gd-run-local.") as d:
        yield Path(d)


def test_run_local_brings_up_the_stack_and_incidents_flow_and_escalate(run_dir):
    var = run_dir / "var"
    log_path = run_dir / "run-local.log"
    env = dict(os.environ)
    for k in ("GD_DB_DSN", "GD_INTAKE", "GD_STATUS", "PGHOST", "PGPORT", "PGDATABASE"):
        env.pop(k, None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(SOURCE / "deploy" / "run-local.sh"), "--no-build", "--build", str(BUILD),
             "--var", str(var), "--ports", "auto", "--rate", "20"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
            start_new_session=True)
    log_text = lambda: log_path.read_text(errors="replace")  # noqa: E731
    try:
        deadline = time.monotonic() + FLOW_DEADLINE_S
        resolved = escalated = total = 0
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"run-local.sh exited early:\n{log_text()[-4000:]}"
            if (var / "run-local.env").exists() and "ready:" in log_text():
                try:
                    resolved, escalated, total = counts(read_env(var / "run-local.env")["GD_DB_DSN"])
                except psycopg2.Error:
                    pass
                if resolved > 0 and escalated > 0:
                    break
            time.sleep(2)
        assert resolved > 0 and escalated > 0, (
            f"after {FLOW_DEADLINE_S} s: {total} incidents, {resolved} resolved, "
            f"{escalated} escalations\n{log_text()[-4000:]}")

        # every program came up, and the URLs it printed answer
        text = log_text()
        urls = read_env(var / "run-local.env")
        for needle in ("broker: ready:", "gd-dashboard: ready:", "gd-open311: listening on",
                       "gd-sla: synced", "gd-hotline: submitting", "gd-worker: "):
            assert needle in text, f"no '{needle}' in the log"
        assert urls["GD_DASHBOARD_URL"] in text and urls["GD_OPEN311_URL"] in text
        with urllib.request.urlopen(urls["GD_DASHBOARD_URL"] + "metrics", timeout=5) as r:
            assert b"griddispatch_broker_up 1" in r.read()
        with urllib.request.urlopen(urls["GD_OPEN311_URL"] + "/services.json", timeout=5) as r:
            assert b"LV-9901" in r.read()
        assert not re.search(r"^<3>", text, re.M), "error lines in the log"
        # the demo district came with its boundaries and addresses
        conn = psycopg2.connect(urls["GD_DB_DSN"])
        with conn.cursor() as cur:
            cur.execute("SELECT (SELECT count(*) FROM unit_boundary), (SELECT count(*) FROM org_unit), "
                        "(SELECT count(*) FROM address_point)")
            shapes, units, addresses = cur.fetchone()
        conn.close()
        assert shapes == units and addresses > 0, (shapes, units, addresses)

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=STOP_DEADLINE_S)
        assert rc == 143, f"run-local.sh exited {rc}\n{log_text()[-3000:]}"
        time.sleep(0.5)
        assert session_pids(proc.pid) == [], "processes left running after SIGTERM"
        pg = var / "pg"
        root = Path((pg / "root").read_text().strip()) if (pg / "root").exists() else pg
        state = subprocess.run([str(pg_bindir() / "pg_controldata"), str(root / "data")],
                               capture_output=True, text=True, check=True).stdout
        assert re.search(r"cluster state:\s+shut down$", state, re.M), state
        assert "stopping gd-broker" in log_text() and "broker: stopped" in log_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        subprocess.run([str(SOURCE / "tests" / "pg" / "pgctl.sh"), "stop", str(var / "pg")],
                       capture_output=True)
