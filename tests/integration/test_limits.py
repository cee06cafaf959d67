"""Limits on what a client can make gd-broker hold (PROTOCOL.md §9 "Limits"): each breach is a clear answer, never a crash.

Limits already tested elsewhere are not repeated here: field lengths and the
attachments count (test_intake: BAD_BODIES), HELLO credit above --max-credit
(test_workers), --max-open through gd-open311's 503 (test_open311).
"""

import resource
import signal
import socket
import subprocess
import time

import msgpack
import pytest
import zmq
from zmq.utils.monitor import parse_monitor_message

import gdclient
from conftest import broker_binary
from demo import GRID, submission
from gdclient import header

# ---- frame and body size ----


def test_body_over_the_decoders_limit_is_rejected_too_large(broker):
    intake = broker.intake()
    big = b"\x80" + b"x" * 65536      # one byte over GD_MAX_BODY, within ZMQ_MAXMSGSIZE
    intake.send_raw([header("SUBMIT"), big])
    r = intake.raw_reply()
    assert r.type == "REJECTED" and r["code"] == "too_large" and r["message"], r
    assert intake.submit(**submission("L-after-big")).type == "ACCEPTED"


def test_frame_over_maxmsgsize_drops_the_connection_and_the_client_reconnects(broker, pg):
    intake = broker.intake()
    intake.send_raw([header("SUBMIT"), b"\x80" + b"x" * 200_000])
    intake.nothing(within=0.5)           # ZeroMQ closed the connection: nothing to answer
    assert broker.alive()
    # the DEALER reconnects by itself and is served again
    r = intake.submit(**submission("L-after-drop"))
    assert r.type == "ACCEPTED", r
    assert pg.scalar("SELECT count(*) FROM incident") == 1


@pytest.mark.parametrize("body,code", [
    (b"\x81\xa3ref" + b"\x91" * 4 + b"\x01", "too_deep"),                  # 5 levels
    (b"\xde\x00\x41" + b"".join(msgpack.packb(f"k{i}") + b"\x01" for i in range(65)),
     "too_many"),                                                         # 65 keys
    (b"\x81\xabattachments\xdd\x00\x00\x10\x01" + b"\xa1x" * 4097, "too_many"),  # 4097 elements
    (b"\x81\xabattachments\xdd\xff\xff\xff\xff", "too_many"),              # a forged count
    (b"\x81\xabdescription\xdb\xff\xff\xff\xff", "truncated"),             # a forged length
], ids=["nesting", "map_keys", "array_elements", "forged_count", "forged_length"])
def test_containers_beyond_the_decoder_limits_are_rejected(broker, body, code):
    intake = broker.intake()
    intake.send_raw([header("SUBMIT"), body])
    r = intake.raw_reply()
    assert r.type == "REJECTED" and r["code"] == code and r["message"], r
    assert broker.alive()


# ---- per-client and per-broker counts ----


def test_requests_beyond_max_pending_are_rejected_limit(make_broker, pg):
    # commits wait 300 ms, so the burst is pending all at once
    broker = make_broker(max_pending=3, flush_ms=300)
    intake = broker.intake()
    for i in range(8):
        intake.send("SUBMIT", {"ref": i + 1, **submission(f"L-pend-{i}")})
    replies = [intake.raw_reply() for _ in range(8)]
    kinds = sorted((r.type, r.get("code", "")) for r in replies)
    assert kinds.count(("ACCEPTED", "")) == 3, kinds
    assert kinds.count(("REJECTED", "limit")) == 5, kinds
    for r in replies:
        if r.type == "REJECTED":
            assert r["ref"] in range(4, 9) and "3 requests" in r["message"], r
    assert pg.scalar("SELECT count(*) FROM incident") == 3
    # another client is not affected, and this one is served once answered
    assert broker.intake().submit(**submission("L-pend-other")).type == "ACCEPTED"
    assert intake.submit(**submission("L-pend-again")).type == "ACCEPTED"


def test_sessions_beyond_max_sessions_are_denied_limit_until_one_ends(make_broker):
    broker = make_broker(max_sessions=2)
    a = broker.worker(queues=[GRID], credit=1)
    broker.worker(queues=[GRID], credit=1, name="b")
    c = broker.hub.worker(broker.work_ep)
    m = c.hello(queues=[GRID], name="c", expect_welcome=False)
    assert m.type == "DENIED" and m["code"] == "limit" and "--max-sessions" in m["message"], m
    a.bye()
    time.sleep(0.1)
    assert c.hello(queues=[GRID], name="c").type == "WELCOME"


def test_credit_message_above_max_credit_is_err_limit_and_keeps_the_old_credit(make_broker, pg):
    broker = make_broker(max_credit=2)
    w = broker.worker(queues=[GRID], credit=1)
    w.credit(3)
    e = w.expect("ERR")
    assert (e["code"], e["field"]) == ("limit", "credit") and e["message"], e
    intake = broker.intake()
    for i in range(2):
        assert intake.submit(**submission(f"L-cr-{i}")).type == "ACCEPTED"
    w.deliver()
    w.nothing("DELIVER", within=0.5)      # still credit 1


@pytest.mark.parametrize("hello,field", [
    ({"role": "worker", "name": "w", "credit": 1,
      "queues": [f"q{i}" for i in range(257)]}, "queues"),
    ({"role": "sla", "name": "s", "shard": [f"5001{i:05d}" for i in range(129)]}, "shard"),
], ids=["queues", "shard"])
def test_hello_with_too_many_queues_or_shard_entries_is_refused_too_many(broker, hello, field):
    w = broker.hub.worker(broker.work_ep)
    w.send("HELLO", hello)
    # a HELLO the decoder refuses is answered DENIED (§9)
    m = w.expect(("DENIED", "ERR", "WELCOME"))
    assert m.type == "DENIED" and (m["code"], m["field"]) == ("too_many", field), m
    w.send("HEARTBEAT", {})
    e = w.expect("ERR")
    assert e["code"] == "no_session", e


def test_submit_beyond_max_open_is_busy_capacity(make_broker):
    broker = make_broker(max_open=1, busy_retry_ms=250)
    intake = broker.intake()
    assert intake.submit(**submission("L-open-1")).type == "ACCEPTED"
    r = intake.submit(**submission("L-open-2"))
    assert r.type == "BUSY" and r["reason"] == "capacity" and r["retry_ms"] == 250, r
    # a repeat of a stored report is still answered
    again = intake.submit(**submission("L-open-1"))
    assert again.type == "ACCEPTED" and again["duplicate"] is True


def test_submit_beyond_backlog_max_is_busy_backlog(make_broker, pg):
    # commits wait 500 ms: two changes fill the backlog
    broker = make_broker(batch_max=2, backlog_max=2, flush_ms=500, busy_retry_ms=200)
    intake = broker.intake()
    for i in range(3):
        intake.send("SUBMIT", {"ref": i + 1, **submission(f"L-bl-{i}")})
    replies = {r["ref"]: r for r in (intake.raw_reply() for _ in range(3))}
    assert replies[3].type == "BUSY" and replies[3]["reason"] == "backlog", replies
    assert replies[3]["retry_ms"] == 200
    assert [replies[i].type for i in (1, 2)] == ["ACCEPTED", "ACCEPTED"], replies
    assert intake.submit(**submission("L-bl-2")).type == "ACCEPTED"


# ---- status endpoint ----


def _rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_subscription_over_1024_bytes_drops_the_subscriber_only(broker):
    s = broker.hub.ctx.socket(zmq.XSUB)
    s.setsockopt(zmq.LINGER, 0)
    s.connect(broker.status_ep)
    s.send(b"\x01" + b"q" * 2000)
    time.sleep(0.2)
    assert broker.alive()
    broker.status("broker")               # others still receive
    s.close(linger=0)


def _status_tcp(broker):
    """The tcp:// status endpoint the broker bound (its `ready:` line)."""
    line = [ln for ln in broker.log_text().splitlines() if "ready:" in ln][-1]
    return line.split(" status ")[1].split()[0]


def test_a_subscriber_flooding_distinct_subscriptions_is_cut_off(make_broker):
    # ZeroMQ keeps every distinct prefix a subscriber sends, tens of bytes of
    # trie per byte; the broker closes a TCP subscriber's connection once it
    # has sent more than --max-subscriber-bytes.
    broker = make_broker(status="tcp://127.0.0.1:*", max_subscriber_bytes=16384)
    ep = _status_tcp(broker)
    honest = broker.hub.status(ep, "alarm.limit").ready()
    flood = Watched(broker.hub, zmq.XSUB, ep)
    flood.sock.setsockopt(zmq.SNDHWM, 0)
    assert "handshake" in flood.record(within=1.0)
    before = _rss_kb(broker.proc.pid)
    for i in range(4000):
        try:
            flood.sock.send(b"\x01" + f"{i:08d}".encode() * 100, zmq.NOBLOCK)
        except zmq.Again:
            break
    events = flood.record(within=2.0)
    assert "disconnected" in events, f"the flooding subscriber was not cut off: {events}"
    time.sleep(0.5)
    grown = _rss_kb(broker.proc.pid) - before
    flood.close()
    assert grown < 16 * 1024, f"a flood of subscriptions grew the broker by {grown} kB"

    alarm = honest.topic("alarm.limit")
    assert "--max-subscriber-bytes" in alarm["message"], alarm
    honest.drain()   # broker messages older than the alarm
    assert counter(honest, "subscribers_cut") >= 1
    # the honest subscriber, with its few subscriptions, is still served
    honest.expect(lambda m: m.topic == "broker", what="broker status after the cut")
    assert broker.alive()


def test_subscribers_within_the_byte_limit_are_left_alone(make_broker):
    broker = make_broker(status="tcp://127.0.0.1:*", max_subscriber_bytes=4096)
    ep = _status_tcp(broker)
    watched = Watched(broker.hub, zmq.SUB, ep)
    for prefix in (b"broker", b"queue.", b"inc.500113001", b"sla.", b"alarm."):
        watched.sock.setsockopt(zmq.SUBSCRIBE, prefix)
    time.sleep(1.5)   # several gauge periods, each of which checks the byte counts
    assert "disconnected" not in watched.record(within=0.5)
    assert watched.sock.poll(2000), "no broker status for a subscriber within its limit"
    watched.close()


# ---- connections per endpoint ----


class Watched:
    """A raw client socket whose own connection events are recorded (ZeroMQ monitor)."""

    EVENTS = {zmq.EVENT_CONNECTED: "connected", zmq.EVENT_HANDSHAKE_SUCCEEDED: "handshake",
              zmq.EVENT_DISCONNECTED: "disconnected"}

    def __init__(self, hub, kind, endpoint):
        self.sock = hub.ctx.socket(kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.monitor = self.sock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED)
        self.events = []
        self.sock.connect(endpoint)

    def record(self, within=0.0):
        """Reads the connection events that come within `within` seconds."""
        deadline = time.monotonic() + within
        while self.monitor.poll(max(0, int((deadline - time.monotonic()) * 1000))):
            event = parse_monitor_message(self.monitor.recv_multipart())["event"]
            self.events.append(self.EVENTS.get(event, str(event)))
        return self.events

    def close(self):
        self.sock.disable_monitor()
        self.monitor.close(linger=0)
        self.sock.close(linger=0)


def counter(status, name):
    """The broker counter `name` from a `broker` status message published from now on (the
    ones already received, kept by nothing(), may be older than what is being counted)."""
    status.drain()
    m = status.topic("broker")
    return m["counters"].get(name, 0)


def answered(intake, timeout=gdclient.DEFAULT_TIMEOUT):
    """True when a QUERY of `intake` is answered (by the database: not_found)."""
    r = intake.query(source="limits", external_id="none", timeout=timeout)
    return r.type == "REJECTED" and r["code"] == "not_found"


def test_intake_connections_beyond_max_intake_clients_are_refused_until_one_closes(make_broker):
    broker = make_broker(max_intake_clients=3)
    status = broker.status("alarm.limit")
    held = [broker.intake() for _ in range(3)]
    for c in held:
        # (a client refused while the readiness probe's connection was still
        # counted is let in by its own reconnection)
        assert answered(c)
    extra = Watched(broker.hub, zmq.DEALER, broker.intake_ep)
    extra.sock.send_multipart([header("QUERY"), msgpack.packb(
        {"ref": 7, "source": "limits", "external_id": "extra"})])
    events = extra.record(within=1.5)
    assert "handshake" not in events, f"a fourth connection got through: {events}"
    assert events.count("disconnected") >= 2, f"not refused, or not retrying: {events}"
    assert not extra.sock.poll(0), "the refused client got an answer"
    for c in held:
        assert answered(c), "a refusal must not disturb the connections held"

    alarm = status.topic("alarm.limit")
    assert alarm["alarm"] == "limit" and alarm["severity"] == "warning", alarm
    assert "intake" in alarm["message"] and "--max-intake-clients 3" in alarm["message"], alarm
    # many refusals (one per reconnection), one alarm per 10 s
    status.nothing(lambda m: m.topic.startswith("alarm.limit"), within=1.0)
    assert counter(status, "connections_refused_intake") >= 2

    held.pop().close()
    assert extra.sock.poll(5000), "the waiting client did not get in after a connection closed"
    r = gdclient.decode(extra.sock.recv_multipart())
    assert r.type == "REJECTED" and r["code"] == "not_found" and r["ref"] == 7, r
    assert "handshake" in extra.record()
    extra.close()
    assert broker.alive()


def test_status_subscribers_beyond_max_subscribers_are_refused_until_one_leaves(make_broker):
    broker = make_broker(max_subscribers=2)
    first = broker.status("broker")
    second = broker.status("broker")
    third = broker.status("broker", ready=False)
    # gauges come every 200 ms: a subscriber let in would have had several
    third.nothing(within=1.0)
    assert counter(second, "connections_refused_status") >= 1
    first.close()
    third.ready()
    assert broker.alive()


def test_a_connection_that_never_finishes_its_handshake_is_closed_after_handshake_ms(make_broker):
    # A peer that connects and sends nothing holds a place until its
    # handshake times out (--handshake-ms): then it is closed and the place
    # goes to a peer that speaks ZeroMQ.
    broker = make_broker(status="tcp://127.0.0.1:*", max_subscribers=2, handshake_ms=600)
    ep = _status_tcp(broker)
    host, port = ep[len("tcp://"):].rsplit(":", 1)
    mute = [socket.create_connection((host, int(port))) for _ in range(2)]
    t0 = time.monotonic()
    honest = broker.hub.status(ep, "broker")
    honest.nothing(within=0.3)   # both places are held: refused, and retrying
    for s in mute:
        s.settimeout(5)
        while s.recv(4096):      # the broker's greeting, then the close
            pass
        s.close()
    held = time.monotonic() - t0
    assert 0.4 < held < 3.0, f"the mute connections were closed after {held:.2f} s"
    honest.ready()               # the freed place goes to the subscriber
    assert broker.alive()


def test_work_connections_beyond_max_workers_are_refused_until_one_closes(make_broker):
    broker = make_broker(max_workers=1)
    w = broker.worker(queues=[GRID], credit=1)
    other = broker.hub.worker(broker.work_ep)
    other.send("HELLO", {"role": "worker", "name": "second", "queues": [GRID], "credit": 1})
    other.nothing(within=1.0)
    w.bye()
    w.close()
    m = other.expect(("WELCOME", "DENIED"))
    assert m.type == "WELCOME", m
    assert broker.alive()


def test_refusals_leave_the_limit_exact(make_broker):
    # connections that come and go, refused or not, never leave a slot taken
    broker = make_broker(max_intake_clients=2)
    for _ in range(5):
        burst = [broker.intake() for _ in range(6)]
        time.sleep(0.2)
        for c in burst:
            c.close()
        time.sleep(0.1)
    a, b = broker.intake(), broker.intake()
    assert answered(a) and answered(b)


def _start(args, limits, **kw):
    def set_limits():
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
    return subprocess.Popen([str(broker_binary()), "--db", "host=/nonexistent dbname=none",
                             *args], preexec_fn=set_limits, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)


def test_limits_beyond_the_open_file_limit_stop_the_start_with_the_remedy():
    p = _start(["--max-workers", "300"], (200, 200))
    out, _ = p.communicate(timeout=10)
    assert p.returncode == 2, out
    assert "need 748 open files" in out and "hard limit 200" in out, out
    assert "LimitNOFILE" in out and "lower the connection limits" in out, out


def test_the_soft_open_file_limit_is_raised_to_what_the_limits_need():
    p = _start([], (512, 4096))
    try:
        deadline = time.monotonic() + 10
        seen = ""
        while "waiting for the database" not in seen and time.monotonic() < deadline:
            seen += p.stdout.readline()
        assert "open-file limit raised from 512 to 1472" in seen, seen
        with open(f"/proc/{p.pid}/limits") as f:
            line = next(x for x in f if x.startswith("Max open files"))
        assert line.split()[3:5] == ["1472", "4096"], line
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=10)
    assert p.returncode == 0


# ---- SNAPSHOT answers ----


def test_snapshots_beyond_a_clients_allowance_are_rejected_limit_with_a_retry_time(make_broker):
    broker = make_broker(gauge_ms=1000)
    intake = broker.intake()
    for ref in range(1, 11):
        intake.send("SNAPSHOT", {"ref": ref})
    got = {}
    while len(got) < 10:
        m = intake.expect(("GAUGES", "REJECTED", "BUSY"))
        if m.type != "GAUGES" or not m["truncated"]:
            got[m["ref"]] = m
    assert [got[r].type for r in (1, 2, 3)] == ["GAUGES"] * 3, got
    for r in range(4, 11):
        assert got[r].type == "REJECTED" and got[r]["code"] == "limit", got[r]
        assert "3 SNAPSHOTs at once, then one every 1000 ms" in got[r]["message"], got[r]
    wait_ms = int(got[10]["message"].rsplit("retry in ", 1)[1].split()[0])
    assert 0 < wait_ms <= 1000, got[10]
    # another client has its own allowance
    assert broker.intake().snapshot() is not None
    time.sleep(wait_ms / 1000.0 + 0.05)
    assert intake.snapshot() is not None
    status = broker.status("broker")
    assert counter(status, "snapshots_limited") == 7
    assert counter(status, "snapshots") == 5


def test_snapshots_beyond_snapshot_rate_are_busy_with_retry_ms(make_broker):
    broker = make_broker(snapshot_rate=2)
    clients = [broker.intake() for _ in range(5)]
    for c in clients:
        c.send("SNAPSHOT", {"ref": 1})
    replies = [c.expect(("GAUGES", "BUSY", "REJECTED")) for c in clients]
    assert [r.type for r in replies].count("GAUGES") == 2, replies
    busy = [r for r in replies if r.type == "BUSY"]
    assert len(busy) == 3, replies
    for r in busy:
        assert r["reason"] == "snapshot_rate" and 0 < r["retry_ms"] <= 500, r
    time.sleep(max(r["retry_ms"] for r in busy) / 1000.0 + 0.05)
    late = next(c for c, r in zip(clients, replies) if r.type == "BUSY")
    assert late.snapshot() is not None


def _rss_kb_of(broker):
    return _rss_kb(broker.proc.pid)


def test_a_snapshot_flood_from_a_client_that_never_reads_keeps_the_broker_small(make_broker, pg):
    broker = make_broker()
    # queues exist once used: 9 workers make 2030 grid queues (11 parts per SNAPSHOT)
    grids = [r["code"] for r in pg.all("SELECT code FROM org_unit WHERE level = 'grid' "
                                        "ORDER BY code")]
    for i in range(0, len(grids), 256):
        broker.worker(queues=grids[i:i + 256], credit=1, name=f"w{i}")
    reader = broker.intake()
    assert len(reader.snapshot()) >= len(grids)
    time.sleep(0.5)
    before = _rss_kb_of(broker)

    flood = broker.hub.ctx.socket(zmq.DEALER)
    flood.setsockopt(zmq.LINGER, 0)
    flood.setsockopt(zmq.RCVHWM, 1)          # takes nothing: every answer waits in the broker
    flood.setsockopt(zmq.SNDTIMEO, 5000)
    flood.connect(broker.intake_ep)
    body = msgpack.packb({"ref": 1})
    for _ in range(3000):
        flood.send_multipart([header("SNAPSHOT"), body])
    time.sleep(1.0)
    # meanwhile a client that reads is served in full
    again = broker.intake()
    assert len(again.snapshot()) >= len(grids)
    assert again.submit(**submission("L-flood")).type == "ACCEPTED"
    grown = _rss_kb_of(broker) - before
    flood.close(linger=0)
    assert broker.alive()
    # without a limit, 3000 answers of ~250 KB each would wait in the broker
    assert grown < 40 * 1024, f"a SNAPSHOT flood grew the broker by {grown} kB"
