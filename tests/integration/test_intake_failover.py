"""Intake adapters given an HA pair's two intake endpoints fail over by themselves.

Two gd-broker processes on one database (test_ha.py's `pair`): the active
one is killed with SIGKILL while gd-hotline follows a feed that grows
steadily; the killed one is started again and becomes the standby, and the
next kill hits the other. The adapter is never restarted: its intake client
notices the silence (--failover-ms), moves to the other endpoint and sends
the orders in flight again. Every order ends up stored exactly once (the
dedup on source + external_id answers a resent one with its incident).
gd-open311 the same with two HTTP clients POSTing one request after another:
every POST is answered 200 with its own service request (none 503, none
retried by the client). The time from each kill to the first incident the
other broker received (its received_at) is printed: the standby's takeover
plus the adapter's move.
"""

import json
import re
import signal
import subprocess
import threading
import time

import psycopg2

import faultload
import gdclient
import hacluster
from test_ha import pair  # noqa: F401  (the fixture)
from test_gdctl import gdctl, json_out
from test_hotline import GRID, Feed, hotline_binary
from test_open311 import Open311, good_form

KILLS = 3
RATE = 40.0          # orders a second appended to the feed
FAILOVER_MS = 600


def first_received_after(dsn, epoch_s, source="hotline"):
    """Seconds since the epoch of the first incident of `source` the broker
    received after `epoch_s`, or None."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT extract(epoch FROM min(received_at)) FROM incident "
                        "WHERE source = %s AND received_at > to_timestamp(%s)", (source, epoch_s))
            v = cur.fetchone()[0]
            return float(v) if v is not None else None
    finally:
        conn.close()


def rows_of(dsn, source="hotline"):
    """external_id -> number of incidents of `source` stored under it."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT external_id, count(*) FROM incident WHERE source = %s "
                        "GROUP BY external_id", (source,))
            return dict(cur.fetchall())
    finally:
        conn.close()


class Appender(threading.Thread):
    """Appends one valid order every 1/RATE seconds to `path` until stopped."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.feed = Feed()
        self.written = []
        self.stopping = threading.Event()

    def run(self):
        with self.path.open("a", encoding="utf-8") as out:
            while not self.stopping.is_set():
                ticket = f"ha-{len(self.written):06d}"
                out.write(self.feed.order(ticket) + "\n")
                out.flush()
                self.written.append(ticket)
                time.sleep(1.0 / RATE)


def test_gd_hotline_moves_to_the_standby_after_each_kill_and_loses_nothing(pair, pg, tmp_path):
    a, b = pair
    path, state, reject = tmp_path / "feed.jsonl", tmp_path / "state", tmp_path / "reject.jsonl"
    path.write_text("")
    log = open(tmp_path / "hotline.log", "wb")
    p = subprocess.Popen(
        [str(hotline_binary()), "--intake", f"{a.intake_ep}, {b.intake_ep}", "--input",
         str(path), "--state", str(state), "--reject", str(reject), "--follow",
         "--poll-ms", "20", "--timeout-ms", "2000", "--failover-ms", str(FAILOVER_MS)],
        stdout=log, stderr=log)
    feeder = Appender(path)
    feeder.start()
    try:
        moves = kill_in_turn(a, b, pg, "hotline", KILLS,
                             lambda: len(feeder.written) > 20 and
                             len(rows_of(pg.dsn)) >= len(feeder.written) - 5)
        assert p.poll() is None, "gd-hotline exited"
        feeder.stopping.set()
        feeder.join(5)
        gdclient.wait_until(lambda: len(rows_of(pg.dsn)) >= len(feeder.written), 30,
                            "every order stored")
        assert p.poll() is None, "gd-hotline exited"
    finally:
        feeder.stopping.set()
        p.send_signal(signal.SIGTERM)
        p.wait(15)
        log.close()
    text = (tmp_path / "hotline.log").read_text(errors="replace")
    rows = rows_of(pg.dsn)
    print(f"gd-hotline fail-over: {len(feeder.written)} orders, {KILLS} kills; kill -> first "
          f"order received by the other broker: p50 {hacluster.percentile(moves, 50) * 1000:.0f} ms, "
          f"max {max(moves) * 1000:.0f} ms ({', '.join(f'{m * 1000:.0f}' for m in moves)})")
    assert p.returncode == 1, text          # stopped by the signal, not by a failure
    assert set(rows) == set(feeder.written), "orders lost or unexpected"
    assert all(n == 1 for n in rows.values()), "an order stored twice"
    assert not reject.exists() or reject.read_text() == "", reject.read_text()
    assert text.count("silent for") >= KILLS, text
    moved = re.search(r"(\d+) fail-overs", text)
    assert moved and int(moved.group(1)) >= KILLS, text


def kill_in_turn(a, b, pg, source, kills, keeping_up):
    """Kills the active broker of the pair `kills` times (the killed one
    is started again: the new standby), each once keeping_up() holds.
    Returns the seconds from each kill to the first incident of `source`
    the other broker received."""
    moves = []
    active, standby = a, b
    for _ in range(kills):
        gdclient.wait_until(keeping_up, 30, "the adapter keeping up")
        active.proc.kill()
        t_kill = time.time()
        assert active.proc.wait(15) == -9
        t_back = gdclient.wait_until(lambda: first_received_after(pg.dsn, t_kill, source), 30,
                                     "an incident received by the other broker")
        moves.append(t_back - t_kill)
        faultload.wait_ready(standby)
        faultload.launch(active)
        faultload.wait_standby(pg.dsn)
        active, standby = standby, active
    return moves


class Poster(threading.Thread):
    """POSTs one service request after another, each with its own
    Idempotency-Key, never retrying: every answer is recorded."""

    def __init__(self, o, name):
        super().__init__(daemon=True)
        self.o, self.name = o, name
        self.answers = []       # (idempotency key, HTTP status, body)
        self.stopping = threading.Event()

    def run(self):
        while not self.stopping.is_set():
            key = f"{self.name}-{len(self.answers):05d}"
            code, _, text = self.o.post(headers={"Idempotency-Key": key}, **good_form())
            self.answers.append((key, code, text))
            time.sleep(1.0 / RATE)


def test_gd_open311_posts_all_succeed_across_kills_of_the_active_broker(pair, pg, dsn, tmp_path):
    a, b = pair
    o = Open311(None, dsn, tmp_path, intake=f"{a.intake_ep},{b.intake_ep}",
                failover_ms=FAILOVER_MS, attempt_timeout_ms=3000, submit_timeout_ms=10000,
                log_level="info")
    posters = [Poster(o, f"p{i}") for i in range(2)]
    for t in posters:
        t.start()
    try:
        moves = kill_in_turn(a, b, pg, "open311", KILLS,
                             lambda: all(len(t.answers) > 10 for t in posters))
        assert o.proc.poll() is None, "gd-open311 exited"
    finally:
        for t in posters:
            t.stopping.set()
        for t in posters:
            t.join(30)
        rc = o.stop()
    text = o.log.read_text(errors="replace")
    answers = [x for t in posters for x in t.answers]
    print(f"gd-open311 fail-over: {len(answers)} POSTs, {KILLS} kills; kill -> first request "
          f"received by the other broker: p50 {hacluster.percentile(moves, 50) * 1000:.0f} ms, "
          f"max {max(moves) * 1000:.0f} ms ({', '.join(f'{m * 1000:.0f}' for m in moves)})")
    assert rc == 0, text
    bad = [(k, c, t) for k, c, t in answers if c != 200]
    assert not bad, f"POSTs that did not succeed: {bad[:5]}"
    ids = [json.loads(t)[0]["service_request_id"] for _, _, t in answers]
    assert len(set(ids)) == len(ids), "two POSTs were given the same service request"
    rows = rows_of(pg.dsn, "open311")
    assert len(rows) == len(answers) and all(n == 1 for n in rows.values())
    assert text.count("silent while") >= KILLS, text


def test_gdctl_submit_finds_the_active_broker_when_the_standby_is_listed_first(pair, pg):
    a, b = pair                      # a active, b waiting on the lock (binds nothing)
    r = gdctl("--json", "--intake", f"{b.intake_ep}, {a.intake_ep}", "--failover-ms", "300",
              "--timeout", "5000", "submit", "--category", "LH-0101", "--unit", GRID,
              "--external-id", "ha-gdctl-1", "--description", "路灯不亮")
    assert r.returncode == 0, r.stderr
    out = json_out(r)
    assert out["duplicate"] is False
    assert pg.incident_by_key("gdctl", "ha-gdctl-1")["id"] == out["incident_id"]
    # alone, the standby never answers: the timeout, exit 3
    r = gdctl("--intake", b.intake_ep, "--timeout", "500", "submit", "--category", "LH-0101",
              "--unit", GRID, "--external-id", "ha-gdctl-2", "--description", "x")
    assert r.returncode == 3, r.stderr
    for bad, why in ((f"{a.intake_ep},", "entry 2 is empty"),
                     (f",{a.intake_ep}", "entry 1 is empty"),
                     (",".join([a.intake_ep] * 17), "more than 16 endpoints"),
                     ("ipc://" + "x" * 1100, "longer than 1024 bytes")):
        r = gdctl("--intake", bad, "submit", "--category", "LH-0101", "--description", "x")
        assert r.returncode == 2 and why in r.stderr, (bad[:40], r.returncode, r.stderr)
