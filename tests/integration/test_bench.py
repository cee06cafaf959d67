"""The benchmark scripts still run and still measure what they say.

Not a measurement: tiny sizes, so that a change to the broker, the protocol
or the harness that breaks tests/bench/run-broker-bench.sh or
run-subscriber-bench.sh fails here rather than on the day someone needs the
figures. One run starts its own throw-away PostgreSQL cluster and loads the
demo district into it, as the scripts do when run by hand; the others run on
a fresh copy of the test template, which already holds the district
(GD_BENCH_LOADED=1), so that the suite does not build a cluster and import
the district once per run.
"""

import os
import re
import subprocess

import psycopg2.extensions
import pytest

import conftest

SRC = os.environ.get("GD_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("GD_BUILD_DIR", os.path.join(SRC, "build"))


def run_script(name, *args, db=None, **env):
    """Runs tests/bench/NAME on the build; on database `db` (a DSN holding the
    demo district) when given, else beside a cluster of its own. Returns stdout."""
    if db is None:
        e = {k: v for k, v in os.environ.items() if k != "GD_DB_DSN" and not k.startswith("PG")}
    else:
        e = dict(os.environ, GD_DB_DSN=db, GD_BENCH_LOADED="1",
                 PGDATABASE=psycopg2.extensions.parse_dsn(db)["dbname"])
    e.update(env)
    p = subprocess.run([os.path.join(SRC, "tests", "bench", name), BUILD, *args], env=e,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{name} failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


@pytest.fixture
def demo_db(gd_template):
    """DSN of a fresh copy of the test template (migrated, demo district loaded)."""
    with conftest.fresh_database(gd_template, "gd_bench_") as dsn:
        yield dsn


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


def test_subscriber_bench_counts_what_each_subscriber_received(demo_db):
    everything = subscriber_round(run_script("run-subscriber-bench.sh", "3", "1", "2000",
                                             db=demo_db))
    towns = subscriber_round(run_script("run-subscriber-bench.sh", "3", "1", "2000", db=demo_db,
                                        GD_SUB_TOPICS="towns"))
    # 2000 transitions in batches, gauges and heartbeats: something for everyone
    assert everything[0] > 0 and everything[1] > 2000
    assert towns[0] > 0 and towns[1] > 0
    # a subscriber that follows one town of 23 gets a fraction of the whole
    assert towns[1] < everything[1] / 3, (towns, everything)


@pytest.mark.parametrize("curve", ["0", "1"])
def test_broker_bench_reports_intake_and_latency(curve, demo_db):
    out = run_script("run-broker-bench.sh", "2000", "2", "100", "200", "1", db=demo_db,
                     GD_BENCH_CURVE=curve)
    raw = re.search(r"^raw +2000 rows .*: (\d+) rows/s", out, re.M)
    intake = re.search(r"^intake +2000 SUBMITs, 2 clients, 100 in flight each: (\d+) accepted/s",
                       out, re.M)
    lat = re.search(r"^latency +200/s for 1 s: (\d+) delivered of (\d+)", out, re.M)
    assert raw and intake and lat, out
    assert int(raw.group(1)) > 0 and int(intake.group(1)) > 0
    assert int(lat.group(1)) == int(lat.group(2)) > 0, out
    floor = re.search(r"^raw-lat .*: commit p50 [\d.]+ ms, p99 ([\d.]+) ms", out, re.M)
    beside = re.search(r"^raw-lat +the same beside the latency phase \((\d+) rows\): commit p50 "
                       r"[\d.]+ ms, p99 ([\d.]+) ms", out, re.M)
    ratio = re.search(r"^ratio +SUBMIT->ACCEPTED p99 / one-row commit p99 = ([\d.]+) \(alone\), "
                      r"([\d.]+) \(beside\)$", out, re.M)
    assert floor and beside and ratio, out
    assert float(floor.group(1)) > 0 and int(beside.group(1)) == 200 and float(beside.group(2)) > 0
    assert float(ratio.group(1)) > 0 and float(ratio.group(2)) > 0, out


def test_broker_bench_sizes_submits_as_asked():
    # the scripts' own path: a cluster of their own, the district loaded into
    # it; the SUBMITs go 30 to a SUBMITS message
    out = run_script("run-broker-bench.sh", "200", "1", "50", "100", "1", GD_BENCH_SIZE="512",
                     GD_BENCH_BATCH="30")
    assert re.search(r"^submit +512 bytes encoded \(GD_BENCH_SIZE 512\)$", out, re.M), out
    assert re.search(r"^batch +30 SUBMITs per SUBMITS message$", out, re.M), out
    intake = re.search(r"^intake +200 SUBMITs, 1 clients, 50 in flight each: (\d+) accepted/s",
                       out, re.M)
    assert intake and int(intake.group(1)) > 0, out


RABBITMQ = "/usr/lib/rabbitmq/bin/rabbitmq-server"


@pytest.mark.skipif(not os.access(RABBITMQ, os.X_OK),
                    reason="rabbitmq-server is not installed (run-peer-bench.sh with "
                           "GD_PEER_INSTALL=1 installs it; tests never do)")
def test_peer_bench_measures_both_sides_and_leaves_no_node_behind():
    if not os.access(os.path.join(BUILD, "tests", "bench", "bench-amqp"), os.X_OK):
        pytest.skip("bench-amqp not built (librabbitmq-dev was missing when meson ran)")
    out = run_script("run-peer-bench.sh", "2000", "2", "100", "2")
    rounds = re.findall(r"^round (\d): rabbitmq quorum (\d+) confirmed/s, classic (\d+) "
                        r"confirmed/s$", out, re.M)
    ours = re.findall(r"^round (\d): gd-broker (\d+) accepted/s$", out, re.M)
    assert [r[0] for r in rounds] == ["1", "2"] and [r[0] for r in ours] == ["1", "2"], out
    assert all(int(q) > 0 and int(c) > 0 for _, q, c in rounds), out
    assert all(int(g) > 0 for _, g in ours), out
    # ABBA: the peer first in round 1, gd-broker first in round 2
    lines = [l for l in out.splitlines() if l.startswith("round ")]
    assert "rabbitmq" in lines[0] and "gd-broker" in lines[2], out
    ratio = re.search(r"^ratio +gd-broker / best rabbitmq = ([\d.]+)$", out, re.M)
    assert ratio and float(ratio.group(1)) > 0, out
    # the private node is gone: no Erlang VM of ours still running
    nodes = subprocess.run(["pgrep", "-f", "-a", "gdpeer[0-9]+@localhost"], capture_output=True,
                           text=True).stdout
    assert nodes == "", nodes


def test_broker_bench_geo_places_positions_beside_grid_codes(demo_db):
    out = run_script("run-broker-bench.sh", "2000", "2", "100", db=demo_db, GD_BENCH_GEO="1")
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
