"""Hostile input at a running gd-broker: random, truncated and oversized frames on every endpoint.

Several sockets throw a bounded number of messages at the intake and work
endpoints (random bytes, random frame counts, truncated valid bodies, valid
headers with garbage bodies, every type byte with random MessagePack
including forged container and string lengths, frames above ZMQ_MAXMSGSIZE)
and garbage subscriptions at the status endpoint. Afterwards the broker must
be alive, serve correct clients (a SUBMIT is ACCEPTED and a worker gets it),
not have grown its memory, and every refusal it sent must carry a code of
PROTOCOL.md §8 and a message.
"""

import random
import re
import struct
import time

import msgpack
import zmq

from conftest import REPO
from demo import GRID, submission
from gdclient import NAMES, SIGNATURE, TYPES, header, pack

MESSAGES = 20000
SOCKETS = 4                   # per endpoint
MAXMSGSIZE = 65536 + 1024     # the broker's ZMQ_MAXMSGSIZE on intake and work
RSS_GROWTH_LIMIT_KB = 64 * 1024
KEYS = ["ref", "source", "external_id", "incident_id", "version", "queues", "credit", "role",
        "location", "reporter", "attachments", "events", "kind", "until", "reason", "shard"]


def documented_codes():
    """The error codes of PROTOCOL.md §8, read from its table."""
    text = (REPO / "proto" / "PROTOCOL.md").read_text()
    section = text.split("## 8. Error codes", 1)[1].split("\n## ", 1)[0]
    codes = set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))
    assert len(codes) > 20, codes
    return codes


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


class Garbage:
    """Hostile frames from a seeded generator (the seed is in the failure message)."""

    def __init__(self, seed):
        self.rnd = random.Random(seed)

    def bytes(self, hi=300):
        return self.rnd.randbytes(self.rnd.randint(0, hi))

    def value(self, depth=0):
        r = self.rnd.random()
        if depth > 5 or r < 0.35:
            return self.rnd.choice([
                self.rnd.randint(-2**63, 2**64 - 1), self.rnd.randint(-40, 300),
                self.rnd.random() * 1e6, float("nan"), float("inf"), True, False, None,
                self.rnd.randbytes(self.rnd.randint(0, 40)),
                "".join(chr(self.rnd.randint(1, 0x2fff)) for _ in range(self.rnd.randint(0, 40))),
                "x" * self.rnd.choice([32, 33, 64, 65, 1024, 1025, 16385]),
                msgpack.ExtType(self.rnd.randint(0, 127), self.rnd.randbytes(4)),
            ])
        if r < 0.65:
            return [self.value(depth + 1) for _ in range(self.rnd.randint(0, 6))]
        return self.map(depth + 1)

    def map(self, depth=0):
        m = {}
        for _ in range(self.rnd.randint(0, 6)):
            k = self.rnd.choice(KEYS) if self.rnd.random() < 0.6 else self.value(depth + 3)
            try:
                hash(k)
            except TypeError:
                k = str(k)
            m[k] = self.value(depth)
        return m

    def forged(self):
        """MessagePack whose declared lengths and counts lie."""
        head = self.rnd.choice([
            b"\xdd\xff\xff\xff\xff",            # array32 of 4294967295
            b"\xdf\xff\xff\xff\xff",            # map32 of 4294967295
            b"\xdb\x7f\xff\xff\xff",            # str32 of 2 GiB
            b"\xc6\xff\xff\xff\xff",            # bin32
            b"\xc9\xff\xff\xff\xff\x01",        # ext32
            b"\xdc\xff\xff",                    # array16
            b"\x81\xa3ref\xdd\x00\x10\x00\x00",  # a map holding array32 of 1 Mi
            b"\x81" * 40,                       # maps nested 40 deep
            b"\x91" * 40,
            b"\xc1",
            b"\x80\x80",                        # bytes after the map
        ])
        return head + self.bytes(20)

    def body(self):
        r = self.rnd.random()
        if r < 0.5:
            try:
                return msgpack.packb(self.map(), use_bin_type=True)
            except (OverflowError, ValueError, TypeError):
                return b"\x80"
        if r < 0.75:
            return self.forged()
        return self.bytes()

    def message(self):
        """One hostile multipart message for a DEALER (intake or work)."""
        r = self.rnd.random()
        if r < 0.10:                                         # random frames, random count
            return [self.bytes(40) for _ in range(self.rnd.randint(1, 5))]
        if r < 0.25:                                         # truncated valid body
            b = pack({"ref": 1, **submission()})
            t = self.rnd.choice([TYPES["SUBMIT"], TYPES["HELLO"], self.rnd.randint(0, 255)])
            return [SIGNATURE + bytes([t]), b[:self.rnd.randint(0, len(b) - 1)]]
        if r < 0.35:                                         # valid header, garbage body
            return [header(self.rnd.choice(list(TYPES))), self.bytes()]
        if r < 0.85:                                         # every type byte, random msgpack
            return [SIGNATURE + bytes([self.rnd.randint(0, 255)]), self.body()]
        if r < 0.93:                                         # right frames, then extra frames
            return [header(self.rnd.choice(list(TYPES))), self.body()] + \
                [self.bytes(20) for _ in range(self.rnd.randint(1, 3))]
        if r < 0.97:                                         # header frame of another length
            return [SIGNATURE[:self.rnd.randint(0, 4)] + self.bytes(8), self.body()]
        # just over the decoder's limit (too_large), or over ZMQ_MAXMSGSIZE (dropped)
        size = self.rnd.choice([65537, MAXMSGSIZE, MAXMSGSIZE + 1, 200_000])
        return [header(self.rnd.choice(["SUBMIT", "HELLO", "QUERY"])),
                b"\x81\xa3ref\xdb" + struct.pack(">I", size) + b"x" * size]

    def subscription(self):
        """One frame for the status XPUB from an XSUB: (un)subscribe or anything."""
        r = self.rnd.random()
        if r < 0.6:
            return [b"\x01" + self.bytes(200)]
        if r < 0.8:
            return [b"\x00" + self.bytes(200)]
        if r < 0.95:
            return [self.bytes(60) for _ in range(self.rnd.randint(1, 3))]
        return [b"\x01" + b"s" * self.rnd.choice([1023, 1024, 5000])]


class Collector:
    """Hostile sockets and everything they received."""

    def __init__(self, ctx, endpoint, kind, n):
        self.kind = kind
        self.socks = []
        for _ in range(n):
            s = ctx.socket(zmq.DEALER if kind != "status" else zmq.XSUB)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVHWM, 0)
            s.setsockopt(zmq.SNDHWM, 0)
            s.setsockopt(zmq.RECONNECT_IVL, 20)
            s.connect(endpoint)
            self.socks.append(s)
        self.replies = []
        self.sent = 0

    def send(self, frames):
        s = self.socks[self.sent % len(self.socks)]
        deadline = time.monotonic() + 5
        while True:
            try:
                s.send_multipart(frames, zmq.NOBLOCK)
                self.sent += 1
                return
            except zmq.Again:   # disconnected after an oversized frame: reconnecting
                assert time.monotonic() < deadline, f"{self.kind}: cannot send for 5 s"
                self.drain(0.01)

    def drain(self, wait=0.0):
        got = 0
        for s in self.socks:
            while s.poll(int(wait * 1000) if got == 0 else 0):
                self.replies.append(s.recv_multipart())
                got += 1
        return got

    def close(self):
        for s in self.socks:
            s.close(linger=0)


def check_replies(replies, endpoint, codes):
    """Every reply is a GDP/1 message; every refusal carries a documented code."""
    refusals = 0
    for frames in replies:
        assert len(frames) == 2 and len(frames[0]) == 5 and frames[0][:4] == SIGNATURE, frames
        t = NAMES.get(frames[0][4])
        assert t is not None, frames
        body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
        assert isinstance(body, dict), (t, body)
        if t in ("REJECTED", "ERR", "DENIED"):
            refusals += 1
            assert body["code"] in codes, f"{endpoint}: undocumented code in {t} {body!r}"
            assert body["code"] != "internal", f"{endpoint}: {t} {body!r}"
            assert body.get("message"), f"{endpoint}: {t} without a message: {body!r}"
        else:
            assert t in ("GAUGES", "INCIDENT", "BUSY", "HEARTBEAT", "WELCOME", "DEADLINE",
                         "SYNCED", "BYE"), \
                f"{endpoint}: unexpected answer to garbage: {t} {body!r}"
    return refusals


def test_hostile_frames_leave_the_broker_alive_lean_and_serving(make_broker, pg, hub):
    broker = make_broker(log_level="info")
    intake = broker.intake()
    assert intake.submit(**submission("H-warm")).type == "ACCEPTED"
    rss_before = rss_kb(broker.proc.pid)

    seed = random.randrange(2**32)
    g = Garbage(seed)
    ends = {"intake": Collector(hub.ctx, broker.intake_ep, "intake", SOCKETS),
            "work": Collector(hub.ctx, broker.work_ep, "work", SOCKETS),
            "status": Collector(hub.ctx, broker.status_ep, "status", 2)}
    try:
        for i in range(MESSAGES):
            r = g.rnd.random()
            if r < 0.45:
                ends["intake"].send(g.message())
            elif r < 0.9:
                ends["work"].send(g.message())
            else:
                ends["status"].send(g.subscription())
            if i % 200 == 0:
                for c in ends.values():
                    c.drain()
                assert broker.alive(), f"gd-broker died (seed {seed})"
        quiet = time.monotonic() + 1.0
        while time.monotonic() < quiet:
            if sum(c.drain(0.05) for c in ends.values()):
                quiet = time.monotonic() + 1.0
        assert broker.alive(), f"gd-broker died (seed {seed})"

        codes = documented_codes()
        refused = {k: check_replies(ends[k].replies, k, codes) for k in ("intake", "work")}
        # most garbage is answered; the rest went with dropped connections or
        # was not a two-frame message on a live session
        for k in ("intake", "work"):
            assert refused[k] > ends[k].sent // 2, (k, refused[k], ends[k].sent, seed)
        for frames in ends["status"].replies:   # what random prefixes happened to match
            assert len(frames) == 2 and len(frames[0]) <= 128 and frames[0].isascii(), frames
            assert "kind" in msgpack.unpackb(frames[1], raw=False), frames
    finally:
        for c in ends.values():
            c.close()

    # a correct client is still served, end to end
    r = broker.intake().submit(**submission("H-after"))
    assert r.type == "ACCEPTED", (r, seed)
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] in (r["incident_id"], pg.scalar(
        "SELECT id FROM incident WHERE external_id = 'H-warm'")), d
    assert pg.scalar("SELECT count(*) FROM incident") == 2, "garbage created no incident"

    grown = rss_kb(broker.proc.pid) - rss_before
    assert grown < RSS_GROWTH_LIMIT_KB, f"RSS grew by {grown} kB (seed {seed})"
    assert broker.alive()
