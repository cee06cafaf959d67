"""Continuous load and the after-the-fact checker used by the fault tests.

Submitter: a thread that keeps `window` SUBMITs in flight on its own DEALER
socket, each with a unique external_id, and resends any request that is not
answered within `retry_s` (or that was answered BUSY) with the same
external_id, the way a real intake system retries. It records what the
broker told it: external_id -> incident id for every ACCEPTED.

Worker: a thread that serves one queue, signs and resolves everything it
gets, and says HELLO again whenever the broker stops answering or forgets
its session (after a broker restart).

check_history(): the invariants an ACCEPTED incident must keep whatever
crashed: it is stored exactly once under the id the client was told (every
retry got that same id); nothing is stored that no client submitted; its
event history starts with 'receive', has gap-free versions, and the
projection (state, version) matches the last event.
"""

import threading
import time

import msgpack
import zmq

T = {"SUBMIT": 1, "ACCEPTED": 16, "REJECTED": 17, "BUSY": 18, "HELLO": 32, "SIGN": 34,
     "RESOLVE": 38, "WELCOME": 48, "DENIED": 49, "DELIVER": 50, "OK": 51, "ERR": 52,
     "HEARTBEAT": 64, "BYE": 65}
NAMES = {v: k for k, v in T.items()}


def frames(type_name, body):
    return [b"GDP1" + bytes([T[type_name]]), msgpack.packb(body)]


def parse(msg):
    return NAMES.get(msg[0][4], "?"), msgpack.unpackb(msg[1])


class Submitter(threading.Thread):
    def __init__(self, endpoint, name, unit, category, window=10, retry_s=0.5, limit=None):
        super().__init__(daemon=True, name=f"submitter-{name}")
        self.endpoint = endpoint
        self.name = name
        self.unit = unit
        self.category = category
        self.window = window
        self.retry_s = retry_s
        self.limit = limit
        self.stopping = threading.Event()
        self.accepted = {}        # external_id -> incident id
        self.conflicts = []       # external_id answered with two different ids
        self.rejected = []
        self.busy = 0
        self.submitted = set()
        self.outstanding = {}     # ref -> (external_id, sent at)
        self.error = None

    def stop(self):
        """No new SUBMITs; run() returns once every one sent is answered."""
        self.stopping.set()

    def body(self, ref, ext):
        return {"ref": ref, "source": "chaos", "external_id": ext, "category": self.category,
                "location": {"unit": self.unit}, "description": f"fault test {ext}",
                "reporter": {"name": "测试", "phone": "13900000000"}}

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the test
            self.error = e

    def _run(self):
        ctx = zmq.Context.instance()
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(self.endpoint)
        n = 0
        ref = 0
        while True:
            now = time.monotonic()
            while (not self.stopping.is_set() and len(self.outstanding) < self.window
                   and (self.limit is None or n < self.limit)):
                ext = f"{self.name}-{n}"
                n += 1
                ref += 1
                self.submitted.add(ext)
                self.outstanding[ref] = (ext, now)
                s.send_multipart(frames("SUBMIT", self.body(ref, ext)))
            if not self.outstanding and (self.stopping.is_set() or
                                         (self.limit is not None and n >= self.limit)):
                break
            if s.poll(50):
                t, body = parse(s.recv_multipart())
                r = body.get("ref")
                if r not in self.outstanding:
                    continue      # answer to a request we already resent
                ext, _ = self.outstanding.pop(r)
                if t == "ACCEPTED":
                    old = self.accepted.setdefault(ext, body["incident_id"])
                    if old != body["incident_id"]:
                        self.conflicts.append((ext, old, body["incident_id"]))
                elif t == "BUSY":
                    self.busy += 1
                    ref += 1
                    self.outstanding[ref] = (ext, time.monotonic() + body.get("retry_ms", 0) / 1e3
                                             - self.retry_s)
                elif t == "REJECTED":
                    self.rejected.append((ext, body))
                continue
            # resend what waited too long (the broker died with it, or BUSY)
            for r, (ext, sent) in list(self.outstanding.items()):
                if time.monotonic() - sent >= self.retry_s:
                    del self.outstanding[r]
                    ref += 1
                    self.outstanding[ref] = (ext, time.monotonic())
                    s.send_multipart(frames("SUBMIT", self.body(ref, ext)))
        s.close()


class Worker(threading.Thread):
    """Signs and resolves everything delivered on `queue`."""

    def __init__(self, endpoint, queue, credit=10, heartbeat_s=0.05):
        super().__init__(daemon=True, name=f"worker-{queue}")
        self.endpoint = endpoint
        self.queue = queue
        self.credit = credit
        self.heartbeat_s = heartbeat_s
        self.stopping = threading.Event()
        self.resolved = set()
        self.hellos = 0
        self.error = None

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            self._run()
        except Exception as e:
            self.error = e

    def _run(self):
        ctx = zmq.Context.instance()
        s = None
        last_heard = 0.0
        last_sent = 0.0
        ref = 0
        pending = {}              # ref -> "sign" | "resolve"
        while not self.stopping.is_set():
            now = time.monotonic()
            # the broker heartbeats every few 100 ms: a second of silence
            # means it died or restarted; HELLO again on a new socket
            if s is None or now - last_heard > 1.0:
                if s is not None:
                    s.close()
                s = ctx.socket(zmq.DEALER)
                s.setsockopt(zmq.LINGER, 0)
                s.connect(self.endpoint)
                s.send_multipart(frames("HELLO", {"role": "worker", "name": "chaos-worker",
                                                  "queues": [self.queue],
                                                  "credit": self.credit}))
                self.hellos += 1
                pending.clear()
                last_heard = last_sent = now
            if now - last_sent >= self.heartbeat_s:
                s.send_multipart(frames("HEARTBEAT", {}))
                last_sent = now
            if not s.poll(20):
                continue
            t, body = parse(s.recv_multipart())
            last_heard = time.monotonic()
            if t == "DELIVER":
                inc = body["incident"]
                ref += 1
                pending[ref] = "sign"
                s.send_multipart(frames("SIGN", {"ref": ref, "incident_id": inc["id"],
                                                 "delivery_id": body["delivery_id"]}))
            elif t == "OK":
                if pending.pop(body.get("ref"), None) == "sign":
                    ref += 1
                    pending[ref] = "resolve"
                    s.send_multipart(frames("RESOLVE", {"ref": ref,
                                                        "incident_id": body["incident_id"],
                                                        "version": body["version"],
                                                        "result": "done"}))
                else:
                    self.resolved.add(body["incident_id"])
            elif t == "ERR":
                pending.pop(body.get("ref"), None)
                if body.get("code") == "no_session":
                    last_heard = 0.0   # HELLO again now
            elif t == "BYE":
                last_heard = 0.0
        if s is not None:
            s.close()


ALLOWED = {
    # event kind -> states it may start from
    "deliver": {"QUEUED"},
    "requeue": {"DELIVERED"},
    "sign": {"DELIVERED"},
    "progress": {"SIGNED", "IN_PROGRESS"},
    "extend": {"SIGNED", "IN_PROGRESS"},
    "return": {"DELIVERED", "SIGNED"},
    "resolve": {"QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"},
    "reopen": {"RESOLVED"},
    "close": {"RESOLVED"},
    "escalate": {"QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"},
    "dispatch": {"QUEUED"},
    "warn": {"QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"},
    "flag": {"QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"},
    "extend_request": {"SIGNED", "IN_PROGRESS"},
    "extend_deny": {"SIGNED", "IN_PROGRESS"},
}


def check_history(pg, submitters, source="chaos"):
    """Asserts the invariants over everything the submitters were told.

    Reads one snapshot (REPEATABLE READ): the broker may still be
    committing while we look."""
    with pg.conn.cursor() as cur:
        cur.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
    try:
        return _check_history(pg, submitters, source)
    finally:
        with pg.conn.cursor() as cur:
            cur.execute("ROLLBACK")


def _check_history(pg, submitters, source):
    told = {}
    for sub in submitters:
        assert sub.error is None, f"{sub.name}: {sub.error!r}"
        assert not sub.conflicts, f"{sub.name}: one external_id got two ids: {sub.conflicts[:5]}"
        assert not sub.rejected, f"{sub.name}: unexpected REJECTED: {sub.rejected[:3]}"
        told.update(sub.accepted)
    submitted = set().union(*(s.submitted for s in submitters))
    rows = pg.all("SELECT id, external_id, state, version FROM incident WHERE source = %s", source)
    stored = {r["external_id"]: r for r in rows}
    lost = [e for e in told if e not in stored]
    assert not lost, f"{len(lost)} ACCEPTED incidents are not stored: {lost[:5]}"
    wrong = [(e, told[e], stored[e]["id"]) for e in told if stored[e]["id"] != told[e]]
    assert not wrong, f"stored under another id than the client was told: {wrong[:5]}"
    phantom = [e for e in stored if e not in submitted]
    assert not phantom, f"stored but never submitted: {phantom[:5]}"
    events = pg.all("SELECT e.incident_id, e.version, e.kind, e.from_state, e.to_state "
                    "FROM incident_event e JOIN incident i ON i.id = e.incident_id "
                    "WHERE i.source = %s ORDER BY e.incident_id, e.version", source)
    by_id = {}
    for e in events:
        by_id.setdefault(e["incident_id"], []).append(e)
    for r in rows:
        evs = by_id.get(r["id"], [])
        assert evs, f"incident {r['id']} has no events"
        assert [e["version"] for e in evs] == list(range(1, len(evs) + 1)), \
            f"incident {r['id']}: versions not gap-free: {[e['version'] for e in evs]}"
        assert evs[0]["kind"] == "receive", f"incident {r['id']} starts with {evs[0]['kind']}"
        for prev, e in zip(evs, evs[1:]):
            assert e["from_state"] == prev["to_state"], \
                f"incident {r['id']} v{e['version']}: from {e['from_state']} after {prev['to_state']}"
            assert e["from_state"] in ALLOWED.get(e["kind"], set()), \
                f"incident {r['id']} v{e['version']}: {e['kind']} from {e['from_state']}"
        assert r["version"] == evs[-1]["version"] and r["state"] == evs[-1]["to_state"], \
            f"incident {r['id']}: projection {r['state']} v{r['version']} != last event " \
            f"{evs[-1]['to_state']} v{evs[-1]['version']}"
    return len(told), len(events)
