"""The broker's side of the SLA stream, spoken directly: deadlines, WARN, ESCALATE, the ladder.

A test category with limits of a few seconds (wall clock) is created before
the broker starts; an SLA session is played by the test itself, so that the
broker's checks (version, clock, shard, repeats) are exercised exactly.
"""

import time

import psycopg2

import gdclient

GRID = "500113001001001"            # 融门社区第1网格 in town 500113001
COMMUNITY = "500113001001"
TOWN = "500113001"
DISTRICT = "500113"
CATEGORY = "T-FAST"


def make_fast_category(pg, sign_s=1, resolve_s=3, warn=50, admitted="grid"):
    pg.all("INSERT INTO category (code, name, sector, admitted_level) "
           "VALUES (%s, '测试快速事项', 'safety', %s) RETURNING code", CATEGORY, admitted)
    pg.all("INSERT INTO category_sla (category, priority, basis, sign_limit_s, resolve_limit_s, "
           "warn_percent, max_extension_s) VALUES (%s, 'normal', 'wall', %s, %s, %s, 60) "
           "RETURNING category", CATEGORY, sign_s, resolve_s, warn)


def sla_session(broker, shard=None):
    w = broker.hub.worker(broker.work_ep)
    body = {"role": "sla", "name": "test-sla"}
    if shard is not None:
        body["shard"] = shard
    w.send("HELLO", body)
    m = w.expect(("WELCOME", "DENIED"), what="WELCOME/DENIED")
    if m.type == "WELCOME":
        w.session = m["session"]
        w.heartbeat_ms = m["heartbeat_ms"]
    return w, m


def deadlines_until_synced(w):
    got = []
    while True:
        m = w.expect(("DEADLINE", "SYNCED"))
        if m.type == "SYNCED":
            assert m["count"] == len(got)
            return got
        got.append(m)


def next_deadline(w, incident_id, kind, timeout=gdclient.DEFAULT_TIMEOUT):
    return w.expect(lambda m: m.type == "DEADLINE" and m["incident_id"] == incident_id
                    and m["kind"] == kind, timeout, what=f"DEADLINE {kind} of {incident_id}")


def wait_past(hub, ms):
    """Waits until wall-clock time `ms` has passed, heartbeating all sessions."""
    gdclient.wait_until(lambda: time.time() * 1000 >= ms + 20, 30, f"time {ms}", hub)


def escalate(w, d):
    return w.request("ESCALATE", {"incident_id": d["incident_id"], "version": d["version"],
                                  "kind": d["kind"]}, ("OK", "ERR"))


def test_unsigned_incident_climbs_the_ladder_and_is_flagged_at_the_top(make_broker, pg):
    make_fast_category(pg)
    broker = make_broker()
    sla, m = sla_session(broker)
    assert m.type == "WELCOME"
    assert deadlines_until_synced(sla) == []
    status = broker.status("sla.", "alarm.flagged")
    acc = broker.intake().submit(source="t", external_id="ladder", category=CATEGORY,
                                 location={"unit": GRID})
    inc = acc["incident_id"]
    queues = [GRID]
    for expected_queue in (COMMUNITY, f"{TOWN}.safety", DISTRICT):
        d = next_deadline(sla, inc, "sign")
        assert d["town"] == TOWN
        wait_past(broker.hub, d["due_at"])
        ok = escalate(sla, d)
        assert ok.type == "OK" and ok["applied"] is True, ok
        again = escalate(sla, d)
        assert again.type == "OK" and again["applied"] is False, "a repeat must change nothing"
        row = pg.wait_incident(inc, lambda r, q=expected_queue: r["queue"] == q)
        assert row["state"] == "QUEUED"
        queues.append(expected_queue)
        breach = status.topic(f"sla.breach.{TOWN}.{COMMUNITY}.{GRID}")
        assert breach["incident_id"] == inc and breach["queue"] == queues[-2]
    d = next_deadline(sla, inc, "sign")
    wait_past(broker.hub, d["due_at"])
    ok = escalate(sla, d)
    assert ok.type == "OK" and ok["applied"] is True
    row = pg.wait_incident(inc, lambda r: r["flagged"])
    assert row["queue"] == DISTRICT and row["escalations"] == 3
    status.topic("alarm.flagged", lambda m: m["incident_id"] == inc)
    kinds = pg.kinds(inc)
    assert kinds == ["receive", "escalate", "escalate", "escalate", "flag"], kinds
    # both deadlines end once it is flagged
    cleared = {sla.expect(lambda m: m.type == "CLEAR" and m["incident_id"] == inc)["kind"]
               for _ in range(2)}
    assert cleared == {"sign", "resolve"}
    assert escalate(sla, d)["applied"] is False


def test_signed_and_resolved_incident_never_escalates(make_broker, pg):
    make_fast_category(pg, sign_s=2, resolve_s=3)
    broker = make_broker()
    sla, _ = sla_session(broker)
    deadlines_until_synced(sla)
    inc = broker.intake().submit(source="t", external_id="ontime", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    sign = next_deadline(sla, inc, "sign")
    w = broker.worker()
    w.hello([GRID], credit=1)
    d = w.deliver()
    ok = w.sign(d)
    assert ok.type == "OK"
    sla.expect(lambda m: m.type == "CLEAR" and m["incident_id"] == inc and m["kind"] == "sign")
    w.resolve(inc, ok["version"], result="fixed")
    sla.expect(lambda m: m.type == "CLEAR" and m["incident_id"] == inc and m["kind"] == "resolve")
    wait_past(broker.hub, sign["due_at"])
    late = escalate(sla, sign)
    assert late.type == "OK" and late["applied"] is False
    assert "escalate" not in pg.kinds(inc)


def test_escalate_before_the_deadline_or_with_an_old_version_changes_nothing(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    broker = make_broker()
    sla, _ = sla_session(broker)
    deadlines_until_synced(sla)
    inc = broker.intake().submit(source="t", external_id="early", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    d = next_deadline(sla, inc, "sign")
    early = escalate(sla, d)
    assert early.type == "OK" and early["applied"] is False
    stale = sla.request("ESCALATE", {"incident_id": inc, "version": d["version"] + 5,
                                     "kind": "sign"}, ("OK", "ERR"))
    assert stale["applied"] is False
    assert pg.kinds(inc) == ["receive"]


def test_warning_is_recorded_once_and_published(make_broker, pg):
    make_fast_category(pg, sign_s=1, resolve_s=30, warn=50)
    broker = make_broker()
    sla, _ = sla_session(broker)
    deadlines_until_synced(sla)
    status = broker.status("sla.warn.")
    inc = broker.intake().submit(source="t", external_id="warn", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    d = next_deadline(sla, inc, "sign")
    assert 0 < d["warn_at"] < d["due_at"]
    wait_past(broker.hub, d["warn_at"])
    ok = sla.request("WARN", {"incident_id": inc, "version": d["version"], "kind": "sign"},
                     ("OK", "ERR"))
    assert ok["applied"] is True
    again = next_deadline(sla, inc, "sign")
    assert again["version"] == d["version"] + 1 and "warn_at" not in again.body
    repeat = sla.request("WARN", {"incident_id": inc, "version": again["version"],
                                  "kind": "sign"}, ("OK", "ERR"))
    assert repeat["applied"] is False
    assert status.topic(f"sla.warn.{TOWN}")["incident_id"] == inc
    assert pg.kinds(inc) == ["receive", "warn"]


def test_extension_moves_the_resolve_deadline(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=2)
    broker = make_broker()
    sla, _ = sla_session(broker)
    deadlines_until_synced(sla)
    inc = broker.intake().submit(source="t", external_id="ext", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    first = next_deadline(sla, inc, "resolve")
    w = broker.worker()
    w.hello([GRID], credit=1)
    ok = w.sign(w.deliver())
    until = first["due_at"] + 20000
    ext = w.extend(inc, ok["version"], until=until, reason="需要协调供电公司")
    assert ext.type == "OK", ext
    moved = sla.expect(lambda m: m.type == "DEADLINE" and m["incident_id"] == inc
                       and m["kind"] == "resolve" and m["due_at"] == until)
    wait_past(broker.hub, first["due_at"])
    assert escalate(sla, first)["applied"] is False, "the old deadline no longer counts"
    assert escalate(sla, moved)["applied"] is False, "the new one has not passed"
    assert pg.incident(inc)["resolve_due_ms"] == until


def test_overlapping_shards_are_refused_and_the_full_set_comes_on_connect(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    broker = make_broker()
    intake = broker.intake()
    ids = [intake.submit(source="t", external_id=f"s{i}", category=CATEGORY,
                         location={"unit": GRID})["incident_id"] for i in range(5)]
    other = intake.submit(source="t", external_id="other-town", category=CATEGORY,
                          location={"unit": "500113002001001"})["incident_id"]
    a, m = sla_session(broker, shard=[TOWN])
    assert m.type == "WELCOME"
    got = deadlines_until_synced(a)
    assert {d["incident_id"] for d in got} == set(ids), "exactly its town's deadlines"
    assert {d["kind"] for d in got} == {"sign", "resolve"}
    b, m = sla_session(broker, shard=[TOWN, "500113002"])
    assert m.type == "DENIED" and m["code"] == "overlap"
    c, m = sla_session(broker)
    assert m.type == "DENIED" and m["code"] == "overlap"
    d, m = sla_session(broker, shard=["500113002"])
    assert m.type == "WELCOME"
    assert {x["incident_id"] for x in deadlines_until_synced(d)} == {other}


def test_unwatched_deadlines_raise_the_no_sla_worker_alarm(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    other_town = "500113002"
    other_grid = pg.scalar("SELECT g.code FROM org_unit g JOIN org_unit c ON g.parent = c.code "
                           "WHERE g.level = 'grid' AND c.parent = %s ORDER BY g.code LIMIT 1",
                           other_town)
    broker = make_broker(sla_alarm_ms=200)
    status = broker.status("alarm.no_sla_worker")
    intake = broker.intake()
    ids = [intake.submit(source="t", external_id=f"alone-{i}", category=CATEGORY,
                         location={"unit": unit})["incident_id"]
           for i, unit in enumerate((GRID, GRID, other_grid))]
    alarm = status.topic("alarm.no_sla_worker", lambda m: m["message"].startswith("3 open"))
    assert f"(towns: {TOWN} {other_town})" in alarm["message"], alarm["message"]

    # an SLA worker for the first town: only the other one is left unwatched
    d, m = sla_session(broker, shard=[TOWN])
    assert m.type == "WELCOME"
    deadlines_until_synced(d)
    status.drain()
    alarm = status.topic("alarm.no_sla_worker")
    assert alarm["message"].startswith("1 open incidents"), alarm["message"]
    assert f"(towns: {other_town})" in alarm["message"], alarm["message"]

    # the other town's incident resolved: no deadline left to watch, no alarm
    w = broker.worker(queues=[other_grid], credit=1)
    dl = w.deliver()
    assert dl["incident"]["id"] == ids[2]
    ok = w.sign(dl)
    ok = w.resolve(ids[2], ok["version"], result="done")
    assert ok.type == "OK", ok
    status.drain(0.5)
    status.nothing(lambda m: m.topic.startswith("alarm.no_sla_worker"), within=1.0)


def test_working_time_limits_fall_inside_working_hours_on_working_days(make_broker, pg):
    """LH-0101 (暴露垃圾) counts its limits in working time on the demo calendar."""
    import datetime
    limits = pg.one("SELECT sign_limit_s, resolve_limit_s FROM category_sla "
                    "WHERE category = 'LH-0101' AND priority = 'normal' AND basis = 'working'")
    assert limits, "the demo data should count LH-0101 in working time"
    holidays = {r["day"]: r["working"] for r in pg.all("SELECT day, working FROM calendar_day")}
    broker = make_broker()
    inc = broker.intake().submit(source="t", external_id="wt", category="LH-0101",
                                 location={"unit": GRID})["incident_id"]
    row = pg.incident(inc)
    china = datetime.timezone(datetime.timedelta(hours=8))
    for due_ms, limit in ((row["sign_due_ms"], limits["sign_limit_s"]),
                          (row["resolve_due_ms"], limits["resolve_limit_s"])):
        assert due_ms, "a working-time deadline must be set"
        due = datetime.datetime.fromtimestamp(due_ms / 1000, china)
        assert due_ms - row["received_ms"] >= limit * 1000, "working time is never shorter"
        minutes = due.hour * 60 + due.minute + due.second / 60
        assert 8 * 60 + 30 < minutes <= 12 * 60 or 13 * 60 + 30 < minutes <= 18 * 60, due
        working_day = holidays.get(due.date(), due.weekday() < 5)
        assert working_day, f"deadline {due} falls on a day off"


def test_extension_beyond_the_automatic_limit_waits_for_approval(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    pg.all("UPDATE category_sla SET auto_extension_s = 10, max_extension_s = 100 "
           "WHERE category = %s RETURNING category", CATEGORY)
    broker = make_broker(extension_approval="above")
    intake = broker.intake()
    inc = intake.submit(source="t", external_id="approve", category=CATEGORY,
                        location={"unit": GRID})["incident_id"]
    w = broker.worker()
    w.hello([GRID], credit=1)
    ok = w.sign(w.deliver())
    due = pg.incident(inc)["resolve_due_ms"]
    small = w.extend(inc, ok["version"], until=due + 5000, reason="等待配件")
    assert small.type == "OK" and small["applied"], small
    assert pg.incident(inc)["resolve_due_ms"] == due + 5000, "within the automatic limit"
    big = w.extend(inc, small["version"], until=due + 60000, reason="需要街道协调")
    assert big.type == "OK", big
    row = pg.incident(inc)
    assert row["resolve_due_ms"] == due + 5000, "a request does not move the deadline"
    assert row["extension_pending"] is not None
    again = w.extend(inc, big["version"], until=due + 70000, reason="再次申请")
    assert again.type == "ERR" and again["code"] == "bad_state"
    too_far = w.extend(inc, big["version"], until=due + 5000 + 200000, reason="太久")
    assert too_far.type == "ERR" and too_far["code"] == "policy"
    stale = intake.request("APPROVE", {"incident_id": inc, "version": big["version"] - 1,
                                       "approve": True}, gdclient.INTAKE_REPLIES)
    assert stale.type == "REJECTED" and stale["code"] == "stale_version"
    done = intake.request("APPROVE", {"incident_id": inc, "version": big["version"],
                                      "approve": True, "note": "同意"}, gdclient.INTAKE_REPLIES)
    assert done.type == "DONE", done
    row = pg.incident(inc)
    assert row["resolve_due_ms"] == due + 60000 and row["extension_pending"] is None
    none_waiting = intake.request("APPROVE", {"incident_id": inc, "version": done["version"],
                                              "approve": False}, gdclient.INTAKE_REPLIES)
    assert none_waiting.type == "REJECTED" and none_waiting["code"] == "bad_state"
    assert pg.kinds(inc)[-3:] == ["extend", "extend_request", "extend"]


def test_denied_extension_leaves_the_deadline(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    broker = make_broker(extension_approval="above")
    intake = broker.intake()
    inc = intake.submit(source="t", external_id="deny", category=CATEGORY,
                        location={"unit": GRID})["incident_id"]
    w = broker.worker()
    w.hello([GRID], credit=1)
    ok = w.sign(w.deliver())
    due = pg.incident(inc)["resolve_due_ms"]
    req = w.extend(inc, ok["version"], until=due + 30000, reason="理由")
    assert req.type == "OK"
    done = intake.request("APPROVE", {"incident_id": inc, "version": req["version"],
                                      "approve": False, "note": "不符合延期条件"},
                          gdclient.INTAKE_REPLIES)
    assert done.type == "DONE"
    row = pg.incident(inc)
    assert row["resolve_due_ms"] == due and row["extension_pending"] is None
    ev = pg.events(inc)[-1]
    assert ev["kind"] == "extend_deny" and ev["note"] == "不符合延期条件"


def test_every_event_records_the_deadlines_in_force_after_it(make_broker, pg):
    make_fast_category(pg, sign_s=30, resolve_s=60)
    broker = make_broker()
    inc = broker.intake().submit(source="t", external_id="evdue", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    w = broker.worker()
    w.hello([GRID], credit=1)
    ok = w.sign(w.deliver())
    until = pg.incident(inc)["resolve_due_ms"] + 10000
    assert w.extend(inc, ok["version"], until=until, reason="协调中").type == "OK"
    row = pg.incident(inc)
    ev = pg.all("SELECT kind, gd_ms(sign_due) AS s, gd_ms(resolve_due) AS r FROM incident_event "
                "WHERE incident_id = %s ORDER BY version", inc)
    assert [e["kind"] for e in ev] == ["receive", "deliver", "sign", "extend"]
    assert all(e["s"] == row["sign_due_ms"] for e in ev)
    assert [e["r"] for e in ev] == [until - 10000] * 3 + [until]


def test_the_initial_set_carries_only_committed_versions(make_broker, pg):
    """An SLA worker that connects while an incident's change is still on its
    way to the database (here: its SIGN, held up by a lock on the event
    table) is not sent that incident in its initial set: the version in
    memory is not durable yet, an ESCALATE on it would be refused as stale,
    and gd-sla would then drop the commit's DEADLINE of the same version as
    a repeat. The DEADLINE comes once the SIGN commits, and escalates."""
    make_fast_category(pg, sign_s=30, resolve_s=3)
    broker = make_broker()
    inc = broker.intake().submit(source="t", external_id="held", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    w = broker.worker()
    w.hello([GRID], credit=1)
    d = w.deliver()
    pg.wait_incident(inc, lambda r: r["state"] == "DELIVERED")

    lock = psycopg2.connect(broker.dsn)
    try:
        cur = lock.cursor()
        cur.execute("LOCK TABLE incident_event IN SHARE MODE")
        w.send("SIGN", {"incident_id": inc, "delivery_id": d["delivery_id"], "ref": 7001})
        gdclient.wait_until(lambda: pg.scalar("SELECT count(*) FROM pg_locks l JOIN pg_class c "
                                              "ON c.oid = l.relation WHERE NOT l.granted AND "
                                              "c.relname = 'incident_event'") > 0,
                            10, "the SIGN's commit waiting for the lock", broker.hub)
        sla, m = sla_session(broker)
        assert m.type == "WELCOME"
        synced = deadlines_until_synced(sla)
        assert [x for x in synced if x["incident_id"] == inc] == [], \
            f"the initial set carried a version not yet committed: {synced}"
    finally:
        lock.rollback()
        lock.close()
    ok = w.reply(7001, gdclient.WORK_REPLIES)
    assert ok.type == "OK", ok
    resolve = next_deadline(sla, inc, "resolve")
    assert resolve["version"] == ok["version"] == pg.incident(inc)["version"]
    wait_past(broker.hub, resolve["due_at"])
    up = escalate(sla, resolve)
    assert up.type == "OK" and up["applied"] is True, up
    pg.wait_incident(inc, lambda r: r["queue"] == COMMUNITY)
