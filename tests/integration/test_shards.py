"""A city of two shards (two gd-broker processes, two databases): gdctl --city routes each SUBMIT
to the shard that owns its town, and gdctl --city report combines the shards so that the
city-wide figures equal the ones gd_report computes over the union of both event logs."""

import io
import json
import os
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg2

import gdclient
import pytest

from conftest import Pg

CAT_NORMAL = "LH-0101"   # 暴露垃圾: admitted to grids, resolve limit in working days
CAT_FAST = "T-FAST"      # added by the test: resolve within 2 s (wall clock)
FAST_RESOLVE_S = 2


def gdctl_binary():
    p = Path(os.environ.get("GD_BUILD_DIR", "")) / "workers" / "gdctl" / "gdctl"
    if not p.is_file():
        pytest.fail(f"no gdctl at {p}: set GD_BUILD_DIR")
    return p


def gdctl(*args, timeout=30):
    env = {k: v for k, v in os.environ.items()
           if k not in ("GD_INTAKE", "GD_STATUS", "GD_DB_DSN", "GD_CITY")}
    return subprocess.run([str(gdctl_binary()), *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def json_out(r):
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert lines, f"no JSON on stdout; stderr: {r.stderr}"
    return json.loads(lines[-1])


def add_fast_category(pg):
    pg.all("INSERT INTO category (code, name, sector, admitted_level) "
           "VALUES (%s, '测试快速事项', 'safety', 'grid') RETURNING code", CAT_FAST)
    pg.all("INSERT INTO category_sla (category, priority, basis, sign_limit_s, resolve_limit_s, "
           "warn_percent, max_extension_s) VALUES (%s, 'normal', 'wall', 3600, %s, 50, 0) "
           "RETURNING category", CAT_FAST, FAST_RESOLVE_S)


def write_city(path, shards, default="east"):
    """shards: name -> (broker, dsn, towns)."""
    text = f"[city]\ndefault = {default}\n"
    for name, (b, db, towns) in shards.items():
        text += (f"\n[shard {name}]\nintake = {b.intake_ep}\nwork = {b.work_ep}\n"
                 f"status = {b.status_ep}\ndb = {db}\ntowns = {' '.join(towns)}\n")
    path.write_text(text)
    return str(path)


FAR_AWAY = ("39.90", "116.40")   # Beijing: inside no boundary of the district


def point_in_town(pg, town):
    """A point inside `town`'s boundary as (lat, lon) text: the demo
    boundary when the database has one, else a square the test adds."""
    pg.all("INSERT INTO unit_boundary (unit, geom) VALUES (%s, ST_Multi(ST_MakeEnvelope("
           "106.50, 29.40, 106.52, 29.42, 4326))) ON CONFLICT (unit) DO NOTHING "
           "RETURNING unit", town)
    row = pg.one("SELECT ST_Y(p) AS lat, ST_X(p) AS lon FROM (SELECT ST_PointOnSurface(geom) "
                 "AS p FROM unit_boundary WHERE unit = %s) q", town)
    return f"{row['lat']:.9f}", f"{row['lon']:.9f}"


def copy_into_union(src_dsn, union, offset):
    """Copies incident and incident_event of one shard into the union
    database, with incident ids moved by `offset` (ids restart per shard)."""
    src = psycopg2.connect(src_dsn)
    try:
        for table, idcol in (("incident", "id"), ("incident_event", "incident_id")):
            cols = [r["column_name"] for r in union.all(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
                "AND table_schema = 'public' AND is_generated = 'NEVER' "
                "ORDER BY ordinal_position", table)]
            sel = ", ".join(f"{c} + {offset}" if c == idcol else c for c in cols)
            buf = io.StringIO()
            with src.cursor() as cur:
                cur.copy_expert(f"COPY (SELECT {sel} FROM {table}) TO STDOUT", buf)
            buf.seek(0)
            with union.conn.cursor() as cur:
                cur.copy_expert(f"COPY {table} ({', '.join(cols)}) FROM STDIN", buf)
    finally:
        src.close()


def resolve_all(broker, queues, n):
    """One worker on `queues` takes n deliveries, signs and resolves each."""
    w = broker.worker(queues=queues, credit=n, name="网格员")
    for _ in range(n):
        d = w.deliver()
        s = w.sign(d)
        assert s.type == "OK", s
        r = w.resolve(d["incident"]["id"], s["version"], "已处理")
        assert r.type == "OK", r


@pytest.fixture
def city(tmp_path, dsn, make_db, make_broker):
    """Two shards: east owns the first half of the district's towns, west the rest."""
    east_db, west_db = dsn, make_db()
    pgs = {"east": Pg(east_db), "west": Pg(west_db)}
    for p in pgs.values():
        add_fast_category(p)
    towns = [r["code"] for r in pgs["east"].all(
        "SELECT code FROM org_unit WHERE level = 'town' ORDER BY code")]
    half = len(towns) // 2
    east = make_broker()
    west = make_broker(db=west_db)
    shards = {"east": (east, east_db, towns[:half]), "west": (west, west_db, towns[half:])}
    path = write_city(tmp_path / "city.ini", shards)

    def grid_of(town):
        return pgs["east"].scalar("SELECT code FROM org_unit WHERE level = 'grid' "
                                  "AND code LIKE %s ORDER BY code LIMIT 1", town + "%")

    yield {"file": path, "brokers": {"east": east, "west": west}, "pg": pgs,
           "dsn": {"east": east_db, "west": west_db},
           "grid": {"east": grid_of(towns[0]), "west": grid_of(towns[-1])},
           "towns": {"east": towns[:half], "west": towns[half:]}, "make_db": make_db}
    for p in pgs.values():
        p.close()


def submit(city, ext, unit, category=CAT_NORMAL):
    r = gdctl("--city", city["file"], "--json", "submit", "--source", "shard-test",
              "--external-id", ext, "--category", category, "--unit", unit,
              "--description", "分片测试")
    assert r.returncode == 0, r.stderr
    return json_out(r)


def test_a_submit_goes_to_the_shard_that_owns_its_town_and_only_there(city):
    for name in ("east", "west"):
        grid = city["grid"][name]
        out = submit(city, f"route-{name}", grid)
        assert out["shard"] == name and out["queue"] == grid, out
        here = city["pg"][name].incident_by_key("shard-test", f"route-{name}")
        assert here is not None and here["id"] == out["incident_id"]
        other = "west" if name == "east" else "east"
        assert city["pg"][other].incident_by_key("shard-test", f"route-{name}") is None
        # a retried SUBMIT goes to the same shard and is answered duplicate there
        again = submit(city, f"route-{name}", grid)
        assert again["shard"] == name and again["duplicate"] is True
        assert again["incident_id"] == out["incident_id"]


def test_a_submit_whose_town_no_shard_owns_goes_to_the_default_shards_triage(city):
    out = submit(city, "route-district", "500113")
    assert out["shard"] == "east", out
    row = city["pg"]["east"].incident_by_key("shard-test", "route-district")
    assert row is not None and row["queue"] == out["queue"]
    assert city["pg"]["west"].incident_by_key("shard-test", "route-district") is None


def test_a_bad_city_file_is_a_usage_error_that_says_why(city, tmp_path):
    bad = tmp_path / "bad.ini"
    text = Path(city["file"]).read_text()
    # west also lists east's first town
    bad.write_text(text + f"towns = {city['towns']['east'][0]}\n")
    r = gdctl("--city", str(bad), "submit", "--unit", city["grid"]["east"])
    assert r.returncode == 2
    assert f"town {city['towns']['east'][0]} is in two shards, east and west" in r.stderr
    r = gdctl("--city", str(tmp_path / "missing.ini"), "report")
    assert r.returncode == 2 and "cannot open the file" in r.stderr


def report(city, by, day_from, day_to):
    r = gdctl("--city", city["file"], "--json", "report", "--by", by, "--from", day_from,
              "--to", day_to)
    assert r.returncode == 0, r.stderr
    return json_out(r)


def test_the_city_report_equals_the_report_over_the_union_of_both_event_logs(city):
    # east: 3 on time, 1 late (3/4); west: 1 on time, 2 late (1/3). City: 4/7 = 0.5714,
    # where an average of the two rates would say 0.5417.
    plan = {"east": (3, 1), "west": (1, 2)}
    t0 = time.monotonic()
    for name, (normal, fast) in plan.items():
        grid = city["grid"][name]
        for i in range(normal):
            submit(city, f"kpi-{name}-n{i}", grid)
        for i in range(fast):
            submit(city, f"kpi-{name}-f{i}", grid, category=CAT_FAST)
    time.sleep(FAST_RESOLVE_S + 0.5)   # the fast ones are now past their resolve deadline
    for name, (normal, fast) in plan.items():
        resolve_all(city["brokers"][name], [city["grid"][name]], normal + fast)
    for name, (normal, fast) in plan.items():
        assert city["pg"][name].scalar(
            "SELECT count(*) FROM incident WHERE source = 'shard-test' AND state = 'RESOLVED'"
        ) == normal + fast

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    day_from, day_to = str(today - timedelta(days=1)), str(today + timedelta(days=1))
    combined = report(city, "district", day_from, day_to)
    assert combined["shards"] == ["east", "west"]
    assert combined["not_combined"] == ["sign_p90_s", "resolve_p90_s"]
    (row,) = combined["rows"]
    assert (row["received"], row["resolved"], row["resolved_on_time"]) == (7, 7, 4)
    assert row["on_time_rate"] == pytest.approx(0.5714, abs=1e-9)
    assert row["sign_p90_s"] is None and row["resolve_p90_s"] is None

    # the same report over the union of both shards' event logs, by SQL
    union = Pg(city["make_db"]())
    try:
        add_fast_category(union)
        copy_into_union(city["dsn"]["east"], union, 0)
        copy_into_union(city["dsn"]["west"], union, 1_000_000)
        for by in ("district", "town", "category"):
            mine = report(city, by, day_from, day_to)["rows"] if by != "district" else \
                combined["rows"]
            want = union.all(
                "SELECT * FROM gd_report(%s, %s::date::timestamp AT TIME ZONE 'Asia/Shanghai', "
                "(%s::date + 1)::timestamp AT TIME ZONE 'Asia/Shanghai', 'all', "
                "'Asia/Shanghai')", by, day_from, day_to)
            assert [r["group_key"] for r in mine] == [r["group_key"] for r in want], by
            for got, exp in zip(mine, want):
                for col in ("received", "signed", "signed_on_time", "resolved",
                            "resolved_on_time", "escalations", "returns", "extensions",
                            "closed", "reopened", "backlog"):
                    assert got[col] == exp[col], (by, got["group_key"], col)
                for col in ("on_time_rate", "satisfaction_rate"):
                    assert (got[col] is None) == (exp[col] is None), (by, col)
                    if exp[col] is not None:
                        assert got[col] == pytest.approx(float(exp[col]), abs=1e-9), (by, col)
                for col in ("sign_mean_s", "resolve_mean_s"):
                    # weighted from the shards' means, each rounded to 0.1 s: off by <= 0.1 s
                    if exp[col] is not None:
                        assert got[col] == pytest.approx(float(exp[col]), abs=0.1 + 1e-9), \
                            (by, col)
    finally:
        union.close()
    print(f"two-shard submit, resolve and report: {time.monotonic() - t0:.1f} s")


def test_a_city_report_fails_whole_when_a_shard_database_is_unreachable(city, tmp_path):
    text = Path(city["file"]).read_text().replace(city["dsn"]["west"],
                                                  "host=/nonexistent dbname=none")
    bad = tmp_path / "down.ini"
    bad.write_text(text)
    r = gdctl("--city", str(bad), "--json", "report")
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "rows" not in r.stdout and json_out(r)["error"]["code"] == "unavailable"


def test_open311_routes_by_area_and_by_the_town_boundary_else_to_the_default_shard(city, tmp_path):
    from test_open311 import KEY, Open311, check_post_response, good_form, jbody
    east, west = city["pg"]["east"], city["pg"]["west"]
    west_town = city["towns"]["west"][0]
    # the adapter's database holds the town boundaries: a square for one of west's towns
    lat, lon = point_in_town(east, west_town)
    o = Open311(None, city["dsn"]["east"], tmp_path, city=city["file"])
    try:
        def post(key, **form):
            r = check_post_response(jbody(o.post(headers={"Idempotency-Key": key},
                                                 **good_form(api_key=KEY, **form))), city=True)
            return shard_id(r["service_request_id"])

        by_area = {name: post(f"area-{name}", address_id=city["grid"][name])
                   for name in ("east", "west")}
        for name, (shard, iid) in by_area.items():
            row = city["pg"][name].incident(iid)
            assert shard == name
            assert row is not None and row["queue"] == city["grid"][name], name
        shard, inside = post("in-square", address_id="", lat=lat, long=lon)
        row = west.incident(inside)
        assert shard == "west"
        assert row is not None and row["external_id"].endswith(":in-square")
        assert east.incident_by_key("open311", row["external_id"]) is None
        shard, outside = post("off-map", address_id="", lat=FAR_AWAY[0], long=FAR_AWAY[1])
        assert shard == "east"
        row = east.incident(outside)
        assert row is not None and row["external_id"].endswith(":off-map")
        assert row["queue"] == "triage"
        assert west.incident_by_key("open311", row["external_id"]) is None
        # a retry of a routed POST lands on the same shard: the same incident
        assert post("in-square", address_id="", lat=lat, long=lon) == ("west", inside)
    finally:
        assert o.stop() == 0


def shard_id(service_request_id):
    """("east", 12) from a city's service_request_id "east-12"."""
    shard, _, number = service_request_id.rpartition("-")
    assert shard and number.isdigit(), service_request_id
    return shard, int(number)


def test_open311_reads_each_request_from_its_shard_and_merges_the_list_of_all(city, tmp_path):
    from test_open311 import KEY, Open311, check_post_response, check_request, good_form, jbody
    o = Open311(None, city["dsn"]["east"], tmp_path, city=city["file"])
    try:
        posted = []        # service_request_id, description; oldest first
        for k in range(3):
            for name in ("east", "west"):
                desc = f"读分片 {name} {k}"
                r = check_post_response(jbody(o.post(
                    headers={"Idempotency-Key": f"read-{name}-{k}"},
                    **good_form(api_key=KEY, address_id=city["grid"][name], description=desc))), city=True)
                assert shard_id(r["service_request_id"])[0] == name
                posted.append((r["service_request_id"], desc))
                time.sleep(0.01)   # distinct receive times: a defined order
        # each id reads its own shard's incident, though the numbers repeat across shards
        for rid, desc in posted:
            got = jbody(o.get(f"/requests/{rid}.json"))
            assert [g["service_request_id"] for g in got] == [rid]
            check_request(got[0])
            assert got[0]["description"] == desc
        # the list: every shard, newest first, then paged as one list
        newest_first = [rid for rid, _ in reversed(posted)]
        got = jbody(o.get("/requests.json"))
        assert [g["service_request_id"] for g in got] == newest_first
        for g in got:
            check_request(g)
        assert [g["service_request_id"] for g in jbody(o.get("/requests.json", page_size=4))] \
            == newest_first[:4]
        assert [g["service_request_id"] for g in
                jbody(o.get("/requests.json", page_size=4, page=2))] == newest_first[4:]
        pick = [posted[0][0], posted[3][0]]
        got = jbody(o.get("/requests.json", service_request_id=",".join(pick)))
        assert sorted(g["service_request_id"] for g in got) == sorted(pick)
        # a bare number is looked for in every shard: each match with its shard's name
        shard, number = shard_id(posted[0][0])
        got = [g["service_request_id"] for g in jbody(o.get(f"/requests/{number}.json"))]
        assert posted[0][0] in got and all(shard_id(g)[1] == number for g in got)
        # ids that are not this city's
        code, _, text = o.get("/requests/north-1.json")
        assert code == 404, text
        code, _, text = o.get("/requests.json", service_request_id="east-1,north-1")
        assert code == 400 and "north-1" in text, text
    finally:
        assert o.stop() == 0
    # a shard whose database is down: 503 naming it, not a list with holes
    down = tmp_path / "down.ini"
    down.write_text(Path(city["file"]).read_text().replace(city["dsn"]["west"],
                                                          "host=/nonexistent dbname=none"))
    (tmp_path / "down").mkdir()
    o = Open311(None, city["dsn"]["east"], tmp_path / "down", city=str(down))
    try:
        code, headers, text = o.get("/requests.json")
        assert code == 503 and "shard west" in text and headers.get("Retry-After"), text
        code, _, text = o.get(f"/requests/{posted[1][0]}.json")     # a west id
        assert code == 503 and "shard west" in text, text
        got = jbody(o.get(f"/requests/{posted[0][0]}.json"))         # east still answers
        assert [g["service_request_id"] for g in got] == [posted[0][0]]
    finally:
        assert o.stop() == 0


def test_open311_refuses_a_city_without_a_default_and_intake_with_city(city, tmp_path):
    from test_open311 import open311_binary
    nodefault = tmp_path / "nodefault.ini"
    nodefault.write_text(Path(city["file"]).read_text().replace("default = east\n", ""))
    keys = tmp_path / "keys"
    keys.write_text("k-000000000000001 = app\n")
    for extra, want in ((f"city = {nodefault}\n", "set [city] default"),
                        (f"city = {city['file']}\nintake = ipc:///nonexistent\n", "not both")):
        conf = tmp_path / "o.ini"
        conf.write_text(f"[open311]\ndb = {city['dsn']['east']}\nkeys_file = {keys}\n"
                        f"port = 0\n{extra}")
        r = subprocess.run([str(open311_binary()), "--config", str(conf)], capture_output=True,
                           text=True, timeout=20)
        assert r.returncode != 0 and want in r.stderr, (r.returncode, r.stderr)


def test_hotline_sends_each_order_to_its_towns_shard_and_the_rest_to_the_default(city, tmp_path):
    from test_hotline import hotline_binary
    orders = [("HL-E1", {"grid": city["grid"]["east"]}),
              ("HL-W1", {"grid": city["grid"]["west"]}),
              ("HL-W2", {"town": city["towns"]["west"][-1]}),
              ("HL-N1", {"lat": float(FAR_AWAY[0]), "lon": float(FAR_AWAY[1])}),
              ("HL-W1", {"grid": city["grid"]["west"]})]   # a repeat: a duplicate on west
    feed = tmp_path / "feed.jsonl"
    feed.write_text("".join(
        json.dumps({"ticket_no": t, "content": "分片来电", "category": CAT_NORMAL,
                    "urgency": "normal", **loc}, ensure_ascii=False) + "\n"
        for t, loc in orders))
    env = {k: v for k, v in os.environ.items() if k != "GD_INTAKE"}
    r = subprocess.run([str(hotline_binary()), "--city", city["file"], "--input", str(feed),
                        "--state", str(tmp_path / "state"), "--reject", str(tmp_path / "reject"),
                        "--timeout-ms", "2000"], capture_output=True, text=True, timeout=60,
                       env=env)
    assert r.returncode == 0, r.stderr
    assert "4 accepted, 1 duplicates, 0 rejected" in r.stderr, r.stderr
    where = {"HL-E1": "east", "HL-W1": "west", "HL-W2": "west", "HL-N1": "east"}
    for ticket, name in where.items():
        other = "west" if name == "east" else "east"
        assert city["pg"][name].incident_by_key("hotline", ticket) is not None, ticket
        assert city["pg"][other].incident_by_key("hotline", ticket) is None, ticket
    assert city["pg"]["east"].incident_by_key("hotline", "HL-N1")["queue"] == "triage"


def move_town(town, src, dst):
    script = Path(os.environ.get("GD_SOURCE_DIR", ".")) / "deploy" / "move-town.sh"
    return subprocess.run([str(script), town, src, dst], capture_output=True, text=True,
                          timeout=60)


def test_a_drained_town_moves_to_the_other_shard_without_losing_or_doubling_an_incident(city):
    east_b, west_b = city["brokers"]["east"], city["brokers"]["west"]
    east, west = city["pg"]["east"], city["pg"]["west"]
    town, stay = city["towns"]["east"][0], city["towns"]["east"][1]
    grid = city["grid"]["east"]
    stay_grid = east.scalar("SELECT code FROM org_unit WHERE level = 'grid' AND code LIKE %s "
                            "ORDER BY code LIMIT 1", stay + "%")
    moved = [submit(city, f"move-{i}", grid) for i in range(3)]
    kept = submit(city, "stay-1", stay_grid)
    assert {m["shard"] for m in moved} == {"east"} and kept["shard"] == "east"

    # not drained: refused, nothing copied
    r = move_town(town, city["dsn"]["east"], city["dsn"]["west"])
    assert r.returncode == 1 and "3 incidents of town" in r.stderr, r.stderr
    resolve_all(east_b, [grid], 3)
    intake = east_b.intake()
    for m in moved:
        done = intake.feedback(m["incident_id"], True, "满意")
        assert done.type == "DONE", done

    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    span = (str(today - timedelta(days=1)), str(today + timedelta(days=1)))
    before = report(city, "town", *span)["rows"]

    assert east_b.stop() == 0 and west_b.stop() == 0
    r = move_town(town, city["dsn"]["east"], city["dsn"]["west"])
    assert r.returncode == 0, r.stderr
    assert "copied 3 incidents" in r.stdout and "deleted 3 incidents" in r.stdout, r.stdout
    # the city file now gives the town to west, in one edit
    text = Path(city["file"]).read_text()
    lines = []
    for line in text.splitlines():
        if line.startswith("towns = ") and town in line.split():
            line = " ".join(t for t in line.split() if t != town)
        lines.append(line)
    text = "\n".join(lines) + "\n"
    text = text.replace("[shard west]\n", f"[shard west]\ntowns = {town}\n")
    Path(city["file"]).write_text(text)
    east_b.start()
    west_b.start()

    # every incident of the town is on west once, none is left on east
    assert east.scalar("SELECT count(*) FROM incident WHERE left(location_unit, 9) = %s",
                       town) == 0
    assert west.scalar("SELECT count(*) FROM incident WHERE left(location_unit, 9) = %s",
                       town) == 3
    assert east.incident_by_key("shard-test", "stay-1") is not None
    for i in range(3):
        row = west.incident_by_key("shard-test", f"move-{i}")
        assert row["state"] == "CLOSED"
        assert [e["kind"] for e in west.events(row["id"])] == \
            ["receive", "deliver", "sign", "resolve", "close"]
    # a retried SUBMIT of a moved incident is a duplicate on west, not a second incident
    again = submit(city, "move-0", grid)
    assert again["shard"] == "west" and again["duplicate"] is True, again
    assert again["incident_id"] == west.incident_by_key("shard-test", "move-0")["id"]
    assert west.scalar("SELECT count(*) FROM incident WHERE source = 'shard-test' "
                       "AND external_id = 'move-0'") == 1

    # the city's figures are those of before the move
    after = report(city, "town", *span)["rows"]
    assert after == before

    # running it again changes nothing
    r = move_town(town, city["dsn"]["east"], city["dsn"]["west"])
    assert r.returncode == 0 and "copied 0" in r.stdout and "deleted 0" in r.stdout, r.stdout


def test_a_towns_worker_and_a_shards_sla_timer_find_their_endpoint_in_the_city(city, tmp_path):
    build = Path(os.environ["GD_BUILD_DIR"]) / "workers"
    west_grid = city["grid"]["west"]
    iid = submit(city, "worker-west", west_grid)["incident_id"]
    procs = []
    try:
        wlog = open(tmp_path / "worker.log", "wb")
        procs.append(subprocess.Popen(
            [str(build / "gd-worker" / "gd-worker"), "--city", city["file"], "--queues",
             west_grid, "--handler", "/bin/true", "--name", "west-worker"],
            stdin=subprocess.DEVNULL, stdout=wlog, stderr=wlog))
        slog = open(tmp_path / "sla.log", "wb")
        procs.append(subprocess.Popen(
            [str(build / "gd-sla" / "gd-sla"), "--city", city["file"], "--city-shard", "west",
             "--name", "west-sla"], stdin=subprocess.DEVNULL, stdout=slog, stderr=slog))
        west = city["pg"]["west"]
        west.wait_incident(iid, lambda row: row["state"] == "RESOLVED", timeout=15,
                           what="resolved by the west worker")
        gdclient.wait_until(lambda: b"receiving the deadlines" in
                            (tmp_path / "sla.log").read_bytes(), 15, "gd-sla session on west")
        assert city["brokers"]["west"].work_ep.encode() in (tmp_path / "sla.log").read_bytes()
    finally:
        for p in procs:
            p.terminate()
            p.wait(15)
    # queues of two shards are refused: one gd-worker per shard
    r = subprocess.run([str(build / "gd-worker" / "gd-worker"), "--city", city["file"],
                        "--queues", f"{west_grid},{city['grid']['east']}", "--handler",
                        "/bin/true", "--check-config"], capture_output=True, text=True,
                       timeout=20)
    assert r.returncode != 0 and "are on two shards (west, east)" in r.stderr, r.stderr


def test_gdctl_routes_by_the_town_boundary_covering_lat_lon_when_given_a_database(city):
    east, west = city["pg"]["east"], city["pg"]["west"]
    lat, lon = point_in_town(east, city["towns"]["west"][0])

    def at(ext, lat, lon, *db):
        r = gdctl("--city", city["file"], *db, "--json", "submit", "--source", "shard-test",
                  "--external-id", ext, "--category", CAT_NORMAL, "--lat", lat, "--lon", lon)
        assert r.returncode == 0, r.stderr
        return json_out(r)["shard"]

    assert at("pos-in", lat, lon, "--db", city["dsn"]["east"]) == "west"
    assert west.incident_by_key("shard-test", "pos-in") is not None
    assert at("pos-out", *FAR_AWAY, "--db", city["dsn"]["east"]) == "east"
    # without a database there is no position lookup: the default shard
    assert at("pos-nodb", lat, lon) == "east"
    assert east.incident_by_key("shard-test", "pos-nodb") is not None
    assert west.incident_by_key("shard-test", "pos-nodb") is None


def test_the_city_file_of_deploy_readme_is_read_as_documented(tmp_path):
    readme = (Path(os.environ.get("GD_SOURCE_DIR", ".")) / "deploy" / "README.md").read_text()
    section = readme[readme.index("### City configuration"):]
    start = section.index("```ini\n") + 7
    example = section[start:section.index("\n```", start)]
    f = tmp_path / "city.ini"
    f.write_text(example)
    sla = Path(os.environ["GD_BUILD_DIR"]) / "workers" / "gd-sla" / "gd-sla"
    r = subprocess.run([str(sla), "--city", str(f), "--city-shard", "west", "--check-config"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "work = tcp://broker-west:7702" in r.stdout and "all = true" in r.stdout
    worker = Path(os.environ["GD_BUILD_DIR"]) / "workers" / "gd-worker" / "gd-worker"
    r = subprocess.run([str(worker), "--city", str(f), "--queues", "500113004001001",
                        "--handler", "/bin/true", "--check-config"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    assert "endpoints = tcp://broker-east:7702" in r.stdout
