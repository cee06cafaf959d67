"""Import of unit boundaries and address points (0008_geo_import.sql, gdctl import, import-csv.sh).

Needs GD_DB_DSN (tests/pg/with-pg.sh) and gdctl in GD_BUILD_DIR. Most tests get
a fresh migrated database with a small square district: two towns side by
side, each with one community holding two grids of two micro-grids. The demo
checks use the test template (conftest.py), which loads the demo district's
boundaries and addresses.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import conftest
import psycopg2
import pytest

REPO = Path(os.environ.get("GD_SOURCE_DIR") or Path(__file__).resolve().parents[2])
IMPORT = REPO / "deploy" / "import-csv.sh"
GEN_GEO = REPO / "deploy" / "demo" / "gen_geo.py"
DEMO = REPO / "deploy" / "demo" / "data"

# district 500113: [106.5, 106.9] x [29.1, 29.7]; town 001 the west half, 002
# the east half; community 001001 = town 001, its grids the south and north
# halves, their micro-grids the west and east halves of those.
ORG = [
    ["500113", "巴南区", "district", "", "", ""],
    ["500113001", "龙洲湾街道", "town", "", "500113", ""],
    ["500113002", "鱼洞街道", "town", "", "500113", ""],
    ["500113001001", "龙洲社区", "community", "", "500113001", "800"],
    ["500113002001", "鱼洞社区", "community", "", "500113002", "800"],
    ["500113001001001", "龙洲社区第1网格", "grid", "", "500113001001", "400"],
    ["500113001001002", "龙洲社区第2网格", "grid", "", "500113001001", "400"],
    ["500113002001001", "鱼洞社区第1网格", "grid", "", "500113002001", "400"],
    ["50011300100100101", "第1微网格", "micro_grid", "", "500113001001001", "50"],
    ["50011300100100102", "第2微网格", "micro_grid", "", "500113001001001", "50"],
]
DISTRICT, TOWN1, TOWN2 = "500113", "500113001", "500113002"
COMM1, COMM2 = "500113001001", "500113002001"
GRID1, GRID2, GRID3 = "500113001001001", "500113001001002", "500113002001001"
MICRO1, MICRO2 = "50011300100100101", "50011300100100102"


def rect(x0, y0, x1, y1):
    return f"POLYGON(({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0}))"


def rect_coords(x0, y0, x1, y1):
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


BASE = {
    DISTRICT: rect(106.5, 29.1, 106.9, 29.7),
    TOWN1: rect(106.5, 29.1, 106.7, 29.7),
    TOWN2: rect(106.7, 29.1, 106.9, 29.7),
    COMM1: rect(106.5, 29.1, 106.7, 29.7),
    COMM2: rect(106.7, 29.1, 106.9, 29.7),
    GRID1: rect(106.5, 29.1, 106.7, 29.4),
    GRID2: rect(106.5, 29.4, 106.7, 29.7),
    GRID3: rect(106.7, 29.1, 106.9, 29.4),
    MICRO1: rect(106.5, 29.1, 106.6, 29.4),
    MICRO2: rect(106.6, 29.1, 106.7, 29.4),
}


write_csv = conftest.write_csv


@pytest.fixture
def db(gd_schema_template, tmp_path):
    """DSN of a fresh, migrated database holding the small org tree."""
    with conftest.fresh_database(gd_schema_template, "test_geo_") as dsn:
        org = write_csv(tmp_path / "org.csv", ["code", "name", "level", "kind", "parent",
                                               "households"], ORG)
        r = subprocess.run([str(IMPORT), "org", str(org), dsn], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        yield dsn


def boundaries_csv(path, shapes):
    return write_csv(path, ["code", "wkt"], list(shapes.items()) if isinstance(shapes, dict)
                     else shapes)


def feature(code, geometry):
    return {"type": "Feature", "properties": {"code": code}, "geometry": geometry}


def write_geojson(path, features):
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features},
                               ensure_ascii=False), encoding="utf-8")
    return path


def gdctl_binary():
    p = Path(os.environ.get("GD_BUILD_DIR", "")) / "workers" / "gdctl" / "gdctl"
    if not p.is_file():
        pytest.fail(f"no gdctl at {p}: set GD_BUILD_DIR")
    return p


def gdctl(dsn, *args):
    return subprocess.run([str(gdctl_binary()), "--db", dsn, *args], capture_output=True,
                          text=True, timeout=120)


def query(dsn, sql, args=()):
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def scalar(dsn, sql, args=()):
    return query(dsn, sql, args)[0][0]


def stored(dsn):
    """Every stored boundary and address, with its time stamp: what a refused import must keep."""
    return (query(dsn, "SELECT unit, ST_AsText(geom), updated_at FROM unit_boundary ORDER BY unit"),
            query(dsn, "SELECT road, number, label, ST_AsText(geom), updated_at FROM address_point "
                       "ORDER BY road, number"),
            query(dsn, "SELECT count(*) FROM import_unit_boundary"),
            query(dsn, "SELECT count(*) FROM import_address_point"))


def load_base(dsn, tmp_path):
    r = gdctl(dsn, "import", "boundaries", str(boundaries_csv(tmp_path / "base.csv", BASE)))
    assert r.returncode == 0, r.stderr
    return r


def refused(dsn, path, kind="boundaries"):
    """Imports `path` expecting a refusal that changes nothing; returns gdctl's stderr."""
    before = stored(dsn)
    r = gdctl(dsn, "import", kind, str(path))
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "nothing was changed" in r.stderr
    assert r.stdout == ""
    assert stored(dsn) == before
    return r.stderr


# --- boundaries: good files ---------------------------------------------------

def test_csv_import_stores_every_unit_as_a_multipolygon_and_reminds_of_sighup(db, tmp_path):
    r = load_base(db, tmp_path)
    assert r.stdout.splitlines() == [
        "imported 10 unit boundaries",
        "the broker reads them at start and on SIGHUP: systemctl reload gd-broker"]
    rows = dict(query(db, "SELECT unit, ST_AsText(geom) FROM unit_boundary"))
    assert set(rows) == set(BASE)
    assert rows[MICRO1] == "MULTIPOLYGON(((106.5 29.1,106.6 29.1,106.6 29.4,106.5 29.4,106.5 29.1)))"
    assert scalar(db, "SELECT count(*) FROM import_unit_boundary") == 0


def test_geojson_import_takes_polygons_multipolygons_and_integer_codes(db, tmp_path):
    feats = [feature(DISTRICT, {"type": "Polygon", "coordinates": rect_coords(106.5, 29.1, 106.9, 29.7)}),
             feature(int(TOWN1), {"type": "MultiPolygon",
                                  "coordinates": [rect_coords(106.5, 29.1, 106.6, 29.7),
                                                  rect_coords(106.65, 29.1, 106.7, 29.7)]}),
             feature(TOWN2, {"type": "Polygon",
                             "coordinates": [[[106.7, 29.1, 300], [106.9, 29.1, 300],
                                              [106.9, 29.7, 300], [106.7, 29.7, 300],
                                              [106.7, 29.1, 300]]]})]
    r = gdctl(db, "--json", "import", "boundaries",
              str(write_geojson(tmp_path / "b.geojson", feats)))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["rows"] == 3
    rows = dict(query(db, "SELECT unit, ST_NumGeometries(geom) FROM unit_boundary"))
    assert rows == {DISTRICT: 1, TOWN1: 2, TOWN2: 1}
    # heights dropped
    assert scalar(db, "SELECT ST_NDims(geom) FROM unit_boundary WHERE unit = %s", (TOWN2,)) == 2


def test_import_csv_sh_imports_boundaries_and_addresses(db, tmp_path):
    r = subprocess.run([str(IMPORT), "boundaries", str(boundaries_csv(tmp_path / "b.csv", BASE)),
                        db], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "imported 10 unit boundaries" in r.stdout and "SIGHUP" in r.stdout
    addr = write_csv(tmp_path / "a.csv", ["road", "number", "lon", "lat"],
                     [["龙洲大道", "1号", "106.55", "29.2"]])
    r = subprocess.run([str(IMPORT), "addresses", str(addr), db], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert "imported 1 addresses" in r.stdout
    bad = boundaries_csv(tmp_path / "bad.csv", {"nope": rect(106.5, 29.1, 106.6, 29.2)})
    r = subprocess.run([str(IMPORT), "boundaries", str(bad), db], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0
    assert "line 2 (code nope): unknown unit code" in r.stderr
    assert "HINT:  Line numbers count the CSV header as line 1" in r.stderr


def test_reimport_moves_a_border_and_keeps_units_not_in_the_file(db, tmp_path):
    load_base(db, tmp_path)
    shapes = "SELECT unit, ST_AsText(geom), updated_at FROM unit_boundary"
    before = {u: (g, t) for u, g, t in query(db, shapes)}
    moved = {MICRO1: rect(106.5, 29.1, 106.63, 29.4), MICRO2: rect(106.63, 29.1, 106.7, 29.4)}
    r = gdctl(db, "import", "boundaries", str(boundaries_csv(tmp_path / "moved.csv", moved)))
    assert r.returncode == 0, r.stderr
    after = {u: (g, t) for u, g, t in query(db, shapes)}
    assert after[MICRO1][0] == ("MULTIPOLYGON(((106.5 29.1,106.63 29.1,106.63 29.4,106.5 29.4,"
                                "106.5 29.1)))")
    assert after[MICRO1][1] > before[MICRO1][1]
    for code in set(BASE) - set(moved):
        assert after[code] == before[code], code
    # the same file again rewrites nothing
    r = gdctl(db, "import", "boundaries", str(tmp_path / "moved.csv"))
    assert r.returncode == 0, r.stderr
    assert {u: (g, t) for u, g, t in query(db, shapes)} == after


# --- boundaries: refusals -------------------------------------------------------

BAD_FEATURES = [
    ("unknown unit", {"500113999": rect(106.5, 29.1, 106.6, 29.2)},
     "line 2 (code 500113999): unknown unit code: not in org_unit"),
    ("long unknown code", {"9" * 300: rect(106.5, 29.1, 106.6, 29.2)},
     "line 2 (code " + "9" * 64 + "...): unknown unit code"),
    ("not a polygon", {MICRO1: "LINESTRING(106.5 29.1,106.6 29.2)"},
     f"line 2 (code {MICRO1}): is a LineString; a boundary must be a Polygon or MultiPolygon"),
    ("ring not closed", {MICRO1: "POLYGON((106.5 29.1,106.6 29.1,106.6 29.4,106.5 29.4))"},
     f"line 2 (code {MICRO1}): a ring is not closed: its last point must repeat its first"),
    ("invalid", {MICRO1: "POLYGON((106.5 29.1,106.6 29.4,106.6 29.1,106.5 29.4,106.5 29.1))"},
     f"line 2 (code {MICRO1}): invalid polygon: Self-intersection at POINT(106.55 29.25)"),
    ("out of range", {MICRO1: rect(29.1, 106.5, 29.4, 106.6)},
     f"line 2 (code {MICRO1}): coordinates out of range: longitude 29.1 to 29.4, latitude 106.5 "
     "to 106.6; longitude must be within ±180 and latitude within ±90"),
    ("unreadable", {MICRO1: "POLYGON((106.5 29.1,"},
     f"line 2 (code {MICRO1}): geometry cannot be read: parse error"),
    ("empty geometry", {MICRO1: ""}, f"line 2 (code {MICRO1}): geometry is empty"),
    ("other SRID", {MICRO1: "SRID=4490;" + rect(106.5, 29.1, 106.6, 29.4)},
     f"line 2 (code {MICRO1}): has SRID 4490; coordinates must be longitude, latitude in WGS 84"),
    ("outside the district", {COMM1: rect(106.4, 29.1, 106.7, 29.7)},
     f"line 2 (code {COMM1}): lies outside its parent {TOWN1}'s polygon (stored): "),
    ("grid outside its community", {GRID3: rect(106.65, 29.1, 106.9, 29.4)},
     f"line 2 (code {GRID3}): lies outside its parent {COMM2}'s polygon (stored)"),
    ("overlap with a stored unit", {GRID2: rect(106.5, 29.3, 106.7, 29.7)},
     f"line 2 (code {GRID2}): overlaps grid {GRID1} (stored) by "),
]


@pytest.mark.parametrize("case", BAD_FEATURES, ids=[c[0] for c in BAD_FEATURES])
def test_a_bad_feature_is_named_and_nothing_changes(db, tmp_path, case):
    load_base(db, tmp_path)
    _, shapes, message = case
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", shapes))
    assert message in err
    assert "hint: Line numbers count the CSV header as line 1" in err


def test_every_problem_of_a_file_is_listed_in_one_refusal(db, tmp_path):
    load_base(db, tmp_path)
    rows = [[MICRO1, rect(106.5, 29.1, 106.65, 29.4)],       # overlaps line 3
            [MICRO2, rect(106.6, 29.1, 106.7, 29.4)],
            [GRID2, "LINESTRING(0 0,1 1)"],
            [MICRO1, rect(106.5, 29.1, 106.6, 29.4)],
            ["", rect(106.5, 29.1, 106.6, 29.4)]]
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", rows))
    assert "(4 problems in all, see DETAIL)" in err
    assert f"line 3 (code {MICRO2}): overlaps micro_grid {MICRO1} (line 2) by " in err
    assert f"line 4 (code {GRID2}): is a LineString" in err
    assert f"line 5 (code {MICRO1}): duplicate code, already in line 2" in err
    assert "line 6: code is empty" in err


def test_units_of_one_level_may_not_overlap_across_parents(db, tmp_path):
    load_base(db, tmp_path)
    # a grid of the other town reaching over the border into GRID1
    shapes = {COMM2: rect(106.6, 29.1, 106.9, 29.7), TOWN2: rect(106.6, 29.1, 106.9, 29.7)}
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", shapes))
    assert f"(code {TOWN2}): overlaps town {TOWN1} (stored)" in err
    assert f"(code {COMM2}): overlaps community {COMM1} (stored)" in err


def test_a_moved_border_must_bring_its_stored_children(db, tmp_path):
    load_base(db, tmp_path)
    shapes = {GRID1: rect(106.5, 29.1, 106.65, 29.4), GRID2: rect(106.5, 29.4, 106.7, 29.7)}
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", shapes))
    assert (f"(code {GRID1}): no longer covers the stored polygon of its micro_grid {MICRO2}, "
            "which this file does not replace") in err


def test_digitising_noise_within_the_tolerance_is_accepted(db, tmp_path):
    load_base(db, tmp_path)
    # 0.5 m past its grid's edge, and overlapping its sibling by 0.5 m: noise
    ok = {MICRO1: rect(106.49999, 29.1, 106.600005, 29.4)}
    r = gdctl(db, "import", "boundaries", str(boundaries_csv(tmp_path / "ok.csv", ok)))
    assert r.returncode == 0, r.stderr
    # 5 m is not
    bad = {MICRO1: rect(106.49995, 29.1, 106.6, 29.4)}
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", bad))
    assert f"lies outside its parent {GRID1}'s polygon (stored)" in err
    bad = {MICRO1: rect(106.5, 29.1, 106.60005, 29.4)}
    err = refused(db, boundaries_csv(tmp_path / "bad2.csv", bad))
    assert f"overlaps micro_grid {MICRO2} (stored)" in err


def test_without_a_district_polygon_the_outline_check_is_skipped_with_a_warning(db, tmp_path):
    shapes = {TOWN1: rect(106.5, 29.1, 106.7, 29.7), COMM1: rect(106.4, 29.1, 106.7, 29.7)}
    # the community is still checked against its town
    err = refused(db, boundaries_csv(tmp_path / "bad.csv", shapes))
    assert f"lies outside its parent {TOWN1}'s polygon (in this file)" in err
    del shapes[COMM1]
    r = gdctl(db, "import", "boundaries", str(boundaries_csv(tmp_path / "ok.csv", shapes)))
    assert r.returncode == 0, r.stderr
    assert ("WARNING: 1 units were not checked against the outline of their district 500113, "
            "which has no polygon") in r.stderr


def test_geojson_feature_problems_are_named_by_feature_number(db, tmp_path):
    load_base(db, tmp_path)
    open_ring = {"type": "Polygon", "coordinates": [[[106.5, 29.1], [106.6, 29.1], [106.6, 29.4],
                                                     [106.5, 29.4]]]}
    feats = [feature(MICRO1, open_ring),
             {"type": "Feature", "properties": {"code": MICRO2}, "geometry": None},
             {"type": "Feature", "properties": {}, "geometry": open_ring},
             {"type": "Feature", "properties": {"code": [1]}, "geometry": open_ring},
             ["not", "a", "feature"],
             feature(GRID1, {"type": "Point", "coordinates": [106.5, 29.1]})]
    err = refused(db, write_geojson(tmp_path / "bad.geojson", feats))
    assert (f"feature 1 (code {MICRO1}): a ring is not closed (the outer ring of polygon 1): its "
            "last point must repeat its first") in err
    assert f"feature 2 (code {MICRO2}): has no geometry" in err
    assert "feature 3: code is empty (properties.code)" in err
    assert "feature 4: properties.code is neither a string nor an integer" in err
    assert "feature 5: is not a GeoJSON Feature" in err
    assert f"feature 6 (code {GRID1}): is a Point" in err
    assert "(7 problems in all, see DETAIL)" in err
    assert "hint: Features count from 1 in the order of the file" in err


def test_geojson_file_limits(db, tmp_path):
    load_base(db, tmp_path)
    ring = [[106.5 + 0.1 * i / 50000, 29.1] for i in range(50001)] + [[106.6, 29.4], [106.5, 29.1]]
    err = refused(db, write_geojson(tmp_path / "big.geojson",
                                    [feature(MICRO1, {"type": "Polygon", "coordinates": [ring]})]))
    assert (f"feature 1 (code {MICRO1}): has more than 50000 vertices; at most 50000 are allowed "
            "per feature") in err
    many = tmp_path / "many.geojson"
    many.write_text('{"type":"FeatureCollection","features":[' +
                    ",".join(['{"type":"Feature"}'] * 100001) + "]}")
    assert "has 100001 features; at most 100000 are allowed in one import" in refused(db, many)
    huge = tmp_path / "huge.geojson"
    with open(huge, "wb") as f:
        f.truncate(64 * 1024 * 1024 + 1)
    assert "a GeoJSON file may have at most 67108864" in refused(db, huge)
    notjson = tmp_path / "not.geojson"
    notjson.write_text('{"type": "FeatureCollection", "features": [')
    assert "is not JSON: line 1" in refused(db, notjson)
    wrong = write_geojson(tmp_path / "wrong.json", [])
    wrong.write_text('{"type": "Feature"}')
    assert "is not a GeoJSON FeatureCollection" in refused(db, wrong)
    # --format overrides the file name
    r = gdctl(db, "import", "boundaries", str(wrong), "--format", "csv")
    assert r.returncode == 1 and "header" in r.stderr.lower(), r.stderr


def test_csv_limits_are_enforced_by_the_database(db, tmp_path):
    load_base(db, tmp_path)
    ring = ",".join(f"{106.5 + 0.1 * i / 50000:.7f} 29.1" for i in range(50001))
    wkt = f"POLYGON(({ring},106.6 29.4,106.5 29.1))"
    err = refused(db, boundaries_csv(tmp_path / "big.csv", {MICRO1: wkt}))
    assert f"line 2 (code {MICRO1}): has 50003 vertices; at most 50000 are allowed" in err


# --- addresses ------------------------------------------------------------------

ADDR_HEADER = ["road", "number", "lon", "lat", "label"]


def test_addresses_are_stored_normalised_and_replaced_on_reimport(db, tmp_path):
    load_base(db, tmp_path)
    rows = [["龙洲大道", "１２３号", "106.55", "29.2", "龙洲湾街道龙洲大道123号"],
            ["Ｂａｎａｎ Road", " 8号 附1号 ", "106.75", "29.3", ""]]
    r = gdctl(db, "import", "addresses", str(write_csv(tmp_path / "addr.csv", ADDR_HEADER, rows)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("imported 2 addresses\n") and "SIGHUP" in r.stdout
    got = query(db, "SELECT road, number, label, ST_X(geom), ST_Y(geom) FROM address_point "
                    "ORDER BY road")
    assert got == [("bananroad", "8号附1号", "", 106.75, 29.3),
                   ("龙洲大道", "123号", "龙洲湾街道龙洲大道123号", 106.55, 29.2)]
    # without the label column; the same address spelt differently moves it
    moved = write_csv(tmp_path / "addr2.csv", ADDR_HEADER[:4], [["龙洲大道 ", "123 号", "106.56", "29.21"]])
    r = gdctl(db, "import", "addresses", str(moved))
    assert r.returncode == 0, r.stderr
    assert query(db, "SELECT label, ST_X(geom), ST_Y(geom) FROM address_point WHERE road = '龙洲大道'") \
        == [("", 106.56, 29.21)]
    assert scalar(db, "SELECT count(*) FROM address_point") == 2


def test_an_address_in_no_grid_is_imported_with_a_warning(db, tmp_path):
    load_base(db, tmp_path)
    # the north-east quarter of the district has no grid
    rows = [["巴滨路", "1号", "106.55", "29.2", ""], ["巴滨路", "2号", "106.8", "29.5", ""]]
    r = gdctl(db, "import", "addresses", str(write_csv(tmp_path / "addr.csv", ADDR_HEADER, rows)))
    assert r.returncode == 0, r.stderr
    assert ("WARNING: 1 addresses lie in no grid's polygon, so the broker cannot place them: "
            "line 3") in r.stderr
    assert scalar(db, "SELECT count(*) FROM address_point") == 2


def test_geojson_addresses(db, tmp_path):
    load_base(db, tmp_path)
    feats = [{"type": "Feature", "properties": {"road": "巴滨路", "number": 12, "label": "巴滨路12号"},
              "geometry": {"type": "Point", "coordinates": [106.55, 29.25]}},
             {"type": "Feature", "properties": {"road": "巴滨路", "number": "13号"},
              "geometry": {"type": "Point", "coordinates": [106.56, 29.25]}}]
    r = gdctl(db, "import", "addresses", str(write_geojson(tmp_path / "addr.geojson", feats)))
    assert r.returncode == 0, r.stderr
    assert query(db, "SELECT number, label FROM address_point ORDER BY number") == \
        [("12", "巴滨路12号"), ("13号", "")]
    feats = [{"type": "Feature", "properties": {"road": "巴滨路", "number": "14号"},
              "geometry": {"type": "LineString", "coordinates": [[106.5, 29.1], [106.6, 29.2]]}},
             {"type": "Feature", "properties": {"number": "15号"},
              "geometry": {"type": "Point", "coordinates": [106.56, 29.25]}}]
    err = refused(db, write_geojson(tmp_path / "bad_addr.geojson", feats), "addresses")
    assert "feature 1 (巴滨路 14号): geometry is not a Point with coordinates [lon, lat]" in err
    assert "feature 2 (15号): road is empty" in err


def test_bad_address_lines_are_listed_and_nothing_changes(db, tmp_path):
    load_base(db, tmp_path)
    good = write_csv(tmp_path / "addr_good.csv", ADDR_HEADER, [["巴滨路", "1号", "106.55", "29.2", ""]])
    assert gdctl(db, "import", "addresses", str(good)).returncode == 0
    rows = [["", "2号", "106.55", "29.2", ""],
            ["巴滨路", "", "106.55", "29.2", ""],
            ["巴滨路", "3号", "east", "29.2", ""],
            ["巴滨路", "4号", "106.55", "", ""],
            ["巴滨路", "5号", "200", "29.2", ""],
            ["巴滨路", "6号", "29.2", "106.55", ""],
            ["巴滨路", "7号", "106.55", "29.2", ""],
            ["巴滨路 ", "７号", "106.56", "29.2", ""],
            ["巴滨路", "8号", "107.5", "29.2", ""],
            ["巴滨路", "9号", "106.55", "29.2", "x" * 201]]
    err = refused(db, write_csv(tmp_path / "addr_bad.csv", ADDR_HEADER, rows), "addresses")
    assert "(9 problems in all, see DETAIL)" in err
    for line in ["line 2 (2号): road is empty",
                 "line 3 (巴滨路): number is empty",
                 "line 4 (巴滨路 3号): lon 'east' is not a decimal number of degrees",
                 "line 5 (巴滨路 4号): lat '' is not a decimal number of degrees",
                 "line 6 (巴滨路 5号): coordinates out of range: lon 200, lat 29.2",
                 "line 7 (巴滨路 6号): coordinates out of range: lon 29.2, lat 106.55",
                 "line 9 (巴滨路 ７号): duplicate address, already in line 8 (addresses are "
                 "compared in their normalised form 巴滨路 7号)",
                 "line 10 (巴滨路 8号): lies outside the district 500113's polygon, ",
                 "line 11 (巴滨路 9号): label is 201 characters long, at most 200 are allowed"]:
        assert line in err


def test_a_short_address_line_is_refused_with_its_line_number(db, tmp_path):
    path = tmp_path / "addr_short.csv"
    path.write_text("road,number,lon,lat\n巴滨路,1号,106.55,29.2\n巴滨路,2号,106.55\n",
                    encoding="utf-8")
    err = refused(db, path, "addresses")
    assert 'missing data for column "lat"' in err and "line 3" in err


def test_address_norm_is_the_documented_rule():
    """The rule the broker reproduces in C (0007_geo.sql): full-width ASCII forms to ASCII,
    blanks removed, ASCII lower case, nothing else."""
    dsn = os.environ["GD_DB_DSN"]
    cases = {"Ｒｏａｄ　１２\t Ａ": "road12a",
             "龙洲大道１２３号": "龙洲大道123号",
             "ÄÉ Ⅻ ① ｶ": "ÄÉⅫ①ｶ",         # no NFKC, no case folding beyond ASCII
             "a\u00a0b\u3000c\r\nd\x0be\x0cf": "abcdef",
             "（８）～＂＼": "(8)~\"\\"}
    for given, want in cases.items():
        assert scalar(dsn, "SELECT gd_address_norm(%s)", (given,)) == want, given


# --- the demo district ------------------------------------------------------------

def test_demo_boundaries_nest_and_tile(pg):
    """Every unit of the demo district has a polygon, inside its parent, and siblings tile their
    parent: no overlaps, no gaps (areas add up)."""
    assert pg.scalar("SELECT count(*) FROM org_unit u LEFT JOIN unit_boundary b ON b.unit = u.code "
                     "WHERE b.unit IS NULL") == 0
    assert pg.scalar("SELECT count(*) FROM unit_boundary b JOIN org_unit u ON u.code = b.unit "
                     "JOIN unit_boundary p ON p.unit = u.parent "
                     "WHERE NOT ST_CoveredBy(b.geom, p.geom)") == 0
    assert pg.scalar("SELECT count(*) FROM unit_boundary a JOIN org_unit ua ON ua.code = a.unit "
                     "JOIN unit_boundary b ON b.geom && a.geom AND b.unit < a.unit "
                     "JOIN org_unit ub ON ub.code = b.unit AND ub.level = ua.level "
                     "WHERE ua.level IN ('town', 'community', 'grid') "
                     "AND ST_Relate(a.geom, b.geom, 'T********')") == 0
    worst = pg.scalar("SELECT max(abs(ST_Area(p.geom) - s.area) / ST_Area(p.geom)) "
                      "FROM (SELECT u.parent, sum(ST_Area(b.geom)) AS area FROM unit_boundary b "
                      "      JOIN org_unit u ON u.code = b.unit GROUP BY u.parent) s "
                      "JOIN unit_boundary p ON p.unit = s.parent")
    assert worst < 1e-9
    box = pg.one("SELECT ST_XMin(e) AS x0, ST_XMax(e) AS x1, ST_YMin(e) AS y0, ST_YMax(e) AS y1 "
                 "FROM (SELECT ST_Extent(geom)::geometry AS e FROM unit_boundary) x")
    assert 106.5 <= box["x0"] < box["x1"] <= 106.95 and 29.1 <= box["y0"] < box["y1"] <= 29.75
    assert box["y1"] - box["y0"] > box["x1"] - box["x0"]      # elongated north-south


def test_demo_addresses_lie_in_grids(pg):
    n = pg.scalar("SELECT count(*) FROM address_point")
    assert n > 2000
    assert pg.scalar("SELECT count(*) FROM address_point a WHERE NOT EXISTS ("
                     "SELECT 1 FROM unit_boundary b JOIN org_unit u ON u.code = b.unit "
                     "WHERE u.level = 'grid' AND ST_Intersects(b.geom, a.geom))") == 0
    assert pg.scalar("SELECT count(*) FROM address_point WHERE number !~ '^[0-9]+号$'") == 0


def test_demo_generator_is_deterministic_and_the_committed_files_are_its_output(tmp_path):
    r = subprocess.run([sys.executable, str(GEN_GEO), str(DEMO / "org_units.csv"), str(tmp_path)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    for name in ("boundaries.csv", "addresses.csv"):
        assert (tmp_path / name).read_bytes() == (DEMO / name).read_bytes(), \
            f"{name} differs from deploy/demo/gen_geo.py's output: regenerate it"
