"""gd-hotline against the real broker and PostgreSQL: resume after SIGKILL, reject file, follow mode, stdin."""

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

import gdclient

GRID = "500113001001001"


def hotline_binary():
    p = Path(os.environ.get("GD_BUILD_DIR", "")) / "workers" / "hotline" / "gd-hotline"
    if not p.is_file():
        pytest.fail(f"no gd-hotline at {p}: set GD_BUILD_DIR")
    return p


class Feed:
    """A generated feed: lines, and what the adapter must make of them."""

    def __init__(self):
        self.lines = []
        self.valid = {}     # ticket -> first valid line number
        self.bad = {}       # line number -> expected reason fragment

    def order(self, ticket, **extra):
        o = {"ticket_no": ticket, "received_at": "2026-03-02T09:15:00+08:00",
             "caller_name": "张三", "caller_phone": "13900000000",
             "category": "LH-0101", "grid": GRID, "content": "垃圾未清运",
             "urgency": "normal"}
        o.update(extra)
        return json.dumps(o, ensure_ascii=False)

    def add_valid(self, ticket, **extra):
        self.lines.append(self.order(ticket, **extra))
        self.valid.setdefault(ticket, len(self.lines))

    def add_bad(self, text, reason):
        self.lines.append(text)
        self.bad[len(self.lines)] = reason

    def write(self, path):
        path.write_text("".join(l + "\n" for l in self.lines), encoding="utf-8")


MALFORMED = [
    ('{"ticket_no": "X", "content": ', "not JSON"),
    ("这不是JSON", "not JSON"),
    ('["an", "array"]', "not a JSON object"),
    ('{"content": "no ticket"}', "ticket_no: missing"),
    ('{"ticket_no": "NC-{n}"}', "content: missing"),
    ('{"ticket_no": "U-{n}", "content": "x", "urgency": "soon"}', "urgency"),
    ('{"ticket_no": "D-{n}", "content": "x", "received_at": "2026-03-02 09:15"}', "received_at"),
    ('{"ticket_no": "L-{n}", "content": "x", "lat": 29.5}', "lat, lon"),
    ('{"ticket_no": 12345, "content": "x"}', "ticket_no: not a string"),
    ('{"ticket_no": "' + "T" * 65 + '", "content": "x"}', "ticket_no: 65 bytes"),
    ('{"ticket_no": "F-{n}", "content": "x", "received_at": "2099-01-01T00:00:00Z"}',
     "refused by the broker: bad_value at reported_at"),
]


def make_feed(n_lines, seed=5):
    rnd = random.Random(seed)
    f = Feed()
    ticket = 0
    while len(f.lines) < n_lines:
        r = rnd.random()
        if r < 0.03:
            text, reason = MALFORMED[rnd.randrange(len(MALFORMED))]
            f.add_bad(text.replace("{n}", str(len(f.lines))), reason)
        elif r < 0.06 and ticket:
            f.add_valid(f"12345-{rnd.randrange(ticket):06d}", content="重复来电")
        elif r < 0.08:
            ticket += 1
            f.add_valid(f"12345-{ticket - 1:06d}", grid="", address="鱼洞街道某小区门口",
                        urgency="紧急")
        else:
            ticket += 1
            f.add_valid(f"12345-{ticket - 1:06d}")
    return f


def start(feed_path, state, reject, broker, *extra, stdin=None):
    return subprocess.Popen(
        [str(hotline_binary()), "--intake", broker.intake_ep, "--input", str(feed_path),
         "--state", str(state), "--reject", str(reject), *extra],
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def state_offset(state):
    try:
        for line in state.read_text().splitlines():
            if line.startswith("offset "):
                return int(line.split()[1])
    except (FileNotFoundError, ValueError, IndexError):
        pass
    return 0


def rejects(path):
    return [json.loads(l) for l in path.read_text().splitlines()]


def hotline_tickets(pg):
    return {r["external_id"] for r in pg.all(
        "SELECT external_id FROM incident WHERE source = 'hotline'")}


def test_ten_thousand_orders_killed_twice_end_with_exactly_the_valid_distinct_ones(
        broker, pg, tmp_path):
    feed = make_feed(10000)
    path, state, reject = tmp_path / "feed.jsonl", tmp_path / "state", tmp_path / "reject.jsonl"
    feed.write(path)
    size = path.stat().st_size
    kills = 0
    for fraction in (0.25, 0.6):
        p = start(path, state, reject, broker, "--window", "32")
        deadline = time.monotonic() + 60
        while state_offset(state) < fraction * size:
            assert p.poll() is None, f"finished before the kill: {p.stderr.read()!r}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        assert 0 < state_offset(state) < size
    p = start(path, state, reject, broker, "--window", "32")
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err.decode()
    assert kills == 2
    assert state_offset(state) == size

    assert hotline_tickets(pg) == set(feed.valid), "exactly the valid distinct orders"
    assert pg.scalar("SELECT count(*) FROM incident WHERE source = 'hotline'") == len(feed.valid)
    got = rejects(reject)
    assert [r["line"] for r in got] == sorted(feed.bad), "every bad line once, in order"
    for r in got:
        assert feed.bad[r["line"]] in r["reason"], r
        assert "13900000000" not in json.dumps(r, ensure_ascii=False)
    # urgency and location came through
    row = pg.one("SELECT priority, queue, reporter_phone, address FROM incident "
                 "WHERE source = 'hotline' AND address <> '' LIMIT 1")
    assert row["priority"] == "urgent" and row["queue"] == "triage"
    assert row["reporter_phone"] == "13900000000"
    assert b"13900000000" not in err and "张三".encode() not in err, "no PII in the log"


def test_follow_mode_picks_up_appended_lines_and_stops_on_sigterm(broker, pg, tmp_path):
    path, state, reject = tmp_path / "feed.jsonl", tmp_path / "state", tmp_path / "reject.jsonl"
    path.write_text("")
    f = Feed()
    p = start(path, state, reject, broker, "--follow", "--poll-ms", "20")
    try:
        with path.open("a") as out:
            for i in range(5):
                out.write(f.order(f"fw-{i}") + "\n")
            out.write('{"ticket_no": "half", "con')   # no newline yet: not a line
            out.flush()
            gdclient.wait_until(lambda: len(hotline_tickets(pg)) == 5, 10, "5 orders")
            assert "half" not in hotline_tickets(pg)
            out.write('tent": "后半行"}\n' + "not json\n")
            out.flush()
            gdclient.wait_until(lambda: "half" in hotline_tickets(pg), 10, "the completed line")
            gdclient.wait_until(lambda: reject.exists() and reject.read_text(), 10, "reject")
        # rotation: the path now names a new file, read from its start
        path.rename(tmp_path / "feed.jsonl.1")
        path.write_text(f.order("rot-1") + "\n")
        gdclient.wait_until(lambda: "rot-1" in hotline_tickets(pg), 10, "the rotated file")
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(10)
    assert p.returncode == 1
    assert [r["line"] for r in rejects(reject)] == [7]
    assert "inode" in state.read_text()


def test_stdin_and_usage(broker, pg, tmp_path):
    f = Feed()
    data = "".join(f.order(f"in-{i}") + "\n" for i in range(3)) + f.order("in-last")
    p = start("-", tmp_path / "s", tmp_path / "r", broker, stdin=subprocess.PIPE)
    out, err = p.communicate(data.encode(), timeout=30)
    assert p.returncode == 0, err.decode()
    assert hotline_tickets(pg) == {"in-0", "in-1", "in-2", "in-last"}
    bad = subprocess.run([str(hotline_binary()), "--input", "x"], capture_output=True)
    assert bad.returncode == 2
    bad = subprocess.run([str(hotline_binary()), "--intake", broker.intake_ep, "--input", "x",
                          "--state", "s", "--reject", "r", "--window", "0"], capture_output=True)
    assert bad.returncode == 2


def test_an_over_long_line_is_rejected_and_the_next_one_still_read(broker, pg, tmp_path):
    f = Feed()
    path = tmp_path / "feed.jsonl"
    path.write_text(f.order("ok-1") + "\n" + f.order("long", content="长" * 2000) + "\n"
                    + f.order("ok-2") + "\n")
    p = start(path, tmp_path / "s", tmp_path / "r", broker, "--max-line", "1024")
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err.decode()
    assert hotline_tickets(pg) == {"ok-1", "ok-2"}
    (r,) = rejects(tmp_path / "r")
    assert r["line"] == 2 and "longer than" in r["reason"]
