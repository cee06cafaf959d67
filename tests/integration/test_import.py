"""CSV import of the org tree, categories, calendar and working hours (0002, 0003, import-csv.sh).

Needs GD_DB_DSN: a libpq conninfo of a superuser on a throw-away cluster, as
tests/pg/with-pg.sh exports it. Every test gets a database of its own, a copy
of a template migrated from broker/sql/*.sql, dropped afterwards. Imports go through
the real deploy/import-csv.sh, so psql, \\copy and the SQL functions are all
exercised as an operator would use them.
"""

import csv
import os
import re
import subprocess
from pathlib import Path

import conftest
import psycopg2
import pytest

REPO = Path(os.environ.get("GD_SOURCE_DIR") or Path(__file__).resolve().parents[2])
IMPORT = REPO / "deploy" / "import-csv.sh"
LOAD_DEMO = REPO / "deploy" / "demo" / "load.sh"
DEMO = REPO / "deploy" / "demo" / "data"

ORG_HEADER = ["code", "name", "level", "kind", "parent", "households"]
CATEGORY_HEADER = ["code", "name", "sector", "admitted_level", "default_priority", "group_name"]
SLA_HEADER = ["category", "priority", "basis", "sign_limit_s", "resolve_limit_s", "warn_percent",
              "max_extension_s"]
CALENDAR_HEADER = ["day", "working", "name"]
HOURS_HEADER = ["starts", "ends"]

# A small tree every bad-row test starts from: district, one street, one
# community with one grid and one micro-grid; one category with a time limit;
# one holiday.
BASE_ORG = [
    ["500113", "巴南区", "district", "", "", ""],
    ["500113001", "龙洲湾街道", "town", "", "500113", ""],
    ["500113001001", "龙洲社区", "community", "", "500113001", "400"],
    ["500113001001001", "龙洲社区第1网格", "grid", "", "500113001001", "400"],
    ["50011300100100101", "龙洲社区第1网格第1微网格", "micro_grid", "", "500113001001001", "50"],
]
BASE_CATEGORIES = [["LH-0101", "暴露垃圾", "livelihood", "grid", "normal", "市容环境"]]
BASE_SLA = [["LH-0101", "normal", "working", "14400", "28800", "80", "28800"]]
BASE_CALENDAR = [["2026-02-17", "false", "春节"]]


@pytest.fixture
def db(gd_schema_template):
    """DSN of a fresh, migrated database, dropped when the test ends."""
    with conftest.fresh_database(gd_schema_template, "test_import_") as dsn:
        yield dsn


@pytest.fixture
def demo_db(gd_template):
    """DSN of a fresh copy of the test template: migrated, the demo district
    loaded by deploy/demo/load.sh (conftest builds it once per cluster)."""
    with conftest.fresh_database(gd_template, "test_import_") as dsn:
        yield dsn


write_csv = conftest.write_csv


def run_import(dsn, kind, path, *options):
    return subprocess.run([str(IMPORT), *options, kind, str(path), dsn],
                          capture_output=True, text=True, timeout=120)


def import_ok(dsn, kind, path, *options):
    r = run_import(dsn, kind, path, *options)
    assert r.returncode == 0, r.stderr
    return r


def query(dsn, sql, args=()):
    with psycopg2.connect(dsn) as conn, conn.cursor() as cur:
        cur.execute(sql, args)
        rows = cur.fetchall()
    conn.close()
    return rows


def snapshot(dsn):
    """Everything an import may touch, staging tables included."""
    tables = ["org_unit", "category", "category_sla", "calendar_day", "working_hours", "import_org_unit",
              "import_category", "import_category_sla", "import_calendar_day", "import_working_hours",
              "unit_boundary", "address_point", "import_unit_boundary", "import_address_point"]
    return {t: sorted(query(dsn, f"SELECT * FROM {t}"), key=repr) for t in tables}


def load_base(dsn, tmp_path):
    import_ok(dsn, "org", write_csv(tmp_path / "base_org.csv", ORG_HEADER, BASE_ORG))
    import_ok(dsn, "categories", write_csv(tmp_path / "base_cat.csv", CATEGORY_HEADER, BASE_CATEGORIES),
              "-s", write_csv(tmp_path / "base_sla.csv", SLA_HEADER, BASE_SLA))
    import_ok(dsn, "calendar", write_csv(tmp_path / "base_cal.csv", CALENDAR_HEADER, BASE_CALENDAR))


def load_demo(dsn):
    r = subprocess.run([str(LOAD_DEMO), dsn], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return r


# --- the demo district -------------------------------------------------------

DIGITS = {"district": 6, "town": 9, "community": 12, "grid": 15, "micro_grid": 17}


def test_demo_data_imports_with_the_shape_of_banan_district(db):
    out = load_demo(db).stdout
    assert "imported 18358 org units" in out
    assert "imported 53 categories and 159 SLA rows" in out  # with the demo LV-9901
    assert "imported 72 calendar days" in out
    assert "imported 2 working periods" in out
    assert "imported 18358 unit boundaries" in out

    units = query(db, "SELECT code, name, level, kind, parent, households FROM org_unit")
    by_code = {u[0]: u for u in units}
    levels = {}
    for code, name, level, kind, parent, households in units:
        levels.setdefault((level, kind), []).append(code)
        assert len(code) == DIGITS[level], code
        if level == "district":
            assert parent is None
            continue
        # Codes extend their parent's code: 6-digit county 500113, 3-digit
        # town, 3-digit community, 3-digit grid, 2-digit micro-grid.
        assert code.startswith(parent) and code.startswith("500113"), code
        assert by_code[parent][2] == {"town": "district", "community": "town", "grid": "community",
                                      "micro_grid": "grid"}[level], code

    assert levels[("district", "regular")] == ["500113"]
    assert by_code["500113"][1] == "巴南区"
    towns = levels[("town", "regular")]
    assert len(towns) == 23
    assert sum(1 <= int(c[6:]) <= 99 for c in towns) == 8     # streets 街道
    assert sum(100 <= int(c[6:]) <= 199 for c in towns) == 15  # towns 镇
    assert {"龙洲湾街道", "鱼洞街道", "界石镇", "圣灯山镇"} <= {by_code[c][1] for c in towns}

    communities = levels[("community", "regular")]
    assert len(communities) == 313
    for c in communities:
        suffix, name = int(c[9:]), by_code[c][1]
        assert (1 <= suffix <= 199 and name.endswith("社区")) or \
               (200 <= suffix <= 399 and name.endswith("村")), (c, name)

    grids = levels[("grid", "regular")]
    assert 1900 <= len(grids) <= 2100
    assert all(300 <= by_code[g][5] <= 500 for g in grids)
    special = levels[("grid", "special")]
    assert 25 <= len(special) <= 35
    assert all(900 <= int(s[12:]) <= 999 and by_code[s][4] in communities for s in special)

    # Micro-grids of ~50 households add up to their grid.
    sums = dict(query(db, """SELECT parent, sum(households) FROM org_unit
                              WHERE level = 'micro_grid' GROUP BY parent"""))
    assert set(sums) == set(grids)
    assert all(sums[g] == by_code[g][5] for g in grids)
    assert 6 <= len(levels[("micro_grid", "regular")]) / len(grids) <= 10

    sectors = dict(query(db, "SELECT sector, count(*) FROM category GROUP BY sector"))
    assert set(sectors) == {"party", "economy", "livelihood", "safety"}
    grid_admitted = query(db, "SELECT count(*) FROM category WHERE admitted_level = 'grid'")[0][0]
    assert 0.25 <= grid_admitted / sum(sectors.values()) <= 0.4
    # Every category has a time limit for every priority.
    assert query(db, """SELECT count(*) FROM category c CROSS JOIN
                         (VALUES ('emergency'), ('urgent'), ('normal')) p(priority)
                         WHERE NOT EXISTS (SELECT 1 FROM category_sla s
                                            WHERE s.category = c.code AND s.priority = p.priority)"""
                 ) == [(0,)]

    calendar = dict(query(db, "SELECT day::text, working FROM calendar_day"))
    assert calendar["2026-02-17"] is False   # 春节
    assert calendar["2026-02-14"] is True    # 调休 make-up working Saturday
    assert calendar["2025-10-06"] is False   # 中秋节 inside the 2025 National Day week
    assert query(db, "SELECT starts::text, ends::text FROM working_hours ORDER BY starts") == [
        ("08:30:00", "12:00:00"), ("13:30:00", "18:00:00")]


def test_reimporting_the_demo_data_changes_nothing(demo_db):
    before = snapshot(demo_db)
    assert before["org_unit"], "the template holds no demo district"
    out = load_demo(demo_db).stdout
    assert "imported 18358 org units" in out
    assert snapshot(demo_db) == before


def test_applying_the_migrations_twice_is_harmless(db, tmp_path):
    load_base(db, tmp_path)
    before = snapshot(db)
    versions = query(db, "SELECT version, name, applied_at FROM schema_version ORDER BY version")
    assert [v[:2] for v in versions][:3] == [(1, "schema"), (2, "import"), (3, "working_hours")]
    conftest.migrate(db)
    assert query(db, "SELECT version, name, applied_at FROM schema_version ORDER BY version") == versions
    assert snapshot(db) == before
    import_ok(db, "org", write_csv(tmp_path / "again.csv", ORG_HEADER, BASE_ORG))


def test_children_before_their_parents_import_fine(db, tmp_path):
    with open(DEMO / "org_units.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    reversed_file = write_csv(tmp_path / "reversed.csv", header, list(reversed(body)))
    assert "imported 18358 org units" in import_ok(db, "org", reversed_file).stdout
    assert query(db, "SELECT count(*) FROM org_unit") == [(18358,)]


def test_parents_may_already_be_in_the_table(db, tmp_path):
    load_base(db, tmp_path)
    import_ok(db, "org", write_csv(tmp_path / "more.csv", ORG_HEADER, [
        ["500113001001002", "龙洲社区第2网格", "grid", "", "500113001001", "380"],
        ["500113001001901", "龙洲湾小学", "grid", "special", "500113001001", ""],
    ]))
    assert query(db, "SELECT kind, households FROM org_unit WHERE parent = '500113001001' ORDER BY code") == [
        ("regular", 400), ("regular", 380), ("special", None)]


def test_an_import_updates_rows_in_place_and_deletes_none(db, tmp_path):
    load_base(db, tmp_path)
    import_ok(db, "org", write_csv(tmp_path / "rename.csv", ORG_HEADER, [
        ["500113001", "龙洲湾街道办事处", "town", "", "500113", "12345"],
    ]))
    assert query(db, "SELECT name, households FROM org_unit WHERE code = '500113001'") == [
        ("龙洲湾街道办事处", 12345)]
    assert query(db, "SELECT count(*) FROM org_unit") == [(len(BASE_ORG),)]


def test_categories_and_their_limits_may_come_in_separate_imports(db, tmp_path):
    r = import_ok(db, "categories", write_csv(tmp_path / "c.csv", CATEGORY_HEADER, BASE_CATEGORIES))
    assert "imported 1 categories" in r.stdout
    assert "no time limits" in r.stderr and "LH-0101" in r.stderr
    r = import_ok(db, "sla", write_csv(tmp_path / "s.csv", SLA_HEADER, BASE_SLA))
    assert "imported 1 SLA rows" in r.stdout
    assert query(db, "SELECT category, priority, basis, sign_limit_s FROM category_sla") == [
        ("LH-0101", "normal", "working", 14400)]


def test_blank_optional_fields_take_their_defaults(db, tmp_path):
    import_ok(db, "categories",
              write_csv(tmp_path / "c.csv", CATEGORY_HEADER, [["SF-0201", "邻里纠纷", "safety", "grid", "", ""]]),
              "-s", write_csv(tmp_path / "s.csv", SLA_HEADER, [["SF-0201", "normal", "", "28800", "201600", "", ""]]))
    assert query(db, "SELECT default_priority, group_name FROM category") == [("normal", "")]
    assert query(db, "SELECT basis, warn_percent, max_extension_s FROM category_sla") == [("wall", 80, 0)]


def test_a_utf8_byte_order_mark_is_skipped(db, tmp_path):
    path = write_csv(tmp_path / "bom.csv", CALENDAR_HEADER, BASE_CALENDAR)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    import_ok(db, "calendar", path)
    assert query(db, "SELECT day::text, working, name FROM calendar_day") == [("2026-02-17", False, "春节")]


def test_a_make_up_working_day_on_a_weekday_is_accepted_with_a_warning(db, tmp_path):
    r = import_ok(db, "calendar", write_csv(tmp_path / "c.csv", CALENDAR_HEADER,
                                            [["2026-02-16", "true", "调休?"]]))
    assert "WARNING" in r.stderr and "2026-02-16" in r.stderr and "Monday" in r.stderr


# --- refused files -----------------------------------------------------------
#
# Each case: KIND, rows (after a good row on line 2, the bad one lands on
# line 3), and what the error must say. The good row must not be applied.

GOOD_ORG = ["500113002", "鱼洞街道", "town", "", "500113", ""]
GOOD_CATEGORY = ["LH-0102", "道路不洁", "livelihood", "grid", "normal", "市容环境"]
GOOD_SLA = ["LH-0101", "urgent", "working", "7200", "14400", "80", "14400"]
GOOD_DAY = ["2026-02-18", "false", "春节"]

BAD_ROWS = [
    ("unknown_level", "org", ["500113001002", "新社区", "communty", "", "500113001", ""],
     "unknown level 'communty'"),
    ("parent_missing", "org", ["500113001002", "新社区", "community", "", "500113009", ""],
     "parent '500113009' is neither in this file nor in org_unit"),
    ("town_under_town", "org", ["500113003", "花溪街道", "town", "", "500113001", ""],
     "parent '500113001' is a town, but a town's parent must be a district"),
    ("community_under_district", "org", ["500113001002", "新社区", "community", "", "500113", ""],
     "parent '500113' is a district, but a community's parent must be a town"),
    ("grid_under_town", "org", ["500113001002", "新网格", "grid", "", "500113001", "400"],
     "parent '500113001' is a town, but a grid's parent must be a community"),
    ("micro_grid_under_community", "org",
     ["500113001001002", "微网格", "micro_grid", "", "500113001001", "50"],
     "parent '500113001001' is a community, but a micro_grid's parent must be a grid"),
    ("parent_at_wrong_level_in_same_file", "org",
     ["500113002001001", "鱼洞第1网格", "grid", "", "500113002", "400"],
     "parent '500113002' is a town, but a grid's parent must be a community"),
    ("special_community", "org", ["500113001002", "新社区", "community", "special", "500113001", ""],
     "kind special (专属网格) is only for grids, this unit is a community"),
    ("unknown_kind", "org", ["500113001002", "新社区", "community", "speical", "500113001", ""],
     "unknown kind 'speical'"),
    ("duplicate_code", "org", ["500113002", "鱼洞街道", "town", "", "500113", ""],
     "duplicate code, already on line 2"),
    ("households_not_a_number", "org",
     ["500113001001002", "第2网格", "grid", "", "500113001001", "四百"],
     "households '四百' is not a whole number"),
    ("households_negative", "org",
     ["500113001001002", "第2网格", "grid", "", "500113001001", "-5"],
     "households '-5' is not a whole number of 0 or more"),
    ("district_with_parent", "org", ["500114", "渝北区", "district", "", "500113", ""],
     "a district has no parent"),
    ("town_without_parent", "org", ["500113003", "花溪街道", "town", "", "", ""],
     "parent is empty; a town's parent must be a district"),
    ("empty_name", "org", ["500113003", "", "town", "", "500113", ""], "name is empty"),
    ("bad_code", "org", ["500113 003", "花溪街道", "town", "", "500113", ""], "code is not valid"),
    ("level_change_strands_children", "org",
     ["500113001001", "龙洲社区", "town", "", "500113", ""],
     "existing unit 500113001001001 (a grid) under it needs a parent that is a community"),

    ("unknown_sector", "categories", ["LH-0103", "乱堆物堆料", "minsheng", "grid", "normal", ""],
     "unknown sector 'minsheng'"),
    ("unknown_admitted_level", "categories", ["LH-0103", "乱堆物堆料", "livelihood", "micro_grid", "normal", ""],
     "unknown admitted_level 'micro_grid'"),
    ("unknown_default_priority", "categories", ["LH-0103", "乱堆物堆料", "livelihood", "grid", "high", ""],
     "unknown default_priority 'high'"),
    ("duplicate_category", "categories", GOOD_CATEGORY, "duplicate code, already on line 2"),

    ("sla_unknown_category", "sla", ["LH-9999", "normal", "working", "28800", "86400", "80", "0"],
     "category LH-9999): category is neither in this import nor in the category table"),
    ("sla_unknown_priority", "sla", ["LH-0101", "high", "working", "28800", "86400", "80", "0"],
     "unknown priority 'high'"),
    ("sla_unknown_basis", "sla", ["LH-0101", "emergency", "calendar", "1800", "86400", "80", "0"],
     "unknown basis 'calendar'"),
    ("sla_sign_limit_zero", "sla", ["LH-0101", "emergency", "wall", "0", "86400", "80", "0"],
     "sign_limit_s '0' is not a positive whole number"),
    ("sla_resolve_limit_not_a_number", "sla", ["LH-0101", "emergency", "wall", "1800", "1d", "80", "0"],
     "resolve_limit_s '1d' is not a positive whole number"),
    ("sla_resolve_limit_empty", "sla", ["LH-0101", "emergency", "wall", "1800", "", "80", "0"],
     "resolve_limit_s '' is not a positive whole number"),
    ("sla_sign_after_resolve", "sla", ["LH-0101", "emergency", "wall", "90000", "86400", "80", "0"],
     "sign_limit_s 90000 is longer than resolve_limit_s 86400"),
    ("sla_warn_percent_100", "sla", ["LH-0101", "emergency", "wall", "1800", "86400", "100", "0"],
     "warn_percent '100' is not a whole number from 1 to 99"),
    ("sla_warn_percent_0", "sla", ["LH-0101", "emergency", "wall", "1800", "86400", "0", "0"],
     "warn_percent '0' is not a whole number from 1 to 99"),
    ("sla_negative_extension", "sla", ["LH-0101", "emergency", "wall", "1800", "86400", "80", "-1"],
     "max_extension_s '-1' is not a whole number of seconds, 0 or more"),
    ("sla_duplicate_priority", "sla", GOOD_SLA, "duplicate row for priority urgent, already on line 2"),
    ("sla_limit_out_of_range", "sla", ["LH-0101", "emergency", "wall", "1800", "99999999999", "80", "0"],
     "resolve_limit_s '99999999999' is not a positive whole number"),

    ("day_not_a_date", "calendar", ["2026-02-30", "false", "春节"], "day is not a date written YYYY-MM-DD"),
    ("day_in_other_format", "calendar", ["2026/10/01", "false", "国庆节"], "day is not a date written YYYY-MM-DD"),
    ("duplicate_day", "calendar", GOOD_DAY, "duplicate day, already on line 2"),
    ("working_not_boolean", "calendar", ["2026-02-19", "休", "春节"], "working '休' is not true or false"),
]

GOOD_ROW = {"org": (ORG_HEADER, GOOD_ORG), "categories": (CATEGORY_HEADER, GOOD_CATEGORY),
            "sla": (SLA_HEADER, GOOD_SLA), "calendar": (CALENDAR_HEADER, GOOD_DAY)}


@pytest.mark.parametrize("kind,row,message", [c[1:] for c in BAD_ROWS], ids=[c[0] for c in BAD_ROWS])
def test_a_bad_row_refuses_the_whole_file_and_says_why(db, tmp_path, kind, row, message):
    load_base(db, tmp_path)
    before = snapshot(db)
    header, good = GOOD_ROW[kind]
    r = run_import(db, kind, write_csv(tmp_path / "bad.csv", header, [good, row]))
    assert r.returncode != 0
    assert "import refused, nothing was changed" in r.stderr
    assert "line 3" in r.stderr and message in r.stderr, r.stderr
    assert "imported" not in r.stdout
    assert snapshot(db) == before


def test_every_bad_line_is_listed(db, tmp_path):
    load_base(db, tmp_path)
    r = run_import(db, "org", write_csv(tmp_path / "bad.csv", ORG_HEADER, [
        GOOD_ORG,
        ["500113002001", "鱼洞社区", "comunity", "", "500113002", ""],
        ["500113002002", "鱼洞二社区", "community", "", "500113404", ""],
        ["500113002002", "鱼洞二社区", "community", "", "500113002", "x"],
    ]))
    assert r.returncode != 0
    assert "(4 problems in all, see DETAIL)" in r.stderr
    found = re.findall(r"^(?:DETAIL:  )?(line \d+) \(code (\d+)\): (.*)$", r.stderr, re.M)
    assert [f[:2] for f in found] == [("line 3", "500113002001"), ("line 4", "500113002002"),
                                      ("line 5", "500113002002"), ("line 5", "500113002002")]


def test_a_bad_limit_refuses_the_categories_imported_with_it(db, tmp_path):
    before = snapshot(db)
    r = run_import(db, "categories", write_csv(tmp_path / "c.csv", CATEGORY_HEADER, BASE_CATEGORIES),
                   "-s", write_csv(tmp_path / "s.csv", SLA_HEADER,
                                   [["LH-0101", "normal", "working", "-1", "28800", "80", "0"]]))
    assert r.returncode != 0
    assert "category SLA import refused" in r.stderr and "SLA line 2 (category LH-0101)" in r.stderr
    assert snapshot(db) == before


def test_a_file_with_misnamed_columns_is_refused(db, tmp_path):
    load_base(db, tmp_path)
    before = snapshot(db)
    swapped = ["code", "name", "level", "kind", "households", "parent"]
    r = run_import(db, "org", write_csv(tmp_path / "swapped.csv", swapped, [GOOD_ORG]))
    assert r.returncode != 0
    assert 'column name mismatch in header line field 5: got "households", expected "parent"' in r.stderr
    assert snapshot(db) == before


def test_a_row_with_missing_fields_is_refused_with_its_line(db, tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("day,working,name\n2026-02-17,false,春节\n2026-02-18,false\n", encoding="utf-8")
    r = run_import(db, "calendar", path)
    assert r.returncode != 0
    assert "COPY import_calendar_day, line 3" in r.stderr
    assert query(db, "SELECT count(*) FROM calendar_day") == [(0,)]


def test_usage_errors_exit_non_zero_without_touching_the_database(tmp_path):
    r = subprocess.run([str(IMPORT), "towns", str(tmp_path / "x.csv"), "dbname=nowhere"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "usage" in r.stderr.lower()
    r = subprocess.run([str(IMPORT), "org", str(tmp_path / "missing.csv"), "dbname=nowhere"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "cannot read" in r.stderr


# --- working hours (0003_working_hours.sql) -----------------------------------

def hours(dsn):
    return query(dsn, "SELECT starts::text, ends::text FROM working_hours ORDER BY starts")


def test_working_hours_replace_the_periods_of_every_working_day(db, tmp_path):
    r = import_ok(db, "hours", write_csv(tmp_path / "h.csv", HOURS_HEADER,
                                         [["13:30", "18:00"], ["8:30", "12:00"]]))
    assert "imported 2 working periods" in r.stdout
    assert hours(db) == [("08:30:00", "12:00:00"), ("13:30:00", "18:00:00")]
    # A second file replaces the set: 13:30-18:00 is gone, 24:00 ends the day.
    import_ok(db, "hours", write_csv(tmp_path / "h2.csv", HOURS_HEADER,
                                     [["08:30", "12:00"], ["12:00", "13:00"], ["20:00", "24:00"]]))
    assert hours(db) == [("08:30:00", "12:00:00"), ("12:00:00", "13:00:00"), ("20:00:00", "24:00:00")]
    before = snapshot(db)
    import_ok(db, "hours", write_csv(tmp_path / "h3.csv", HOURS_HEADER,
                                     [["08:30", "12:00"], ["12:00", "13:00"], ["20:00", "24:00"]]))
    assert snapshot(db) == before


BAD_HOURS = [
    ("overlapping", [["08:30", "12:00"], ["11:30", "13:00"]],
     "line 3 (11:30-13:00): overlaps line 2 (08:30-12:00)"),
    ("same_start", [["08:30", "12:00"], ["08:30", "10:00"]],
     "line 3 (08:30-10:00): overlaps line 2 (08:30-12:00)"),
    ("end_before_start", [["08:30", "12:00"], ["18:00", "13:30"]],
     "line 3 (18:00-13:30): ends 13:30 is not after starts 18:00"),
    ("empty_period", [["08:30", "12:00"], ["13:30", "13:30"]],
     "line 3 (13:30-13:30): ends 13:30 is not after starts 13:30"),
    ("not_a_time", [["08:30", "12:00"], ["13:30", "6pm"]], "line 3 (13:30-6pm): ends '6pm' is not a time"),
    ("seconds", [["08:30", "12:00"], ["13:30:30", "18:00"]], "starts '13:30:30' is not a time"),
    ("start_at_24", [["08:30", "12:00"], ["24:00", "24:00"]], "starts '24:00' is not a time"),
    ("empty_start", [["08:30", "12:00"], ["", "18:00"]], "line 3 (-18:00): starts '' is not a time"),
]


@pytest.mark.parametrize("rows,message", [c[1:] for c in BAD_HOURS], ids=[c[0] for c in BAD_HOURS])
def test_bad_working_hours_are_refused_and_change_nothing(db, tmp_path, rows, message):
    import_ok(db, "hours", write_csv(tmp_path / "good.csv", HOURS_HEADER, [["09:00", "17:00"]]))
    before = snapshot(db)
    r = run_import(db, "hours", write_csv(tmp_path / "bad.csv", HOURS_HEADER, rows))
    assert r.returncode != 0
    assert "working hours import refused, nothing was changed" in r.stderr
    assert message in r.stderr, r.stderr
    assert snapshot(db) == before


def test_an_empty_working_hours_file_is_refused(db, tmp_path):
    r = run_import(db, "hours", write_csv(tmp_path / "empty.csv", HOURS_HEADER, []))
    assert r.returncode != 0
    assert "the file has no periods" in r.stderr
    assert hours(db) == []


def test_migration_3_adds_warning_instants_and_auto_extension(db):
    cols = dict(query(db, """SELECT table_name || '.' || column_name, data_type || ' ' || is_nullable
                               FROM information_schema.columns
                              WHERE (table_name, column_name) IN (('incident', 'sign_warn'),
                                    ('incident', 'resolve_warn'), ('category_sla', 'auto_extension_s'))"""))
    assert cols == {"incident.sign_warn": "timestamp with time zone YES",
                    "incident.resolve_warn": "timestamp with time zone YES",
                    "category_sla.auto_extension_s": "integer NO"}
    with pytest.raises(psycopg2.errors.CheckViolation):
        with psycopg2.connect(db) as conn, conn.cursor() as cur:
            cur.execute("INSERT INTO category VALUES ('X-1', 'x', 'safety', 'grid', 'normal', '')")
            cur.execute("INSERT INTO category_sla (category, priority, sign_limit_s, resolve_limit_s,"
                        " auto_extension_s) VALUES ('X-1', 'normal', 1, 2, -1)")
