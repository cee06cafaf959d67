"""KPI reports (migration 0006 gd_report and gdctl report) against a small fixed event history.

The history is written straight into incident / incident_event (no broker):
six incidents in one grid of 鱼洞街道, on Monday 2026-03-02 (Asia/Shanghai)
and the day before, including an escalated, an extended, a returned and a
reopened one. Every expected number below is worked out by hand in the
comments next to the incident it comes from.
"""

import csv
import io
import json
import os
import subprocess
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

B = datetime(2026, 3, 2, 1, 0, tzinfo=timezone.utc)   # 09:00 local on Monday 2026-03-02
H = timedelta(hours=1)
M = timedelta(minutes=1)
DAY_START = datetime(2026, 3, 1, 16, 0, tzinfo=timezone.utc)   # local midnight
DAY_END = DAY_START + timedelta(days=1)


def gdctl_binary():
    return Path(os.environ.get("GD_BUILD_DIR", "build")) / "workers" / "gdctl" / "gdctl"


@pytest.fixture
def history(pg):
    """Inserts the fixed history; returns the grid code and the two categories."""
    grid = pg.scalar("SELECT code FROM org_unit WHERE level = 'grid' AND code LIKE '500113002%%' "
                     "ORDER BY code LIMIT 1")
    cats = [r["code"] for r in pg.all("SELECT code FROM category ORDER BY code LIMIT 2")]
    incidents = {
        # A: plain. sign 10 min after receipt (due +1 h: on time), resolve +2 h
        # (due +1 d: on time), closed (satisfied).
        1: (cats[0], B, [
            ("receive", B, "QUEUED", B + H, B + 24 * H),
            ("deliver", B + M, "DELIVERED", B + H, B + 24 * H),
            ("sign", B + 10 * M, "SIGNED", B + H, B + 24 * H),
            ("resolve", B + 2 * H, "RESOLVED", B + H, B + 24 * H),
            ("close", B + 3 * H, "CLOSED", B + H, B + 24 * H)]),
        # E: escalated at its sign deadline (+30 min); the community's sign
        # deadline is +1 h 30; signed at +40 min: on time, 600 s after the
        # escalation; resolve deadline restarted to +4 h, resolved at +5 h: late.
        2: (cats[0], B, [
            ("receive", B, "QUEUED", B + 30 * M, B + 2 * H),
            ("deliver", B + 5 * M, "DELIVERED", B + 30 * M, B + 2 * H),
            ("escalate", B + 30 * M, "QUEUED", B + 90 * M, B + 4 * H),
            ("deliver", B + 31 * M, "DELIVERED", B + 90 * M, B + 4 * H),
            ("sign", B + 40 * M, "SIGNED", B + 90 * M, B + 4 * H),
            ("resolve", B + 5 * H, "RESOLVED", B + 90 * M, B + 4 * H)]),
        # X: extended from +2 h to +6 h, resolved at +5 h: on time thanks to
        # the extension; signed after 1200 s (on time); closed.
        3: (cats[0], B, [
            ("receive", B, "QUEUED", B + H, B + 2 * H),
            ("deliver", B + M, "DELIVERED", B + H, B + 2 * H),
            ("sign", B + 20 * M, "SIGNED", B + H, B + 2 * H),
            ("extend", B + H, "SIGNED", B + H, B + 6 * H),
            ("resolve", B + 5 * H, "RESOLVED", B + H, B + 6 * H),
            ("close", B + 6 * H, "CLOSED", B + H, B + 6 * H)]),
        # R: returned before signing (+10 min); new sign deadline +1 h;
        # signed at +70 min: late, 3600 s after the return; still open.
        4: (cats[1], B, [
            ("receive", B, "QUEUED", B + H, B + 8 * H),
            ("deliver", B + 2 * M, "DELIVERED", B + H, B + 8 * H),
            ("return", B + 10 * M, "QUEUED", B + H, B + 8 * H),
            ("deliver", B + 11 * M, "DELIVERED", B + H, B + 8 * H),
            ("sign", B + 70 * M, "SIGNED", B + H, B + 8 * H)]),
        # O: signed after 900 s, resolved at +1 h (due +3 h), reopened at
        # +2 h (deadlines restart: sign +3 h, resolve +5 h), signed again
        # 600 s after the reopening, resolved at +4 h (on time), closed.
        5: (cats[1], B, [
            ("receive", B, "QUEUED", B + H, B + 3 * H),
            ("deliver", B + M, "DELIVERED", B + H, B + 3 * H),
            ("sign", B + 15 * M, "SIGNED", B + H, B + 3 * H),
            ("resolve", B + H, "RESOLVED", B + H, B + 3 * H),
            ("reopen", B + 2 * H, "QUEUED", B + 3 * H, B + 5 * H),
            ("deliver", B + 2 * H + M, "DELIVERED", B + 3 * H, B + 5 * H),
            ("sign", B + 2 * H + 10 * M, "SIGNED", B + 3 * H, B + 5 * H),
            ("resolve", B + 4 * H, "RESOLVED", B + 3 * H, B + 5 * H),
            ("close", B + 4 * H + 30 * M, "CLOSED", B + 3 * H, B + 5 * H)]),
        # P: received the day before, signed after 600 s (on time), still
        # open: backlog at the end of both days.
        6: (cats[1], B - 24 * H, [
            ("receive", B - 24 * H, "QUEUED", B - 23 * H, B + 24 * H),
            ("deliver", B - 24 * H + M, "DELIVERED", B - 23 * H, B + 24 * H),
            ("sign", B - 24 * H + 10 * M, "SIGNED", B - 23 * H, B + 24 * H)]),
    }
    with pg.conn.cursor() as cur:
        for iid, (cat, received, events) in incidents.items():
            last = events[-1]
            cur.execute(
                "INSERT INTO incident (id, source, external_id, category, priority, state, version, "
                "queue, owner_unit, owner_level, location_unit, received_at, sign_due, resolve_due, "
                "updated_at) VALUES (%s, 'report-test', %s, %s, 'normal', %s, %s, %s, %s, 'grid', "
                "%s, %s, %s, %s, %s)",
                (iid, f"r-{iid}", cat, last[2], len(events), grid, grid, grid, received, last[3],
                 last[4], last[1]))
            state = "RECEIVED"
            for v, (kind, at, to, sign_due, resolve_due) in enumerate(events, 1):
                cur.execute(
                    "INSERT INTO incident_event (incident_id, version, at, kind, from_state, "
                    "to_state, queue, owner_unit, owner_level, sign_due, resolve_due) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'grid', %s, %s)",
                    (iid, v, at, kind, state, to, grid, grid, sign_due, resolve_due))
                state = to
    return grid, cats


EXPECTED_MONDAY = {
    "received": 5,             # A E X R O
    "signed": 6,               # A E X R O O
    "signed_on_time": 5,       # all but R
    "resolved": 5,             # A E X O O
    "resolved_on_time": 4,     # all but E
    "on_time_rate": Decimal("0.8000"),
    "sign_mean_s": Decimal("1250.0"),     # (600+600+1200+3600+900+600)/6
    "sign_p90_s": Decimal("2400.0"),      # sorted 600 600 600 900 1200 3600: 1200 + .5 * 2400
    "resolve_mean_s": Decimal("12240.0"), # (7200+18000+18000+3600+14400)/5
    "resolve_p90_s": Decimal("18000.0"),
    "escalations": 1,
    "returns": 1,
    "extensions": 1,
    "closed": 3,               # A X O
    "reopened": 1,             # O
    "satisfaction_rate": Decimal("0.7500"),
    "backlog": 2,              # R and P open at midnight
}


def report(pg, group, start, end, period="all"):
    return pg.all("SELECT * FROM gd_report(%s, %s, %s, %s)", group, start, end, period)


def test_town_day_matches_hand_computed_numbers(pg, history):
    rows = report(pg, "town", DAY_START, DAY_END)
    assert len(rows) == 1, rows
    r = rows[0]
    assert r["group_key"] == "500113002"
    assert r["group_name"] == pg.scalar("SELECT name FROM org_unit WHERE code = '500113002'")
    for k, v in EXPECTED_MONDAY.items():
        assert r[k] == v, (k, r[k], v)


def test_grid_and_district_groups_see_the_same_incidents(pg, history):
    grid, _ = history
    (g,) = report(pg, "grid", DAY_START, DAY_END)
    (d,) = report(pg, "district", DAY_START, DAY_END)
    assert g["group_key"] == grid and d["group_key"] == "500113"
    for k, v in EXPECTED_MONDAY.items():
        assert g[k] == v and d[k] == v, k


def test_daily_periods_split_at_local_midnight(pg, history):
    rows = report(pg, "town", DAY_START - timedelta(days=1), DAY_END, "day")
    assert [r["period_start"] for r in rows] == [DAY_START - timedelta(days=1), DAY_START]
    sunday, monday = rows
    # Sunday: only P, received and signed (600 s, on time), open at midnight
    assert (sunday["received"], sunday["signed"], sunday["signed_on_time"], sunday["resolved"],
            sunday["backlog"]) == (1, 1, 1, 0, 1)
    assert sunday["sign_mean_s"] == Decimal("600.0") and sunday["on_time_rate"] is None
    for k, v in EXPECTED_MONDAY.items():
        assert monday[k] == v, k


def test_category_groups(pg, history):
    _, cats = history
    rows = {r["group_key"]: r for r in report(pg, "category", DAY_START, DAY_END)}
    assert set(rows) == set(cats)
    a, b = rows[cats[0]], rows[cats[1]]
    # cats[0]: A E X -- cats[1]: R O (P received on Sunday)
    assert (a["received"], a["resolved"], a["resolved_on_time"], a["escalations"],
            a["extensions"], a["backlog"]) == (3, 3, 2, 1, 1, 0)
    assert (b["received"], b["signed"], b["signed_on_time"], b["returns"], b["reopened"],
            b["closed"], b["backlog"]) == (2, 3, 2, 1, 1, 1, 2)
    assert b["satisfaction_rate"] == Decimal("0.5000")


def test_bad_arguments_are_refused(pg):
    import psycopg2
    for args in (("street", DAY_START, DAY_END, "all"), ("town", DAY_START, DAY_END, "year"),
                 ("town", DAY_END, DAY_START, "all")):
        with pytest.raises(psycopg2.errors.InvalidParameterValue):
            report(pg, *args)


def run_gdctl(dsn, *args):
    return subprocess.run([str(gdctl_binary()), "report", "--db", dsn, *args],
                          capture_output=True, text=True, timeout=30)


def test_gdctl_report_json_csv_and_table(dsn, pg, history):
    if not gdctl_binary().is_file():
        pytest.fail(f"no gdctl at {gdctl_binary()}")
    common = ["--by", "town", "--from", "2026-03-02", "--to", "2026-03-02",
              "--tz", "Asia/Shanghai"]
    r = run_gdctl(dsn, *common, "--format", "json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert len(doc["rows"]) == 1
    row = doc["rows"][0]
    for k, v in EXPECTED_MONDAY.items():
        assert row[k] == (float(v) if isinstance(v, Decimal) else v), (k, row[k], v)

    r = run_gdctl(dsn, *common, "--format", "csv")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert len(rows) == 1 and rows[0]["group_key"] == "500113002"
    assert rows[0]["received"] == "5" and rows[0]["on_time_rate"] == "0.8000"
    assert rows[0]["backlog"] == "2" and rows[0]["sign_p90_s"] == "2400.0"

    r = run_gdctl(dsn, *common)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "received" in lines[0] or "受理" in lines[0]
    assert any("500113002" in line and "80.0%" in line for line in lines), r.stdout

    r = run_gdctl(dsn, "--by", "street")
    assert r.returncode == 2, r.stderr
