"""Recovery: the broker killed with SIGKILL and restarted, and PostgreSQL stopped, under load.

Whatever happens, an incident answered ACCEPTED is stored exactly once
under the id the client was told, retries get that same id, and every
history is a valid, gap-free path of the lifecycle (chaos.check_history).
"""

import os
import random
import subprocess
import time

import pytest

import chaos
import gdclient

GRID = "500113001001001"          # demo grid; LH-0101 (暴露垃圾) is admitted at grid level
CATEGORY = "LH-0101"


def run_pgctl(cmd):
    subprocess.run([os.environ["GD_PGCTL"], cmd, os.environ["GD_PG_DIR"]], check=True,
                   capture_output=True, text=True, timeout=120)


def finish(submitters, timeout=60):
    for s in submitters:
        s.stop()
    deadline = time.monotonic() + timeout
    for s in submitters:
        s.join(max(0.1, deadline - time.monotonic()))
        assert not s.is_alive(), f"{s.name} still has {len(s.outstanding)} unanswered SUBMITs"


def test_accepted_incidents_survive_repeated_kill_9_exactly_once(make_broker, pg):
    rng = random.Random(7)
    broker = make_broker()
    submitters = [chaos.Submitter(broker.intake_ep, f"k{i}", GRID, CATEGORY, window=20)
                  for i in range(3)]
    worker = chaos.Worker(broker.work_ep, GRID)
    for t in submitters + [worker]:
        t.start()
    cycles = 5
    for _ in range(cycles):
        time.sleep(rng.uniform(0.3, 0.8))
        broker.proc.kill()
        broker.proc.wait()
        broker.start()
    time.sleep(0.5)
    finish(submitters)
    worker.stop()
    worker.join(5)
    assert worker.error is None, repr(worker.error)
    told, events = chaos.check_history(pg, submitters)
    assert told > 100, f"only {told} incidents accepted over {cycles} crashes"
    assert worker.hellos > cycles, "the worker never had to reconnect: the broker did not die?"
    print(f"{cycles} kill -9 cycles: {told} incidents accepted, {events} events checked, "
          f"{len(worker.resolved)} resolved by the worker")


def test_delivered_but_unsigned_items_go_back_to_the_head_after_a_crash(make_broker, pg, hub):
    broker = make_broker()
    intake = broker.intake()
    first = intake.submit(source="chaos", external_id="head-1", category=CATEGORY,
                          location={"unit": GRID})
    second = intake.submit(source="chaos", external_id="head-2", category=CATEGORY,
                           location={"unit": GRID})
    w = broker.worker()
    w.hello([GRID], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] == first["incident_id"]
    pg.wait_incident(first["incident_id"], lambda r: r["state"] == "DELIVERED")
    broker.proc.kill()
    broker.proc.wait()
    broker.start()
    row = pg.wait_incident(first["incident_id"], lambda r: r["state"] == "QUEUED")
    assert pg.kinds(first["incident_id"]) == ["receive", "deliver", "requeue"]
    assert row["version"] == 3
    w2 = broker.worker()
    w2.hello([GRID], credit=1)
    again = w2.deliver()
    assert again["incident"]["id"] == first["incident_id"], "the put-back item must come first"
    assert pg.incident(second["incident_id"])["state"] == "QUEUED"


def test_database_outage_answers_busy_loses_nothing_and_recovers(make_broker, pg):
    broker = make_broker(busy_retry_ms=50, db_retry_ms=100)
    submitters = [chaos.Submitter(broker.intake_ep, f"o{i}", GRID, CATEGORY, window=5,
                                  retry_s=1.0) for i in range(2)]
    for s in submitters:
        s.start()
    gdclient.wait_until(lambda: sum(len(s.accepted) for s in submitters) > 50, 20,
                        "incidents accepted before the outage")
    pg.close()
    run_pgctl("halt")
    try:
        gdclient.wait_until(lambda: sum(s.busy for s in submitters) > 0, 20,
                            "BUSY answers while the database is down")
        time.sleep(0.5)
        assert broker.alive(), "the broker died when the database went away"
        accepted_during = sum(len(s.accepted) for s in submitters)
        time.sleep(0.5)
        assert sum(len(s.accepted) for s in submitters) == accepted_during, \
            "ACCEPTED while the database was down"
    finally:
        run_pgctl("resume")
    pg.__init__(pg.dsn)
    before = sum(len(s.accepted) for s in submitters)
    gdclient.wait_until(lambda: sum(len(s.accepted) for s in submitters) > before + 50, 30,
                        "intake resuming after the database returned")
    finish(submitters)
    assert broker.alive()
    told, events = chaos.check_history(pg, submitters)
    busy = sum(s.busy for s in submitters)
    print(f"database outage: {told} accepted, {busy} BUSY answers, {events} events checked")


def test_recovered_incident_keeps_every_field_after_a_crash(make_broker, pg):
    broker = make_broker()
    urls = ['https://img.example/a.jpg', 'https://img.example/b"q\\.png']
    acc = broker.intake().submit(source="chaos", external_id="fields", category=CATEGORY,
                                 location={"unit": GRID, "address": "幸福小区3栋",
                                           "lat": 29.4, "lon": 106.5},
                                 description="井盖破损", attachments=urls,
                                 reporter={"name": "李四", "phone": "13800000001"})
    broker.proc.kill()
    broker.proc.wait()
    broker.start()
    w = broker.worker()
    w.hello([GRID], credit=1)
    inc = w.deliver()["incident"]
    assert inc["id"] == acc["incident_id"]
    assert inc["attachments"] == urls
    assert inc["description"] == "井盖破损"
    assert inc["location"]["address"] == "幸福小区3栋"
    assert abs(inc["location"]["lat"] - 29.4) < 1e-9
    assert inc["reporter"] == {"name": "李四", "phone": "13800000001"}


def test_new_incident_whose_commit_landed_unheard_is_kept_and_delivered(make_broker, pg):
    """A COMMIT that reached the database but whose answer was lost with the
    connection (the primary failed over) is sent again and meets its own
    row: the incident is the same one, answered ACCEPTED once, kept in the
    broker's queue and delivered, not dropped as a stranger's duplicate."""
    broker = make_broker()
    next_id = pg.scalar("SELECT coalesce(max(id), 0) + 1 FROM incident")
    # what the first commit stored: the row and its receive event, under the
    # id the broker gives the next incident
    pg.all("INSERT INTO incident (id, source, external_id, category, priority, state, version, "
           "queue, owner_unit, owner_level, location_unit, received_at, updated_at) VALUES "
           "(%s, 'chaos', 'unheard', %s, 'normal', 'QUEUED', 1, %s, %s, 'grid', %s, now(), now()) "
           "RETURNING id", next_id, CATEGORY, GRID, GRID, GRID)
    pg.all("INSERT INTO incident_event (incident_id, version, at, kind, from_state, to_state, "
           "queue) VALUES (%s, 1, now(), 'receive', NULL, 'QUEUED', %s) RETURNING version",
           next_id, GRID)
    r = broker.intake().submit(source="chaos", external_id="unheard", category=CATEGORY,
                               location={"unit": GRID})
    assert r.type == "ACCEPTED" and r["incident_id"] == next_id, r
    w = broker.worker()
    w.hello([GRID], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] == next_id
    pg.wait_incident(next_id, lambda row: row["state"] == "DELIVERED")
    assert pg.kinds(next_id) == ["receive", "deliver"]
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id = 'unheard'") == 1


def test_a_database_behind_the_brokers_schema_is_refused_with_how_to_migrate(make_broker, pg):
    # a database one migration behind (here: 0009 recorded as not applied)
    pg.scalar("WITH d AS (DELETE FROM schema_version WHERE version = 9 RETURNING 1) "
              "SELECT count(*) FROM d")
    with pytest.raises(AssertionError) as failed:
        make_broker()
    assert "the database has schema version 8, this broker needs 9" in str(failed.value)
    assert "gdctl migrate" in str(failed.value)
    # applying the migrations at start brings it up to date, and it starts
    b = make_broker(migrations=f"{os.environ['GD_SOURCE_DIR']}/broker/sql")
    assert pg.scalar("SELECT max(version) FROM schema_version") == 9
    assert b.alive()
