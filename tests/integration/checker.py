#!/usr/bin/python3
"""checker.py - after-the-fact verdict on a griddispatch run: lost, duplicated, unexpected, inconsistent.

Modelled on the checkers of Jepsen's analyses of RabbitMQ, Kafka and NATS
(total-queue: every acknowledged write is read exactly once; nothing is read
that was never written): the clients record what the broker *told* them,
the database records what the broker *did*, and the checker compares both
once the run is over. It looks for:

  lost          an incident answered ACCEPTED that is not stored, or stored
                under another id than the client was told
  duplicated    one (source, external_id) answered with two different ids,
                or stored twice
  unexpected    an incident stored that no client ever submitted (phantom)
  recovered     submitted, never answered ACCEPTED (the broker died first),
                but stored: allowed (at-least-once intake), only counted
  bad-history   an event history that is not a path of the lifecycle
                (PROTOCOL.md §10): starts with `receive`, each event's
                `from` is the previous `to`, each kind only from the states
                it is defined for and to the state it leads to, versions
                1..n without gaps, nothing after CLOSED
  bad-projection the incident row (state, version) is not its last event, or
                it is open and resolved at once (state open while the log
                ends RESOLVED/CLOSED, or the other way round)
  missed-escalation an open, unflagged incident whose sign or resolve
                deadline passed more than `grace` ago, although SLA workers
                were running for longer than that
  redelivered-after-sign a worker was told OK for a SIGN of version v and
                later got a DELIVER of that incident with no event in
                between that hands it back (escalate, return, reopen)

Logs are JSON lines, one object per line, with an `op`:
  client:  {"op":"submit","source":S,"external_id":E}
           {"op":"accepted","source":S,"external_id":E,"incident_id":N}
           {"op":"rejected","source":S,"external_id":E,"code":C}
  worker:  {"op":"deliver","incident_id":N,"version":V,"delivery_id":D,"worker":W}
           {"op":"signed","incident_id":N,"version":V,"worker":W}
gd-worker's own log lines ("delivered incident=N version=V delivery=D ...",
"redelivered incident=...", "signed incident=N version=V ...") are read too.

As a program:
  checker.py --dsn DSN --source chaos [--client LOG]... [--worker LOG]...
             [--gd-worker-log LOG]... [--sla-grace-ms 5000] [--no-sla]
prints the verdict and exits 0 when valid, 1 when not, 2 on usage errors.
"""

import argparse
import json
import re
import sys
from collections import defaultdict

OPEN = {"RECEIVED", "QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"}
LIVE = OPEN - {"RECEIVED"}
SAME = object()     # the event leaves the state as it was

# event kind -> (states it may start from, state it leads to); PROTOCOL.md §10
LIFECYCLE = {
    "receive": ({"RECEIVED"}, "QUEUED"),
    "deliver": ({"QUEUED"}, "DELIVERED"),
    "requeue": ({"DELIVERED"}, "QUEUED"),
    "sign": ({"DELIVERED"}, "SIGNED"),
    "progress": ({"SIGNED", "IN_PROGRESS"}, "IN_PROGRESS"),
    "extend": ({"SIGNED", "IN_PROGRESS"}, SAME),
    "extend_request": ({"SIGNED", "IN_PROGRESS"}, SAME),
    "extend_deny": ({"SIGNED", "IN_PROGRESS"}, SAME),
    "return": ({"DELIVERED", "SIGNED"}, "QUEUED"),
    "resolve": ({"QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS"}, "RESOLVED"),
    "reopen": ({"RESOLVED"}, "QUEUED"),
    "close": ({"RESOLVED"}, "CLOSED"),
    "escalate": (LIVE, "QUEUED"),
    "flag": (LIVE, SAME),
    "dispatch": ({"QUEUED"}, "QUEUED"),
    "warn": (LIVE, SAME),
}
# events after which a signed incident may legitimately be delivered again
HANDED_BACK = {"escalate", "return", "reopen"}

GD_WORKER_LINE = re.compile(
    r"\b(?P<op>delivered|redelivered|signed) incident=(?P<id>\d+) version=(?P<v>\d+)"
    r"(?: delivery=(?P<d>\d+))?")


class ClientLog:
    """What intake clients were told: submitted keys, ACCEPTED ids, conflicts."""

    def __init__(self):
        self.submitted = set()          # (source, external_id)
        self.accepted = {}              # (source, external_id) -> incident id
        self.conflicts = []             # (key, id, other id)
        self.rejected = []

    def submit(self, source, external_id):
        self.submitted.add((source, external_id))

    def accept(self, source, external_id, incident_id):
        key = (source, external_id)
        old = self.accepted.setdefault(key, incident_id)
        if old != incident_id:
            self.conflicts.append((key, old, incident_id))

    def add(self, rec):
        op = rec.get("op")
        if op == "submit":
            self.submit(rec["source"], rec["external_id"])
        elif op == "accepted":
            self.accept(rec["source"], rec["external_id"], int(rec["incident_id"]))
        elif op == "rejected":
            self.rejected.append(rec)


class WorkerLog:
    """What workers were handed and what they were told they had signed."""

    def __init__(self):
        self.delivers = []              # (incident id, version, delivery id, worker)
        self.signed = []                # (incident id, version after SIGN, worker)

    def add(self, rec):
        op = rec.get("op")
        if op == "deliver":
            self.delivers.append((int(rec["incident_id"]), int(rec["version"]),
                                  int(rec.get("delivery_id") or 0), rec.get("worker", "")))
        elif op == "signed":
            self.signed.append((int(rec["incident_id"]), int(rec["version"]),
                                rec.get("worker", "")))

    def add_gd_worker_line(self, line, worker=""):
        m = GD_WORKER_LINE.search(line)
        if not m or "(already signed)" in line:
            return
        iid, v = int(m["id"]), int(m["v"])
        if m["op"] == "signed":
            self.signed.append((iid, v, worker))
        else:
            self.delivers.append((iid, v, int(m["d"] or 0), worker))


def read_json_lines(path, into):
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line:
                into.add(json.loads(line))


class Verdict:
    """The checker's findings: counts, a few examples of each anomaly, valid or not."""

    ANOMALIES = ("lost", "duplicated", "unexpected", "bad-history", "bad-projection",
                 "missed-escalation", "redelivered-after-sign")
    EXAMPLES = 5

    def __init__(self):
        self.found = {k: [] for k in self.ANOMALIES}
        self.counts = {}

    def add(self, anomaly, example):
        self.found[anomaly].append(example)

    @property
    def valid(self):
        return not any(self.found.values())

    def line(self, name="run"):
        c = self.counts
        parts = [f"{k}={len(v)}" for k, v in self.found.items()]
        return (f"checker [{name}]: {'VALID' if self.valid else 'INVALID'}  "
                f"accepted={c.get('accepted', 0)} stored={c.get('stored', 0)} "
                f"recovered={c.get('recovered', 0)} events={c.get('events', 0)} "
                f"signed={c.get('signed', 0)} escalated={c.get('escalated', 0)} "
                f"flagged={c.get('flagged', 0)}  " + " ".join(parts))

    def report(self, name="run"):
        out = [self.line(name)]
        for k, v in self.found.items():
            for ex in v[:self.EXAMPLES]:
                out.append(f"  {k}: {ex}")
            if len(v) > self.EXAMPLES:
                out.append(f"  {k}: ... {len(v) - self.EXAMPLES} more")
        return "\n".join(out)


def _history_problem(evs):
    """Why this ordered event list is not a lifecycle path, or None."""
    versions = [e["version"] for e in evs]
    if versions != list(range(1, len(evs) + 1)):
        return f"versions not gap-free: {versions[:20]}"
    if evs[0]["kind"] != "receive":
        return f"starts with {evs[0]['kind']}"
    state = "RECEIVED"
    for e in evs:
        rule = LIFECYCLE.get(e["kind"])
        if rule is None:
            return f"v{e['version']}: unknown event kind {e['kind']!r}"
        if e["from_state"] not in (state, None if e["kind"] == "receive" else state):
            return f"v{e['version']} {e['kind']}: from {e['from_state']} but state was {state}"
        if state not in rule[0]:
            return f"v{e['version']} {e['kind']} not allowed from {state}"
        want = state if rule[1] is SAME else rule[1]
        if e["to_state"] != want:
            return f"v{e['version']} {e['kind']}: {state} -> {e['to_state']}, expected {want}"
        state = e["to_state"]
    return None


def check(conn, clients, workers=None, sources=("chaos",), sla_grace_ms=None, name="run"):
    """Checks the database behind `conn` against the logs; returns a Verdict.

    clients: ClientLog (or a list of them); workers: WorkerLog or list or
    None. Only incidents of `sources` are examined (other tests' or the
    demo's data are left alone). sla_grace_ms: None skips the escalation
    check (no SLA worker ran); else an open incident overdue by more than
    that must have been escalated or flagged. Reads one REPEATABLE READ
    snapshot, so the broker may still be running."""
    clients = clients if isinstance(clients, (list, tuple)) else [clients]
    workers = [] if workers is None else workers if isinstance(workers, (list, tuple)) \
        else [workers]
    if not conn.autocommit:
        conn.rollback()
    old_autocommit = conn.autocommit
    conn.autocommit = False
    conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
    try:
        with conn.cursor() as cur:
            return _check(cur, clients, workers, list(sources), sla_grace_ms)
    finally:
        conn.rollback()
        conn.set_session(isolation_level="DEFAULT", readonly=False)
        conn.autocommit = old_autocommit


def _check(cur, clients, workers, sources, sla_grace_ms):
    v = Verdict()
    submitted, told = set(), {}
    for c in clients:
        submitted |= c.submitted
        for key, a, b in c.conflicts:
            v.add("duplicated", f"{key} answered with ids {a} and {b}")
        for key, iid in c.accepted.items():
            other = told.setdefault(key, iid)
            if other != iid:
                v.add("duplicated", f"{key} answered with ids {other} and {iid}")

    cur.execute("SELECT id, source, external_id, state, version, flagged, escalations, "
                "gd_ms(sign_due), gd_ms(resolve_due), gd_ms(now()) "
                "FROM incident WHERE source = ANY(%s)", (sources,))
    rows = cur.fetchall()
    now_ms = rows[0][9] if rows else None
    stored = defaultdict(list)
    by_id = {}
    for r in rows:
        stored[(r[1], r[2])].append(r)
        by_id[r[0]] = r
    for key, rs in stored.items():
        if len(rs) > 1:
            v.add("duplicated", f"{key} stored {len(rs)} times: ids {[r[0] for r in rs]}")
    for key, iid in told.items():
        rs = stored.get(key)
        if not rs:
            v.add("lost", f"{key} ACCEPTED as {iid} but not stored")
        elif all(r[0] != iid for r in rs):
            v.add("lost", f"{key} ACCEPTED as {iid} but stored as {[r[0] for r in rs]}")
    recovered = 0
    for key in stored:
        if key not in submitted:
            v.add("unexpected", f"{key} stored (id {stored[key][0][0]}) but never submitted")
        elif key not in told:
            recovered += 1

    cur.execute("SELECT e.incident_id, e.version, e.kind, e.from_state, e.to_state "
                "FROM incident_event e JOIN incident i ON i.id = e.incident_id "
                "WHERE i.source = ANY(%s) ORDER BY e.incident_id, e.version", (sources,))
    history = defaultdict(list)
    n_events = 0
    for iid, ver, kind, frm, to in cur:
        history[iid].append({"version": ver, "kind": kind, "from_state": frm, "to_state": to})
        n_events += 1
    escalated = flagged = 0
    for iid, r in by_id.items():
        evs = history.get(iid)
        if not evs:
            v.add("bad-history", f"incident {iid} has no events")
            continue
        why = _history_problem(evs)
        if why:
            v.add("bad-history", f"incident {iid}: {why}")
        last = evs[-1]
        if (r[3], r[4]) != (last["to_state"], last["version"]):
            v.add("bad-projection", f"incident {iid}: row {r[3]} v{r[4]} but last event "
                                    f"{last['kind']} -> {last['to_state']} v{last['version']}")
        if (r[3] in OPEN) != (last["to_state"] in OPEN):
            v.add("bad-projection", f"incident {iid}: open and resolved at once "
                                    f"(row {r[3]}, log ends {last['to_state']})")
        kinds = {e["kind"] for e in evs}
        escalated += "escalate" in kinds
        flagged += bool(r[5])
        if r[5] and "flag" not in kinds:
            v.add("bad-projection", f"incident {iid}: flagged but no flag event")
        if sla_grace_ms is not None and r[3] in OPEN and not r[5]:
            late = []
            if r[3] in ("QUEUED", "DELIVERED") and r[7] and r[7] < now_ms - sla_grace_ms:
                late.append(f"sign due {now_ms - r[7]} ms ago")
            if r[8] and r[8] < now_ms - sla_grace_ms:
                late.append(f"resolve due {now_ms - r[8]} ms ago")
            if late:
                v.add("missed-escalation", f"incident {iid} {r[3]} v{r[4]}: "
                                           f"{', '.join(late)} and not escalated")

    n_signed = sum(len(w.signed) for w in workers)
    all_signed = defaultdict(set)
    for w in workers:
        for iid, ver, _ in w.signed:
            all_signed[iid].add(ver)
    for w in workers:
        for iid, dver, did, who in w.delivers:
            for sver in all_signed.get(iid, ()):
                if dver <= sver:
                    continue
                between = [e["kind"] for e in history.get(iid, []) if sver < e["version"] <= dver]
                if not HANDED_BACK & set(between):
                    v.add("redelivered-after-sign",
                          f"incident {iid}: signed at v{sver}, delivered again at v{dver} "
                          f"(delivery {did} to {who or '?'}) with only {between} in between")
    v.counts = {"accepted": len(told), "stored": len(rows), "recovered": recovered,
                "events": n_events, "signed": n_signed, "escalated": escalated,
                "flagged": flagged, "submitted": len(submitted)}
    return v


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", required=True, help="PostgreSQL conninfo of the broker's database")
    ap.add_argument("--source", action="append", help="incident source(s) to examine [chaos]")
    ap.add_argument("--client", action="append", default=[], help="client JSON-lines log")
    ap.add_argument("--worker", action="append", default=[], help="worker JSON-lines log")
    ap.add_argument("--gd-worker-log", action="append", default=[], help="gd-worker log file")
    ap.add_argument("--sla-grace-ms", type=int, default=5000,
                    help="overdue by more than this and not escalated is an anomaly [5000]")
    ap.add_argument("--no-sla", action="store_true", help="no SLA worker ran: skip that check")
    ap.add_argument("--name", default="run", help="scenario name for the verdict line")
    a = ap.parse_args(argv)
    import psycopg2
    clients, workers = ClientLog(), WorkerLog()
    for p in a.client:
        read_json_lines(p, clients)
    for p in a.worker:
        read_json_lines(p, workers)
    for p in a.gd_worker_log:
        with open(p, encoding="utf-8", errors="replace") as f:
            for line in f:
                workers.add_gd_worker_line(line, p)
    conn = psycopg2.connect(a.dsn)
    try:
        verdict = check(conn, clients, workers, sources=a.source or ["chaos"],
                        sla_grace_ms=None if a.no_sla else a.sla_grace_ms)
    finally:
        conn.close()
    print(verdict.report(a.name))
    return 0 if verdict.valid else 1


if __name__ == "__main__":
    sys.exit(main())
