"""gd-dashboard against the real broker: the page in headless Chromium, /metrics, the JSON API, limits.

Incidents flow from chaos.Submitter threads into two towns' queues while
chaos.Worker threads sign and resolve them. The browser test (playwright-core
from npm, driving the Debian chromium; see browser/setup.sh) checks that the
numbers on screen move while incidents flow and, once the load stops, equal
the database; its screenshots are kept under $GD_BUILD_DIR/artefacts/.
/metrics must pass `promtool check metrics` (Debian package prometheus).
"""

import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg2
import pytest

import chaos
import faultload
import gdclient

HERE = Path(__file__).resolve().parent
BUILD = Path(os.environ.get("GD_BUILD_DIR", HERE.parents[1] / "build"))
TOWN = "500113002"
OTHER_TOWN = "500113003"


def today_start_sql():
    # local day of the dashboard (--utc-offset-min 480)
    return "date_trunc('day', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'"


class Dashboard:
    """gd-dashboard on one broker and its database, or with city=FILE on a city's shards."""

    def __init__(self, broker=None, dsn=None, city=None, **opts):
        self.dir = tempfile.mkdtemp(prefix="gdd-", dir="/tmp")
        self.log_path = Path(self.dir) / "dashboard.log"
        args = [str(BUILD / "workers" / "dashboard" / "gd-dashboard")]
        if city is not None:
            args += ["--city", city]
        else:
            args += ["--status", broker.status_ep, "--intake", broker.intake_ep, "--db", dsn]
        args += ["--http", "127.0.0.1:0", "--push-ms", "200", "--verbose"]
        for k, v in opts.items():
            args += [f"--{k.replace('_', '-')}", str(v)]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        deadline = time.monotonic() + 15
        while True:
            m = re.search(rb"ready: (http://\S+)/", self.log_path.read_bytes())
            if m:
                self.url = m.group(1).decode()
                break
            assert self.proc.poll() is None, f"gd-dashboard exited:\n{self.text()}"
            assert time.monotonic() < deadline, f"gd-dashboard not ready:\n{self.text()}"
            time.sleep(0.02)

    def text(self):
        return self.log_path.read_text(errors="replace")

    def get(self, path, method="GET", data=None, headers=None, timeout=5):
        req = urllib.request.Request(self.url + path, method=method, data=data,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, path):
        status, _, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("gd-dashboard did not stop on SIGTERM")
            assert rc == 0, f"gd-dashboard exited {rc} on SIGTERM:\n{self.text()[-5000:]}"
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def dashboard(make_broker, dsn):
    """Factory: dashboard(broker=None, **opts) on `broker` (a new one when None) and this
    test's database; dashboard(city=FILE, **opts) on a city's shards. Stopped at the end."""
    made = []

    def make(broker=None, city=None, **opts):
        if city is not None:
            d = Dashboard(city=city, **opts)
        else:
            d = Dashboard(broker or make_broker(), dsn, **opts)
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def grid_of(pg, town):
    return pg.scalar("SELECT g.code FROM org_unit g JOIN org_unit c ON g.parent = c.code "
                     "WHERE g.level = 'grid' AND c.parent = %s ORDER BY g.code LIMIT 1", town)


def town_category(pg):
    """A category admitted at town level: routed to <town>.<sector>."""
    return pg.one("SELECT code, sector FROM category WHERE admitted_level = 'town' "
                  "ORDER BY code LIMIT 1")


class Load:
    """Submitters into two towns (town-level category) and workers resolving everything."""

    def __init__(self, broker, pg, window=4):
        cat = town_category(pg)
        self.queues = [f"{TOWN}.{cat['sector']}", f"{OTHER_TOWN}.{cat['sector']}"]
        self.subs = [chaos.Submitter(broker.intake_ep, f"dash-{t}", grid_of(pg, t), cat["code"],
                                     window=window) for t in (TOWN, OTHER_TOWN)]
        self.workers = [chaos.Worker(broker.work_ep, q, credit=5) for q in self.queues]
        for t in self.workers + self.subs:
            t.start()

    def stop(self):
        for s in self.subs:
            s.stop()
        for s in self.subs:
            s.join(15)
        for s in self.subs:
            assert s.error is None and not s.rejected, (s.error, s.rejected[:3])

    def stop_workers(self):
        for w in self.workers:
            w.stop()
        for w in self.workers:
            w.join(10)


def db_today(pg, kind, town=None):
    sql = (f"SELECT count(*) FROM incident_event e JOIN incident i ON i.id = e.incident_id "
           f"WHERE e.kind = %s AND e.at >= {today_start_sql()}")
    args = [kind]
    if town:
        sql += " AND i.location_unit LIKE %s"
        args.append(town + "%")
    return pg.scalar(sql, *args)


def settle(pg, load):
    """Waits until every accepted incident is resolved (the workers keep up)."""
    accepted = sum(len(s.accepted) for s in load.subs)
    gdclient.wait_until(lambda: db_today(pg, "resolve") >= accepted, 20, "all resolved")
    time.sleep(0.5)   # the last transitions reach the dashboard


# ---- the browser ----

def node_modules():
    setup = HERE / "browser" / "setup.sh"
    r = subprocess.run([str(setup)], capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        pytest.fail(f"browser/setup.sh failed (npm registry or cache needed once):\n{r.stderr}")
    return r.stdout.strip().splitlines()[-1]


def read_line(proc, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 0.2)
        if r:
            line = proc.stdout.readline()
            if not line:
                break
            return json.loads(line)
        if proc.poll() is not None:
            break
    raise AssertionError(f"browser script gave no answer: {proc.stderr.read() if proc.poll() is not None else 'still running'}")


def test_page_in_chromium_moves_with_the_load_and_matches_the_database(make_broker, dashboard, pg):
    chromium = os.environ.get("GD_CHROMIUM", "/usr/bin/chromium")
    assert Path(chromium).exists(), "Debian chromium is needed (apt-get install chromium)"
    modules = node_modules()
    # boundaries for the grids of the two towns (their communities and the towns drawn as the
    # unions), and two incidents left queued in one grid: a count on the map
    pg.conn.cursor().execute("DELETE FROM unit_boundary")
    put_boundaries(pg.conn, {**town_tiles(pg, TOWN, 106.50, 29.40),
                             **town_tiles(pg, OTHER_TOWN, 106.54, 29.40)})
    grid = grid_of(pg, TOWN)
    community = pg.scalar("SELECT parent FROM org_unit WHERE code = %s", grid)
    broker = make_broker()
    for i in range(2):
        broker.intake().submit(source="dash-map", external_id=f"left-{i}", category="LH-0101",
                               location={"unit": grid})
    dash = dashboard(broker)
    artefacts = BUILD / "artefacts"
    artefacts.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="gdd-chromium-"))
    load = Load(broker, pg)
    proc = subprocess.Popen(["node", str(HERE / "browser" / "dashboard_check.js"), dash.url + "/",
                             TOWN, str(artefacts), str(profile), community],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "NODE_PATH": modules,
                                            "GD_CHROMIUM": chromium})
    try:
        changed = read_line(proc, 60)
        assert changed["phase"] == "changed", changed
        assert changed["second"] > changed["first"]
        load.stop()
        settle(pg, load)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        final = read_line(proc, 30)
        assert final["phase"] == "final", final
        assert final["errors"] == [], final["errors"]
        # the numbers on screen are the database's
        assert final["received"] == db_today(pg, "receive"), final
        assert final["resolved"] == db_today(pg, "resolve"), final
        assert final["town_received"] == db_today(pg, "receive", TOWN), final
        assert final["town_resolved"] == db_today(pg, "resolve", TOWN), final
        assert final["received"] > 0 and final["depth"] == 2 and final["inflight"] == 0
        assert final["ontime"].endswith("%")
        assert final["towns"] == 1 + pg.scalar("SELECT count(*) FROM org_unit WHERE level = 'town'")
        assert final["feed_items"] > 0
        # the district's map: the two towns, the town's label its open / overdue counts
        assert final["map"]["paths"] == 2, final["map"]
        assert (final["map"]["open"], final["map"]["overdue"]) == (2, 0), final["map"]
        assert final["map"]["label"] == "2 / 0" and final["map"]["visible"], final["map"]
        assert final["map"]["cls"] == "m-ok drill" and "open 2" in final["map"]["title"]
        town = read_line(proc, 20)
        assert town["phase"] == "town", town
        assert town["name"] == pg.scalar("SELECT name FROM org_unit WHERE code = %s", TOWN)
        assert town["hash"] == f"#u={TOWN}"
        assert town["received"] == db_today(pg, "receive", TOWN)
        assert town["rows"] == 1 + pg.scalar("SELECT count(*) FROM org_unit WHERE parent = %s", TOWN)
        assert town["map"]["paths"] == town["rows"] - 1, "one outline per community"
        assert town["map"]["label"] == "2 / 0" and town["map"]["visible"], town["map"]
        assert pg.scalar("SELECT name FROM org_unit WHERE code = %s", community) in \
            town["map"]["title"]
        assert proc.wait(20) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
        load.stop_workers()
        shutil.rmtree(profile, ignore_errors=True)
    assert (artefacts / "dashboard-district.png").stat().st_size > 10000


# ---- /metrics ----

def parse_metrics(text):
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return values


def test_metrics_pass_promtool_and_follow_the_broker(make_broker, dashboard, pg):
    promtool = shutil.which("promtool")
    assert promtool, "promtool is needed (apt-get install prometheus)"
    broker = make_broker()
    dash = dashboard(broker)
    load = Load(broker, pg)
    time.sleep(1.5)
    load.stop()
    settle(pg, load)
    load.stop_workers()
    time.sleep(0.6)   # a broker message after the last commit
    status, headers, body = dash.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, f"promtool:\n{r.stdout}{r.stderr}"
    m = parse_metrics(text)
    accepted = sum(len(s.accepted) for s in load.subs)
    assert m["griddispatch_accepted_total"] >= accepted
    assert m["griddispatch_resolved_total"] >= accepted
    assert m["griddispatch_db_up"] == 1 and m["griddispatch_broker_up"] == 1
    assert m['griddispatch_commit_seconds_bucket{le="+Inf"}'] == m["griddispatch_commits_total"]
    assert m["griddispatch_commit_seconds_count"] > 0
    # every incident was delivered once: one dispatch-latency observation each
    assert m["griddispatch_dispatch_latency_seconds_count"] == accepted
    assert m['griddispatch_dispatch_latency_seconds_bucket{le="+Inf"}'] == accepted
    q = load.queues[0]
    sector = q.split(".")[1]
    key = f'griddispatch_queue_depth{{queue="{q}",town="{TOWN}",sector="{sector}"}}'
    assert key in m, [k for k in m if "queue_depth" in k][:5]
    assert m[key] == 0


# ---- JSON API and limits ----

def test_api_summary_drill_down_and_feed(make_broker, dashboard, pg):
    broker = make_broker()
    dash = dashboard(broker)
    load = Load(broker, pg, window=2)
    time.sleep(1)
    load.stop()
    settle(pg, load)
    load.stop_workers()
    s = dash.json("/api/summary")
    assert [p["level"] for p in s["path"]] == ["district"]
    assert s["sectors"] == ["party", "economy", "livelihood", "safety", "other"]
    assert s["self"]["total"]["received"] == db_today(pg, "receive")
    rows = {r["unit"]["code"]: r for r in s["rows"]}
    assert rows[TOWN]["total"]["received"] == db_today(pg, "receive", TOWN)
    assert rows[TOWN]["drill"] is True
    community = pg.scalar("SELECT parent FROM org_unit WHERE code = %s", grid_of(pg, TOWN))
    c = dash.json(f"/api/summary?unit={community}")
    assert [p["code"] for p in c["path"]] == ["500113", TOWN, community]
    assert all(r["unit"]["level"] == "grid" for r in c["rows"])
    assert c["self"]["total"]["received"] == db_today(pg, "receive", community)
    g = dash.json(f"/api/summary?unit={grid_of(pg, TOWN)}")
    assert g["rows"] == [] and g["self"]["drill"] is False
    feed = dash.json("/api/feed")
    assert feed and all("reporter" not in json.dumps(i) and "13900000000" not in json.dumps(i)
                        for i in feed)
    assert dash.json(f"/api/feed?after={feed[-1]['seq']}") == []
    b = dash.json("/api/broker")
    assert b["seen"] and b["db_up"] and b["counters"]["accepted"] >= 1


def test_limits_are_enforced(make_broker, dashboard):
    dash = dashboard(make_broker(), max_sse=2)
    assert dash.get("/api/summary?unit=nope")[0] == 404
    assert dash.get("/api/summary?unit=" + "9" * 40)[0] == 404
    assert dash.get("/api/feed?after=x")[0] == 400
    assert dash.get("/nothing")[0] == 404
    assert dash.get("/api/summary", method="POST", data=b"x=1")[0] == 405
    assert dash.get("/api/summary", headers={"Content-Length": "5"}, method="GET",
                    data=b"hello")[0] == 413
    # request headers beyond the per-connection memory limit
    status = dash.get("/", headers={"X-Big": "a" * 40000})[0]
    assert status in (413, 431), status
    # event streams: two allowed, the third refused with Retry-After
    streams = [urllib.request.urlopen(dash.url + "/events", timeout=5) for _ in range(2)]
    try:
        for s in streams:
            assert s.headers["Content-Type"].startswith("text/event-stream")
            first = s.readline() + s.readline()
            assert first.startswith(b"retry: 3000")
        status, headers, _ = dash.get("/events")
        assert status == 503 and headers.get("Retry-After") == "10"
    finally:
        for s in streams:
            s.close()
    # a closed stream frees its slot (found at the next write: heartbeat or push)
    gdclient.wait_until(lambda: _probe_stream(dash), 20, "an event-stream slot after closing two")
    status, _, body = dash.get("/")
    assert status == 200 and b"<html" in body and b"http://" not in body.replace(b"http://www.w3", b"")


def _probe_stream(dash):
    try:
        with urllib.request.urlopen(dash.url + "/events", timeout=2) as s:
            return s.status == 200
    except urllib.error.HTTPError:
        return False


@pytest.mark.parametrize("how", faultload.REPLACEMENTS)
def test_dashboard_follows_a_new_broker_on_the_same_endpoint(make_broker, dashboard, pg, how):
    """The broker's status endpoint goes away and a new broker serves it: killed and restarted,
    or hung while a second broker takes over (faultload.replace_broker). The dashboard goes on
    counting, within a few seconds of the new broker's start."""
    broker = make_broker()
    dash = dashboard(broker)
    grid = grid_of(pg, TOWN)
    serving = broker
    submitted = []

    def received():
        return dash.json("/api/summary")["self"]["total"]["received"]

    def counted_after(n, floor):
        """Submits one more incident; true once one of those from the n-th on is on the
        dashboard: in the feed, and today's intake above `floor`."""
        submitted.append(serving.intake().submit(
            source="dash-restart", external_id=f"r-{len(submitted)}", category="LH-0101",
            location={"unit": grid})["incident_id"])
        time.sleep(0.3)
        fed = {i["incident_id"] for i in dash.json("/api/feed") if i["event"] == "receive"}
        return any(i in fed for i in submitted[n:]) and received() > floor
    try:
        gdclient.wait_until(lambda: counted_after(0, 0), 10, "an incident counted before")
        started = dash.json("/api/broker")["started_at"]
        serving = faultload.replace_broker(make_broker, broker, how)
        n, floor = len(submitted), received()
        gdclient.wait_until(lambda: counted_after(n, floor), 15,
                            f"an incident counted after {how} and a new broker")
        assert dash.json("/api/broker")["started_at"] > started
        m = parse_metrics(dash.get("/metrics")[2].decode())
        if how == "hung":   # nothing broke the old connection: the silence did
            assert m["griddispatch_dashboard_resubscribes_total"] >= 1, m
        assert m["griddispatch_broker_up"] == 1
    finally:
        if serving is not broker:
            faultload.end_frozen(broker)


def test_transitions_missed_while_the_broker_was_replaced_are_counted_from_the_database(
        make_broker, dashboard, pg, dsn):
    """A broker hangs and a second one takes over its endpoints: the dashboard's subscription
    stays on the silent connection for --broker-silence-ms, and what the new broker publishes
    meanwhile never reaches it. Once its new subscription is live, today's counts are read
    again from the event log: they match the database, not only what the stream brought."""
    broker = make_broker()
    dash = dashboard(broker, broker_silence_ms=1500)
    grid = grid_of(pg, TOWN)

    def submit(serving, n, tag):
        c = serving.intake()
        for i in range(n):
            c.submit(source="dash-gap", external_id=f"{tag}-{i}", category="LH-0101",
                     location={"unit": grid})

    def received():
        return dash.json("/api/summary")["self"]["total"]["received"]

    def in_db():
        # a connection of its own: replacing the broker ends the database's sessions
        conn = psycopg2.connect(dsn)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM incident_event WHERE kind = 'receive' "
                            f"AND at >= {today_start_sql()}")
                return cur.fetchone()[0]
        finally:
            conn.close()

    submit(broker, 3, "before")
    gdclient.wait_until(lambda: received() == in_db() == 3, 10, "the first three counted")
    serving = faultload.replace_broker(make_broker, broker, "hung")
    try:
        submit(serving, 5, "gap")   # the dashboard still listens to the frozen broker
        assert received() == 3
        gdclient.wait_until(lambda: received() == in_db() == 8, 15,
                            "today's intake read again from the database")
        submit(serving, 2, "after")  # and the stream goes on, none counted twice
        gdclient.wait_until(lambda: received() == in_db() == 10, 10,
                            "the stream counted after the reseed")
        time.sleep(0.5)
        assert received() == 10
        m = parse_metrics(dash.get("/metrics")[2].decode())
        assert m["griddispatch_dashboard_reseeds_total"] >= 1, m
        assert "today's counts read again from the event log" in dash.text()
    finally:
        faultload.end_frozen(broker)


# ---- the drill-down maps ----

SVG = "{http://www.w3.org/2000/svg}"


def square(lon, lat, size):
    return (f"POLYGON(({lon} {lat},{lon + size} {lat},{lon + size} {lat + size},"
            f"{lon} {lat + size},{lon} {lat}))")


def put_boundaries(conn, polygons):
    """unit -> WKT polygon, as an import would store them."""
    with conn.cursor() as cur:
        for unit, wkt in polygons.items():
            cur.execute("INSERT INTO unit_boundary (unit, geom) "
                        "VALUES (%s, ST_Multi(ST_GeomFromText(%s, 4326))) "
                        "ON CONFLICT (unit) DO UPDATE SET geom = excluded.geom", (unit, wkt))


def children(pg, unit, level):
    return [r["code"] for r in pg.all("SELECT code FROM org_unit WHERE parent = %s AND level = %s "
                                      "ORDER BY code", unit, level)]


def path_box(d):
    """Bounding box of SVG path data as ST_AsSVG writes it (M x y, then relative l moves)."""
    xs, ys = [], []
    x = y = 0.0
    for part in re.findall(r"[MlLz]|-?[0-9.]+(?:\s+-?[0-9.]+)?", d):
        if part in ("M", "l", "L", "z"):
            mode = part
            continue
        dx, dy = (float(v) for v in part.split())
        if mode == "M":
            x, y = dx, dy
            mode = "l"
        else:
            x, y = x + dx, y + dy
        xs.append(x)
        ys.append(y)
    return min(xs), min(ys), max(xs), max(ys)


def map_svg(dash, unit):
    import xml.etree.ElementTree as ET
    status, headers, body = dash.get(f"/api/map.svg?unit={unit}")
    assert status == 200, (status, body)
    assert headers["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(body)
    paths = root.findall(f"{SVG}g/{SVG}path")
    labels = {t.get("data-unit"): "".join(t.itertext()) for t in root.findall(f"{SVG}g/{SVG}text")}
    return root, paths, labels, len(body)


def town_tiles(pg, town, lon, lat, size=0.01):
    """Square boundaries for the grids of `town`: its communities in rows of four eastwards
    and northwards from (lon, lat), each a size x size square cut into one vertical strip per
    grid."""
    tiles = {}
    for i, c in enumerate(children(pg, town, "community")):
        grids = children(pg, c, "grid")
        w = size / len(grids)
        x, y = lon + i % 4 * size, lat + i // 4 * size
        for j, g in enumerate(grids):
            x0, x1 = x + j * w, x + (j + 1) * w
            tiles[g] = (f"POLYGON(({x0} {y},{x1} {y},{x1} {y + size},{x0} {y + size},"
                        f"{x0} {y}))")
    return tiles


def test_map_has_one_outline_per_grid_with_its_open_and_overdue_counts(make_broker, dashboard,
                                                                       pg, dsn):
    """Grids of one community get square boundaries side by side (the community and its town
    none of their own, and one grid only its micro-grids': they are drawn as the unions of the
    boundaries below them). Incidents located in two of
    the grids (grid codes given) show on the community's map as open and overdue counts, on the
    town's map on the community and on the district's map on the town. A SIGHUP reads the
    boundaries again, on a thread of its own: the dashboard answers while the read waits."""
    from demo import COMMUNITY, TOWN as DEMO_TOWN
    from faultload import CAT_FAST, make_fast_category
    pg.conn.cursor().execute("DELETE FROM unit_boundary")   # this test's boundaries only
    make_fast_category(pg, sign_s=1, resolve_s=600)
    grids = children(pg, COMMUNITY, "grid")
    assert len(grids) >= 3
    lon, lat, size = 106.52, 29.40, 0.004
    squares = {g: square(lon + i * size, lat, size) for i, g in enumerate(grids)}
    # the third grid has no boundary of its own, only its micro-grids (strips of its square):
    # it is drawn as their union
    micro = children(pg, grids[2], "micro_grid")
    assert micro
    del squares[grids[2]]
    w = size / len(micro)
    for j, mg in enumerate(micro):
        x0, x1 = lon + 2 * size + j * w, lon + 2 * size + (j + 1) * w
        squares[mg] = (f"POLYGON(({x0} {lat},{x1} {lat},{x1} {lat + size},{x0} {lat + size},"
                       f"{x0} {lat}))")
    put_boundaries(pg.conn, squares)
    broker = make_broker()
    dash = dashboard(broker)
    gdclient.wait_until(lambda: dash.get("/api/map.svg")[0] != 503, 15, "the boundaries read")
    c = broker.intake()
    for i in range(3):
        assert c.submit(source="map", external_id=f"fast-{i}", category=CAT_FAST,
                        location={"unit": grids[0]}).type == "ACCEPTED"
    for i in range(2):
        assert c.submit(source="map", external_id=f"slow-{i}", category="LH-0101",
                        location={"unit": grids[1]}).type == "ACCEPTED"

    def counts(unit):
        _, paths, _, _ = map_svg(dash, unit)
        return {p.get("data-unit"): (int(p.get("data-open")), int(p.get("data-overdue")))
                for p in paths}
    want = {g: (0, 0) for g in grids}
    want[grids[0]], want[grids[1]] = (3, 3), (2, 0)
    gdclient.wait_until(lambda: counts(COMMUNITY) == want, 15, "the grids' counts on the map")

    root, paths, labels, size_community = map_svg(dash, COMMUNITY)
    assert [p.get("data-unit") for p in paths] == grids, "one outline per grid"
    names = {r["code"]: r["name"] for r in pg.all("SELECT code, name FROM org_unit")}
    classes = {p.get("data-unit"): p.get("class") for p in paths}
    assert classes[grids[0]] == "m-bad" and classes[grids[1]] == "m-ok"
    assert all(classes[g] == "m-idle" for g in grids[2:])
    for p in paths:
        g = p.get("data-unit")
        title = p.find(f"{SVG}title").text
        assert names[g] in title and g in title
        assert f"open {want[g][0]}" in title and f"overdue {want[g][1]}" in title
        short = names[g].removeprefix(names[COMMUNITY])    # 第1网格 on 融门社区's map
        assert short and short != names[g], "the demo's grid names repeat their community's"
        assert labels[g] == f"{short}{want[g][0]} / {want[g][1]}"
    # west to east in a row, each square drawn cos(latitude) as wide as it is high
    boxes = [path_box(p.get("d")) for p in paths]
    for (x0, y0, x1, y1), nxt in zip(boxes, boxes[1:] + [None]):
        aspect = (x1 - x0) / (y1 - y0)
        assert abs(aspect - math.cos(math.radians(lat + size / 2))) < 0.01, aspect
        if nxt:
            assert abs(nxt[0] - x1) < 0.2 and abs(nxt[1] - y0) < 0.2
    vb = [float(v) for v in root.get("viewBox").split()]
    assert abs(vb[2] - 12 - max(b[2] for b in boxes)) < 0.2, "the box is the grids' extent"
    assert max(vb[2], vb[3]) - 12 == pytest.approx(1000, abs=0.2)

    # the levels above: the community on its town's map, the town on the district's
    _, town_paths, town_labels, _ = map_svg(dash, DEMO_TOWN)
    assert [(p.get("data-unit"), p.get("data-open"), p.get("data-overdue"))
            for p in town_paths] == [(COMMUNITY, "5", "3")]
    assert town_paths[0].get("class") == "m-bad drill"
    _, district_paths, _, size_district = map_svg(dash, "500113")
    assert [(p.get("data-unit"), p.get("data-open")) for p in district_paths] == [(DEMO_TOWN, "5")]
    # a unit none of whose children has a boundary, a grid, an unknown unit
    for unit, code in ((OTHER_TOWN, "no_map"), (grids[0], "no_map"), ("nope", "not_found")):
        status, _, body = dash.get(f"/api/map.svg?unit={unit}")
        assert status == 404 and json.loads(body)["error"] == code, (unit, body)

    # a boundary added for another community, read again on SIGHUP; while the read waits for
    # a lock on the table, the dashboard goes on answering
    other = children(pg, DEMO_TOWN, "community")[1]
    blocker = psycopg2.connect(dsn)
    try:
        put_boundaries(blocker, {other: square(lon, lat + size, size)})
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE unit_boundary IN ACCESS EXCLUSIVE MODE")
        dash.proc.send_signal(signal.SIGHUP)
        gdclient.wait_until(lambda: "reading the boundaries for the maps again" in dash.text(),
                            5, "the SIGHUP seen")
        for _ in range(5):
            t0 = time.monotonic()
            assert dash.json("/api/summary")["self"]["total"]["received"] == 5
            assert len(map_svg(dash, DEMO_TOWN)[1]) == 1, "the maps read before, meanwhile"
            assert time.monotonic() - t0 < 1.0
            time.sleep(0.2)
        blocker.commit()
    finally:
        blocker.close()
    gdclient.wait_until(lambda: len(map_svg(dash, DEMO_TOWN)[1]) == 2, 15,
                        "the new boundary on the town's map")
    m = parse_metrics(dash.get("/metrics")[2].decode())
    assert m["griddispatch_dashboard_map_loads_total"] == 2
    assert m["griddispatch_dashboard_map_shapes"] == len(grids) + 2 + 1
    print(f"map sizes: community {size_community} B, district {size_district} B")

    # a stop while a read waits for the lock: the read is cancelled, the dashboard ends at once
    blocker = psycopg2.connect(dsn)
    try:
        with blocker.cursor() as cur:
            cur.execute("LOCK TABLE unit_boundary IN ACCESS EXCLUSIVE MODE")
        seen = dash.text().count("reading the boundaries for the maps again")
        dash.proc.send_signal(signal.SIGHUP)
        gdclient.wait_until(
            lambda: dash.text().count("reading the boundaries for the maps again") > seen, 5,
            "the second SIGHUP seen")
        time.sleep(0.5)
        t0 = time.monotonic()
        dash.stop()
        assert time.monotonic() - t0 < 3, "the stop waited for the read"
    finally:
        blocker.close()


# ---- the example subscriber ----

def test_status_subscriber_example(make_broker, pg):
    broker = make_broker()
    example = HERE.parents[1] / "workers" / "examples" / "status_subscriber.py"
    proc = subprocess.Popen(["/usr/bin/python3", str(example), "--status", broker.status_ep,
                             "--intake", broker.intake_ep, "--seconds", "4", "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.8)
    load = Load(broker, pg, window=2)
    time.sleep(1.5)
    load.stop()
    settle(pg, load)
    load.stop_workers()
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    accepted = sum(len(s.accepted) for s in load.subs)
    assert summary["transitions"]["receive"] == accepted
    assert summary["transitions"]["resolve"] == accepted
    assert summary["broker_messages"] >= 2 and summary["snapshot_queues"] >= 0
    assert summary["decode_errors"] == 0


@pytest.mark.parametrize("how", faultload.REPLACEMENTS)
def test_status_subscriber_example_follows_a_new_broker_on_the_same_endpoint(make_broker, pg,
                                                                               how):
    """status_subscriber.py --topic inc. goes on printing transitions across a broker killed
    and restarted, and across a hung broker replaced by a second one (as the dashboard)."""
    broker = make_broker()
    example = HERE.parents[1] / "workers" / "examples" / "status_subscriber.py"
    proc = subprocess.Popen(["/usr/bin/python3", str(example), "--status", broker.status_ep,
                             "--intake", broker.intake_ep, "--topic", "inc.", "--seconds", "60"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []

    def read():
        for line in proc.stdout:
            lines.append(line)
    threading.Thread(target=read, daemon=True).start()
    grid = grid_of(pg, TOWN)
    serving = broker
    submitted = []

    def printed_after(n):
        """Submits one more incident; true once one of those from the n-th on was printed."""
        submitted.append(serving.intake().submit(
            source="example-restart", external_id=f"r-{len(submitted)}", category="LH-0101",
            location={"unit": grid})["incident_id"])
        time.sleep(0.3)
        shown = {int(m) for m in re.findall(r" #(\d+) v1 receive ", "".join(list(lines)))}
        return any(i in shown for i in submitted[n:])
    try:
        gdclient.wait_until(lambda: printed_after(0), 10, "a transition before the broker goes")
        serving = faultload.replace_broker(make_broker, broker, how)
        n = len(submitted)
        gdclient.wait_until(lambda: printed_after(n), 15,
                            f"a transition printed after {how} and a new broker")
    finally:
        if serving is not broker:
            faultload.end_frozen(broker)
        proc.terminate()
        proc.wait(10)
    out = "".join(lines)
    assert "db up" not in out, "broker messages are shown only when a --topic asks for them"
    if how == "hung":
        assert "subscribed anew" in out, out[-3000:]


# ---- gdctl top ----

def test_gdctl_top_redraws_in_place_with_the_databases_numbers(make_broker, pg, dsn):
    broker = make_broker()
    load = Load(broker, pg, window=2)
    time.sleep(1)
    load.stop()
    settle(pg, load)
    gdctl = BUILD / "workers" / "gdctl" / "gdctl"
    r = subprocess.run([str(gdctl), "top", "--status", broker.status_ep, "--intake",
                        broker.intake_ep, "--db", dsn, "--interval", "0.3", "--count", "4"],
                       capture_output=True, text=True, timeout=30)
    load.stop_workers()
    assert r.returncode == 0, r.stderr
    frames = r.stdout.split("\033[H\033[2J")
    assert frames[0] == "" and len(frames) == 5, repr(r.stdout[:300])
    last = frames[-1].splitlines()
    assert last[0].startswith("gdctl top") and "broker: up" in last[0]
    town = next(line for line in last if f" {TOWN} " in line or line.rstrip().endswith(TOWN)
                or f" {TOWN}" in line)
    queued, flight, overdue, oldest, intake, solved, ontime = town.split()[-7:]
    assert int(intake) == db_today(pg, "receive", TOWN)
    assert int(solved) == db_today(pg, "resolve", TOWN)
    assert (queued, flight, overdue, ontime) == ("0", "0", "0", "100.0%")
    district = last[3].split()
    assert int(district[-3]) == db_today(pg, "receive")
    # a unit below the district, and a plain (no ANSI) frame
    r = subprocess.run([str(gdctl), "top", "--status", broker.status_ep, "--db", dsn,
                        "--unit", TOWN, "--interval", "0.2", "--count", "1", "--plain"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "\033[" not in r.stdout and r.stdout.endswith("\f\n"), r
    assert f"({TOWN})" in r.stdout.splitlines()[0]
    r = subprocess.run([str(gdctl), "top", "--status", broker.status_ep, "--db", dsn,
                        "--unit", "nope", "--count", "1"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 4, r
