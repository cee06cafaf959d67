"""GDP/1 test clients: intake, worker and status subscriber, all with deadlines.

A small, deliberately literal client for the integration tests: it speaks the
wire format (two frames, b"GDP1" + type byte, msgpack map body) directly, so
the tests check the protocol as any other implementation would see it.

Every wait has a deadline and raises Timeout (an AssertionError) when it
passes, so no test can hang. While any client waits, every live worker of the
same Hub sends HEARTBEAT when one is due, so a worker only goes silent when a
test says so (Worker.silence() or close()).
"""

import itertools
import time

import msgpack
import zmq
import zstandard

SIGNATURE = b"GDP1"

TYPES = {
    "SUBMIT": 1, "QUERY": 2, "FEEDBACK": 3, "SNAPSHOT": 4, "DISPATCH": 5, "APPROVE": 6,
    "SUBMITS": 7,
    "ACCEPTED": 16, "REJECTED": 17, "BUSY": 18, "INCIDENT": 19, "GAUGES": 20, "DONE": 21,
    "SUBMITTED": 22,
    "HELLO": 32, "CREDIT": 33, "SIGN": 34, "PROGRESS": 35, "EXTEND": 36, "RETURN": 37,
    "RESOLVE": 38, "WARN": 39, "ESCALATE": 40,
    "WELCOME": 48, "DENIED": 49, "DELIVER": 50, "OK": 51, "ERR": 52,
    "DEADLINE": 53, "CLEAR": 54, "SYNCED": 55,
    "HEARTBEAT": 64, "BYE": 65,
}
NAMES = {v: k for k, v in TYPES.items()}

MAX_BODY = 65536        # PROTOCOL §9
MAX_BATCH = 256         # transitions in one batch (§12.1)
MAX_GAUGES = 4096       # gauges in one batch
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DEFAULT_TIMEOUT = 5.0   # seconds; generous, only reached when something is wrong
SLICE = 0.02            # longest single poll, so heartbeats keep flowing


class Timeout(AssertionError):
    """A deadline passed while waiting for a message or a condition."""


def header(type_name):
    return SIGNATURE + bytes([TYPES[type_name]])


def pack(body):
    return msgpack.packb(body, use_bin_type=True)


class Msg:
    """One decoded GDP/1 message: .type (name), .body (dict), .raw (frames)."""

    def __init__(self, type_name, body, raw):
        self.type = type_name
        self.body = body
        self.raw = raw

    def __getitem__(self, key):
        return self.body[key]

    def get(self, key, default=None):
        return self.body.get(key, default)

    def __repr__(self):
        return f"Msg({self.type}, {self.body!r})"


# The encoder leaves out fields that hold their default value (false, 0, "",
# [], the first enum name unless the schema says otherwise); these are the
# defaults of the fields the tests read, filled in on decode.
DEFAULTS = {
    "ACCEPTED": {"duplicate": False},
    "OK": {"applied": False},
    "REJECTED": {"field": ""},
    "ERR": {"field": ""},
    "DENIED": {"field": ""},
    "GAUGES": {"truncated": False, "gauges": []},
    "INCIDENT": {"events": [], "truncated": False},
    "DELIVER": {"attempt": 0},
}
GAUGE_DEFAULTS = {"depth": 0, "in_flight": 0, "oldest_age_ms": 0, "overdue": 0, "consumers": 0,
                  "in_rate": 0.0, "out_rate": 0.0}
INCIDENT_DEFAULTS = {"priority": "normal", "level": "micro_grid", "category": "", "queue": "",
                     "owner": "", "description": "", "attempts": 0, "escalations": 0,
                     "flagged": False, "sign_due": 0, "resolve_due": 0, "reported_at": 0,
                     "attachments": []}
EVENT_DEFAULTS = {"queue": "", "actor": "", "note": ""}
RESULT_DEFAULTS = {"duplicate": False, "field": ""}


def _with_defaults(d, defaults):
    return {**defaults, **d}


def normalise(t, body):
    body = _with_defaults(body, DEFAULTS.get(t, {}))
    if "gauges" in body:
        body["gauges"] = [_with_defaults(g, GAUGE_DEFAULTS) for g in body["gauges"]]
    if isinstance(body.get("incident"), dict):
        body["incident"] = _with_defaults(body["incident"], INCIDENT_DEFAULTS)
    if "events" in body:
        body["events"] = [_with_defaults(e, EVENT_DEFAULTS) for e in body["events"]]
    if t == "SUBMITTED" and isinstance(body.get("results"), list):
        body["results"] = [_with_defaults(r, RESULT_DEFAULTS) for r in body["results"]]
    return body


def decode(frames):
    if len(frames) != 2 or len(frames[0]) != 5 or frames[0][:4] != SIGNATURE:
        raise AssertionError(f"not a GDP/1 message: {frames!r}")
    t = NAMES.get(frames[0][4])
    if t is None:
        raise AssertionError(f"unknown message type {frames[0][4]}")
    body = msgpack.unpackb(frames[1], raw=False, strict_map_key=False)
    if not isinstance(body, dict):
        raise AssertionError(f"{t} body is not a map: {body!r}")
    return Msg(t, normalise(t, body), frames)


def wait_until(cond, timeout=DEFAULT_TIMEOUT, what="condition", hub=None, interval=0.01):
    """Polls cond() until it returns something truthy, and returns that.

    Raises Timeout after `timeout` seconds. Heartbeats the hub's workers
    between polls."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Timeout(f"timed out after {timeout}s waiting for {what}")
        if hub is not None:
            hub.tick()
        time.sleep(interval)


class Hub:
    """Owns the ZeroMQ context and every client socket of one test."""

    def __init__(self):
        self.ctx = zmq.Context()
        self.clients = []

    def tick(self):
        for c in list(self.clients):
            if isinstance(c, Worker):
                c.heartbeat_if_due()

    def intake(self, endpoint):
        return self._add(Intake(self, endpoint))

    def worker(self, endpoint, **hello):
        w = self._add(Worker(self, endpoint))
        if hello:
            w.hello(**hello)
        return w

    def status(self, endpoint, *topics):
        return self._add(Status(self, endpoint, topics))

    def _add(self, c):
        self.clients.append(c)
        return c

    def close(self):
        for c in self.clients:
            c.close()
        self.clients = []
        self.ctx.destroy(linger=0)


class Endpoint:
    """A DEALER socket with an inbox of received but not yet taken messages."""

    socket_type = zmq.DEALER

    def __init__(self, hub, endpoint):
        self.hub = hub
        self.endpoint = endpoint
        self.sock = hub.ctx.socket(self.socket_type)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.inbox = []
        self.closed = False

    def close(self):
        if not self.closed:
            self.sock.close(linger=0)
            self.closed = True

    def send(self, type_name, body):
        self.send_raw([header(type_name), pack(body)])

    def send_raw(self, frames):
        self.sock.send_multipart(frames)

    def _recv_one(self, timeout):
        """One message off the socket within `timeout` seconds, or None."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if self.sock.poll(int(max(0, min(left, SLICE)) * 1000)):
                return self._accept(self.sock.recv_multipart())
            self.hub.tick()
            if time.monotonic() >= deadline:
                return None

    def _accept(self, frames):
        return decode(frames)

    def expect(self, match=None, timeout=DEFAULT_TIMEOUT, what=None):
        """The first message for which match(msg) is true (the inbox first).

        `match` may be a predicate, a type name or a tuple of type names.
        Messages that do not match stay in the inbox, in order."""
        pred = _matcher(match)
        for i, m in enumerate(self.inbox):
            if pred(m):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv_one(max(0.0, deadline - time.monotonic()))
            if m is not None:
                if pred(m):
                    return m
                self.inbox.append(m)
            elif time.monotonic() >= deadline:
                raise Timeout(f"{type(self).__name__}: no {what or match} within {timeout}s; "
                              f"inbox holds {self.inbox!r}")

    def drain(self, timeout=0.0):
        """Everything that arrives within `timeout` seconds, plus the inbox."""
        out, self.inbox = self.inbox, []
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv_one(max(0.0, deadline - time.monotonic()))
            if m is None:
                return out
            out.append(m)

    def nothing(self, match=None, within=0.3):
        """Asserts that no matching message arrives within `within` seconds."""
        pred = _matcher(match)
        got = [m for m in self.drain(within)]
        bad = [m for m in got if pred(m)]
        self.inbox.extend(m for m in got if not pred(m))
        assert not bad, f"unexpected messages: {bad!r}"


def _matcher(match):
    if match is None:
        return lambda m: True
    if isinstance(match, str):
        return lambda m: m.type == match
    if isinstance(match, tuple):
        return lambda m: m.type in match
    return match


class Requester(Endpoint):
    """Requests carry a fresh `ref`; replies are matched on it."""

    def __init__(self, hub, endpoint):
        super().__init__(hub, endpoint)
        self._refs = itertools.count(1)

    def next_ref(self):
        return next(self._refs)

    def request(self, type_name, body, replies, timeout=DEFAULT_TIMEOUT):
        body = dict(body)
        body.setdefault("ref", self.next_ref())
        self.send(type_name, body)
        return self.reply(body["ref"], replies, timeout)

    def reply(self, ref, replies, timeout=DEFAULT_TIMEOUT):
        return self.expect(lambda m: m.type in replies and m.get("ref") == ref, timeout,
                           what=f"{'/'.join(replies)} ref={ref}")


INTAKE_REPLIES = ("ACCEPTED", "REJECTED", "BUSY", "INCIDENT", "GAUGES", "DONE", "SUBMITTED")


class Intake(Requester):
    """Client of the intake endpoint."""

    def submit(self, **fields):
        return self.request("SUBMIT", fields, INTAKE_REPLIES)

    def submit_many(self, items, timeout=DEFAULT_TIMEOUT, **fields):
        """SUBMITS: every item gets a fresh ref unless it has one."""
        items = [{"ref": self.next_ref(), **item} for item in items]
        return self.request("SUBMITS", {"items": items, **fields}, INTAKE_REPLIES, timeout)

    def query(self, incident_id=None, source=None, external_id=None, timeout=DEFAULT_TIMEOUT,
              **extra):
        body = dict(extra)
        if incident_id is not None:
            body["incident_id"] = incident_id
        if source is not None:
            body["source"] = source
        if external_id is not None:
            body["external_id"] = external_id
        return self.request("QUERY", body, INTAKE_REPLIES, timeout)

    def feedback(self, incident_id, satisfied, comment=""):
        return self.request("FEEDBACK", {"incident_id": incident_id, "satisfied": satisfied,
                                         "comment": comment}, INTAKE_REPLIES)

    def dispatch(self, incident_id, version, unit, note=""):
        return self.request("DISPATCH", {"incident_id": incident_id, "version": version,
                                         "unit": unit, "note": note}, INTAKE_REPLIES)

    def snapshot(self, prefix="", timeout=DEFAULT_TIMEOUT):
        """All gauges of a SNAPSHOT (every part), as a list of dicts."""
        ref = self.next_ref()
        self.send("SNAPSHOT", {"ref": ref, "prefix": prefix})
        gauges = []
        while True:
            m = self.reply(ref, INTAKE_REPLIES, timeout)
            assert m.type == "GAUGES", m
            gauges.extend(m["gauges"])
            if not m.get("truncated"):
                return gauges

    def raw_reply(self, timeout=DEFAULT_TIMEOUT):
        """The next intake reply whatever its ref (for malformed requests)."""
        return self.expect(INTAKE_REPLIES, timeout)


WORK_REPLIES = ("OK", "ERR")


class Worker(Requester):
    """Client of the work endpoint. HEARTBEATs from the broker are dropped."""

    def __init__(self, hub, endpoint):
        super().__init__(hub, endpoint)
        self.session = None
        self.heartbeat_ms = None
        self.last_send = 0.0
        self.silent = False
        self.heartbeats_seen = 0

    def _accept(self, frames):
        m = decode(frames)
        if m.type == "HEARTBEAT":
            self.heartbeats_seen += 1
            return _Dropped
        return m

    def _recv_one(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            m = super()._recv_one(max(0.0, deadline - time.monotonic()))
            if m is not _Dropped:
                return m

    def send_raw(self, frames):
        super().send_raw(frames)
        self.last_send = time.monotonic()

    def heartbeat_if_due(self):
        if self.closed or self.silent or not self.session:
            return
        if time.monotonic() - self.last_send >= self.heartbeat_ms / 3000.0:
            self.send("HEARTBEAT", {})

    def silence(self):
        """Stops automatic heartbeats: the broker will think this worker dead."""
        self.silent = True

    def hello(self, queues, credit=1, name="worker", role="worker", expect_welcome=True):
        self.send("HELLO", {"role": role, "name": name, "queues": list(queues),
                            "credit": credit})
        m = self.expect(("WELCOME", "DENIED", "ERR"), what="WELCOME/DENIED")
        if m.type == "WELCOME":
            self.session = m["session"]
            self.heartbeat_ms = m["heartbeat_ms"]
        elif expect_welcome:
            raise AssertionError(f"HELLO refused: {m!r}")
        return m

    def bye(self, reason="done"):
        self.send("BYE", {"reason": reason})
        self.session = None

    def credit(self, n):
        self.send("CREDIT", {"credit": n})

    def deliver(self, timeout=DEFAULT_TIMEOUT):
        return self.expect("DELIVER", timeout)

    def command(self, type_name, incident_id, version=None, **fields):
        body = {"incident_id": incident_id, **fields}
        if version is not None:
            body["version"] = version
        return self.request(type_name, body, WORK_REPLIES)

    def sign(self, d, **kw):
        """SIGN for DELIVER `d` (its delivery id and incident)."""
        inc = d["incident"]
        return self.command("SIGN", inc["id"], delivery_id=d["delivery_id"], **kw)

    def progress(self, incident_id, version, note=""):
        return self.command("PROGRESS", incident_id, version, note=note)

    def extend(self, incident_id, version, until, reason):
        return self.command("EXTEND", incident_id, version, until=until, reason=reason)

    def return_(self, incident_id, version, reason, rule=None):
        extra = {"rule": rule} if rule is not None else {}
        return self.command("RETURN", incident_id, version, reason=reason, **extra)

    def resolve(self, incident_id, version, result=""):
        return self.command("RESOLVE", incident_id, version, result=result)


_Dropped = object()


def status_body(data):
    """The msgpack bytes of a status body, decompressed when it is a zstd
    frame (PROTOCOL §12.1), with the frame's declared size checked first."""
    if data[:4] != ZSTD_MAGIC:
        return data
    size = zstandard.frame_content_size(data)
    assert 0 <= size <= MAX_BODY, f"compressed status body declares {size} bytes"
    out = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BODY)
    assert len(out) == size
    return out


TOWN_CODE_LEN = 9       # county (6) + town (3)


def batch_prefix(prefix):
    """The subscription that carries a topic prefix: transitions and gauges
    travel in batches on inc.<town> and queue.<town>, so an inc. or queue.
    prefix below town level is cut there and the batch's items are
    filtered by their own topics."""
    for root in (b"inc.", b"queue."):
        if prefix.startswith(root):
            return prefix[:len(root) + TOWN_CODE_LEN]
    return prefix


class Status(Endpoint):
    """SUB socket on the status XPUB. A batch of transitions is unpacked into
    one message per item (topic: the item's own, kind "transition"), so
    tests see transitions one by one, as a dashboard does."""

    socket_type = zmq.SUB

    def __init__(self, hub, endpoint, topics):
        super().__init__(hub, endpoint)
        self.topics = [t.encode() if isinstance(t, str) else t for t in (topics or [b""])]
        for t in self.topics:
            self.sock.setsockopt(zmq.SUBSCRIBE, batch_prefix(t))
        self.sock.setsockopt(zmq.SUBSCRIBE, b"broker")
        self.raw = []   # every (topic, body bytes decompressed), for byte-level checks
        self.frames = []  # every (topic, body) as received
        self.pending = []

    def _recv_one(self, timeout):
        deadline = time.monotonic() + timeout
        while not self.pending:
            if super()._recv_one(max(0.0, deadline - time.monotonic())) is None:
                return None
        return self.pending.pop(0)

    def _accept(self, frames):
        assert len(frames) == 2, f"status message of {len(frames)} frames"
        self.frames.append((frames[0], frames[1]))
        data = status_body(frames[1])
        self.raw.append((frames[0], data))
        body = msgpack.unpackb(data, raw=False, strict_map_key=False)
        topic = frames[0].decode()
        kind = body.get("kind")
        if kind == "transitions":
            assert 0 < len(body["items"]) <= MAX_BATCH, body
            items = [(item["topic"], {"kind": "transition", **item}) for item in body["items"]]
        elif kind == "gauges":
            assert 0 < len(body["items"]) <= MAX_GAUGES, body
            items = [("queue." + item["queue"], {"kind": "gauge", **item})
                     for item in body["items"]]
        else:
            self.pending.append(StatusMsg(topic, body))
            return True
        for t, item in items:
            assert t.startswith(topic), (topic, t)
            if any(t.encode().startswith(p) for p in self.topics):
                self.pending.append(StatusMsg(t, item))
        return True

    def ready(self, timeout=DEFAULT_TIMEOUT):
        """Waits for a `broker` message: from then on the subscription is live."""
        self.expect(lambda m: m.topic == "broker", timeout, what="broker status")
        self.inbox = [m for m in self.inbox if m.topic != "broker"]
        return self

    def topic(self, prefix, pred=None, timeout=DEFAULT_TIMEOUT):
        return self.expect(lambda m: m.topic.startswith(prefix) and (pred is None or pred(m)),
                           timeout, what=f"status on {prefix}")


class StatusMsg:
    def __init__(self, topic, body):
        self.topic = topic
        self.body = body
        self.type = "STATUS"

    def __getitem__(self, key):
        return self.body[key]

    def get(self, key, default=None):
        return self.body.get(key, default)

    def __repr__(self):
        return f"StatusMsg({self.topic}, {self.body!r})"
