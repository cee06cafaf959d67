"""Reporter contact data (PII) never leaves through the status topic, the broker log, refusals or gd-dashboard.

test_lifecycle covers the happy path (receive, deliver, sign, progress,
resolve, reopen, close) on the status topic and in the log; this drives the
other lifecycle paths (return, extend, requeue of a dead worker's delivery,
escalation after max attempts with its poison alarm, dispatch from triage)
and refused requests carrying reporter data, with reporter values found
nowhere else, and looks for them in every status frame, the broker log,
every REJECTED/ERR/DENIED text, and gd-dashboard's /metrics, JSON API and maps.
"""

import time

import gdclient
from demo import COMMUNITY, GRID, submission
from test_dashboard import Dashboard

NAME = "欧阳隐私甲"
PHONE = "15500009876"
ADDRESS = "隐私路7号楼4单元1203室"
PII = [NAME.encode(), PHONE.encode(), ADDRESS.encode()]


def private(ext, **kw):
    body = submission(ext, **kw)
    body["reporter"] = {"name": NAME, "phone": PHONE, "address": ADDRESS}
    return body


def leaks(blob):
    return [p.decode() for p in PII if p in blob]


def ok(reply):
    assert reply.type == "OK", reply
    return reply


def test_reporter_data_is_in_no_status_frame_log_refusal_or_dashboard_output(make_broker, pg,
                                                                             dsn):
    pg.all("INSERT INTO unit_boundary (unit, geom) VALUES (%s, ST_Multi(ST_GeomFromText("
           "'POLYGON((106.5 29.4,106.51 29.4,106.51 29.41,106.5 29.41,106.5 29.4))', 4326))) "
           "ON CONFLICT (unit) DO NOTHING RETURNING unit", GRID)
    broker = make_broker(max_attempts=2)
    status = broker.status("")
    dash = Dashboard(broker, dsn)
    refusals = []
    try:
        intake = broker.intake()

        def submit(ext, **kw):
            r = intake.submit(**private(ext, **kw))
            assert r.type == "ACCEPTED", r
            return r["incident_id"]

        # refused requests that carry reporter data
        for bad in ({"reporter": {"name": NAME + "x" * 64, "phone": PHONE}},
                    {"reporter": {"name": NAME, "phone": PHONE + "0" * 32}},
                    {"reporter": {"name": NAME, "email": PHONE}},
                    {"reporter": {"address": ADDRESS * 20}},
                    {"priority": NAME},
                    {"location": {"unit": GRID, "address": ADDRESS, "lat": 91.0, "lon": 1.0}}):
            intake.send("SUBMIT", {"ref": 9, **private("P-bad"), **bad})
            refusals.append(intake.raw_reply())
        refusals.append(intake.query(source="hotline", external_id=PHONE))

        a = submit("P-return")
        b = submit("P-extend")
        c = submit("P-requeue")
        w = broker.worker(queues=[GRID], credit=1, name="grid-1")
        d = w.deliver()
        assert d["incident"]["id"] == a and d["incident"]["reporter"]["name"] == NAME
        ok(w.return_(a, ok(w.sign(d))["version"], "不属于本网格", rule="职责清单 3.2"))
        d = w.deliver()
        assert d["incident"]["id"] == b
        s = ok(w.sign(d))
        until = pg.incident(b)["resolve_due_ms"] + 3600_000
        ok(w.extend(b, s["version"], until, "需要协调物业"))
        refusals.append(w.resolve(b, s["version"], "旧版本"))          # stale_version
        refusals.append(w.progress(c, 1, "未签收"))                    # not its delivery
        # a worker that dies with c delivered: requeued, then poisoned and escalated
        for _ in range(2):
            d = w.deliver()
            assert d["incident"]["id"] == c
            w.silence()
            w.close()
            pg.wait_incident(c, lambda row: row["state"] == "QUEUED", hub=broker.hub)
            w = broker.worker(queues=[GRID], credit=1, name="grid-1")
        pg.wait_incident(c, lambda row: row["queue"] == COMMUNITY, hub=broker.hub)
        status.topic("alarm.poison", lambda m: m.get("incident_id") == c)

        t = submit("P-triage", unit=None, category="")
        r = intake.dispatch(t, 1, GRID, note="人工派单")
        assert r.type == "DONE", r
        r = intake.dispatch(t, 1, GRID)                                   # stale_version
        refusals.append(r)

        # the dashboard has seen it all
        time.sleep(0.6)
        status.drain(0.3)
        gdclient.wait_until(lambda: dash.get(f"/api/map.svg?unit={COMMUNITY}")[0] == 200, 10,
                            "the community's map")
        outputs = {path: dash.get(path)[2] for path in
                   ("/metrics", "/api/summary", f"/api/summary?unit={COMMUNITY}",
                    "/api/feed", "/api/broker", "/api/map.svg", f"/api/map.svg?unit={COMMUNITY}")}
        outputs["gd-dashboard log"] = dash.log_path.read_bytes()
    finally:
        dash.stop()

    kinds = {e["kind"] for i in (a, b, c, t) for e in pg.events(i)}
    assert {"receive", "deliver", "sign", "return", "extend", "requeue", "escalate",
            "dispatch"} <= kinds, kinds
    assert any(topic.startswith(b"inc.") for topic, _ in status.raw)
    for topic, body in status.raw:
        assert not leaks(topic + body), f"reporter data on status {topic!r}: {body!r}"
    assert not leaks(broker.log_text().encode()), "reporter data in the broker log"
    for path, body in outputs.items():
        assert body, path
        assert not leaks(body), f"reporter data in gd-dashboard {path}"
    codes = [r.get("code") for r in refusals]
    assert all(r.type in ("REJECTED", "ERR") for r in refusals), refusals
    assert codes[:6] == ["too_long", "too_long", "unknown_field", "too_long", "bad_value",
                         "bad_value"] and "stale_version" in codes, codes
    for r in refusals:
        assert not leaks((r.get("message", "") + r.get("field", "")).encode()), r
