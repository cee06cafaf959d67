"""gd-dashboard given a city of two shards (two gd-broker processes, two databases): one status
subscription per shard, the whole city on one page, each shard's broker state in /api/broker and
/metrics (label `shard`), and a shard whose broker stops shown down while the other one counts."""

import shutil
import subprocess
import time
from pathlib import Path

import psycopg2
import pytest

import gdclient
from test_dashboard import BUILD, dashboard, parse_metrics, today_start_sql  # noqa: F401
from test_shards import city  # noqa: F401  (the fixture: two shards, east and west)

CATEGORY = "LH-0101"
DISTRICT = "500113"


@pytest.fixture
def city_dashboard(dashboard):
    """Factory: city_dashboard(FILE, **opts), a gd-dashboard started with --city."""
    return lambda city_file, **opts: dashboard(city=city_file, **opts)


def received_in(dsn):
    """Today's receive events in one shard's database (a connection of its own: a broker's
    stop does not end it)."""
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM incident_event WHERE kind = 'receive' "
                        f"AND at >= {today_start_sql()}")
            return cur.fetchone()[0]
    finally:
        conn.close()


def submit(broker, tag, unit):
    r = broker.intake().submit(source="dash-city", external_id=tag, category=CATEGORY,
                               location={"unit": unit})
    assert r.type == "ACCEPTED", r
    return r["incident_id"]


def test_a_city_dashboard_sums_the_shards_and_shows_one_down_while_the_other_counts(
        city, city_dashboard):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (apt-get install prometheus)"
    east, west = city["brokers"]["east"], city["brokers"]["west"]
    # before the dashboard starts: counted from each shard's event log
    first = {name: submit(b, f"seed-{name}", city["grid"][name])
             for name, b in city["brokers"].items()}
    # incident ids restart in each database: the same id on both shards is two incidents
    assert first["east"] == first["west"], first
    dash = city_dashboard(city["file"], broker_silence_ms=1500)

    def received():
        return dash.json("/api/summary")["self"]["total"]["received"]

    def in_db():
        return received_in(city["dsn"]["east"]) + received_in(city["dsn"]["west"])

    gdclient.wait_until(lambda: received() == in_db() == 2, 10, "both shards' seeds counted")
    for name, b in city["brokers"].items():
        for i in range(3):
            submit(b, f"{name}-{i}", city["grid"][name])
    # and each shard has a triage queue of its own (a district code is routed there)
    for name, b in city["brokers"].items():
        submit(b, f"{name}-triage", DISTRICT)
    gdclient.wait_until(lambda: received() == in_db() == 10, 10, "every SUBMIT counted")

    # queued: every incident of both shards, each shard's triage queue on its own
    gdclient.wait_until(lambda: dash.json("/api/summary")["self"]["total"]["depth"] == 10, 10,
                        "the district's depth summed over both shards")

    # one delivery per shard of the same incident id: two dispatch-latency observations
    for name, b in city["brokers"].items():
        w = b.worker(queues=[city["grid"][name]], credit=1, name="网格员")
        d = w.deliver()
        assert d["incident"]["id"] == first[name], (name, d["incident"]["id"])

    def metrics():
        status, _, body = dash.get("/metrics")
        assert status == 200
        return body.decode()
    gdclient.wait_until(
        lambda: parse_metrics(metrics())["griddispatch_dispatch_latency_seconds_count"] == 2, 10,
        "a first delivery measured on each shard")
    text = metrics()
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, f"promtool:\n{r.stdout}{r.stderr}"
    m = parse_metrics(text)
    for name in ("east", "west"):
        assert m[f'griddispatch_broker_up{{shard="{name}"}}'] == 1, name
        assert m[f'griddispatch_db_up{{shard="{name}"}}'] == 1, name
        assert m[f'griddispatch_accepted_total{{shard="{name}"}}'] >= 5, name
        key = f'griddispatch_queue_depth{{shard="{name}",queue="triage",town="",sector=""}}'
        assert m[key] == 1, (key, [k for k in m if "triage" in k])
    assert "griddispatch_broker_up" not in m   # no unlabelled series beside the shards'
    broker = dash.json("/api/broker")
    assert [s["name"] for s in broker["shards"]] == ["east", "west"]
    assert all(s["up"] and s["db_up"] for s in broker["shards"]), broker["shards"]
    assert broker["open_incidents"] == sum(s["open_incidents"] for s in broker["shards"]) == 10
    assert dash.get("/healthz")[0] == 200

    # west's broker stops: west shown down, east goes on counting
    assert west.stop() == 0
    down = lambda: {s["name"]: s["up"] for s in dash.json("/api/broker")["shards"]}
    gdclient.wait_until(lambda: down() == {"east": True, "west": False}, 15,
                        "west shown down, east up")
    m = parse_metrics(metrics())
    assert m['griddispatch_broker_up{shard="west"}'] == 0
    assert m['griddispatch_broker_up{shard="east"}'] == 1
    assert dash.get("/healthz")[0] == 503
    assert "shard west: no broker status for" in dash.text()
    assert received() == 10
    east_last = submit(east, "east-while-west-down", city["grid"]["east"])
    gdclient.wait_until(lambda: received() == in_db() == 11, 10, "east counted alone")

    # west comes back: followed again, today's counts read again from both event logs
    west.start()
    gdclient.wait_until(lambda: down() == {"east": True, "west": True}, 15, "west up again")
    gdclient.wait_until(
        lambda: "shard west: the status subscription was made anew: today's counts read again "
                "from the event logs of every shard" in dash.text(), 15, "the reseed")
    assert "shard west: broker status again" in dash.text()
    assert received() == in_db() == 11
    # east's last incident has the id west gives its next one, and the reseed remembered
    # east's (id, version): west's must count all the same
    assert submit(west, "west-after", city["grid"]["west"]) == east_last
    gdclient.wait_until(lambda: received() == in_db() == 12, 10, "west counted again")
    submit(west, "west-later", city["grid"]["west"])
    submit(east, "east-later", city["grid"]["east"])
    gdclient.wait_until(lambda: received() == in_db() == 14, 10, "both shards' streams again")
    time.sleep(0.5)
    assert received() == 14   # nothing counted twice after the reseed
    assert dash.get("/healthz")[0] == 200


def test_a_city_dashboard_reads_the_org_tree_from_the_default_shard(city, city_dashboard):
    """The maps and org tree come from the default shard's database: a unit that only the
    default shard's database has is on the page, one only the other has is not."""
    for name in ("east", "west"):
        city["pg"][name].all("INSERT INTO org_unit (code, name, level, parent) VALUES "
                             "(%s, %s, 'town', %s) RETURNING code",
                             f"{DISTRICT}9{'01' if name == 'east' else '02'}", f"{name}镇", DISTRICT)
    dash = city_dashboard(city["file"])
    codes = {r["unit"]["code"] for r in dash.json("/api/summary")["rows"]}
    assert f"{DISTRICT}901" in codes and f"{DISTRICT}902" not in codes, codes
    # the default named by the file, not the first shard
    Path(city["file"]).write_text(Path(city["file"]).read_text().replace(
        "default = east", "default = west"))
    dash2 = city_dashboard(city["file"])
    codes = {r["unit"]["code"] for r in dash2.json("/api/summary")["rows"]}
    assert f"{DISTRICT}902" in codes and f"{DISTRICT}901" not in codes, codes


def test_city_and_status_together_are_refused(city, tmp_path):
    binary = str(BUILD / "workers" / "dashboard" / "gd-dashboard")
    r = subprocess.run([binary, "--city", city["file"], "--status", "ipc:///nonexistent",
                        "--check-config"], capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "not both" in r.stderr, r.stderr
    r = subprocess.run([binary, "--city", str(tmp_path / "missing.ini")], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 2 and "city:" in r.stderr, r.stderr
    r = subprocess.run([binary, "--city", city["file"], "--check-config"], capture_output=True,
                       text=True, timeout=10)
    assert r.returncode == 0, r.stderr
    assert f"city = {city['file']}" in r.stdout
    assert "; shard east: status " + city["brokers"]["east"].status_ep in r.stdout
    assert "(default: org tree, maps)" in r.stdout
