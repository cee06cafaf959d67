"""gd-sla against the real gd-broker: escalation ladder, on-time work, kill -9 and restart.

A test category with limits of a few seconds (wall clock, warning at 50%)
is created before the broker starts (the broker loads categories at start).
The SLA worker is the real gd-sla process; the test only submits, works
incidents as a grid worker would, and reads the event log in PostgreSQL.
"""

import time

import pytest

import gdclient
from demo import COMMUNITY, DISTRICT, GRID, TOWN
from slaworker import SlaWorker

CATEGORY = "T-SLA"


def make_fast_category(pg, sign_s, resolve_s, warn=50):
    pg.all("INSERT INTO category (code, name, sector, admitted_level) "
           "VALUES (%s, '测试时限事项', 'safety', 'grid') RETURNING code", CATEGORY)
    pg.all("INSERT INTO category_sla (category, priority, basis, sign_limit_s, resolve_limit_s, "
           "warn_percent) VALUES (%s, 'normal', 'wall', %s, %s, %s) RETURNING category",
           CATEGORY, sign_s, resolve_s, warn)


@pytest.fixture
def sla_workers(make_broker):
    """Factory: sla_workers(broker, **options) starts gd-sla on the broker's work endpoint
    and waits until its first sync is done."""
    made = []

    def start(broker, wait_synced=True, **options):
        w = SlaWorker(broker.dir, broker.work_ep, **options).start()
        made.append(w)
        if wait_synced:
            wait_log(w, "synced:", broker.hub)
        return w

    yield start
    for w in made:
        w.kill()
        print(w.log_text()[-30000:])  # shown by pytest when the test failed


def wait_log(w, text, hub, timeout=10, count=1):
    gdclient.wait_until(lambda: w.log_text().count(text) >= count, timeout,
                        f"'{text}' in the gd-sla log", hub)


def submit(broker, external_id):
    r = broker.intake().submit(source="t", external_id=external_id, category=CATEGORY,
                               location={"unit": GRID})
    assert r.type == "ACCEPTED", r
    return r["incident_id"]


def ladder(pg, inc):
    """Event kinds without the warnings, oldest first."""
    return [k for k in pg.kinds(inc) if k != "warn"]


def test_unsigned_incident_climbs_to_the_top_and_is_flagged(make_broker, pg, sla_workers):
    make_fast_category(pg, sign_s=1, resolve_s=6)
    broker = make_broker()
    sla = sla_workers(broker, shard=[TOWN], name="sla-test")
    inc = submit(broker, "ladder")
    row = pg.wait_incident(inc, lambda r: r["flagged"], timeout=15, hub=broker.hub,
                           what="flagged")
    assert row["queue"] == DISTRICT and row["escalations"] == 3
    assert ladder(pg, inc) == ["receive", "escalate", "escalate", "escalate", "flag"]
    events = [e for e in pg.events(inc) if e["kind"] != "warn"]
    queues = [e["queue"] for e in events]
    assert queues == [GRID, COMMUNITY, f"{TOWN}.safety", DISTRICT, DISTRICT]
    # each level got its full second (never early), and none waited much longer
    for before, after in zip(events, events[1:]):
        gap = after["at_ms"] - before["at_ms"]
        assert 1000 <= gap <= 1600, (before, after)
    # the warning at 50% of each sign-for deadline came before its escalation
    assert "warn" in pg.kinds(inc)
    time.sleep(0.3)
    assert sla.alive()
    assert "ERR" not in sla.log_text()


def test_signed_and_resolved_incident_never_escalates(make_broker, pg, sla_workers):
    make_fast_category(pg, sign_s=2, resolve_s=4)
    broker = make_broker()
    sla = sla_workers(broker, shard=[TOWN])
    inc = submit(broker, "ontime")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    ok = w.sign(d)
    assert ok.type == "OK", ok
    done = w.resolve(inc, ok["version"], result="fixed")
    assert done.type == "OK", done
    # past both deadlines
    end = time.monotonic() + 4.5
    gdclient.wait_until(lambda: time.monotonic() >= end, 10, "both deadlines past", broker.hub)
    kinds = pg.kinds(inc)
    assert "escalate" not in kinds and "flag" not in kinds, kinds
    assert pg.incident(inc)["state"] == "RESOLVED"
    assert "ESCALATE incident" not in sla.log_text()


def test_kill_9_and_restart_escalates_every_overdue_item_exactly_once(make_broker, pg,
                                                                     sla_workers):
    # group A is due while the first worker runs; group B while no worker runs
    make_fast_category(pg, sign_s=3, resolve_s=60)
    broker = make_broker()
    first = sla_workers(broker, shard=[TOWN], name="sla-1")
    t0 = time.monotonic()
    group_a = [submit(broker, f"A-{i}") for i in range(10)]
    gdclient.wait_until(lambda: time.monotonic() >= t0 + 1.0, 5, "t0 + 1 s", broker.hub)
    group_b = [submit(broker, f"B-{i}") for i in range(10)]
    for inc in group_a:
        pg.wait_incident(inc, lambda r: r["escalations"] == 1, timeout=6, hub=broker.hub,
                         what="first escalation of group A")
    first.kill()
    assert time.monotonic() < t0 + 4.0, "the machine is too slow for this test's timing"
    # B's deadline (t0 + 4 s) passes with no SLA worker
    gdclient.wait_until(lambda: time.monotonic() >= t0 + 4.6, 10, "B overdue", broker.hub)
    assert all(pg.incident(i)["escalations"] == 0 for i in group_b)
    second = sla_workers(broker, shard=[TOWN], name="sla-2")
    for inc in group_b:
        pg.wait_incident(inc, lambda r: r["escalations"] == 1, timeout=3, hub=broker.hub,
                         what="escalation of group B after the restart")
    second.stop()
    # A's next level is due at about t0 + 6 s: nobody is watching any more
    for inc in group_a + group_b:
        row = pg.incident(inc)
        assert row["escalations"] == 1 and row["queue"] == COMMUNITY, row
        assert ladder(pg, inc) == ["receive", "escalate"], (inc, pg.kinds(inc))
    # the restarted worker got the whole shard again: sign and resolve of all 20
    assert "synced: 40 deadlines received (broker sent 40)" in second.log_text()
    assert first.log_text().count("ESCALATE incident") == len(group_a)
    assert second.log_text().count("ESCALATE incident") == len(group_b)
