#!/usr/bin/python3
"""bench-adapters.py - orders/s of gd-hotline and gd-open311 against the real broker and PostgreSQL.

Run beside a private PostgreSQL, with a build directory:
    GD_BUILD_DIR=build/release tests/pg/with-pg.sh /usr/bin/python3 tests/bench/bench-adapters.py
Not a test: it prints figures. It builds a database (migrations + demo
district), starts gd-broker, then
  1. gd-hotline: N orders from a file (default 20000), once per BATCH:WINDOW pair in RUNS
     (default "1:64,64:64,1:256,64:256": plain SUBMITs and SUBMITS of up to 64, at the old
     and the new default window), each run new tickets, with the CPU time per order of the
     broker (over the run) and of gd-hotline;
  2. gd-open311: C client threads POSTing form requests (keep-alive) for S seconds.
ONLY=hotline or ONLY=open311 runs one of them.
"""

import http.client
import json
import os
import re
import resource
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import psycopg2  # noqa: E402
import psycopg2.extensions  # noqa: E402

import conftest  # noqa: E402
import gdclient  # noqa: E402

BUILD = Path(os.environ.get("GD_BUILD_DIR", REPO / "build" / "release")).resolve()
N = int(os.environ.get("N", "20000"))
RUNS = [tuple(r.split(":")) for r in os.environ.get("RUNS", "1:64,64:64,1:256,64:256").split(",")]
ONLY = os.environ.get("ONLY", "")
CLIENTS = int(os.environ.get("CLIENTS", "8"))
SECONDS = float(os.environ.get("SECONDS", "10"))


def make_db():
    base = os.environ["GD_DB_DSN"]
    name = f"gd_bench_{os.getpid()}"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    dsn = psycopg2.extensions.make_dsn(base, dbname=name)
    for f in conftest.MIGRATIONS:
        conftest._psql(dsn, "-f", str(f))
    subprocess.run([str(conftest.LOAD_DEMO), dsn], check=True, capture_output=True)
    return dsn


def cpu_seconds(pid):
    """CPU time a process has used: /proc/PID/schedstat (ns), else /proc/PID/stat (ticks)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_hotline(broker, tmp, run, batch, window):
    feed = Path(tmp) / f"feed-{run}.jsonl"
    with feed.open("w") as f:
        for i in range(N):
            f.write(json.dumps({"ticket_no": f"b{run}-{i}", "category": "LH-0101",
                                "grid": "500113001001001", "content": "垃圾未清运",
                                "caller_phone": "13900000000", "urgency": "normal"},
                               ensure_ascii=False) + "\n")
    cpu0 = cpu_seconds(broker.proc.pid)
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    r = subprocess.run([str(BUILD / "workers/hotline/gd-hotline"), "--intake", broker.intake_ep,
                        "--input", str(feed), "--state", f"{tmp}/state-{run}", "--reject",
                        f"{tmp}/reject-{run}", "--window", window, "--batch", batch,
                        "--log-level", "info"],
                       capture_output=True, text=True)
    dt = time.monotonic() - t0
    cpu = cpu_seconds(broker.proc.pid) - cpu0
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = own1.ru_utime + own1.ru_stime - own0.ru_utime - own0.ru_stime
    assert r.returncode == 0, r.stderr
    assert f"{N} accepted, 0 duplicates, 0 rejected" in r.stderr, r.stderr
    msgs = re.search(r"(\d+) SUBMIT messages, (\d+) SUBMITS messages carrying (\d+) orders",
                     r.stderr)
    print(f"gd-hotline: {N} orders, batch {batch}, window {window}: {dt:.2f} s = "
          f"{N / dt:.0f} orders/s; CPU per order: broker {cpu * 1e6 / N:.1f} us, gd-hotline "
          f"{own * 1e6 / N:.1f} us; "
          f"{msgs.group(0) if msgs else '?'}")


def bench_open311(broker, dsn, tmp):
    keys = Path(tmp) / "keys"
    keys.write_text("bench-key-00000001 = bench\n")
    conf = Path(tmp) / "o.ini"
    conf.write_text(f"intake = {broker.intake_ep}\ndb = {dsn}\nkeys_file = {keys}\nport = 0\n"
                    f"log_level = warn\nmax_concurrent = 64\ndb_pool = 4\n")
    log = Path(tmp) / "o.log"
    conf.write_text(conf.read_text().replace("log_level = warn", "log_level = info"))
    with log.open("wb") as lf:
        p = subprocess.Popen([str(BUILD / "workers/open311/gd-open311"), "--config", str(conf)],
                             stdout=lf, stderr=lf)
    def listening():
        m = re.search(r"listening on [0-9.]+:(\d+)", log.read_text())
        return m and m.group(1)
    port = gdclient.wait_until(listening, 10, "listening")
    counts = [0] * CLIENTS
    stop = time.monotonic() + SECONDS

    def client(k):
        c = http.client.HTTPConnection("127.0.0.1", int(port), timeout=30)
        i = 0
        while time.monotonic() < stop:
            body = urllib.parse.urlencode({"api_key": "bench-key-00000001",
                                           "service_code": "LH-0101",
                                           "address_id": "500113001001001",
                                           "description": "垃圾未清运"})
            c.request("POST", "/requests.json", body,
                      {"Content-Type": "application/x-www-form-urlencoded",
                       "Idempotency-Key": f"c{k}-{i}"})
            r = c.getresponse()
            r.read()
            assert r.status == 200, r.status
            counts[k] += 1
            i += 1
        c.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    dt = time.monotonic() - t0
    p.terminate()
    p.wait()
    n = sum(counts)
    print(f"gd-open311: {CLIENTS} keep-alive clients, {dt:.1f} s: {n} POSTs = "
          f"{n / dt:.0f} orders/s")


def main():
    import tempfile
    dsn = make_db()
    hub = gdclient.Hub()
    broker = conftest.Broker(conftest.broker_binary(), dsn, hub,
                             {**conftest.BROKER_DEFAULTS, "log-level": "info"})
    with tempfile.TemporaryDirectory() as tmp:
        broker.start()
        try:
            if ONLY in ("", "hotline"):
                for run, (batch, window) in enumerate(RUNS):
                    bench_hotline(broker, tmp, run, batch, window)
            if ONLY in ("", "open311"):
                bench_open311(broker, dsn, tmp)
        finally:
            broker.stop()
            hub.close()


if __name__ == "__main__":
    os.environ.setdefault("GD_BUILD_DIR", str(BUILD))
    main()
