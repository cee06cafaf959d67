"""gd-hotline against the real broker and PostgreSQL: resume after SIGKILL, reject file, follow mode, stdin, SUBMITS batches."""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import pytest
import zmq

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


def message_counts(stderr):
    """(SUBMIT messages, SUBMITS messages, orders they carried, SUBMITS refused whole) from the
    final log line."""
    m = re.search(r"(\d+) SUBMIT messages, (\d+) SUBMITS messages carrying (\d+) orders "
                  r"\((\d+) refused whole\)", stderr)
    assert m, stderr
    return tuple(int(g) for g in m.groups())


# single: each order its own SUBMIT; batched: SUBMITS of up to 64, several in flight, the
# position saved often so that the kills land mid-stream
@pytest.mark.parametrize("options", [
    ("--window", "32", "--batch", "1"),
    ("--window", "256", "--batch", "64", "--save-ms", "20"),
], ids=["single", "batched"])
def test_ten_thousand_orders_killed_twice_end_with_exactly_the_valid_distinct_ones(
        broker, pg, tmp_path, options):
    feed = make_feed(10000)
    path, state, reject = tmp_path / "feed.jsonl", tmp_path / "state", tmp_path / "reject.jsonl"
    feed.write(path)
    size = path.stat().st_size
    kills = 0
    for fraction in (0.25, 0.6):
        p = start(path, state, reject, broker, *options)
        deadline = time.monotonic() + 60
        while state_offset(state) < fraction * size:
            assert p.poll() is None, f"finished before the kill: {p.stderr.read()!r}"
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.002)
        p.send_signal(signal.SIGKILL)
        p.wait()
        kills += 1
        assert 0 < state_offset(state) < size
    p = start(path, state, reject, broker, *options)
    out, err = p.communicate(timeout=90)
    assert p.returncode == 0, err.decode()
    assert kills == 2
    single, batches, carried, refused = message_counts(err.decode())
    if "--batch" in options and options[options.index("--batch") + 1] == "1":
        assert batches == 0 and single > 0
    else:
        assert batches > 0 and carried > batches and refused == 0
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


# ---- SUBMITS batches ----

def run_feed(path, tmp_path, broker, *extra, intake=None, timeout=60):
    r = subprocess.run(
        [str(hotline_binary()), "--intake", intake or broker.intake_ep, "--input", str(path),
         "--state", str(tmp_path / "state"), "--reject", str(tmp_path / "reject.jsonl"), *extra],
        capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def test_a_few_hundred_orders_in_batches_of_64_are_each_accepted_once(broker, pg, tmp_path):
    f = Feed()
    for i in range(300):
        f.add_valid(f"bat-{i:04d}")
    path = tmp_path / "feed.jsonl"
    f.write(path)
    r = run_feed(path, tmp_path, broker, "--batch", "64", "--window", "256")
    assert "300 lines: 300 accepted, 0 duplicates, 0 rejected" in r.stderr, r.stderr
    single, batches, carried, refused = message_counts(r.stderr)
    assert single + carried == 300 and refused == 0, r.stderr
    assert 300 / 64 <= batches <= 300 / 8, "orders went in batches of up to 64"
    assert hotline_tickets(pg) == set(f.valid)
    assert pg.scalar("SELECT count(*) FROM incident WHERE source = 'hotline'") == 300
    assert not (tmp_path / "reject.jsonl").exists() or not rejects(tmp_path / "reject.jsonl")
    assert state_offset(tmp_path / "state") == path.stat().st_size


def test_an_item_the_broker_refuses_goes_to_the_reject_file_and_its_batch_is_accepted(
        broker, pg, tmp_path):
    f = Feed()
    for i in range(200):
        if i in (16, 89, 149):   # lines 17, 90, 150: the broker refuses a time in the future
            f.add_bad(f.order(f"fut-{i}", received_at="2099-01-01T00:00:00Z"),
                      "refused by the broker: bad_value at reported_at")
        else:
            f.add_valid(f"ok-{i:04d}")
    path = tmp_path / "feed.jsonl"
    f.write(path)
    r = run_feed(path, tmp_path, broker, "--batch", "64", "--window", "256")
    single, batches, carried, refused = message_counts(r.stderr)
    assert batches > 0 and carried >= 190 and refused == 0, "refused item by item, not whole"
    assert "197 accepted, 0 duplicates, 3 rejected" in r.stderr, r.stderr
    got = rejects(tmp_path / "reject.jsonl")
    assert [g["line"] for g in got] == [17, 90, 150]
    assert [g["ticket_no"] for g in got] == ["fut-16", "fut-89", "fut-149"]
    for g in got:
        assert f.bad[g["line"]] in g["reason"], g
    assert hotline_tickets(pg) == set(f.valid)


@pytest.mark.parametrize("batch", ["1", "16"])
def test_orders_beyond_the_brokers_max_pending_are_retried_not_rejected(
        make_broker, pg, tmp_path, batch):
    # 64 in flight against room for 8: whole SUBMITS and single SUBMITs refused `limit`, items
    # answered `limit`; PROTOCOL.md says retry them, and none is a bad order
    broker = make_broker(max_pending=8)
    f = Feed()
    for i in range(300):
        f.add_valid(f"lim-{i:04d}")
    path = tmp_path / "feed.jsonl"
    f.write(path)
    r = run_feed(path, tmp_path, broker, "--batch", batch, "--window", "64")
    assert "300 accepted, 0 duplicates, 0 rejected" in r.stderr, r.stderr
    assert not (tmp_path / "reject.jsonl").exists() or not rejects(tmp_path / "reject.jsonl")
    assert hotline_tickets(pg) == set(f.valid)


class SubmitsRefusingProxy:
    """Between gd-hotline and the real broker, playing a broker that does not know SUBMITS:
    every SUBMITS is answered REJECTED unknown_type (with its ref, or with ref 0 as when a
    broker cannot read the message), everything else goes through both ways."""

    def __init__(self, upstream, ref_zero=False):
        self.dir = tempfile.mkdtemp(prefix="gdx-", dir="/tmp")  # short: ipc paths <= 107
        self.endpoint = f"ipc://{self.dir}/intake"
        self.ref_zero = ref_zero
        self.refused = 0
        self.ctx = zmq.Context()
        self.front = self.ctx.socket(zmq.ROUTER)
        self.front.bind(self.endpoint)
        self.back = self.ctx.socket(zmq.DEALER)
        self.back.connect(upstream)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        poller = zmq.Poller()
        poller.register(self.front, zmq.POLLIN)
        poller.register(self.back, zmq.POLLIN)
        rid = None
        while not self.stopping.is_set():
            for sock, _ in poller.poll(50):
                frames = sock.recv_multipart()
                if sock is self.back:
                    if rid is not None:
                        self.front.send_multipart([rid, *frames])
                    continue
                rid = frames[0]
                if frames[1] == gdclient.header("SUBMITS"):
                    ref = msgpack.unpackb(frames[2]).get("ref", 0)
                    self.refused += 1
                    self.front.send_multipart([rid, gdclient.header("REJECTED"), gdclient.pack(
                        {"ref": 0 if self.ref_zero else ref, "code": "unknown_type",
                         "message": "SUBMITS is not a message for the intake endpoint"})])
                else:
                    self.back.send_multipart(frames[1:])

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.front.close(linger=0)
        self.back.close(linger=0)
        self.ctx.term()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.mark.parametrize("ref_zero", [False, True], ids=["its-ref", "ref-0"])
def test_orders_of_a_submits_refused_whole_are_sent_again_one_by_one(
        broker, pg, tmp_path, ref_zero):
    f = Feed()
    for i in range(300):
        f.add_valid(f"old-{i:04d}")
    path = tmp_path / "feed.jsonl"
    f.write(path)
    proxy = SubmitsRefusingProxy(broker.intake_ep, ref_zero)
    try:
        r = run_feed(path, tmp_path, broker, "--batch", "64", "--window", "128",
                     intake=proxy.endpoint)
    finally:
        proxy.close()
    assert proxy.refused > 0
    assert "refused a SUBMITS of" in r.stderr and "sending them one by one" in r.stderr
    single, batches, carried, refused = message_counts(r.stderr)
    # a REJECTED with ref 0 sends every SUBMITS then in flight one by one: the next ones find none
    assert batches == proxy.refused and 1 <= refused <= batches and single == 300, r.stderr
    if not ref_zero:
        assert refused == batches
    assert "300 accepted, 0 duplicates, 0 rejected" in r.stderr, r.stderr
    assert hotline_tickets(pg) == set(f.valid)
    assert pg.scalar("SELECT count(*) FROM incident WHERE source = 'hotline'") == 300
    assert not (tmp_path / "reject.jsonl").exists() or not rejects(tmp_path / "reject.jsonl")


def test_batch_out_of_range_is_refused_with_its_range(tmp_path):
    for bad in ("0", "257", "64x", ""):
        r = subprocess.run([str(hotline_binary()), "--intake", "tcp://127.0.0.1:1", "--input",
                            "x", "--state", "s", "--reject", "r", "--batch", bad],
                           capture_output=True, text=True)
        assert r.returncode == 2, bad
        assert "--batch needs a whole number from 1 to 256" in r.stderr, r.stderr
    conf = tmp_path / "h.ini"
    conf.write_text("[gd-hotline]\nintake = tcp://127.0.0.1:1\ninput = x\nstate = s\n"
                    "reject = r\nbatch = 300\n")
    r = subprocess.run([str(hotline_binary()), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and f"{conf}:6: batch needs a whole number from 1 to 256" in r.stderr
    conf.write_text(conf.read_text().replace("batch = 300", "batch = 16"))
    r = subprocess.run([str(hotline_binary()), "--config", str(conf), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "\nbatch = 16\n" in r.stdout, r.stderr
    r = subprocess.run([str(hotline_binary()), "--config", str(conf), "--check-config",
                        "--batch", "1"], capture_output=True, text=True)
    assert r.returncode == 0 and "\nbatch = 1\n" in r.stdout, r.stderr
