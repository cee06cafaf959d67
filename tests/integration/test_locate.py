"""Location routing: a SUBMIT placed by its position (grid boundaries) or its address.

The broker reads the grid and micro-grid boundaries and the address table at
start and on SIGHUP and places points in memory (GEOS); these tests write the
tables with SQL, start or signal the broker, and compare its answers with
PostGIS's own (ST_Covers) and with the SQL normalisation gd_address_norm().

The test boundaries are squares of 0.01 degree near Longzhouwan (龙洲湾):

    lat 29.42 +--------+--------+
              | GRID_C | GRID_D |
    lat 29.41 +--------+--------+        TOWN2_GRID: lon 106.60-106.61,
              | GRID_A | GRID_B |                    lat 29.40-29.41
    lat 29.40 +--------+--------+
           lon 106.50  106.51   106.52

with MICRO_A (a micro-grid of GRID_A) in GRID_A's lower left quarter.
"""

import random
import signal
import struct

import pytest
import zmq

import gdclient
from demo import CAT_GRID, MICRO_GRID
from test_security import Keys, recv, send  # noqa: F401  (CurveZMQ helpers)

GRID_A = "500113001001001"
GRID_B = "500113001001002"
GRID_C = "500113001001003"
GRID_D = "500113001001004"
MICRO_A = MICRO_GRID                     # 50011300100100101, under GRID_A
TOWN2_GRID = "500113002001001"           # a grid of another town (华岸社区第1网格)
TOWN_A = "500113001"


def square(lon, lat, size=0.01):
    x0, y0, x1, y1 = lon, lat, round(lon + size, 6), round(lat + size, 6)
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


BOUNDARIES = {
    GRID_A: square(106.50, 29.40),
    GRID_B: square(106.51, 29.40),
    GRID_C: square(106.50, 29.41),
    GRID_D: square(106.51, 29.41),
    MICRO_A: square(106.50, 29.40, 0.005),
    TOWN2_GRID: square(106.60, 29.40),
}


def set_boundaries(pg, shapes):
    """Replaces every boundary with `shapes` (unit -> WKT)."""
    pg.all("DELETE FROM unit_boundary RETURNING unit")
    for unit, wkt in shapes.items():
        pg.all("INSERT INTO unit_boundary (unit, geom) "
               "VALUES (%s, ST_Multi(ST_GeomFromText(%s, 4326))) RETURNING unit", unit, wkt)


def add_address(pg, road, number, lat, lon, label=""):
    """An address row, road and number normalised by SQL's own rule."""
    pg.all("INSERT INTO address_point (road, number, label, geom) "
           "VALUES (gd_address_norm(%s), gd_address_norm(%s), %s, "
           "ST_SetSRID(ST_MakePoint(%s, %s), 4326)) RETURNING road",
           road, number, label, lon, lat)


def reload(broker, what="boundaries and addresses reloaded"):
    n = broker.log_text().count(what)
    broker.proc.send_signal(signal.SIGHUP)
    gdclient.wait_until(lambda: broker.log_text().count(what) > n, 10, "the reload", broker.hub)


@pytest.fixture
def located(make_broker, pg):
    """A broker started with the test boundaries and addresses."""
    set_boundaries(pg, BOUNDARIES)
    pg.all("DELETE FROM address_point RETURNING road")
    add_address(pg, "龙洲大道", "123", 29.405, 106.515, "龙洲大道123号")      # in GRID_B
    add_address(pg, "龙洲大道", "8号附1号", 29.415, 106.515)                # in GRID_D
    add_address(pg, "鱼轻大道", "1号", 29.402, 106.502)                     # in MICRO_A
    add_address(pg, "Longzhou Ave", "88", 29.415, 106.505)                 # in GRID_C
    add_address(pg, "江滨路", "1", 29.30, 106.30)                          # in no grid
    return make_broker()


_ext = iter(range(1, 1_000_000))


def submit_at(intake, location, category=CAT_GRID, **extra):
    return intake.submit(source="app", external_id=f"L-{next(_ext):06d}", category=category,
                         location=location, **extra)


def placed(pg, acc):
    """(location_unit, located_by, receive note) of an accepted SUBMIT, from the database."""
    assert acc.type == "ACCEPTED", acc
    row = pg.incident(acc["incident_id"])
    ev = pg.events(acc["incident_id"])[0]
    assert ev["kind"] == "receive"
    assert (ev["location_unit"], ev["located_by"]) == (row["location_unit"], row["located_by"])
    return row["location_unit"], row["located_by"], ev["note"]


# ---- placing a position ----

POINTS = [
    ("inside_a_grid", 29.415, 106.515, GRID_D, GRID_D),
    ("inside_a_micro_grid_takes_the_micro_grid_and_routes_to_its_grid", 29.402, 106.502,
     MICRO_A, GRID_A),
    ("inside_the_grid_beside_its_micro_grid", 29.408, 106.508, GRID_A, GRID_A),
    ("on_the_border_of_two_grids_takes_the_smaller_code", 29.405, 106.51, GRID_A, GRID_A),
    ("on_the_border_of_b_and_d", 29.41, 106.515, GRID_B, GRID_B),
    ("on_the_vertex_of_four_grids_takes_the_smallest_code", 29.41, 106.51, GRID_A, GRID_A),
    ("on_the_outer_vertex_of_one_grid", 29.42, 106.52, GRID_D, GRID_D),
    ("on_a_micro_grid_border_inside_its_grid", 29.405, 106.503, MICRO_A, GRID_A),
    ("in_another_town", 29.405, 106.605, TOWN2_GRID, TOWN2_GRID),
]


@pytest.mark.parametrize("lat,lon,unit,queue", [p[1:] for p in POINTS], ids=[p[0] for p in POINTS])
def test_position_is_placed_in_the_finest_covering_unit(located, pg, lat, lon, unit, queue):
    acc = submit_at(located.intake(), {"lat": lat, "lon": lon})
    assert acc["queue"] == queue, acc
    assert placed(pg, acc) == (unit, "position", "")
    row = pg.incident(acc["incident_id"])
    assert (row["lat"], row["lon"]) == (lat, lon), "the position itself is kept"


def test_position_in_no_grid_goes_to_triage_as_outside_grids(located, pg):
    acc = submit_at(located.intake(), {"lat": 29.0, "lon": 106.0})
    assert acc["queue"] == "triage"
    assert placed(pg, acc) == ("", "", "outside_grids")


def test_given_unit_wins_over_a_position(located, pg):
    acc = submit_at(located.intake(), {"unit": GRID_C, "lat": 29.405, "lon": 106.515})
    assert acc["queue"] == GRID_C
    assert placed(pg, acc) == (GRID_C, "given", "")


def test_unknown_unit_with_a_position_is_placed_by_the_position(located, pg):
    acc = submit_at(located.intake(), {"unit": "500113999999999", "lat": 29.405,
                                       "lon": 106.515})
    assert acc["queue"] == GRID_B
    assert placed(pg, acc) == (GRID_B, "position", "")


def test_unknown_unit_alone_goes_to_triage_as_unknown_unit(located, pg):
    acc = submit_at(located.intake(), {"unit": "500113999999999"})
    assert acc["queue"] == "triage"
    assert placed(pg, acc) == ("500113999999999", "", "unknown_unit")


def test_lat_without_lon_is_rejected_missing_field(located, pg):
    r = submit_at(located.intake(), {"lat": 29.405})
    assert r.type == "REJECTED" and r["code"] == "missing_field", r
    assert r["field"] == "location.lon" and "location.lon" in r["message"], r
    r = submit_at(located.intake(), {"lon": 106.5})
    assert (r["code"], r["field"]) == ("missing_field", "location.lat"), r
    assert pg.scalar("SELECT count(*) FROM incident") == 0


@pytest.mark.parametrize("lat,lon,field", [(90.5, 106.5, "location.lat"),
                                           (-91.0, 106.5, "location.lat"),
                                           (29.4, 180.01, "location.lon"),
                                           (29.4, -200.0, "location.lon")])
def test_coordinates_out_of_range_are_rejected_bad_value(located, pg, lat, lon, field):
    r = submit_at(located.intake(), {"lat": lat, "lon": lon})
    assert r.type == "REJECTED" and r["code"] == "bad_value", r
    assert r["field"] == field and field in r["message"], r
    assert pg.scalar("SELECT count(*) FROM incident") == 0


def test_placement_agrees_with_postgis_st_covers(located, pg):
    """A few hundred points (random, plus every vertex and edge midpoint of
    the test squares) get the unit PostGIS gives: the finest level that
    covers them, then the smallest code."""
    rng = random.Random(15)
    points = [(rng.uniform(29.395, 29.425), rng.uniform(106.495, 106.525)) for _ in range(250)]
    points += [(rng.uniform(29.395, 29.415), rng.uniform(106.595, 106.615)) for _ in range(50)]
    for lat in (29.40, 29.405, 29.41, 29.415, 29.42):
        for lon in (106.50, 106.505, 106.51, 106.515, 106.52):
            points.append((lat, lon))
    intake = located.intake()
    mismatches = []
    for lat, lon in points:
        want = pg.scalar(
            "SELECT coalesce((SELECT b.unit FROM unit_boundary b JOIN org_unit o "
            "ON o.code = b.unit WHERE o.level IN ('grid', 'micro_grid') "
            "AND ST_Covers(b.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) "
            "ORDER BY o.level = 'micro_grid' DESC, b.unit COLLATE \"C\" LIMIT 1), '')", lon, lat)
        got = placed(pg, submit_at(intake, {"lat": lat, "lon": lon}))[0]
        if got != want:
            mismatches.append((lat, lon, got, want))
    assert not mismatches, mismatches
    seen = {r["location_unit"] for r in pg.all("SELECT location_unit FROM incident")}
    assert set(BOUNDARIES) | {""} <= seen, "every test unit, and no unit, came up"


# ---- addresses ----

ADDRESSES = [
    ("hao_given_table_without", "龙洲大道123号", GRID_B, GRID_B),
    ("no_hao_given", "龙洲大道123", GRID_B, GRID_B),
    ("full_width_digits", "龙洲大道１２３号", GRID_B, GRID_B),
    ("spaces_and_ideographic_space", " 龙洲　大道 123 号", GRID_B, GRID_B),
    ("number_with_a_sub_number", "龙洲大道8号附1号", GRID_D, GRID_D),
    ("table_with_hao_given_without", "鱼轻大道 1", MICRO_A, GRID_A),
    ("table_with_hao_given_with", "鱼轻大道1号", MICRO_A, GRID_A),
    ("english_mixed_case", "LONGZHOU Ave 88", GRID_C, GRID_C),
    ("full_width_letters", "Ｌｏｎｇｚｈｏｕ　Ａｖｅ　８８", GRID_C, GRID_C),
]


@pytest.mark.parametrize("address,unit,queue", [a[1:] for a in ADDRESSES],
                         ids=[a[0] for a in ADDRESSES])
def test_address_is_placed_through_the_address_table(located, pg, address, unit, queue):
    acc = submit_at(located.intake(), {"address": address})
    assert acc["queue"] == queue, acc
    assert placed(pg, acc) == (unit, "address", "")
    assert pg.incident(acc["incident_id"])["address"] == address, "kept as written"


def test_address_that_matches_nothing_goes_to_triage_as_address_unmatched(located, pg):
    intake = located.intake()
    for address in ("龙洲大道999号", "无名路12号", "龙洲大道", "123", "龙洲大道123号附近",
                    "巴南区龙洲大道123号", "龙洲大道8号"):
        acc = submit_at(intake, {"address": address})
        assert acc["queue"] == "triage", (address, acc)
        assert placed(pg, acc) == ("", "", "address_unmatched"), address


def test_matched_address_outside_every_grid_is_outside_grids(located, pg):
    acc = submit_at(located.intake(), {"address": "江滨路1号"})
    assert acc["queue"] == "triage"
    assert placed(pg, acc) == ("", "", "outside_grids")


def test_a_position_wins_over_an_address(located, pg):
    acc = submit_at(located.intake(), {"address": "龙洲大道123号", "lat": 29.415,
                                       "lon": 106.505})
    assert placed(pg, acc) == (GRID_C, "position", "")


# Roads the C rule and gd_address_norm() must normalise alike: each row is
# written normalised by SQL, each SUBMIT normalised by the broker. The rule
# changes full-width ASCII forms, a few blanks and ASCII case, nothing else.
TRICKY_ROADS = [
    "ＡＢＣ路",                  # full-width letters
    "！＂＃（）＿～巷",          # full-width punctuation, both ends of the range
    "Ab\u00a0C\u3000d",          # NO-BREAK SPACE, IDEOGRAPHIC SPACE
    "x\ty\nz\x0b\x0c\r街",         # ASCII blanks
    "ΑΘΗΝΑ Street",              # Greek capitals stay capitals
    "УЛИЦА Ленина",              # so do Cyrillic ones
    "Kelvin\u212a街",             # KELVIN SIGN: no Unicode normalisation
    "Ⅻ巷",                      # ROMAN NUMERAL TWELVE: kept
    "㍿大厦",                    # SQUARE KABUSIKI-GAISYA: kept
    "Cafe\u0301路",               # e + COMBINING ACUTE: not composed
    "a\u2028b\u1680c\u2009d路",    # other Unicode spaces: kept
    "①号路",                     # CIRCLED DIGIT ONE: not a digit
    "\uff00\uff5f路",              # just outside the full-width range: kept
]


def test_address_key_is_normalised_as_sql_gd_address_norm(located, pg):
    for i, road in enumerate(TRICKY_ROADS):
        add_address(pg, road, str(500 + i), 29.415, 106.515)     # in GRID_D
    reload(located)
    intake = located.intake()
    for i, road in enumerate(TRICKY_ROADS):
        number = "".join(chr(ord("０") + int(d)) for d in str(500 + i))   # full-width
        acc = submit_at(intake, {"address": f"{road}{number}号"})
        assert placed(pg, acc) == (GRID_D, "address", ""), (road, pg.scalar(
            "SELECT gd_address_norm(%s)", road))


# ---- what clients see ----

def test_query_delivery_and_status_show_the_unit_and_the_method(located, pg):
    status = located.status("inc.")
    intake = located.intake()
    acc = submit_at(intake, {"address": "龙洲大道123号"})
    q = intake.query(acc["incident_id"])
    assert q.type == "INCIDENT", q
    assert q["incident"]["location"]["unit"] == GRID_B
    assert q["incident"]["located_by"] == "address"
    assert q["incident"]["location"]["address"] == "龙洲大道123号"
    tr = status.topic("inc.", lambda m: m["incident_id"] == acc["incident_id"])
    assert tr["event"] == "receive" and tr["unit"] == GRID_B and tr["located_by"] == "address"
    assert tr.topic == f"inc.{TOWN_A}.500113001001.{GRID_B}"
    assert not {"lat", "lon", "address", "location"} & set(tr.body), tr.body
    w = located.worker()
    w.hello([GRID_B], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] == acc["incident_id"] and d["incident"]["located_by"] == "address"


def test_transition_of_a_position_carries_no_coordinates(located, pg):
    status = located.status("inc.")
    acc = submit_at(located.intake(), {"lat": 29.4051234, "lon": 106.5159876})
    tr = status.topic("inc.", lambda m: m["incident_id"] == acc["incident_id"])
    assert tr["located_by"] == "position" and tr["unit"] == GRID_B
    raw = b"".join(body for _, body in status.raw)
    assert b"29.405" not in raw and b"106.515" not in raw
    assert struct.pack(">d", 29.4051234) not in raw and struct.pack(">d", 106.5159876) not in raw


def test_restart_reads_the_located_unit_and_method_back(located, pg):
    intake = located.intake()
    acc = submit_at(intake, {"lat": 29.402, "lon": 106.502})
    located.restart()
    q = located.intake().query(acc["incident_id"])
    assert q["incident"]["location"]["unit"] == MICRO_A and q["incident"]["located_by"] == "position"
    w = located.worker()
    w.hello([GRID_A], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] == acc["incident_id"]
    assert d["incident"]["located_by"] == "position"
    assert d["incident"]["location"]["unit"] == MICRO_A


# ---- boundaries that change ----

def test_moved_border_applies_to_new_incidents_and_not_to_routed_ones(located, pg):
    """A re-import moves GRID_A's east border from 106.51 to 106.515 (taking
    the west half of GRID_B); after SIGHUP a point there lands in GRID_A,
    while the incident placed there before keeps GRID_B."""
    intake = located.intake()
    before = submit_at(intake, {"lat": 29.405, "lon": 106.512})
    assert placed(pg, before)[0] == GRID_B
    pg.all("UPDATE unit_boundary SET geom = ST_Multi(ST_GeomFromText(%s, 4326)), "
           "updated_at = now() WHERE unit = %s RETURNING unit",
           "POLYGON((106.5 29.4,106.515 29.4,106.515 29.41,106.5 29.41,106.5 29.4))", GRID_A)
    pg.all("UPDATE unit_boundary SET geom = ST_Multi(ST_GeomFromText(%s, 4326)), "
           "updated_at = now() WHERE unit = %s RETURNING unit",
           "POLYGON((106.515 29.4,106.52 29.4,106.52 29.41,106.515 29.41,106.515 29.4))", GRID_B)
    reload(located)
    after = submit_at(intake, {"lat": 29.405, "lon": 106.512})
    assert after["queue"] == GRID_A
    assert placed(pg, after) == (GRID_A, "position", "")
    assert placed(pg, before) == (GRID_B, "position", "")
    assert pg.incident(before["incident_id"])["queue"] == GRID_B
    q = intake.query(before["incident_id"])
    assert q["incident"]["location"]["unit"] == GRID_B and q["incident"]["queue"] == GRID_B


def test_reload_beyond_the_vertex_limit_keeps_the_boundaries_in_force(make_broker, pg):
    set_boundaries(pg, {GRID_A: BOUNDARIES[GRID_A], GRID_B: BOUNDARIES[GRID_B]})
    broker = make_broker(max_boundary_vertices=40)
    intake = broker.intake()
    assert placed(pg, submit_at(intake, {"lat": 29.405, "lon": 106.515}))[0] == GRID_B
    ring = ",".join(f"{106.52 + 0.0001 * i} 29.41" for i in range(60))
    pg.all("INSERT INTO unit_boundary (unit, geom) VALUES (%s, ST_Multi(ST_GeomFromText("
           "%s, 4326))) RETURNING unit", GRID_D,
           f"POLYGON((106.51 29.41,{ring},106.526 29.42,106.51 29.42,106.51 29.41))")
    reload(broker, "boundaries and addresses not reloaded")
    log = broker.log_text()
    assert "--max-boundary-vertices (40)" in log and "stay" in log
    assert placed(pg, submit_at(intake, {"lat": 29.405, "lon": 106.515}))[0] == GRID_B
    acc = submit_at(intake, {"lat": 29.415, "lon": 106.515})
    assert placed(pg, acc) == ("", "", "outside_grids"), "GRID_D's new boundary is not in force"


def test_start_without_boundaries_sends_positions_to_triage(make_broker, pg):
    set_boundaries(pg, {})
    broker = make_broker()
    assert "no grid boundaries" in broker.log_text()
    acc = submit_at(broker.intake(), {"lat": 29.405, "lon": 106.515})
    assert acc["queue"] == "triage"
    assert placed(pg, acc) == ("", "", "outside_grids")
    set_boundaries(pg, BOUNDARIES)
    reload(broker)
    assert placed(pg, submit_at(broker.intake(), {"lat": 29.405, "lon": 106.515}))[0] == GRID_B


def test_address_limit_refuses_a_larger_table(make_broker, pg):
    set_boundaries(pg, BOUNDARIES)
    pg.all("DELETE FROM address_point RETURNING road")
    add_address(pg, "龙洲大道", "123", 29.405, 106.515)
    broker = make_broker(max_addresses=1)
    add_address(pg, "龙洲大道", "124", 29.405, 106.515)
    reload(broker, "boundaries and addresses not reloaded")
    assert "more than --max-addresses (1)" in broker.log_text()
    intake = broker.intake()
    assert placed(pg, submit_at(intake, {"address": "龙洲大道123号"}))[0] == GRID_B
    assert placed(pg, submit_at(intake, {"address": "龙洲大道124号"}))[2] == "address_unmatched"


# ---- scope (CurveZMQ) ----

def test_scoped_app_submitting_a_position_in_another_town_is_denied(make_broker, pg, tmp_path):
    set_boundaries(pg, BOUNDARIES)
    keys = Keys(str(tmp_path))
    key_file, principals = keys.write([("town-a-app", "intake", TOWN_A)])
    broker = make_broker(curve_key=key_file, principals=principals)
    ctx = zmq.Context()
    s = ctx.socket(zmq.DEALER)
    s.setsockopt(zmq.LINGER, 0)
    s.curve_serverkey = keys.broker[0].encode()
    s.curve_publickey, s.curve_secretkey = (k.encode() for k in keys.of["town-a-app"])
    s.connect(broker.intake_ep)
    try:
        send(s, "SUBMIT", {"ref": 1, "source": "app", "external_id": "in-town-a",
                           "category": CAT_GRID, "location": {"lat": 29.405, "lon": 106.515}})
        m = recv(s)
        assert m[0] == "ACCEPTED" and m[1]["queue"] == GRID_B, m
        send(s, "SUBMIT", {"ref": 2, "source": "app", "external_id": "in-town-2",
                           "category": CAT_GRID, "location": {"lat": 29.405, "lon": 106.605}})
        m = recv(s)
        assert m[0] == "REJECTED" and m[1]["code"] == "denied", m
        assert m[1]["field"] == "location" and TOWN2_GRID in m[1]["message"], m
        send(s, "SUBMIT", {"ref": 3, "source": "app", "external_id": "a-unit-but-town-2",
                           "category": CAT_GRID,
                           "location": {"unit": "500113999999999", "lat": 29.405,
                                        "lon": 106.605}})
        assert recv(s)[1]["code"] == "denied", "an unknown unit does not hide the position"
    finally:
        s.close()
        ctx.term()
    assert pg.scalar("SELECT count(*) FROM incident") == 1
