"""gd-worker, the town-IT worker program, and the Python example worker against the real broker.

gd-worker is $GD_BUILD_DIR/workers/gd-worker/gd-worker. Handlers are small
Python scripts written by each test; they record what they saw (stdin JSON,
GD_* environment) in files under the test's tmp_path.
"""

import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from conftest import REPO
from demo import COMMUNITY, GRID, PII_ADDRESS, PII_NAME, PII_PHONE, submission
from gdclient import Timeout, wait_until

PY = "/usr/bin/python3"
PY_WORKER = REPO / "workers" / "examples" / "py_worker.py"

# Reconnect quickly; the broker fixture uses heartbeat 100 ms x liveness 5.
WORKER_DEFAULTS = {
    "credit": 1,
    "handler_timeout_ms": 10000,
    "kill_grace_ms": 300,
    "hello_timeout_ms": 1000,
    "request_timeout_ms": 2000,
    "reconnect_min_ms": 50,
    "reconnect_max_ms": 400,
    "log_level": "debug",
}

# A handler: records its input, then acts as the file `mode` (or $MODE) says.
HANDLER = r'''
import fcntl, json, os, sys, time
d = sys.argv[1]
inc = json.load(sys.stdin)
iid = os.environ["GD_INCIDENT_ID"]
rec = {"json": inc, "env": {k: v for k, v in os.environ.items() if k.startswith("GD_")},
       "pid": os.getpid(), "pgid": os.getpgrp()}
with open(os.path.join(d, f"seen-{iid}-{os.getpid()}.json"), "w") as f:
    json.dump(rec, f)
# concurrency counter under a file lock
def bump(by):
    with open(os.path.join(d, "counter.lock"), "a+") as lk:
        fcntl.flock(lk, fcntl.LOCK_EX)
        cur_p, max_p = os.path.join(d, "running"), os.path.join(d, "max")
        cur = int(open(cur_p).read()) if os.path.exists(cur_p) else 0
        mx = int(open(max_p).read()) if os.path.exists(max_p) else 0
        cur += by
        open(cur_p, "w").write(str(cur))
        open(max_p, "w").write(str(max(mx, cur)))
bump(1)
try:
    mode = open(os.path.join(d, "mode")).read().split()
    ext = inc.get("external_id", "")
    per = os.path.join(d, "mode-" + ext)
    if os.path.exists(per):
        mode = open(per).read().split()
    sleep = float(mode[1]) if len(mode) > 1 else 0
    if mode[0] == "hang":
        child = os.fork()
        if child == 0:
            os.execvp("sleep", ["sleep", "60"])
        open(os.path.join(d, f"hang-{iid}"), "w").write(f"{os.getpid()} {child}")
        time.sleep(60)
    time.sleep(sleep)
    if mode[0] == "resolve":
        print("  已修复路灯 fixed by " + os.environ["GD_WORKER"] + "  \n")
        sys.exit(0)
    if mode[0] == "return":
        print("不属于网格职责: belongs to the community")
        sys.exit(3)
    if mode[0] == "progress":
        print("crew on the way")
        sys.exit(4)
    if mode[0] == "tempfail":
        sys.exit(75)
    sys.exit(int(mode[0]))
finally:
    bump(-1)
'''


def gd_worker_binary():
    build = os.environ.get("GD_BUILD_DIR")
    path = Path(build or ".") / "workers" / "gd-worker" / "gd-worker"
    if not build or not path.is_file():
        pytest.fail("no gd-worker: set GD_BUILD_DIR to a build directory that has it")
    return path


class Proc:
    """One worker process (gd-worker or py_worker.py) with its log file."""

    def __init__(self, argv, log_path):
        self.log_path = log_path
        self.argv = argv
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        return self

    def stop(self, timeout=10):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.argv[0]} did not stop within {timeout}s of SIGTERM")
        return self.proc.returncode if self.proc else None

    def kill(self):
        self.proc.kill()
        self.proc.wait()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Workers:
    def __init__(self, tmp_path, broker):
        self.tmp = tmp_path
        self.broker = broker
        self.procs = []
        self.hdir = tmp_path / "handler"
        self.hdir.mkdir()
        (self.hdir / "handler.py").write_text(HANDLER)
        self.mode("resolve")

    def mode(self, m, external_id=None):
        name = "mode" if external_id is None else f"mode-{external_id}"
        (self.hdir / name).write_text(m)

    def gd_worker(self, name, start=True, **cfg):
        conf = dict(WORKER_DEFAULTS, endpoints=self.broker.work_ep, queues=GRID, name=name)
        if "webhook" not in cfg:
            conf["handler"] = f"{PY} {self.hdir / 'handler.py'} {self.hdir}"
        conf.update(cfg)
        ini = self.tmp / f"{name}.ini"
        ini.write_text("".join(f"{k} = {v}\n" for k, v in conf.items()))
        p = Proc([str(gd_worker_binary()), "--config", str(ini)], self.tmp / f"{name}.log")
        self.procs.append(p)
        return p.start() if start else p

    def py_worker(self, name, credit=1):
        p = Proc([PY, str(PY_WORKER), "--endpoint", self.broker.work_ep, "--queue", GRID,
                  "--credit", str(credit), "--name", name, "--result", f"done by {name}"],
                 self.tmp / f"{name}.log")
        self.procs.append(p)
        return p.start()

    def seen(self):
        """Handler records: list of dicts (json, env, pid)."""
        out = []
        for f in sorted(self.hdir.glob("seen-*.json")):
            try:
                out.append(json.loads(f.read_text()))
            except ValueError:
                pass   # being written
        return out

    def logs(self):
        return "\n".join(f"---- {p.argv[-1] if 'py_worker' in str(p.argv) else p.log_path.name}\n"
                         f"{p.log()[-8000:]}" for p in self.procs)

    def wait(self, cond, what, timeout=10.0):
        try:
            return wait_until(cond, timeout, what, self.broker.hub)
        except Timeout as e:
            raise AssertionError(f"{e}\n{self.logs()}\n---- broker\n"
                                 f"{self.broker.log_text()[-6000:]}") from None


@pytest.fixture
def workers(tmp_path, broker):
    w = Workers(tmp_path, broker)
    yield w
    problems = []
    for p in w.procs:
        if p.proc and p.proc.poll() is None:
            try:
                rc = p.stop()
                if rc != 0:
                    problems.append(f"{p.log_path.name}: exit {rc} on SIGTERM")
            except AssertionError as e:
                problems.append(str(e))
    if problems:
        pytest.fail("; ".join(problems) + "\n" + w.logs())


def submit(broker, n=1, prefix="W", **kw):
    intake = broker.intake()
    ids = []
    for i in range(n):
        r = intake.submit(**submission(f"{prefix}-{i}", **kw))
        assert r.type == "ACCEPTED", r
        ids.append(r["incident_id"])
    return ids


def state(pg, iid):
    row = pg.incident(iid)
    return row["state"] if row else None


def assert_no_pii(text):
    for pii in (PII_NAME, PII_PHONE, PII_ADDRESS):
        assert pii not in text, f"personal data {pii!r} in a log"


# ---- lifecycle: the C program and the Python example behave alike ----

@pytest.mark.parametrize("program", ["gd-worker", "py_worker"])
def test_delivered_incident_is_signed_then_resolved_with_the_result(workers, broker, pg, program):
    if program == "gd-worker":
        p = workers.gd_worker("town-a")
    else:
        p = workers.py_worker("town-py")
    (iid,) = submit(broker, 1, f"LC-{program}")
    workers.wait(lambda: state(pg, iid) == "RESOLVED", "incident resolved")
    ev = pg.events(iid)
    assert [e["kind"] for e in ev] == ["receive", "deliver", "sign", "resolve"]
    actor = "town-a" if program == "gd-worker" else "town-py"
    assert ev[2]["actor"] == actor and ev[3]["actor"] == actor
    if program == "gd-worker":
        # stdout trimmed, as the result
        assert ev[3]["note"] == "已修复路灯 fixed by town-a"
        (rec,) = workers.seen()
        env, inc = rec["env"], rec["json"]
        assert env["GD_INCIDENT_ID"] == str(iid)
        assert env["GD_VERSION"] == str(ev[1]["version"])     # as delivered
        assert env["GD_CATEGORY"] == "LH-0101" and env["GD_QUEUE"] == GRID
        assert env["GD_PRIORITY"] == "normal" and env["GD_UNIT"] == GRID
        assert inc["id"] == iid and inc["queue"] == GRID and inc["attempt"] == 1
        assert inc["reporter"]["phone"] == PII_PHONE         # the owner sees it on stdin ...
        assert not any(PII_PHONE in v for v in env.values())  # ... never in the environment
    else:
        assert ev[3]["note"] == "done by town-py"
    assert p.stop() == 0
    assert_no_pii(p.log())


# ---- sharing and credit ----

def test_two_gd_workers_on_one_queue_share_it(workers, broker, pg):
    workers.mode("resolve 0.2")
    workers.gd_worker("share-a")
    workers.gd_worker("share-b")
    ids = submit(broker, 8, "SH")
    workers.wait(lambda: all(state(pg, i) == "RESOLVED" for i in ids), "all resolved")
    by = {}
    for i in ids:
        actor = pg.events(i)[-1]["actor"]
        by.setdefault(actor, []).append(i)
    assert set(by) == {"share-a", "share-b"}, by
    # each incident was handled exactly once
    handled = [r["json"]["id"] for r in workers.seen()]
    assert sorted(handled) == sorted(ids)


def test_credit_bounds_the_handlers_running_at_once(workers, broker, pg):
    workers.mode("resolve 0.4")
    workers.gd_worker("credit-3", credit=3)
    ids = submit(broker, 10, "CR")
    workers.wait(lambda: all(state(pg, i) == "RESOLVED" for i in ids), "all resolved",
                 timeout=20)
    assert int((workers.hdir / "max").read_text()) == 3


# ---- handler verdicts ----

def test_handler_exit_3_returns_it_to_the_parent_with_stdout_as_the_reason(workers, broker, pg):
    workers.mode("return")
    workers.gd_worker("ret")
    (iid,) = submit(broker, 1, "RT")
    workers.wait(lambda: pg.incident(iid)["queue"] == COMMUNITY, "returned to the community")
    ev = pg.events(iid)
    assert [e["kind"] for e in ev] == ["receive", "deliver", "sign", "return"]
    assert ev[3]["note"] == "不属于网格职责: belongs to the community"
    assert ev[3]["to_state"] == "QUEUED"


def test_handler_exit_4_records_progress_and_keeps_it_open(workers, broker, pg):
    workers.mode("progress")
    workers.gd_worker("prog")
    (iid,) = submit(broker, 1, "PG")
    workers.wait(lambda: state(pg, iid) == "IN_PROGRESS", "in progress")
    assert pg.events(iid)[-1]["note"] == "crew on the way"


@pytest.mark.parametrize("mode", ["tempfail", "9"])
def test_failed_handler_leaves_it_signed_and_the_worker_goes_on(workers, broker, pg, mode):
    p = workers.gd_worker("fail", credit=2)
    workers.mode(mode, external_id="FL-0")
    iid, ok = submit(broker, 2, "FL")
    workers.wait(lambda: state(pg, ok) == "RESOLVED", "the other one resolved")
    workers.wait(lambda: "left incident=%d" % iid in p.log(), "the failure logged")
    assert state(pg, iid) == "SIGNED"
    assert [e["kind"] for e in pg.events(iid)] == ["receive", "deliver", "sign"]
    assert p.proc.poll() is None


def test_hanging_handler_is_killed_with_its_process_group_at_the_timeout(workers, broker, pg):
    workers.mode("hang")
    p = workers.gd_worker("hang", handler_timeout_ms=600, kill_grace_ms=300)
    (iid,) = submit(broker, 1, "HG")
    hang = workers.hdir / f"hang-{iid}"
    workers.wait(hang.exists, "the handler started")
    pids = [int(x) for x in hang.read_text().split()]
    t0 = time.monotonic()
    workers.wait(lambda: "timed out after 600 ms" in p.log(), "timeout logged")

    def gone(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie of an exited child of a killed parent is reaped by init soon
        try:
            return open(f"/proc/{pid}/stat").read().split()[2] == "Z"
        except OSError:
            return True

    workers.wait(lambda: all(gone(x) for x in pids), "handler and its child killed", timeout=5)
    assert time.monotonic() - t0 < 5
    assert state(pg, iid) == "SIGNED"
    assert "left incident=%d" % iid in p.log()
    # and the worker is still serving
    workers.mode("resolve")
    (nxt,) = submit(broker, 1, "HG2")
    workers.wait(lambda: state(pg, nxt) == "RESOLVED", "next incident resolved")


# ---- a worker killed while its handler runs ----

def test_sign_before_a_killed_workers_incident_stays_signed_with_its_unit(workers, broker, pg):
    workers.mode("resolve 30")
    a = workers.gd_worker("dies")
    (iid,) = submit(broker, 1, "KB")
    workers.wait(lambda: workers.seen(), "handler running")
    a.kill()
    b = workers.gd_worker("survivor")
    workers.wait(lambda: "session" in b.log() and "open" in b.log(), "survivor connected")
    workers.mode("resolve")
    (nxt,) = submit(broker, 1, "KB2")
    workers.wait(lambda: state(pg, nxt) == "RESOLVED", "new work goes to the survivor")
    time.sleep(0.8)   # past the broker's liveness timeout (0.5 s)
    assert state(pg, iid) == "SIGNED"
    assert [e["kind"] for e in pg.events(iid)] == ["receive", "deliver", "sign"]
    assert f"incident={iid}" not in b.log()
    _kill_leftover_handlers(workers)


def test_sign_after_a_killed_workers_incident_goes_to_the_other_worker(workers, broker, pg):
    workers.mode("resolve 30")
    a = workers.gd_worker("dies", sign="after")
    (iid,) = submit(broker, 1, "KA")
    workers.wait(lambda: workers.seen(), "handler running")
    assert state(pg, iid) == "DELIVERED"    # not signed while the handler runs
    workers.mode("resolve")
    b = workers.gd_worker("survivor", sign="after")
    a.kill()
    workers.wait(lambda: state(pg, iid) == "RESOLVED", "resolved by the survivor")
    ev = pg.events(iid)
    assert [e["kind"] for e in ev] == ["receive", "deliver", "requeue", "deliver", "sign",
                                      "resolve"]
    assert ev[5]["actor"] == "survivor"
    assert "attempt=2" in b.log()
    _kill_leftover_handlers(workers)


def _kill_leftover_handlers(workers):
    """Handlers run in their own session and outlive a SIGKILLed worker."""
    for rec in workers.seen():
        try:
            os.killpg(rec["pgid"], signal.SIGKILL)
        except ProcessLookupError:
            pass


# ---- broker restart ----

def test_workers_reconnect_after_a_broker_restart_and_report_running_handlers(workers, broker,
                                                                             pg):
    workers.mode("resolve 1.5")
    p = workers.gd_worker("restart", credit=2)
    (first,) = submit(broker, 1, "RS")
    workers.wait(lambda: state(pg, first) == "SIGNED", "signed, handler running")
    broker.restart()
    workers.wait(lambda: state(pg, first) == "RESOLVED",
                 "the running handler's result reported on the new session")
    workers.mode("resolve")
    (second,) = submit(broker, 1, "RS2")
    workers.wait(lambda: state(pg, second) == "RESOLVED", "new work after the restart")
    log = p.log()
    assert "lost" in log and log.count("open on") >= 2


# ---- webhook mode ----

class Hook(http.server.BaseHTTPRequestHandler):
    replies = {}      # external_id -> (status, body)
    seen = []

    def do_POST(self):
        n = int(self.headers["Content-Length"])
        inc = json.loads(self.rfile.read(n))
        Hook.seen.append((self.headers["Content-Type"], inc))
        status, body = Hook.replies.get(inc["external_id"], (500, b"{}"))
        if status == "slow":
            time.sleep(2)
            status, body = 200, b'{"action":"resolve","text":"too late"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def hook_server():
    Hook.replies, Hook.seen = {}, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/incident"
    srv.shutdown()
    srv.server_close()


def test_webhook_answers_decide_like_exit_statuses(workers, broker, pg, hook_server):
    Hook.replies = {
        "WH-0": (200, json.dumps({"action": "resolve", "text": " 已处理 "}).encode()),
        "WH-1": (201, json.dumps({"action": "return", "text": "not ours"}).encode()),
        "WH-2": (200, json.dumps({"action": "progress", "text": "on it"}).encode()),
        "WH-3": (200, json.dumps({"action": "retry"}).encode()),
        "WH-4": (503, b"{}"),
        "WH-5": (200, b"not json"),
        "WH-6": ("slow", None),
    }
    p = workers.gd_worker("hook", webhook=hook_server, credit=4, handler_timeout_ms=700)
    ids = submit(broker, 7, "WH")
    workers.wait(lambda: state(pg, ids[0]) == "RESOLVED" and state(pg, ids[2]) == "IN_PROGRESS"
                 and pg.incident(ids[1])["queue"] == COMMUNITY, "webhook verdicts applied")
    workers.wait(lambda: all(f"left incident={i}" in p.log() for i in ids[3:]),
                 "failures left", timeout=10)
    assert pg.events(ids[0])[-1]["note"] == "已处理"
    assert pg.events(ids[1])[-1]["note"] == "not ours"
    assert pg.events(ids[2])[-1]["note"] == "on it"
    for i in ids[3:]:
        assert state(pg, i) == "SIGNED"
    assert "timed out after 700 ms" in p.log() and "HTTP 503" in p.log()
    ctype, inc = Hook.seen[0]
    assert ctype == "application/json" and inc["reporter"]["name"] == PII_NAME
    assert_no_pii(p.log())


# ---- configuration ----

def test_check_config_prints_overrides_and_bad_keys_name_file_and_line(tmp_path):
    ini = tmp_path / "w.ini"
    ini.write_text("endpoints = ipc:///tmp/a, tcp://b:1\nqueues = 1,2\nhandler = /bin/true\n"
                   "[gd-worker]\ncurve_secret_key = " + "x" * 40 + "\n"
                   "curve_public_key = " + "y" * 40 + "\ncurve_server_key = " + "z" * 40 + "\n")
    r = subprocess.run([str(gd_worker_binary()), "--config", str(ini), "--credit", "7",
                        "--check-config"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert "credit = 7" in r.stdout and "endpoints = ipc:///tmp/a, tcp://b:1" in r.stdout
    assert "x" * 40 not in r.stdout          # the secret key is not printed
    ini.write_text("endpoints = ipc:///tmp/a\nqueues = 1\n\ncredit = 5000\nhandler = /bin/true\n")
    r = subprocess.run([str(gd_worker_binary()), "--config", str(ini), "--check-config"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and f"{ini}:4: credit" in r.stderr, r.stderr
    ini.write_text("endpoints = ipc:///tmp/a\nqueues = 1\nhandler = /bin/true\nwebhook = http://x\n")
    r = subprocess.run([str(gd_worker_binary()), "--config", str(ini), "--check-config"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "exactly one of handler" in r.stderr, r.stderr


# ---- what the library's retry-safety rests on ----

def test_resolve_retried_on_a_new_session_after_a_reconnect_is_ok_not_applied(broker, pg):
    (iid,) = submit(broker, 1, "RR")
    w = broker.worker(queues=[GRID], credit=1, name="retrier")
    d = w.deliver()
    s = w.sign(d)
    assert s.type == "OK", s
    r = w.resolve(iid, s["version"], "done")
    assert r.type == "OK" and r["applied"] is True, r
    # the answer "was lost": the worker reconnects and sends the same RESOLVE again
    w.close()
    again = broker.worker(queues=[GRID], credit=1, name="retrier")
    r2 = again.resolve(iid, s["version"], "done")
    assert r2.type == "OK" and r2["applied"] is False, r2
    assert [e["kind"] for e in pg.events(iid)].count("resolve") == 1
