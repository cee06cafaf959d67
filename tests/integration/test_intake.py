"""Intake endpoint of gd-broker: SUBMIT, QUERY, SNAPSHOT against the real broker and database."""

import time

import msgpack
import pytest

from demo import CAT_GRID, COMMUNITY, GRID, PII_NAME, PII_PHONE, submission
from gdclient import header, pack


def accepted(reply):
    assert reply.type == "ACCEPTED", reply
    return reply


def test_accepted_only_after_the_row_is_committed(make_broker, pg):
    # A long flush interval widens the window in which a broker that
    # answered before its commit would be caught with the row missing.
    broker = make_broker(flush_ms=300)
    intake = broker.intake()
    r = accepted(intake.submit(**submission("A-1")))
    row = pg.incident(r["incident_id"])
    assert row is not None, "ACCEPTED arrived before the incident was committed"
    assert (row["source"], row["external_id"]) == ("hotline", "A-1")
    assert row["state"] == "QUEUED" and row["version"] == 1 and row["queue"] == GRID
    assert r["version"] == 1 and r["state"] == "QUEUED" and r["queue"] == GRID
    assert r["duplicate"] is False
    assert pg.kinds(r["incident_id"]) == ["receive"]


def test_submission_stores_every_field(broker, pg):
    body = submission("A-2", priority="urgent", reported_at=int(time.time() * 1000) - 60000,
                      attachments=["https://media.example/1.jpg", "https://media.example/2.jpg"])
    body["location"].update(lat=29.38, lon=106.54)
    r = accepted(broker.intake().submit(**body))
    row = pg.incident(r["incident_id"])
    assert row["category"] == CAT_GRID and row["priority"] == "urgent"
    assert row["location_unit"] == GRID and row["address"] == "龙洲大道88号"
    assert (row["lat"], row["lon"]) == (29.38, 106.54)
    assert row["description"] == body["description"]
    assert (row["reporter_name"], row["reporter_phone"]) == (PII_NAME, PII_PHONE)
    assert row["attachments"] == body["attachments"]
    assert abs(row["reported_ms"] - body["reported_at"]) < 1000


def test_resubmission_returns_the_same_incident_as_duplicate(broker, pg):
    intake = broker.intake()
    first = accepted(intake.submit(**submission("D-1")))
    again = accepted(intake.submit(**submission("D-1", description="another text")))
    assert again["incident_id"] == first["incident_id"]
    assert again["duplicate"] is True
    assert pg.scalar("SELECT count(*) FROM incident") == 1
    assert pg.kinds(first["incident_id"]) == ["receive"]


def test_repeat_sent_before_the_first_is_answered_gets_the_same_incident(make_broker, pg):
    broker = make_broker(flush_ms=200)
    intake = broker.intake()
    intake.send("SUBMIT", {"ref": 101, **submission("D-2")})
    intake.send("SUBMIT", {"ref": 102, **submission("D-2")})
    a = accepted(intake.reply(101, ("ACCEPTED", "REJECTED", "BUSY")))
    b = accepted(intake.reply(102, ("ACCEPTED", "REJECTED", "BUSY")))
    assert a["incident_id"] == b["incident_id"]
    assert (a["duplicate"], b["duplicate"]) == (False, True)
    assert pg.scalar("SELECT count(*) FROM incident") == 1


def test_resubmission_after_a_broker_restart_is_a_duplicate(broker, pg):
    intake = broker.intake()
    first = accepted(intake.submit(**submission("D-3")))
    broker.restart()
    again = accepted(intake.submit(**submission("D-3")))
    assert again["incident_id"] == first["incident_id"] and again["duplicate"] is True
    assert pg.scalar("SELECT count(*) FROM incident") == 1


def test_resubmission_of_a_closed_incident_after_restart_is_a_duplicate(broker, pg):
    # A closed incident is no longer in the broker's memory: the database's
    # unique (source, external_id) must still make the repeat a duplicate.
    intake = broker.intake()
    first = accepted(intake.submit(**submission("D-4")))
    iid = first["incident_id"]
    w = broker.worker(queues=[GRID], credit=1)
    d = w.deliver()
    ok = w.sign(d)
    assert ok.type == "OK", ok
    ok = w.resolve(iid, ok["version"], "cleaned")
    assert ok.type == "OK", ok
    done = intake.feedback(iid, True, "thanks")
    assert done.type == "DONE" and done["state"] == "CLOSED", done
    w.bye()
    broker.restart()
    again = accepted(intake.submit(**submission("D-4")))
    assert again["incident_id"] == iid and again["duplicate"] is True
    assert again["state"] == "CLOSED"
    assert pg.scalar("SELECT count(*) FROM incident") == 1
    assert pg.kinds(iid)[-1] == "close"


def _without(key):
    def mutate(body):
        del body[key]
    return mutate


def _set(key, value):
    def mutate(body):
        body[key] = value
    return mutate


def _set_in(outer, key, value):
    def mutate(body):
        body[outer][key] = value
    return mutate


BAD_BODIES = [
    ("missing_source", _without("source"), "missing_field", "source"),
    ("missing_external_id", _without("external_id"), "missing_field", "external_id"),
    ("source_with_a_space", _set("source", "bad source"), "bad_value", "source"),
    ("source_upper_case", _set("source", "Hotline"), "bad_value", "source"),
    ("source_too_long", _set("source", "s" * 33), "too_long", "source"),
    ("external_id_too_long", _set("external_id", "x" * 65), "too_long", "external_id"),
    ("description_too_long", _set("description", "d" * 16385), "too_long", "description"),
    ("priority_not_a_string", _set("priority", 1), "wrong_type", "priority"),
    ("priority_unknown", _set("priority", "asap"), "bad_value", "priority"),
    ("location_not_a_map", _set("location", "龙洲"), "wrong_type", "location"),
    ("location_unit_not_a_string", _set_in("location", "unit", 500113), "wrong_type",
     "location.unit"),
    ("latitude_out_of_range", _set_in("location", "lat", 91.0), "bad_value", "location.lat"),
    ("reported_at_not_a_number", _set("reported_at", "yesterday"), "wrong_type", "reported_at"),
    ("reported_at_in_the_future", _set("reported_at", int(time.time() * 1000) + 3600_000),
     "bad_value", "reported_at"),
    ("unknown_field", _set("colour", "red"), "unknown_field", "colour"),
    ("unknown_reporter_field", _set_in("reporter", "email", "a@b.c"), "unknown_field",
     "reporter.email"),
    ("too_many_attachments", _set("attachments", [f"https://m/{i}" for i in range(9)]),
     "too_many", "attachments"),
]


@pytest.mark.parametrize("mutate,code,field", [b[1:] for b in BAD_BODIES],
                         ids=[b[0] for b in BAD_BODIES])
def test_bad_submission_is_rejected_with_its_code_and_field(broker, pg, mutate, code, field):
    intake = broker.intake()
    body = submission("BAD-1")
    mutate(body)
    # A body that does not decode cannot have its ref read back: the reply
    # comes with ref 0, so it is taken as the next reply whatever its ref.
    intake.send("SUBMIT", {"ref": 7, **body})
    r = intake.raw_reply()
    assert r.type == "REJECTED", r
    assert (r["code"], r["field"]) == (code, field), r
    assert r["message"], "a rejection must say why in words"
    assert PII_NAME not in r["message"] and PII_PHONE not in r["message"]
    assert pg.scalar("SELECT count(*) FROM incident") == 0
    # and the broker keeps serving
    assert accepted(intake.submit(**submission("GOOD-1")))["queue"] == GRID


BAD_FRAMES = [
    ("header_with_wrong_signature", [b"GDP2" + bytes([1]), pack(submission("F-1"))],
     "bad_header"),
    ("header_too_short", [b"GDP", pack(submission("F-1"))], "bad_header"),
    ("one_frame_only", [header("SUBMIT")], "bad_header"),
    ("three_frames", [header("SUBMIT"), pack(submission("F-1")), b"extra"], "bad_header"),
    ("unknown_type_byte", [b"GDP1" + bytes([99]), pack({"ref": 1})], "unknown_type"),
    ("worker_message_on_intake", [header("SIGN"), pack({"incident_id": 1, "version": 1})],
     "unknown_type"),
    ("invalid_msgpack", [header("SUBMIT"), b"\xc1\xc1\xc1"], "malformed"),
    ("truncated_msgpack", [header("SUBMIT"), pack(submission("F-1"))[:-3]], "truncated"),
    ("body_not_a_map", [header("SUBMIT"), msgpack.packb(["hotline", "F-1"])], "not_map"),
]


@pytest.mark.parametrize("frames,code", [b[1:] for b in BAD_FRAMES],
                         ids=[b[0] for b in BAD_FRAMES])
def test_bad_frames_are_rejected_and_the_broker_keeps_serving(broker, pg, frames, code):
    intake = broker.intake()
    intake.send_raw(frames)
    r = intake.raw_reply()
    assert r.type == "REJECTED", r
    assert r["code"] == code, r
    assert r["message"]
    assert pg.scalar("SELECT count(*) FROM incident") == 0
    assert accepted(intake.submit(**submission("GOOD-2")))["queue"] == GRID
    assert broker.alive()


def test_query_by_id_returns_the_incident_and_its_events(broker):
    intake = broker.intake()
    r = accepted(intake.submit(**submission("Q-1")))
    q = intake.query(incident_id=r["incident_id"])
    assert q.type == "INCIDENT", q
    inc = q["incident"]
    assert inc["id"] == r["incident_id"] and inc["version"] == 1
    assert (inc["source"], inc["external_id"]) == ("hotline", "Q-1")
    assert inc["state"] == "QUEUED" and inc["queue"] == GRID and inc["owner"] == GRID
    assert inc["level"] == "grid" and inc["category"] == CAT_GRID
    assert inc["location"]["unit"] == GRID
    assert inc["reporter"]["name"] == PII_NAME   # intake clients may read it
    assert [(e["version"], e["kind"], e["to"]) for e in q["events"]] == [(1, "receive", "QUEUED")]
    assert q["events"][0]["queue"] == GRID


def test_query_by_source_and_external_id_returns_the_incident_and_its_events(broker):
    intake = broker.intake()
    r = accepted(intake.submit(**submission("Q-2", unit=COMMUNITY)))
    q = intake.query(source="hotline", external_id="Q-2")
    assert q.type == "INCIDENT", q
    assert q["incident"]["id"] == r["incident_id"]
    assert [e["kind"] for e in q["events"]] == ["receive"]


def test_query_without_events_leaves_them_out(broker):
    intake = broker.intake()
    r = accepted(intake.submit(**submission("Q-3")))
    q = intake.query(incident_id=r["incident_id"], events=False)
    assert q.type == "INCIDENT", q
    assert not q.get("events")


@pytest.mark.parametrize("how", ["id", "key"])
def test_query_of_an_unknown_incident_is_not_found(broker, how):
    intake = broker.intake()
    q = (intake.query(incident_id=987654) if how == "id"
         else intake.query(source="hotline", external_id="never-sent"))
    assert q.type == "REJECTED" and q["code"] == "not_found", q


def test_query_naming_the_incident_two_ways_is_rejected(broker):
    intake = broker.intake()
    intake.send("QUERY", {"ref": 8, "incident_id": 1, "source": "hotline", "external_id": "x"})
    q = intake.raw_reply()
    assert q.type == "REJECTED" and q["code"] == "bad_value", q


def test_snapshot_returns_the_gauges_of_the_queues(broker):
    intake = broker.intake()
    for i in range(3):
        accepted(intake.submit(**submission(f"S-{i}")))
    accepted(intake.submit(**submission("S-c", unit=None)))
    gauges = intake.snapshot()
    by_queue = {g["queue"]: g for g in gauges}
    assert by_queue[GRID]["depth"] == 3 and by_queue[GRID]["in_flight"] == 0
    assert by_queue["triage"]["depth"] == 1
    only = intake.snapshot(prefix=GRID)
    assert [g["queue"] for g in only] == [GRID]
    assert only[0]["consumers"] == 0


def test_a_refused_change_fails_only_itself_while_commits_are_pipelined(make_broker, pg):
    # One lane, small batches and SUBMITs sent without waiting: several
    # commits are in flight at once. The database refuses one row (a CHECK
    # that only it breaks); its batch is retried one change per
    # transaction, the commits behind it go on, and every other SUBMIT is
    # stored exactly once and ACCEPTED.
    pg.scalar("ALTER TABLE incident ADD CONSTRAINT test_poison "
              "CHECK (external_id <> 'PIPE-poison') NOT VALID; SELECT 1")
    try:
        broker = make_broker(db_lanes=1, batch_max=40, db_pipeline=4)
        intake = broker.intake()
        names = [f"PIPE-{i}" for i in range(600)]
        names[300] = "PIPE-poison"
        refs = {}
        for name in names:
            ref = intake.next_ref()
            refs[ref] = name
            intake.send("SUBMIT", {"ref": ref, **submission(name)})
        answers = {refs[ref]: intake.reply(ref, ("ACCEPTED", "REJECTED", "BUSY", "ERR"),
                                           timeout=60)
                   for ref in refs}
        assert answers["PIPE-poison"].type != "ACCEPTED"
        bad = [n for n, a in answers.items() if n != "PIPE-poison" and a.type != "ACCEPTED"]
        assert bad == []
        assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'PIPE-%%'") == 599
        assert pg.scalar("SELECT count(*) FROM incident WHERE external_id = 'PIPE-poison'") == 0
        assert pg.scalar("SELECT count(*) FROM incident_event e JOIN incident i "
                         "ON i.id = e.incident_id WHERE i.external_id LIKE 'PIPE-%%'") == 599
        assert "retrying them one by one" in broker.log_text()
    finally:
        pg.scalar("ALTER TABLE incident DROP CONSTRAINT test_poison; SELECT 1")


# ---- SUBMITS: many SUBMITs in one message ----

def submitted(reply):
    assert reply.type == "SUBMITTED", reply
    return reply["results"]


def test_submits_answers_every_item_in_order_once_committed(make_broker, pg):
    broker = make_broker(flush_ms=300)
    intake = broker.intake()
    future = int(time.time() * 1000) + 3600 * 1000
    items = [submission("M-1"), submission("M-2", priority="urgent"), submission("M-1"),
             submission("M-3", reported_at=future), submission("M-4", unit=None)]
    reply = intake.submit_many(items, ref=77)
    assert reply["ref"] == 77
    res = submitted(reply)
    assert [r["code"] for r in res] == ["ok", "ok", "ok", "bad_value", "ok"]
    assert [r["duplicate"] for r in res] == [False, False, True, False, False]
    assert res[2]["incident_id"] == res[0]["incident_id"]
    assert res[3]["field"] == "reported_at" and "future" in res[3]["message"]
    assert "incident_id" not in res[3]
    assert res[0]["queue"] == GRID and res[0]["state"] == "QUEUED" and res[0]["version"] == 1
    assert res[4]["queue"] == "triage"
    # every accepted item was committed before the answer
    for r in (res[0], res[1], res[4]):
        row = pg.incident(r["incident_id"])
        assert row is not None and row["state"] == "QUEUED", r
        assert pg.kinds(r["incident_id"]) == ["receive"]
    assert pg.incident(res[1]["incident_id"])["priority"] == "urgent"
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'M-%%'") == 3

    again = submitted(intake.submit_many([submission("M-2"), submission("M-5")]))
    assert again[0]["duplicate"] is True and again[0]["incident_id"] == res[1]["incident_id"]
    assert again[1]["code"] == "ok" and again[1]["duplicate"] is False


def test_submits_item_refs_are_echoed_per_item(broker):
    intake = broker.intake()
    items = [{"ref": 1000 + i, **submission(f"R-{i}")} for i in range(40)]
    res = submitted(intake.submit_many(items))
    assert [r["ref"] for r in res] == [1000 + i for i in range(40)]
    assert all(r["code"] == "ok" for r in res)
    assert len({r["incident_id"] for r in res}) == 40


def test_submits_with_one_unreadable_item_is_refused_whole(broker, pg):
    intake = broker.intake()
    items = [submission("W-1"), submission("W-2", source="Not A Source"), submission("W-3")]
    r = intake.submit_many(items, ref=5)
    assert r.type == "REJECTED" and r["ref"] == 5, r
    assert r["code"] == "bad_value" and r["field"] == "items[1].source"
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'W-%%'") == 0
    for body, code, field in (({"items": []}, "bad_value", "items"),
                              ({"ref": 6}, "missing_field", "items"),
                              ({"items": [submission(f"W-{i}") for i in range(257)]},
                               "too_many", "items")):
        r = intake.request("SUBMITS", body, ("REJECTED", "SUBMITTED"))
        assert r.type == "REJECTED" and (r["code"], r["field"]) == (code, field), r
    # and the broker goes on serving
    assert submitted(intake.submit_many([submission("W-9")]))[0]["code"] == "ok"


def test_submits_items_beyond_the_clients_room_are_refused_with_limit(make_broker, pg):
    broker = make_broker(max_pending=3, flush_ms=200)
    intake = broker.intake()
    res = submitted(intake.submit_many([submission(f"L-{i}") for i in range(5)]))
    assert [r["code"] for r in res] == ["ok", "ok", "ok", "limit", "limit"]
    assert "more than 3 requests" in res[3]["message"]
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'L-%%'") == 3
    # the places are given back with the answer
    res = submitted(intake.submit_many([submission(f"L-{i}") for i in range(3, 6)]))
    assert [r["code"] for r in res] == ["ok", "ok", "ok"]
    # a single SUBMIT while a SUBMITS holds every place is refused
    intake.send("SUBMITS", {"ref": 900, "items": [submission(f"L-{i}") for i in range(6, 9)]})
    single = intake.submit(**submission("L-9"))
    assert single.type == "REJECTED" and single["code"] == "limit", single
    assert [r["code"] for r in submitted(intake.reply(900, ("SUBMITTED",)))] == ["ok"] * 3


def test_submits_items_beyond_max_open_are_busy(make_broker, pg):
    broker = make_broker(max_open=2)
    intake = broker.intake()
    res = submitted(intake.submit_many([submission(f"C-{i}") for i in range(4)]))
    assert [r["code"] for r in res] == ["ok", "ok", "busy", "busy"]
    assert res[2]["reason"] == "capacity" and res[2]["retry_ms"] > 0
    assert "incident_id" not in res[2]
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'C-%%'") == 2
