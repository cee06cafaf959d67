"""The benchmark scripts still run and still measure what they say.

Not a measurement: tiny sizes, so that a change to the broker, the protocol
or the harness that breaks tests/bench/run-broker-bench.sh or
run-subscriber-bench.sh fails here rather than on the day someone needs the
figures. Each script starts its own throw-away PostgreSQL cluster.
"""

import os
import re
import subprocess

import pytest

SRC = os.environ.get("GD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GD_BUILD_DIR", os.path.join(SRC, "build"))


def run_script(name, *args, **env):
    e = {k: v for k, v in os.environ.items() if k != "GD_DB_DSN" and not k.startswith("PG")}
    e.update(env)
    p = subprocess.run([os.path.join(SRC, "tests", "bench", name), BUILD, *args], env=e,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{name} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


ROUND = re.compile(r"^round 1: 0 subscribers (\d+) accepted/s \(CPU ([\d.]+) / - / ([\d.]+)\), "
                   r"3 subscribers (\d+) accepted/s \(CPU ([\d.]+) / ([\d.]+) / ([\d.]+); "
                   r"each received (\d+) messages, (\d+) bytes\)$", re.M)


def subscriber_round(out):
    m = ROUND.search(out)
    assert m, f"no round line in:\n{out}"
    assert re.search(r"^mean: .* drop -?[\d.]+% ± ", out, re.M), out
    assert re.search(r"^broker CPU per 1000 SUBMITs: [\d.]+ ms", out, re.M), out
    rate0, cpu0, mach0, rate3, cpu3, subcpu, mach3, msgs, nbytes = (float(x) for x in m.groups())
    assert rate0 > 0 and rate3 > 0
    assert cpu0 > 0 and cpu3 > 0 and mach0 >= cpu0 and mach3 >= cpu3
    return msgs, nbytes


def test_subscriber_bench_counts_what_each_subscriber_received():
    everything = subscriber_round(run_script("run-subscriber-bench.sh", "3", "1", "2000"))
    towns = subscriber_round(run_script("run-subscriber-bench.sh", "3", "1", "2000",
                                        GD_SUB_TOPICS="towns"))
    # 2000 transitions in batches, gauges and heartbeats: something for everyone
    assert everything[0] > 0 and everything[1] > 2000
    assert towns[0] > 0 and towns[1] > 0
    # a subscriber that follows one town of 23 gets a fraction of the whole
    assert towns[1] < everything[1] / 3, (towns, everything)


@pytest.mark.parametrize("curve", ["0", "1"])
def test_broker_bench_reports_intake_and_latency(curve):
    out = run_script("run-broker-bench.sh", "2000", "2", "100", "200", "1", GD_BENCH_CURVE=curve)
    raw = re.search(r"^raw +2000 rows .*: (\d+) rows/s", out, re.M)
    intake = re.search(r"^intake +2000 SUBMITs, 2 clients, 100 in flight each: (\d+) accepted/s",
                       out, re.M)
    lat = re.search(r"^latency +200/s for 1 s: (\d+) delivered of (\d+)", out, re.M)
    assert raw and intake and lat, out
    assert int(raw.group(1)) > 0 and int(intake.group(1)) > 0
    assert int(lat.group(1)) == int(lat.group(2)) > 0, out


def test_broker_bench_geo_places_positions_beside_grid_codes():
    out = run_script("run-broker-bench.sh", "2000", "2", "100", GD_BENCH_GEO="1")
    lookups = re.search(r"^position +\d+ locate_point over (\d+) points: (\d+) lookups/s", out,
                        re.M)
    stored = re.findall(r"^stored +(\d+) of (\d+) located (by position in a grid|with the grid "
                        r"code given)$", out, re.M)
    ratio = re.search(r"^geo +grid code given (\d+)/s, position (\d+)/s \(ABBA means\): "
                      r"position / given = ([\d.]+)", out, re.M)
    assert lookups and ratio, out
    assert int(lookups.group(1)) == 8 * 2030 and int(lookups.group(2)) > 0
    assert [s[2].split()[0] for s in stored] == ["with", "by", "by", "with"], out
    assert all(s[0] == s[1] == "2000" for s in stored), out
    assert int(ratio.group(1)) > 0 and int(ratio.group(2)) > 0
