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
projection (state, version) matches the last event. checker.py is the full
checker (lost, duplicated, unexpected, inconsistent, missed escalations,
redelivery after sign); both threads keep the logs it reads (`log`, and
JSON lines in `log_path` when given).

Both threads take one endpoint or a list of them (an HA pair): they use one
at a time and move on to the next when it stops answering (Submitter: no
reply at all for `failover_s` while requests wait; Worker: a second of
silence), the way gd-worker and gd-sla fail over.
"""

import json
import threading
import time

import msgpack
import zmq

import checker

T = {"SUBMIT": 1, "FEEDBACK": 3, "DONE": 21, "ACCEPTED": 16, "REJECTED": 17, "BUSY": 18, "HELLO": 32, "SIGN": 34,
     "RESOLVE": 38, "WELCOME": 48, "DENIED": 49, "DELIVER": 50, "OK": 51, "ERR": 52,
     "HEARTBEAT": 64, "BYE": 65}
NAMES = {v: k for k, v in T.items()}


def frames(type_name, body):
    return [b"GDP1" + bytes([T[type_name]]), msgpack.packb(body)]


def parse(msg):
    return NAMES.get(msg[0][4], "?"), msgpack.unpackb(msg[1])


def endpoint_list(endpoint):
    return [endpoint] if isinstance(endpoint, str) else list(endpoint)


class JsonLines:
    """Appends one JSON object per line to `path` (nothing when path is None)."""

    def __init__(self, path):
        self.f = open(path, "a", encoding="utf-8") if path else None

    def write(self, rec):
        if self.f:
            self.f.write(json.dumps(rec) + "\n")

    def close(self):
        if self.f:
            self.f.close()
            self.f = None


def dealer(ctx, endpoint):
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.setsockopt(zmq.RECONNECT_IVL, 20)
    s.setsockopt(zmq.RECONNECT_IVL_MAX, 100)
    s.connect(endpoint)
    return s


class Submitter(threading.Thread):
    def __init__(self, endpoint, name, unit, category, window=10, retry_s=0.5, limit=None,
                 failover_s=1.0, log_path=None, source="chaos", rate=None):
        super().__init__(daemon=True, name=f"submitter-{name}")
        self.endpoints = endpoint_list(endpoint)
        self.endpoint = self.endpoints[0]
        self.failover_s = failover_s
        self.source = source
        self.rate = rate              # None: as fast as the window allows; else a callable
        self.log = checker.ClientLog()
        self.jsonl = JsonLines(log_path)
        self.latencies = []           # (monotonic time answered, seconds since first sent)
        self.first_sent = {}          # external_id -> monotonic time of its first SUBMIT
        self.failovers = []           # (monotonic time, endpoint moved to)
        self.last_accepted_at = None
        self.accepted_via = []        # (monotonic time, endpoint) of every ACCEPTED
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
        self.busy_at = []         # monotonic time of every BUSY answer
        self.submitted = set()
        self.outstanding = {}     # ref -> (external_id, sent at)
        self.error = None

    def stop(self):
        """No new SUBMITs; run() returns once every one sent is answered."""
        self.stopping.set()

    def body(self, ref, ext):
        return {"ref": ref, "source": self.source, "external_id": ext, "category": self.category,
                "location": {"unit": self.unit}, "description": f"fault test {ext}",
                "reporter": {"name": "测试", "phone": "13900000000"}}

    def run(self):
        try:
            self._run()
        except Exception as e:  # reported by the test
            self.error = e

    def _run(self):
        ctx = zmq.Context.instance()
        s = dealer(ctx, self.endpoint)
        which = 0
        last_heard = time.monotonic()
        n = 0
        ref = 0
        allowance = 0.0
        last_tick = time.monotonic()
        while True:
            now = time.monotonic()
            if self.rate is not None:
                allowance = min(allowance + (now - last_tick) * self.rate(now), self.window)
                last_tick = now
            while (not self.stopping.is_set() and len(self.outstanding) < self.window
                   and (self.limit is None or n < self.limit)
                   and (self.rate is None or allowance >= 1)):
                allowance -= 1
                ext = f"{self.name}-{n}"
                n += 1
                ref += 1
                self.submitted.add(ext)
                self.log.submit(self.source, ext)
                self.jsonl.write({"op": "submit", "source": self.source, "external_id": ext})
                self.first_sent[ext] = now
                self.outstanding[ref] = (ext, now)
                s.send_multipart(frames("SUBMIT", self.body(ref, ext)))
            if not self.outstanding and (self.stopping.is_set() or
                                         (self.limit is not None and n >= self.limit)):
                break
            if not self.outstanding:
                last_heard = now
            if s.poll(10 if self.rate is not None else 50):
                t, body = parse(s.recv_multipart())
                last_heard = time.monotonic()
                r = body.get("ref")
                if r not in self.outstanding:
                    continue      # answer to a request we already resent
                ext, _ = self.outstanding.pop(r)
                if t == "ACCEPTED":
                    old = self.accepted.setdefault(ext, body["incident_id"])
                    if old != body["incident_id"]:
                        self.conflicts.append((ext, old, body["incident_id"]))
                    self.log.accept(self.source, ext, body["incident_id"])
                    self.jsonl.write({"op": "accepted", "source": self.source,
                                      "external_id": ext, "incident_id": body["incident_id"]})
                    self.last_accepted_at = last_heard
                    self.accepted_via.append((last_heard, self.endpoint))
                    first = self.first_sent.pop(ext, None)
                    if first is not None:
                        self.latencies.append((last_heard, last_heard - first))
                elif t == "BUSY":
                    self.busy += 1
                    self.busy_at.append(last_heard)
                    ref += 1
                    self.outstanding[ref] = (ext, time.monotonic() + body.get("retry_ms", 0) / 1e3
                                             - self.retry_s)
                elif t == "REJECTED":
                    self.rejected.append((ext, body))
                    self.jsonl.write({"op": "rejected", "source": self.source,
                                      "external_id": ext, "code": body.get("code")})
                continue
            if len(self.endpoints) > 1 and time.monotonic() - last_heard > self.failover_s:
                # the broker stopped answering: the other one of the pair
                s.close()
                which = (which + 1) % len(self.endpoints)
                self.endpoint = self.endpoints[which]
                s = dealer(ctx, self.endpoint)
                self.failovers.append((time.monotonic(), self.endpoint))
                last_heard = time.monotonic()
                for r, (ext, _) in list(self.outstanding.items()):
                    self.outstanding[r] = (ext, 0.0)     # resend at once
            # resend what waited too long (the broker died with it, or BUSY)
            for r, (ext, sent) in list(self.outstanding.items()):
                if time.monotonic() - sent >= self.retry_s:
                    del self.outstanding[r]
                    ref += 1
                    self.outstanding[ref] = (ext, time.monotonic())
                    s.send_multipart(frames("SUBMIT", self.body(ref, ext)))
        s.close()
        self.jsonl.close()


class Worker(threading.Thread):
    """Signs everything delivered on `queue` (or a list of queues) and resolves
    one in `resolve_every` of them; the rest stay SIGNED (work that takes
    days), which is what must never be delivered again after a crash."""

    def __init__(self, endpoint, queue, credit=10, heartbeat_s=0.05, resolve_every=1,
                 log_path=None, name="chaos-worker", silence_s=1.0):
        super().__init__(daemon=True, name=f"worker-{queue}")
        self.endpoints = endpoint_list(endpoint)
        self.endpoint = self.endpoints[0]
        self.queues = endpoint_list(queue)
        self.queue = self.queues[0]
        self.credit = credit
        self.heartbeat_s = heartbeat_s
        self.resolve_every = resolve_every
        self.worker_name = name
        self.silence_s = silence_s
        self.stopping = threading.Event()
        self.resolved = set()
        self.hellos = 0
        self.welcomes = 0
        self.error = None
        self.log = checker.WorkerLog()
        self.jsonl = JsonLines(log_path)

    def stop(self):
        self.stopping.set()

    def run(self):
        try:
            self._run()
        except Exception as e:
            self.error = e
        finally:
            self.jsonl.close()

    def _run(self):
        ctx = zmq.Context.instance()
        s = None
        which = -1
        last_heard = 0.0
        last_sent = 0.0
        ref = 0
        signs = 0
        pending = {}              # ref -> "sign" | "resolve"
        while not self.stopping.is_set():
            now = time.monotonic()
            # the broker heartbeats every few 100 ms: a second of silence
            # means it died or restarted; HELLO again on a new socket, on the
            # next endpoint of the list
            if s is None or now - last_heard > self.silence_s:
                if s is not None:
                    s.close()
                which = (which + 1) % len(self.endpoints)
                self.endpoint = self.endpoints[which]
                s = dealer(ctx, self.endpoint)
                s.send_multipart(frames("HELLO", {"role": "worker", "name": self.worker_name,
                                                  "queues": self.queues,
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
            if t == "WELCOME":
                self.welcomes += 1
            elif t == "DELIVER":
                inc = body["incident"]
                rec = {"op": "deliver", "incident_id": inc["id"], "version": inc["version"],
                       "delivery_id": body["delivery_id"], "worker": self.worker_name}
                self.log.add(rec)
                self.jsonl.write(rec)
                ref += 1
                pending[ref] = "sign"
                s.send_multipart(frames("SIGN", {"ref": ref, "incident_id": inc["id"],
                                                 "delivery_id": body["delivery_id"]}))
            elif t == "OK":
                what = pending.pop(body.get("ref"), None)
                if what == "sign":
                    rec = {"op": "signed", "incident_id": body["incident_id"],
                           "version": body["version"], "worker": self.worker_name}
                    self.log.add(rec)
                    self.jsonl.write(rec)
                    signs += 1
                    if signs % self.resolve_every == 0:
                        ref += 1
                        pending[ref] = "resolve"
                        s.send_multipart(frames("RESOLVE", {"ref": ref,
                                                            "incident_id": body["incident_id"],
                                                            "version": body["version"],
                                                            "result": "done"}))
                elif what == "resolve":
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
