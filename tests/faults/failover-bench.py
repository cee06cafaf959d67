#!/usr/bin/python3
"""failover-bench.py - failover time of an active/standby broker pair, over many forced failovers.

  tests/pg/with-pg.sh tests/faults/failover-bench.py [--failovers 20] [--build DIR]
        [--client-failover-ms 300] [--signal kill|term|both]

Two gd-broker processes on one fresh database (migrations + demo
district), continuous intake and workers listing both endpoints (the same
Load as the fault suite). Each round forces the active broker down
(alternately kill -9 and SIGTERM with --signal both), and measures

  ready   the signal -> the standby logs `ready:` (lock freed, fence, load, bind)
  intake  the signal -> the first ACCEPTED answered by the standby to a
          client that had to find it (client failover after
          --client-failover-ms of silence, plus the retry)

then restarts the old active as the new standby and waits until it is
waiting on the lock. Prints every round, the distribution (min, median,
p90, max) and the checker's verdict over the whole run.
"""

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import gdclient  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def dist(name, xs):
    ms = [x * 1000 for x in xs]
    return (f"{name:7s} n={len(ms)}  min {min(ms):7.1f}  median {statistics.median(ms):7.1f}  "
            f"p90 {pct(ms, 90):7.1f}  max {max(ms):7.1f}  mean {statistics.mean(ms):7.1f} ms")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--failovers", type=int, default=20)
    ap.add_argument("--build", default=os.environ.get("GD_BUILD_DIR", "build/dev"))
    ap.add_argument("--client-failover-ms", type=int, default=300)
    ap.add_argument("--signal", choices=["kill", "term", "both"], default="both")
    a = ap.parse_args()
    os.environ["GD_BUILD_DIR"] = str(Path(a.build).resolve())
    import conftest
    import faultload
    import psycopg2

    base = os.environ.get("GD_DB_DSN")
    if not base:
        sys.exit("GD_DB_DSN is not set: run under tests/pg/with-pg.sh")
    dsn = faultload.create_database(base)
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("INSERT INTO category (code, name, sector, admitted_level) "
                    "VALUES ('T-FAST', '测试快速事项', 'safety', 'grid')")
        cur.execute("INSERT INTO category_sla (category, priority, basis, sign_limit_s, "
                    "resolve_limit_s, warn_percent, max_extension_s) "
                    "VALUES ('T-FAST', 'normal', 'wall', 1, 3, 50, 60)")
    hub = gdclient.Hub()
    opts = dict(conftest.BROKER_DEFAULTS, **{"heartbeat-ms": 100, "liveness": 5,
                                             "log-level": "info"})
    pair = [conftest.Broker(conftest.broker_binary(), dsn, hub, opts) for _ in range(2)]
    pair[0].start()
    faultload.launch(pair[1])
    faultload.wait_standby(dsn)
    work = Path(tempfile.mkdtemp(prefix="gd-failover-"))
    load = faultload.Load([b.intake_ep for b in pair], [b.work_ep for b in pair], work,
                          name="fo", rate=60.0)
    for s in load.submitters:
        s.failover_s = a.client_failover_ms / 1000
    load.start()
    rounds = []
    active, standby = pair
    try:
        for i in range(a.failovers):
            sig = {"kill": signal.SIGKILL, "term": signal.SIGTERM}.get(
                a.signal, signal.SIGKILL if i % 2 == 0 else signal.SIGTERM)
            load.wait_progress(n=10)
            t0 = time.monotonic()
            active.proc.send_signal(sig)
            ready = faultload.wait_ready(standby, timeout=30) - t0
            def through_standby():
                got = [at for s in load.submitters for at, ep in s.accepted_via[-200:]
                       if ep == standby.intake_ep and at > t0]
                return min(got) if got else None
            first = gdclient.wait_until(through_standby, 30, "ACCEPTED through the standby",
                                        interval=0.002) - t0
            rc = active.proc.wait(15)
            rounds.append((sig, ready, first))
            print(f"failover {i + 1:2d} {signal.Signals(sig).name:7s} ready {ready * 1000:7.1f} ms"
                  f"  first ACCEPTED {first * 1000:7.1f} ms  (old active exit {rc})", flush=True)
            faultload.launch(active)
            faultload.wait_standby(dsn)
            active, standby = standby, active
        load.wait_progress(n=10)
        load.stop()
        verdict = load.check(conn, f"failover bench, {a.failovers} failovers")
    finally:
        for s in load.submitters + load.workers:
            s.stopping.set()
        for g in load.gd_workers:
            g.kill()
        load.kill_sla()
        for b in pair:
            if b.alive():
                b.proc.kill()
                b.proc.wait()
        hub.close()
        conn.close()
    print()
    for name, sig in (("kill -9", signal.SIGKILL), ("SIGTERM", signal.SIGTERM), ("all", None)):
        sel = [r for r in rounds if sig is None or r[0] == sig]
        if sel:
            print(f"{name}:")
            print("  " + dist("ready", [r[1] for r in sel]))
            print("  " + dist("intake", [r[2] for r in sel]))
    return 0 if verdict.valid else 1


if __name__ == "__main__":
    sys.exit(main())
