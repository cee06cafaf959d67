#!/usr/bin/python3
"""py_worker.py - a minimal GDP/1 worker in Python, written from proto/PROTOCOL.md alone.

It opens a worker session (HELLO), heartbeats, SIGNs every DELIVER and
RESOLVEs it with a fixed result, and reconnects with HELLO when the broker
says BYE, answers `no_session`, or stays silent for liveness x heartbeat.
Only python3-zmq and python3-msgpack are needed.

    py_worker.py --endpoint tcp://broker:5571 --queue 500113001001001 [--credit 2]

A real worker would do its work between SIGN and RESOLVE; delivery is at
least once, so that work must be idempotent by incident id and version.
"""

import argparse
import itertools
import random
import signal
import sys
import time

import msgpack
import zmq

SIG = b"GDP1"
T = {"HELLO": 32, "SIGN": 34, "RESOLVE": 38, "WELCOME": 48, "DENIED": 49, "DELIVER": 50,
     "OK": 51, "ERR": 52, "HEARTBEAT": 64, "BYE": 65}
NAME = {v: k for k, v in T.items()}


def log(*args):
    print("py_worker:", *args, file=sys.stderr, flush=True)


class Session:
    def __init__(self, ctx, endpoint, args):
        self.args = args
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.refs = itertools.count(1)
        self.pending = {}          # ref -> (what, incident id)
        self.heartbeat = 1.0       # until WELCOME says otherwise
        self.liveness = 3
        self.last_recv = self.last_send = time.monotonic()
        self.open = False

    def send(self, type_name, body):
        self.sock.send_multipart([SIG + bytes([T[type_name]]), msgpack.packb(body)])
        self.last_send = time.monotonic()

    def command(self, type_name, what, **body):
        ref = next(self.refs)
        self.pending[ref] = (what, body["incident_id"])
        self.send(type_name, dict(body, ref=ref))

    def close(self, reason=None):
        if reason and self.open:
            self.send("BYE", {"reason": reason})
        self.sock.close(linger=200 if reason else 0)


def run_session(ctx, endpoint, args, stop):
    """Runs one session until it is lost; returns True if it ever opened."""
    s = Session(ctx, endpoint, args)
    s.send("HELLO", {"role": "worker", "name": args.name, "credit": args.credit,
                     "queues": args.queue})
    started = time.monotonic()
    try:
        while not stop["now"]:
            if s.sock.poll(int(s.heartbeat * 250)):
                header, body = s.sock.recv_multipart()[-2:]
                s.last_recv = time.monotonic()
                if header[:4] != SIG:
                    continue
                kind, msg = NAME.get(header[4]), msgpack.unpackb(body, raw=False)
                if kind == "WELCOME":
                    s.open = True
                    s.heartbeat = msg["heartbeat_ms"] / 1000.0
                    s.liveness = msg["liveness"]
                    log(f"session {msg['session']} open on {endpoint}")
                elif kind == "DENIED":
                    log(f"HELLO denied: {msg['code']}: {msg['message']}")
                    return False
                elif kind == "DELIVER":
                    inc = msg["incident"]
                    log(f"delivered incident={inc['id']} version={inc['version']}")
                    s.command("SIGN", "sign", incident_id=inc["id"],
                              delivery_id=msg["delivery_id"])
                elif kind == "OK":
                    what, iid = s.pending.pop(msg.get("ref", 0), ("?", 0))
                    log(f"{what} incident={iid} ok version={msg['version']}")
                    if what == "sign":
                        s.command("RESOLVE", "resolve", incident_id=iid,
                                  version=msg["version"], result=args.result)
                elif kind == "ERR":
                    what, iid = s.pending.pop(msg.get("ref", 0), ("?", 0))
                    log(f"{what} incident={iid} ERR {msg['code']}: {msg['message']}")
                    if msg["code"] == "no_session":
                        return s.open
                elif kind == "BYE":
                    log("the broker said BYE")
                    return s.open
            now = time.monotonic()
            if not s.open and now - started > 3.0:
                log("no WELCOME in time")
                return False
            if s.open and now - s.last_recv > s.heartbeat * s.liveness:
                log("the broker is silent: reconnecting")
                return True
            if now - s.last_send >= s.heartbeat:
                s.send("HEARTBEAT", {})
        return s.open
    finally:
        s.close("shutdown" if stop["now"] else None)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--endpoint", action="append", required=True, help="tried in order")
    p.add_argument("--queue", action="append", required=True)
    p.add_argument("--credit", type=int, default=1)
    p.add_argument("--name", default="py-worker")
    p.add_argument("--result", default="handled by py_worker")
    args = p.parse_args()
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    ctx = zmq.Context()
    backoff = 0.1
    for endpoint in itertools.cycle(args.endpoint):
        if stop["now"]:
            break
        if run_session(ctx, endpoint, args, stop):
            backoff = 0.1
        if not stop["now"]:
            time.sleep(backoff * (1 + random.random() / 4))
            backoff = min(backoff * 2, 10.0)
    ctx.term()


if __name__ == "__main__":
    main()
