"""Incident lifecycle (DESIGN §4) through the work and intake endpoints, checked in the event log."""

import time

from demo import (CAT_GRID, CAT_TOWN, COMMUNITY, GRID, MICRO_GRID, PII_ADDRESS, PII_NAME,
                  PII_PHONE, TOWN, submission)


def ok(reply, applied=True):
    assert reply.type == "OK", reply
    assert reply["applied"] is applied, reply
    return reply


def assert_history(pg, incident_id, kinds):
    """The event log holds exactly `kinds`, versions 1..n without gaps, each
    event starting from the state the previous one ended in, and the
    projection is at the last event's version and state."""
    events = pg.events(incident_id)
    assert [e["kind"] for e in events] == kinds
    assert [e["version"] for e in events] == list(range(1, len(kinds) + 1))
    assert events[0]["from_state"] in (None, "RECEIVED")
    for prev, e in zip(events, events[1:]):
        assert e["from_state"] == prev["to_state"], (prev, e)
        assert e["at"] >= prev["at"]
    row = pg.incident(incident_id)
    assert row["version"] == events[-1]["version"]
    assert row["state"] == events[-1]["to_state"]
    assert row["queue"] == events[-1]["queue"]
    return events


def delivered(pg, broker, iid):
    """Waits until the DELIVER event is durable (DELIVER goes out before its commit)."""
    pg.wait_incident(iid, lambda row: row["state"] == "DELIVERED", hub=broker.hub)


def new_incident(broker, ext, **kw):
    r = broker.intake().submit(**submission(ext, **kw))
    assert r.type == "ACCEPTED", r
    return r["incident_id"]


def test_deliver_sign_progress_resolve_then_satisfied_feedback_closes_it(broker, pg):
    intake = broker.intake()
    iid = new_incident(broker, "L-1")
    w = broker.worker(queues=[GRID], credit=1, name="网格员甲")
    d = w.deliver()
    assert d["attempt"] == 1 and d["delivery_id"]
    inc = d["incident"]
    assert inc["id"] == iid and inc["state"] == "DELIVERED" and inc["version"] == 2
    assert inc["reporter"]["name"] == PII_NAME      # the owning worker gets the contact
    s = ok(w.sign(d))
    assert s["version"] == 3
    p = ok(w.progress(iid, s["version"], "已到现场"))
    assert p["version"] == 4
    r = ok(w.resolve(iid, p["version"], "已更换灯泡"))
    assert r["version"] == 5
    assert pg.incident(iid)["state"] == "RESOLVED"
    done = intake.feedback(iid, True, "满意")
    assert done.type == "DONE", done
    assert (done["state"], done["version"]) == ("CLOSED", 6)
    ev = assert_history(pg, iid, ["receive", "deliver", "sign", "progress", "resolve", "close"])
    assert [e["to_state"] for e in ev] == ["QUEUED", "DELIVERED", "SIGNED", "IN_PROGRESS",
                                           "RESOLVED", "CLOSED"]
    assert ev[2]["actor"] == "网格员甲"
    assert ev[3]["note"] == "已到现场" and ev[4]["note"] == "已更换灯泡"
    assert ev[5]["note"] == "满意"
    # a closed incident takes no more feedback
    again = intake.feedback(iid, False, "changed my mind")
    assert again.type == "REJECTED" and again["code"] == "not_found", again


def test_resolve_straight_from_delivered_is_allowed(broker, pg):
    iid = new_incident(broker, "L-1b")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    ok(w.resolve(iid, d["incident"]["version"], "电话答复"))
    assert_history(pg, iid, ["receive", "deliver", "resolve"])


def test_unsatisfied_feedback_reopens_it_and_it_is_delivered_again(broker, pg):
    intake = broker.intake()
    iid = new_incident(broker, "L-2")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    s = ok(w.sign(d))
    ok(w.resolve(iid, s["version"], "已处理"))
    done = intake.feedback(iid, False, "灯还是不亮")
    assert done.type == "DONE", done
    assert done["state"] == "QUEUED" and done["queue"] == GRID
    d2 = w.deliver()
    assert d2["incident"]["id"] == iid and d2["delivery_id"] != d["delivery_id"]
    assert d2["incident"]["state"] == "DELIVERED"
    s2 = ok(w.sign(d2))
    ev = assert_history(pg, iid, ["receive", "deliver", "sign", "resolve", "reopen", "deliver",
                                  "sign"])
    reopen = ev[4]
    assert (reopen["from_state"], reopen["to_state"]) == ("RESOLVED", "QUEUED")
    assert reopen["note"] == "灯还是不亮" and reopen["queue"] == GRID
    assert s2["version"] == 7


def test_feedback_on_an_incident_not_resolved_is_bad_state(broker, pg):
    iid = new_incident(broker, "L-2b")
    r = broker.intake().feedback(iid, True)
    assert r.type == "REJECTED" and r["code"] == "bad_state", r
    assert_history(pg, iid, ["receive"])


def test_return_from_a_grid_goes_to_the_community_queue_with_the_reason(broker, pg):
    iid = new_incident(broker, "L-3")
    w = broker.worker(queues=[GRID], credit=1)
    up = broker.worker(queues=[COMMUNITY], credit=1)
    d = w.deliver()
    s = ok(w.sign(d))
    r = ok(w.return_(iid, s["version"], "不属于网格职责", rule="网格事项准入清单第3条"))
    d2 = up.deliver()
    assert d2["incident"]["id"] == iid and d2["incident"]["queue"] == COMMUNITY
    assert d2["incident"]["level"] == "community"
    ev = assert_history(pg, iid, ["receive", "deliver", "sign", "return", "deliver"])
    ret = ev[3]
    assert (ret["from_state"], ret["to_state"], ret["queue"]) == ("SIGNED", "QUEUED", COMMUNITY)
    assert "不属于网格职责" in ret["note"] and "网格事项准入清单第3条" in ret["note"]
    assert ret["version"] == r["version"]
    row = pg.incident(iid)
    assert (row["owner_unit"], row["owner_level"]) == (COMMUNITY, "community")


def test_return_from_a_town_goes_to_triage(broker, pg):
    iid = new_incident(broker, "L-4", category=CAT_TOWN)
    w = broker.worker(queues=[f"{TOWN}.economy"], credit=1)
    d = w.deliver()
    ok(w.return_(iid, d["incident"]["version"], "应由区级部门办理"))
    ev = assert_history(pg, iid, ["receive", "deliver", "return"])
    assert ev[2]["queue"] == "triage" and ev[2]["from_state"] == "DELIVERED"
    assert ev[2]["note"] == "应由区级部门办理"


def test_extend_stores_the_new_resolve_deadline(broker, pg):
    # emergency limits are wall-clock, so the broker sets a resolve deadline
    iid = new_incident(broker, "L-5", priority="emergency")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    due = d["incident"]["resolve_due"]
    assert due, d
    s = ok(w.sign(d))
    until = due + 3600_000
    e = ok(w.extend(iid, s["version"], until, "需协调供电公司"))
    row = pg.incident(iid)
    assert abs(row["resolve_due_ms"] - until) <= 1
    assert row["state"] == "SIGNED"
    ev = assert_history(pg, iid, ["receive", "deliver", "sign", "extend"])
    assert (ev[3]["from_state"], ev[3]["to_state"]) == ("SIGNED", "SIGNED")
    assert ev[3]["note"] == "需协调供电公司"
    # not beyond the category's maximum extension (12 h for LH-0101 emergency)
    far = ok(w.progress(iid, e["version"], "协调中"))
    bad = w.extend(iid, far["version"], until + 13 * 3600_000, "再延")
    assert bad.type == "ERR" and bad["code"] == "policy" and bad["field"] == "until", bad
    # nor to a time before the current deadline
    bad = w.extend(iid, far["version"], until - 1000, "缩短")
    assert bad.type == "ERR" and bad["code"] == "bad_value", bad
    assert abs(pg.incident(iid)["resolve_due_ms"] - until) <= 1


def test_command_with_a_stale_version_is_refused(broker, pg):
    iid = new_incident(broker, "L-6")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    s = ok(w.sign(d))
    stale = w.progress(iid, s["version"] - 1, "old view")
    assert stale.type == "ERR", stale
    assert (stale["code"], stale["field"]) == ("stale_version", "version")
    assert stale["ref"]
    assert_history(pg, iid, ["receive", "deliver", "sign"])


def test_sign_of_another_sessions_delivery_is_not_owner(broker, pg):
    iid = new_incident(broker, "L-7")
    a = broker.worker(queues=[GRID], credit=1, name="a")
    d = a.deliver()
    b = broker.worker(queues=[GRID], credit=1, name="b")
    r = b.sign(d)
    assert r.type == "ERR" and r["code"] == "not_owner", r
    delivered(pg, broker, iid)
    assert_history(pg, iid, ["receive", "deliver"])
    ok(a.sign(d))


def test_command_on_a_queue_the_session_does_not_serve_is_not_owner(broker, pg):
    iid = new_incident(broker, "L-7b")
    a = broker.worker(queues=[GRID], credit=1)
    d = a.deliver()
    other = broker.worker(queues=[COMMUNITY], credit=1)
    r = other.resolve(iid, d["incident"]["version"], "not mine")
    assert r.type == "ERR" and r["code"] == "not_owner", r
    delivered(pg, broker, iid)
    assert_history(pg, iid, ["receive", "deliver"])


def test_retried_resolve_is_answered_ok_not_applied_and_records_nothing(broker, pg):
    iid = new_incident(broker, "L-8")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    s = ok(w.sign(d))
    first = ok(w.resolve(iid, s["version"], "done"))
    again = ok(w.resolve(iid, s["version"], "done"), applied=False)
    assert again["version"] == first["version"]
    assert_history(pg, iid, ["receive", "deliver", "sign", "resolve"])


def test_retried_sign_is_answered_ok_not_applied(broker, pg):
    iid = new_incident(broker, "L-8b")
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    first = ok(w.sign(d))
    again = ok(w.sign(d), applied=False)
    assert again["version"] == first["version"]
    assert_history(pg, iid, ["receive", "deliver", "sign"])


def test_command_before_hello_is_no_session(broker, pg):
    iid = new_incident(broker, "L-9")
    w = broker.worker()          # connected, no HELLO
    r = w.command("SIGN", iid, version=1)
    assert r.type == "ERR" and r["code"] == "no_session", r
    r = w.resolve(iid, 1, "x")
    assert r.type == "ERR" and r["code"] == "no_session", r
    assert_history(pg, iid, ["receive"])


def test_every_transition_is_published_without_reporter_data(broker, pg):
    status = broker.status("")   # everything the broker publishes
    intake = broker.intake()
    iid = new_incident(broker, "L-10", unit=MICRO_GRID)
    triage_id = new_incident(broker, "L-10t", unit=None)
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    s = ok(w.sign(d))
    p = ok(w.progress(iid, s["version"], "处理中"))
    ok(w.resolve(iid, p["version"], "已处理"))
    assert intake.feedback(iid, False, f"联系{PII_NAME}").type == "DONE"
    d2 = w.deliver()
    s2 = ok(w.sign(d2))
    ok(w.resolve(iid, s2["version"], "再次处理"))
    assert intake.feedback(iid, True).type == "DONE"
    events = pg.events(iid)
    topic = f"inc.{TOWN}.{COMMUNITY}.{GRID}"
    seen = []
    for e in events:
        m = status.topic(topic, lambda m, v=e["version"]: m.get("incident_id") == iid
                         and m.get("version") == v)
        seen.append(m)
    for e, m in zip(events, seen):
        assert m["event"] == e["kind"] and m["to"] == e["to_state"], (e, m)
        assert m.get("queue", "") == e["queue"]
        assert m.get("unit") == MICRO_GRID and m.get("category") == CAT_GRID
    status.topic("inc.triage", lambda m: m.get("incident_id") == triage_id)
    # let a round of gauges and broker status arrive too, then look at every byte
    status.drain(0.3)
    assert any(t.startswith(b"queue.") for t, _ in status.raw)
    for pii in (PII_NAME, PII_PHONE, PII_ADDRESS):
        needle = pii.encode()
        leaks = [(t, b) for t, b in status.raw if needle in t or needle in b]
        assert not leaks, f"reporter data {pii!r} on the status endpoint: {leaks[:2]!r}"
    log = broker.log_text()
    for pii in (PII_NAME, PII_PHONE, PII_ADDRESS):
        assert pii not in log, f"reporter data {pii!r} in the broker log"


def test_of_two_commands_on_the_same_version_only_the_first_applies(broker, pg):
    # two workers racing on the same incident: one wins, the other is stale
    iid = new_incident(broker, "L-11", category=CAT_GRID)
    a = broker.worker(queues=[GRID], credit=1)
    b = broker.worker(queues=[GRID], credit=1)
    d = a.deliver()
    s = ok(a.sign(d))
    v = s["version"]
    a.send("PROGRESS", {"ref": 900, "incident_id": iid, "version": v, "note": "a"})
    b.send("RESOLVE", {"ref": 901, "incident_id": iid, "version": v, "result": "b"})
    ra = a.reply(900, ("OK", "ERR"))
    rb = b.reply(901, ("OK", "ERR"))
    assert ra.type == "OK" and rb.type == "ERR" and rb["code"] == "stale_version", (ra, rb)
    assert_history(pg, iid, ["receive", "deliver", "sign", "progress"])


def test_transitions_rewrite_the_row_without_touching_an_index(broker, pg):
    # every transition short of closing changes no indexed column, so
    # PostgreSQL keeps the new row version beside the old one (a HOT
    # update) instead of adding an entry to every index of the table
    n = 6
    ids = [new_incident(broker, f"L-HOT-{i}") for i in range(n)]
    w = broker.worker(queues=[GRID], credit=n)
    for _ in ids:
        d = w.deliver()
        s = ok(w.sign(d))
        ok(w.resolve(d["incident"]["id"], s["version"], "已处理"))
    for iid in ids:
        assert_history(pg, iid, ["receive", "deliver", "sign", "resolve"])
    # sign and resolve are two commits each (a change the broker has not
    # stored yet may be folded into the next, so not every transition is
    # an update of its own); each backend reports its counts within a
    # second or so of going idle
    deadline = time.monotonic() + 15
    while True:
        row = pg.one("SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables "
                     "WHERE relid = 'incident'::regclass")
        if row["n_tup_upd"] >= 2 * n or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert row["n_tup_upd"] >= 2 * n, row
    assert row["n_tup_hot_upd"] == row["n_tup_upd"], row
