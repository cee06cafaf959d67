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

Transitions arrive in batches, one per town and short window, on
inc.<town>, and each period's gauges in one batch per town on
queue.<town>; a transition names its own inc.<town>.<community>.<grid>
topic, a gauge its queue (topic queue.<queue>), so a --topic below town
level subscribes to the town and keeps the items under it. A body may be
zstd-compressed (it then starts with the zstd magic number); its declared
size is checked before it is decompressed.

The broker publishes `broker` every gauge period (1 s by default), so it
is subscribed to whatever --topic asks for (and shown only if asked). A
ZeroMQ SUB resends its subscriptions only when it sees its connection
break; a broker that hangs, or a failover that moves the address to
another host, leaves it on a connection nothing comes through. So when no
`broker` message has come for --silence seconds (default 3), both sockets
are closed and made anew, and SNAPSHOT is sent again; SNAPSHOT is also
sent again whenever `broker.started_at` changes (the broker restarted).

Needs python3-zmq, python3-msgpack and python3-zstandard.
"""

import argparse
import json
import sys
import time
from collections import Counter

import msgpack
import zmq
import zstandard

SNAPSHOT, GAUGES, REJECTED, BUSY = 4, 20, 17, 18
MAX_BODY = 65536
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def plain_body(data):
    """The msgpack bytes of a status body (§12.1): a zstd frame is
    decompressed, if it declares a size of at most MAX_BODY."""
    if data[:4] != ZSTD_MAGIC:
        return data
    size = zstandard.frame_content_size(data)
    if not 0 <= size <= MAX_BODY:
        raise ValueError(f"compressed body declares {size} bytes")
    return zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_BODY)


def subscription(prefix):
    """The topic that carries `prefix`: an inc. or queue. prefix below town
    level is cut to the town (9 characters of code), where the batches
    travel."""
    for root in ("inc.", "queue."):
        if prefix.startswith(root):
            return prefix[:len(root) + 9]
    return prefix


def connect(ctx, args, prefixes):
    """A SUB on the status endpoint, subscribed to what the prefixes need and
    to `broker`, and a DEALER on the intake endpoint (None without one)."""
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.LINGER, 0)
    sub.setsockopt(zmq.MAXMSGSIZE, MAX_BODY)
    for t in prefixes + ["broker"]:
        sub.setsockopt(zmq.SUBSCRIBE, subscription(t).encode())
    sub.connect(args.status)
    req = None
    if args.intake:
        req = ctx.socket(zmq.DEALER)
        req.setsockopt(zmq.LINGER, 0)
        req.connect(args.intake)
    return sub, req


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--status", required=True, help="status endpoint (broker XPUB)")
    ap.add_argument("--intake", help="intake endpoint, for SNAPSHOT")
    ap.add_argument("--topic", action="append", default=[],
                    help="topic prefix to subscribe to (repeatable; default: everything)")
    ap.add_argument("--seconds", type=float, default=0, help="stop after this long (0: never)")
    ap.add_argument("--silence", type=float, default=3.0,
                    help="no broker message for this long (s): subscribe anew")
    ap.add_argument("--json", action="store_true", help="one JSON summary at the end")
    args = ap.parse_args()

    ctx = zmq.Context.instance()
    prefixes = args.topic or [""]
    # Subscribe first, then SNAPSHOT: nothing published in between is lost.
    sub, req = connect(ctx, args, prefixes)
    ref = 0

    def snapshot():
        nonlocal ref
        ref += 1
        if req is not None:
            req.send_multipart([b"GDP1" + bytes([SNAPSHOT]), msgpack.packb({"ref": ref})])
    snapshot()

    gauges = {}          # queue -> latest gauge (absolute values: applying twice is harmless)
    events = Counter()
    sla = Counter()
    alarms = Counter()
    broker = {}
    snapshot_parts = 0
    broker_messages = 0
    decode_errors = 0
    resubscribes = 0
    heard = time.monotonic()     # the last broker message, or the last new SUB
    end = time.monotonic() + args.seconds if args.seconds else None
    while end is None or time.monotonic() < end:
        if time.monotonic() - heard > args.silence:
            sub.close()
            if req is not None:
                req.close()
            sub, req = connect(ctx, args, prefixes)
            snapshot()
            resubscribes += 1
            heard = time.monotonic()
            if not args.json:
                print(f"no broker message for {args.silence:g} s: subscribed anew", flush=True)
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        if req is not None:
            poller.register(req, zmq.POLLIN)
        ready = dict(poller.poll(100))
        if req is not None and ready.get(req):
            header, body = req.recv_multipart()
            reply = msgpack.unpackb(body, raw=False)
            if header[4] == GAUGES and reply.get("ref") == ref:
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
            body = msgpack.unpackb(plain_body(frames[1]), raw=False)
            kind = body["kind"]
        except (ValueError, KeyError, TypeError, msgpack.UnpackException, zstandard.ZstdError):
            decode_errors += 1
            continue
        if kind == "transitions":
            for t in body["items"]:
                if not any(t["topic"].startswith(p) for p in prefixes):
                    continue
                events[t["event"]] += 1
                if not args.json:
                    print(f"{t['topic']:<40} #{t['incident_id']} v{t['version']} {t['event']} "
                          f"{t['from']}->{t['to']} queue {t.get('queue', '')}", flush=True)
            continue
        if kind == "gauges":
            for g in body["items"]:
                if not any(f"queue.{g['queue']}".startswith(p) for p in prefixes):
                    continue
                gauges[g["queue"]] = g
                if not args.json:
                    print(f"{'queue.' + g['queue']:<40} depth {g.get('depth', 0)} "
                          f"in_flight {g.get('in_flight', 0)} overdue {g.get('overdue', 0)} "
                          f"oldest {g.get('oldest_age_ms', 0)} ms", flush=True)
            continue
        if kind == "broker":
            heard = time.monotonic()
            if broker and body.get("started_at") != broker.get("started_at"):
                snapshot()    # a restarted broker: its queues are new
            broker = body
            if not any(topic.startswith(p) for p in prefixes):
                continue      # subscribed to only to know the broker is there
            broker_messages += 1
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
            "resubscribes": resubscribes,
            "open_incidents": broker.get("open_incidents"),
            "counters": broker.get("counters", {}),
        }, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
