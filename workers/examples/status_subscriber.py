#!/usr/bin/python3
"""status_subscriber.py - a status-endpoint client written from proto/PROTOCOL.md §12 alone.

Subscribes to the broker's status endpoint (SUB; frames [topic][msgpack
map]), then asks for the current queue gauges with SNAPSHOT on the intake
endpoint (DEALER; frames ["GDP1" + type byte][msgpack map]), the ZeroMQ
"clone" pattern for late joiners. Prints one line per message; with --json
prints nothing per message but one JSON summary at the end (counts per
transition event, alarms, SLA warnings/breaches, the last broker figures).

    status_subscriber.py --status tcp://127.0.0.1:5557 --intake tcp://127.0.0.1:5555 \\
        [--topic inc.500113002] [--seconds 10] [--json]

Needs python3-zmq and python3-msgpack.
"""

import argparse
import json
import sys
import time
from collections import Counter

import msgpack
import zmq

SNAPSHOT, GAUGES, REJECTED, BUSY = 4, 20, 17, 18
MAX_BODY = 65536


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--status", required=True, help="status endpoint (broker XPUB)")
    ap.add_argument("--intake", help="intake endpoint, for SNAPSHOT")
    ap.add_argument("--topic", action="append", default=[],
                    help="topic prefix to subscribe to (repeatable; default: everything)")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    ap.add_argument("--json", action="store_true", help="one JSON summary at the end")
    args = ap.parse_args()

    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, MAX_BODY)
    for t in args.topic or [""]:
        sub.setsockopt(zmq.SUBSCRIBE, t.encode())
    sub.connect(args.status)

    # Subscribe first, then SNAPSHOT: nothing published in between is lost.
    req = None
    if args.intake:
        req = ctx.socket(zmq.DEALER)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(args.intake)
        req.send_multipart([b"GDP1" + bytes([SNAPSHOT]), msgpack.packb({"ref": 1})])

    gauges = {}          # queue -> latest gauge (absolute values: applying twice is harmless)
    events = Counter()
    sla = Counter()
    alarms = Counter()
    broker = {}
    snapshot_parts = 0
    broker_messages = 0
    decode_errors = 0
    poller = zmq.Poller()
    poller.register(sub, zmq.POLLIN)
    if req is not None:
        poller.register(req, zmq.POLLIN)
    end = time.monotonic() + args.seconds if args.seconds else None
    while end is None or time.monotonic() < end:
        ready = dict(poller.poll(100))
        if req is not None and ready.get(req):
            header, body = req.recv_multipart()
            reply = msgpack.unpackb(body, raw=False)
            if header[4] == GAUGES and reply.get("ref") == 1:
                snapshot_parts += 1
                for g in reply.get("gauges", []):
                    gauges[g["queue"]] = g
                if not args.json:
                    print(f"SNAPSHOT part {snapshot_parts}: {len(reply.get('gauges', []))} queues"
                          f"{' (more follow)' if reply.get('truncated') else ''}")
        if not ready.get(sub):
            continue
        frames = sub.recv_multipart()
        if len(frames) != 2:
            decode_errors += 1
            continue
        topic = frames[0].decode("ascii", "replace")
        try:
            body = msgpack.unpackb(frames[1], raw=False)
            kind = body["kind"]
        except (ValueError, KeyError, TypeError, msgpack.UnpackException):
            decode_errors += 1
            continue
        if kind == "transition":
            events[body["event"]] += 1
            line = (f"#{body['incident_id']} v{body['version']} {body['event']} "
                    f"{body['from']}->{body['to']} queue {body.get('queue', '')}")
        elif kind == "gauge":
            gauges[body["queue"]] = body
            line = (f"depth {body.get('depth', 0)} in_flight {body.get('in_flight', 0)} "
                    f"overdue {body.get('overdue', 0)} oldest {body.get('oldest_age_ms', 0)} ms")
        elif kind == "broker":
            broker_messages += 1
            broker = body
            line = (f"db {'up' if body['db_up'] else 'DOWN'} open {body.get('open_incidents', 0)} "
                    f"sessions {body.get('sessions', 0)}")
        elif kind == "sla":
            sla["breach" if body["breach"] else "warn"] += 1
            line = f"{'BREACH' if body['breach'] else 'warning'} {body['deadline']} #{body['incident_id']}"
        elif kind == "alarm":
            alarms[body["alarm"]] += 1
            line = f"ALARM {body['alarm']} [{body['severity']}] {body.get('message', '')}"
        else:
            line = f"(unknown kind {kind})"
        if not args.json:
            print(f"{topic:<40} {line}", flush=True)

    if args.json:
        print(json.dumps({
            "transitions": dict(events), "sla": dict(sla), "alarms": dict(alarms),
            "broker_messages": broker_messages, "snapshot_parts": snapshot_parts,
            "snapshot_queues": len(gauges), "decode_errors": decode_errors,
            "open_incidents": broker.get("open_incidents"),
            "counters": broker.get("counters", {}),
        }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
