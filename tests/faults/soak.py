#!/usr/bin/python3
"""soak.py - a bounded soak run at city load with bursts: memory, fds and latency must stay flat.

  tests/pg/with-pg.sh tests/faults/soak.py [--minutes 30] [--build DIR] [--out DIR]
        [--base-rate 20] [--burst-rate 300] [--burst-every-s 60] [--burst-len-s 5]

One gd-broker on a fresh database (migrations + demo district). Load: a
hotline-like intake of --base-rate incidents/s on a grid served by two
Python workers, with a burst of --burst-rate/s for --burst-len-s every
--burst-every-s (a flood, an outage); a steady trickle on a grid served by
gd-worker processes; 8/s of a seconds-long SLA category nobody serves, which
gd-sla escalates up to a flag; every resolved incident gets its resident's
feedback (satisfied: CLOSED), as the 12345 call-back does, so the open set
stays bounded as it does in a city.

Every 5 s: the broker's RSS (/proc/PID/status VmRSS) and open fds
(/proc/PID/fd); per minute: ACCEPTED, SUBMIT->ACCEPTED latency p50/p99/max
(as the client saw it), open incidents. At the end: report.md and plot.svg
in --out, the checker's verdict, and the flatness checks (RSS after the
first minute grows by less than 10% + 16 MB; fds by at most 8). Exits 0
when the checker is valid and both hold.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import zmq  # noqa: E402

import chaos  # noqa: E402


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))] if xs else 0.0


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Feedback(threading.Thread):
    """Sends FEEDBACK satisfied=true for every incident the workers resolved."""

    def __init__(self, endpoint, workers):
        super().__init__(daemon=True, name="feedback")
        self.endpoint = endpoint
        self.workers = workers
        self.stopping = threading.Event()
        self.done = set()
        self.closed = 0
        self.error = None

    def run(self):
        try:
            s = chaos.dealer(zmq.Context.instance(), self.endpoint)
            ref = 0
            inflight = {}
            while not self.stopping.is_set():
                awaiting_feedback = set().union(*(w.resolved for w in self.workers)) - self.done
                for iid in list(awaiting_feedback)[:200]:
                    if len(inflight) >= 50:
                        break
                    ref += 1
                    inflight[ref] = (iid, time.monotonic())
                    self.done.add(iid)
                    s.send_multipart(chaos.frames("FEEDBACK", {"ref": ref, "incident_id": iid,
                                                               "satisfied": True}))
                while s.poll(20):
                    t, body = chaos.parse(s.recv_multipart())
                    if inflight.pop(body.get("ref"), None) and t == "DONE":
                        self.closed += 1
                for r, (iid, at) in list(inflight.items()):
                    if time.monotonic() - at > 5:      # lost: try again later
                        del inflight[r]
                        self.done.discard(iid)
            s.close()
        except Exception as e:
            self.error = e


def svg_plot(minutes, series, path):
    """Small line charts, one panel per (title, values) in `series`."""
    w, h, pad = 640, 160, 40
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h * len(series)}" '
           f'font-family="sans-serif" font-size="11">']
    for k, (title, ys) in enumerate(series):
        top = k * h
        lo, hi = 0.0, max(ys) * 1.1 or 1.0
        n = max(1, len(ys) - 1)
        pts = " ".join(f"{pad + i * (w - 2 * pad) / n:.1f},"
                       f"{top + h - pad / 2 - (y - lo) / (hi - lo) * (h - pad * 1.5):.1f}"
                       for i, y in enumerate(ys))
        out.append(f'<text x="{pad}" y="{top + 14}">{title} (max {max(ys):.1f})</text>')
        out.append(f'<line x1="{pad}" y1="{top + h - pad / 2}" x2="{w - pad}" '
                   f'y2="{top + h - pad / 2}" stroke="#888"/>')
        out.append(f'<text x="{w - pad}" y="{top + h - 6}" text-anchor="end">minute '
                   f'{minutes[-1] if minutes else 0}</text>')
        out.append(f'<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{pts}"/>')
    out.append("</svg>")
    Path(path).write_text("\n".join(out))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--build", default=os.environ.get("GD_BUILD_DIR", "build/dev"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--base-rate", type=float, default=20.0)
    ap.add_argument("--burst-rate", type=float, default=300.0)
    ap.add_argument("--burst-every-s", type=float, default=60.0)
    ap.add_argument("--burst-len-s", type=float, default=5.0)
    a = ap.parse_args()
    if a.minutes < 2:
        sys.exit("--minutes: at least 2")
    os.environ["GD_BUILD_DIR"] = str(Path(a.build).resolve())
    import conftest
    import faultload
    import gdclient
    import psycopg2

    base = os.environ.get("GD_DB_DSN")
    if not base:
        sys.exit("GD_DB_DSN is not set: run under tests/pg/with-pg.sh")
    out = Path(a.out or tempfile.mkdtemp(prefix="gd-soak-"))
    out.mkdir(parents=True, exist_ok=True)
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
    broker = conftest.Broker(conftest.broker_binary(), dsn, hub,
                             {"log-level": "info", "flush-ms": 2})
    broker.start()
    pid = broker.proc.pid
    t_start = time.monotonic()

    def hotline(now):
        in_cycle = (now - t_start) % a.burst_every_s
        return a.burst_rate if in_cycle >= a.burst_every_s - a.burst_len_s else a.base_rate

    load = faultload.Load([broker.intake_ep], [broker.work_ep], out / "load", name="soak",
                          rate=a.base_rate, sla_rate=8.0, chaos_workers=2)
    main_sub = load.submitters[0]
    main_sub.rate = hotline
    main_sub.window = 100
    main_sub.retry_s = 2.0
    for w in load.workers:
        w.resolve_every = 1
        w.credit = 50
    feedback = Feedback(broker.intake_ep, load.workers)
    load.start()
    feedback.start()

    samples = []            # (t, rss kB, fds)
    minutes = []            # per-minute rows
    end = t_start + a.minutes * 60
    next_sample = t_start
    minute_end = t_start + 60
    lat_seen = [0] * len(load.submitters)
    acc_at_minute = 0
    try:
        while True:
            now = time.monotonic()
            if now >= next_sample:
                assert broker.alive(), "the broker died"
                samples.append((now - t_start, rss_kb(pid), fd_count(pid)))
                next_sample += 5
            if now >= minute_end or now >= end:
                lats, by = [], {}
                for i, s in enumerate(load.submitters):
                    new = s.latencies[lat_seen[i]:]
                    lat_seen[i] += len(new)
                    lats += [x for _, x in new]
                    by[s.name.split("-")[-1]] = pct([x for _, x in new], 99) * 1e3
                acc = load.accepted()
                with conn.cursor() as cur:
                    cur.execute("SELECT count(*) FROM incident WHERE state <> 'CLOSED'")
                    open_n = cur.fetchone()[0]
                row = {"minute": len(minutes) + 1, "accepted": acc - acc_at_minute,
                       "p50": pct(lats, 50) * 1e3, "p99": pct(lats, 99) * 1e3,
                       "max": max(lats, default=0) * 1e3, "rss_mb": samples[-1][1] / 1024,
                       "fds": samples[-1][2], "open": open_n,
                       "by": " ".join(f"{k}:{v:.0f}" for k, v in by.items())}
                acc_at_minute = acc
                minutes.append(row)
                print("minute {minute:3d}: accepted {accepted:6d}  p50 {p50:6.1f} ms  "
                      "p99 {p99:6.1f} ms  max {max:7.1f} ms  RSS {rss_mb:6.1f} MB  fds {fds:3d}  "
                      "open {open}  p99 by stream {by}".format(**row), flush=True)
                minute_end += 60
                if now >= end:
                    break
            errors = [t.error for t in load.submitters + load.workers + [feedback] if t.error]
            assert not errors, errors
            time.sleep(max(0.0, min(next_sample, minute_end, end) - time.monotonic()))
        load.stop()
        feedback.stopping.set()
        feedback.join(5)
        verdict = load.check(conn, "soak")
        rss_first = samples[min(len(samples) - 1, 12)][1]     # after the first minute
        rss_end, fds_start, fds_end = samples[-1][1], samples[0][2], samples[-1][2]
        rss_ok = rss_end <= rss_first * 1.10 + 16 * 1024
        fds_ok = fds_end <= max(s[2] for s in samples[:13]) + 8
    finally:
        for s in load.submitters + load.workers:
            s.stopping.set()
        feedback.stopping.set()
        for g in load.gd_workers:
            g.kill()
        load.kill_sla()
        rc = broker.stop()
        hub.close()
        conn.close()
    lines = [
        "# Soak run", "",
        f"{a.minutes:g} min; base {a.base_rate:g}/s with a {a.burst_rate:g}/s burst of "
        f"{a.burst_len_s:g} s every {a.burst_every_s:g} s on one grid, 15/s on a gd-worker "
        f"grid, 8/s escalating to a flag; feedback closes every resolved incident.", "",
        f"- broker RSS: start {samples[0][1] / 1024:.1f} MB, after minute 1 "
        f"{rss_first / 1024:.1f} MB, end {rss_end / 1024:.1f} MB "
        f"({'flat' if rss_ok else 'GROWING'})",
        f"- broker fds: start {fds_start}, end {fds_end} ({'flat' if fds_ok else 'GROWING'})",
        f"- accepted {verdict.counts['accepted']}, feedback closed {feedback.closed}, "
        f"broker exit status {rc}",
        f"- {verdict.line('soak')}", "",
        "| minute | accepted | p50 ms | p99 ms | max ms | RSS MB | fds | open |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += ["| {minute} | {accepted} | {p50:.1f} | {p99:.1f} | {max:.1f} | {rss_mb:.1f} | "
              "{fds} | {open} |".format(**r) for r in minutes]
    (out / "report.md").write_text("\n".join(lines) + "\n")
    svg_plot([r["minute"] for r in minutes],
             [("broker RSS, MB (5 s samples)", [s[1] / 1024 for s in samples]),
              ("open fds (5 s samples)", [float(s[2]) for s in samples]),
              ("SUBMIT->ACCEPTED p99 per minute, ms", [r["p99"] for r in minutes])],
             out / "plot.svg")
    print("\n".join(lines))
    print(f"\nreport: {out / 'report.md'}  plot: {out / 'plot.svg'}")
    return 0 if verdict.valid and rss_ok and fds_ok and rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
