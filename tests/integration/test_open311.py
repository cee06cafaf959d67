"""gd-open311 against the real broker and PostgreSQL: every GeoReport v2 endpoint, both formats, good and bad input.

The JSON checks below are written from the rules of the Open311 GeoReport v2
JSON schemas (services, service definition, service requests, POST
response, errors): required keys, types, enumerations and date-time format.
"""

import datetime
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import gdclient

GRID = "500113001001001"
CATEGORY = "LH-0101"
KEY = "app-key-0000000001"
PRINCIPAL = "citizen-app"
PHONE = "13812345678"

DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# ---- the GeoReport v2 schema rules ----

def is_str_or_null(v):
    return v is None or isinstance(v, str)


def check_service(s):
    assert set(s) == {"service_code", "service_name", "description", "metadata", "type",
                      "keywords", "group"}, s
    assert isinstance(s["service_code"], str) and s["service_code"]
    assert isinstance(s["service_name"], str) and s["service_name"]
    assert is_str_or_null(s["description"]) and is_str_or_null(s["keywords"])
    assert is_str_or_null(s["group"])
    assert isinstance(s["metadata"], bool)
    assert s["type"] in ("realtime", "batch", "blackbox")


def check_definition(d):
    assert set(d) == {"service_code", "attributes"}
    assert isinstance(d["service_code"], str) and isinstance(d["attributes"], list)
    for a in d["attributes"]:
        assert isinstance(a["variable"], bool) and isinstance(a["code"], str)
        assert a["datatype"] in ("string", "number", "datetime", "text", "singlevaluelist",
                                 "multivaluelist")
        assert isinstance(a["required"], bool) and isinstance(a["order"], int)


def check_date_time(v, nullable):
    if v is None:
        assert nullable
        return
    assert isinstance(v, str) and DATE_TIME.match(v), v
    datetime.datetime.fromisoformat(v.replace("Z", "+00:00"))


def check_request(r):
    assert set(r) == {"service_request_id", "status", "status_notes", "service_name",
                      "service_code", "description", "agency_responsible", "service_notice",
                      "requested_datetime", "updated_datetime", "expected_datetime", "address",
                      "address_id", "zipcode", "lat", "long", "media_url"}, r
    assert isinstance(r["service_request_id"], str) and r["service_request_id"]
    assert r["status"] in ("open", "closed")
    for k in ("status_notes", "service_name", "description", "agency_responsible",
              "service_notice", "address", "address_id", "zipcode", "media_url"):
        assert is_str_or_null(r[k]), k
    assert isinstance(r["service_code"], str)
    check_date_time(r["requested_datetime"], nullable=False)
    check_date_time(r["updated_datetime"], nullable=True)
    check_date_time(r["expected_datetime"], nullable=True)
    for k in ("lat", "long"):
        assert r[k] is None or isinstance(r[k], (int, float)), k
    if r["media_url"] is not None:
        assert re.match(r"^https?://", r["media_url"])
    for pii in ("first_name", "last_name", "phone", "email", "reporter"):
        assert pii not in r


def check_post_response(body, city=False):
    """One POST answer; with a city its id is "<shard>-<number>", else the number."""
    assert isinstance(body, list) and len(body) == 1
    (r,) = body
    assert set(r) == {"service_request_id", "service_notice", "account_id"}, r
    rid = r["service_request_id"]
    assert isinstance(rid, str)
    assert re.fullmatch(r"[a-z0-9_-]{1,32}-[0-9]+" if city else r"[0-9]+", rid), rid
    assert is_str_or_null(r["service_notice"]) and is_str_or_null(r["account_id"])
    return r


def check_errors(body):
    assert isinstance(body, list) and body
    for e in body:
        assert set(e) == {"code", "description"}, e
        assert isinstance(e["code"], int) and isinstance(e["description"], str)
        assert e["description"]
    return body


# ---- the adapter ----

def open311_binary():
    p = Path(os.environ.get("GD_BUILD_DIR", "")) / "workers" / "open311" / "gd-open311"
    if not p.is_file():
        pytest.fail(f"no gd-open311 at {p}: set GD_BUILD_DIR")
    return p


class Open311:
    def __init__(self, broker, dsn, tmp_path, **options):
        keys = tmp_path / "keys"
        keys.write_text(f"{KEY} = {PRINCIPAL}\nother-key-00000002 = partner\n")
        conf = {"db": dsn, "keys_file": str(keys), "port": 0, "log_level": "debug",
                "attempt_timeout_ms": 1000, "submit_timeout_ms": 4000}
        if broker is not None:   # else the options name a city
            conf["intake"] = broker.intake_ep
        conf.update(options)
        self.config = tmp_path / "open311.ini"
        self.config.write_text("[open311]\n" + "".join(f"{k} = {v}\n" for k, v in conf.items()))
        self.log = tmp_path / "open311.log"
        self.logf = open(self.log, "wb")
        self.proc = subprocess.Popen([str(open311_binary()), "--config", str(self.config)],
                                     stdout=self.logf, stderr=self.logf)
        port = gdclient.wait_until(self._port, 10, "gd-open311 listening")
        self.base = f"http://127.0.0.1:{port}"

    def _port(self):
        assert self.proc.poll() is None, self.log.read_text()
        m = re.search(r"listening on [0-9.]+:(\d+)", self.log.read_text())
        return int(m.group(1)) if m else None

    def call(self, method, path, form=None, query=None, headers=None, raw=None):
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = raw if raw is not None else (
            urllib.parse.urlencode(form).encode() if form is not None else None)
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if form is not None and raw is None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, dict(r.headers), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def get(self, path, **query):
        return self.call("GET", path, query=query or None)

    def post(self, fmt="json", headers=None, **form):
        return self.call("POST", f"/requests.{fmt}", form=form, headers=headers)

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(15)
        finally:
            self.logf.close()
        return rc


@pytest.fixture
def open311(broker, dsn, tmp_path):
    o = Open311(broker, dsn, tmp_path)
    yield o
    assert o.stop() == 0
    log = o.log.read_bytes()
    assert PHONE.encode() not in log and "张".encode() not in log, "no PII in the log"


def jbody(resp, status=200):
    code, headers, text = resp
    assert code == status, (code, text)
    assert headers["Content-Type"].startswith("application/json")
    return json.loads(text)


def xbody(resp, status=200):
    code, headers, text = resp
    assert code == status, (code, text)
    assert headers["Content-Type"].startswith("text/xml")
    return ET.fromstring(text.encode())


def good_form(**extra):
    f = {"api_key": KEY, "service_code": CATEGORY, "address_id": GRID,
         "description": "小区门口垃圾堆积 <三天> & 无人清理", "first_name": "三", "last_name": "张",
         "phone": PHONE, "email": "z@example.org", "media_url": "https://img.example.org/1.jpg",
         "account_id": "acct-7"}
    f.update(extra)
    return f


# ---- services ----

def test_services_list_and_definition_in_both_formats(open311, pg):
    services = jbody(open311.get("/services.json"))
    for s in services:
        check_service(s)
    cats = {r["code"]: r for r in pg.all("SELECT code, name, group_name FROM category")}
    assert {s["service_code"] for s in services} == set(cats)
    lh = next(s for s in services if s["service_code"] == CATEGORY)
    assert lh["service_name"] == cats[CATEGORY]["name"] == "暴露垃圾"
    assert lh["group"] == cats[CATEGORY]["group_name"] and lh["metadata"] is False

    root = xbody(open311.get("/services.xml"))
    assert root.tag == "services" and len(root) == len(services)
    x = next(e for e in root if e.findtext("service_code") == CATEGORY)
    assert x.findtext("service_name") == "暴露垃圾" and x.findtext("metadata") == "false"
    assert x.findtext("group") == lh["group"]

    d = jbody(open311.get(f"/services/{CATEGORY}.json"))
    check_definition(d)
    assert d == {"service_code": CATEGORY, "attributes": []}
    root = xbody(open311.get(f"/services/{CATEGORY}.xml"))
    assert root.tag == "service_definition" and root.findtext("service_code") == CATEGORY

    check_errors(jbody(open311.get("/services/NO-SUCH.json"), 404))
    root = xbody(open311.get("/services/NO-SUCH.xml"), 404)
    assert root.tag == "errors" and root.find("error").findtext("code") == "404"
    check_errors(jbody(open311.get("/services.yaml"), 404))
    check_errors(jbody(open311.get("/nothing.json"), 404))
    assert open311.call("DELETE", "/services.json")[0] == 405


# ---- POST requests ----

def test_post_creates_an_incident_after_accepted_and_retry_gives_the_same_id(open311, pg):
    r = check_post_response(jbody(open311.post(
        headers={"Idempotency-Key": "k-1"},
        **good_form(**{"attribute[bin_size]": "large"}))))
    inc = int(r["service_request_id"])
    assert r["account_id"] == "acct-7"
    row = pg.incident(inc)   # committed before the answer
    assert row["source"] == "open311" and row["external_id"] == f"{PRINCIPAL}:k-1"
    assert row["category"] == CATEGORY and row["queue"] == GRID
    assert row["reporter_phone"] == PHONE and row["reporter_name"] == "三 张"
    assert row["attachments"] == ["https://img.example.org/1.jpg"]
    assert row["description"].startswith("小区门口垃圾堆积") and "[bin_size] large" in \
        row["description"]

    again = check_post_response(jbody(open311.post(headers={"Idempotency-Key": "k-1"},
                                                   **good_form(description="重试"))))
    assert again["service_request_id"] == r["service_request_id"]
    assert "already" in again["service_notice"]
    # the same key from another principal is another report
    other = check_post_response(jbody(open311.post(
        headers={"Idempotency-Key": "k-1"}, **good_form(api_key="other-key-00000002"))))
    assert other["service_request_id"] != r["service_request_id"]
    # without a key every POST is new
    a = check_post_response(jbody(open311.post(**good_form())))
    b = check_post_response(jbody(open311.post(**good_form())))
    assert a["service_request_id"] != b["service_request_id"]

    root = xbody(open311.post(fmt="xml", headers={"Idempotency-Key": "k-1"}, **good_form()))
    assert root.tag == "service_requests"
    assert root.find("request").findtext("service_request_id") == r["service_request_id"]

    # lat/long alone and address_string alone are locations too
    ll = check_post_response(jbody(open311.post(**good_form(address_id="", lat="29.38",
                                                            long="106.54"))))
    row = pg.incident(int(ll["service_request_id"]))
    assert abs(row["lat"] - 29.38) < 1e-9 and abs(row["lon"] - 106.54) < 1e-9
    assert row["queue"] == (row["location_unit"] or "triage"), "placed by the broker, or triage"
    check_post_response(jbody(open311.post(**good_form(address_id="",
                                                       address_string="鱼洞街道新市街12号"))))
    # 4000 characters of CJK (12000 bytes) are within the limit
    check_post_response(jbody(open311.post(**good_form(description="垃" * 4000))))


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_post_refusals_use_the_spec_error_format(open311, pg, fmt):
    cases = [
        (403, dict(api_key=""), "api_key"),
        (403, dict(api_key="wrong-key-000000"), "api_key"),
        (400, dict(service_code=""), "service_code"),
        (400, dict(service_code="NO-SUCH"), "service_code"),
        (400, dict(address_id="", lat="", long=""), "location"),
        (400, dict(address_id="999999999999"), "address_id"),
        (400, dict(description="x" * 4001), "description"),
        (400, dict(lat="95", long="106.5", address_id=""), "lat: not a latitude"),
        (400, dict(lat="29.5", long="-180.5", address_id=""), "long: not a longitude"),
        (400, dict(lat="29.5", address_id=""), "long: missing"),
        (400, dict(long="106.5", address_id=""), "lat: missing"),
        (400, dict(lat="0x1d", long="106.5", address_id=""), "lat: not a latitude"),
        (400, dict(lat="2.9e1", long="106.5", address_id=""), "lat: not a latitude"),
        (400, dict(lat="nan", long="106.5", address_id=""), "lat: not a latitude"),
        (400, dict(lat="29.5", long="106.5 ", address_id=""), "long: not a longitude"),
        (400, dict(lat="29.5", long=".", address_id=""), "long: not a longitude"),
        (400, dict(address_string="鱼" * 86, address_id=""), "address_string: longer than 256"),
        (400, dict(media_url="javascript:alert(1)"), "media_url"),
        (400, {"attribute[a]": "x" * 300}, "attribute"),
    ]
    for status, change, word in cases:
        form = {k: v for k, v in good_form(**change).items() if v != ""}
        resp = open311.post(fmt=fmt, **form)
        if fmt == "json":
            (e,) = check_errors(jbody(resp, status))
            assert e["code"] == status and word in e["description"], (change, e)
        else:
            root = xbody(resp, status)
            assert root.tag == "errors", change
            assert root.find("error").findtext("code") == str(status)
            assert word in root.find("error").findtext("description"), change
    # the query string is read like the body, with the same limits
    form = {k: v for k, v in good_form(address_id="").items()}
    code, _, text = open311.call("POST", f"/requests.{fmt}", form=form,
                                 query={"address_string": "鱼" * 86})
    assert code == 400 and "address_string: longer than 256" in text, text
    assert pg.scalar("SELECT count(*) FROM incident WHERE source = 'open311'") == 0
    # a body beyond max_body, and a body that is not a form
    code, _, text = open311.call("POST", f"/requests.{fmt}", raw=b"a=" + b"x" * 70000,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert code == 413
    code, _, text = open311.call("POST", f"/requests.{fmt}", raw=b'{"service_code": 1}',
                                 headers={"Content-Type": "application/json"})
    assert code == 400
    code, _, _ = open311.call("POST", f"/requests.{fmt}", form=good_form(),
                              headers={"Idempotency-Key": "k" * 60})
    assert code == 400


# ---- GET requests ----

def test_get_requests_filters_paging_and_no_pii(open311, broker, pg):
    ids = []
    for i in range(7):
        r = check_post_response(jbody(open311.post(headers={"Idempotency-Key": f"g-{i}"},
                                                   **good_form())))
        ids.append(r["service_request_id"])
    other = check_post_response(jbody(open311.post(**good_form(service_code="LH-0102"))))
    # an incident from the hotline is not public
    hot = broker.intake().submit(source="hotline", external_id="h-1", category=CATEGORY,
                                 location={"unit": GRID})["incident_id"]
    # resolve one: it becomes closed
    w = broker.worker()
    w.hello([GRID], credit=1)
    d = w.deliver()
    ok = w.sign(d)
    assert w.command("RESOLVE", d["incident"]["id"], ok["version"], result="已清运").type == "OK"
    closed_id = str(d["incident"]["id"])

    listed = jbody(open311.get("/requests.json"))
    for r in listed:
        check_request(r)
    got = [r["service_request_id"] for r in listed]
    assert set(got) == set(ids) | {other["service_request_id"]}
    assert str(hot) not in got
    assert [int(x) for x in got] == sorted((int(x) for x in got), reverse=True), "newest first"
    text = open311.get("/requests.json")[2] + open311.get("/requests.xml")[2]
    assert PHONE not in text and "z@example.org" not in text and "张" not in text

    pages = [jbody(open311.get("/requests.json", page_size=3, page=p)) for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [3, 3, 2, 0]
    assert [r["service_request_id"] for p in pages for r in p] == got

    by_code = jbody(open311.get("/requests.json", service_code="LH-0102"))
    assert [r["service_request_id"] for r in by_code] == [other["service_request_id"]]
    by_ids = jbody(open311.get("/requests.json", service_request_id=f"{ids[0]},{ids[3]}",
                               service_code="LH-0102"))
    assert {r["service_request_id"] for r in by_ids} == {ids[0], ids[3]}, "ids win over filters"
    closed = jbody(open311.get("/requests.json", status="closed"))
    assert [r["service_request_id"] for r in closed] == [closed_id]
    assert closed[0]["status"] == "closed" and closed[0]["status_notes"] == "RESOLVED"
    opened = jbody(open311.get("/requests.json", status="open"))
    assert closed_id not in {r["service_request_id"] for r in opened}
    assert len(jbody(open311.get("/requests.json", status="open,closed"))) == len(got)

    now = datetime.datetime.now(datetime.timezone.utc)
    past = (now - datetime.timedelta(hours=1)).isoformat(timespec="seconds")
    future = (now + datetime.timedelta(hours=1)).isoformat(timespec="seconds")
    assert len(jbody(open311.get("/requests.json", start_date=past, end_date=future))) == 8
    assert jbody(open311.get("/requests.json", start_date=future)) == []
    assert jbody(open311.get("/requests.json", end_date=past.replace("+00:00", "Z"))) == []

    for bad in (dict(start_date="2026-03-01"), dict(start_date="2026-03-01T10:00:00"),
                dict(end_date="yesterday"), dict(start_date="2026-02-30T10:00:00Z"),
                dict(start_date=future, end_date=past), dict(status="pending"),
                dict(page_size=0), dict(page_size=201), dict(page=0), dict(page=1001),
                dict(service_request_id="1,abc"), dict(service_code="a b"),
                dict(service_request_id=",".join(str(i) for i in range(1, 102)))):
        (e,) = check_errors(jbody(open311.get("/requests.json", **bad), 400))
        assert e["code"] == 400, bad
        assert xbody(open311.get("/requests.xml", **bad), 400).tag == "errors"

    root = xbody(open311.get("/requests.xml", page_size=2))
    assert root.tag == "service_requests" and len(root) == 2
    assert root[0].findtext("service_request_id") == got[0]
    assert root[0].find("zipcode") is not None and root[0].findtext("zipcode") == ""


def test_get_one_request_with_deadline_owner_and_xml_escaping(open311, pg):
    r = check_post_response(jbody(open311.post(**good_form(
        description="a < b & c > \"d\" 'e' \x01 end"))))
    rid = r["service_request_id"]
    (one,) = jbody(open311.get(f"/requests/{rid}.json"))
    check_request(one)
    row = pg.incident(int(rid))
    assert one["status"] == "open" and one["service_code"] == CATEGORY
    assert one["service_name"] == "暴露垃圾" and one["address_id"] == GRID
    assert one["agency_responsible"] == pg.scalar(
        "SELECT name FROM org_unit WHERE code = %s", row["owner_unit"])
    exp = datetime.datetime.fromisoformat(one["expected_datetime"])
    assert exp.utcoffset() == datetime.timedelta(hours=8)
    assert int(exp.timestamp() * 1000) == row["resolve_due_ms"] // 1000 * 1000
    req = datetime.datetime.fromisoformat(one["requested_datetime"])
    assert abs(req.timestamp() * 1000 - row["received_ms"]) < 1000
    assert one["media_url"] == "https://img.example.org/1.jpg" and one["lat"] is None

    code, _, text = open311.get(f"/requests/{rid}.xml")
    assert code == 200
    assert "a &lt; b &amp; c &gt; &quot;d&quot; &apos;e&apos; \ufffd end" in text
    root = ET.fromstring(text.encode())
    assert root.find("request").findtext("description") == "a < b & c > \"d\" 'e' \ufffd end"
    assert root.find("request").findtext("expected_datetime") == one["expected_datetime"]

    check_errors(jbody(open311.get("/requests/999999999.json"), 404))
    check_errors(jbody(open311.get("/requests/abc.json"), 404))
    assert xbody(open311.get("/requests/999999999.xml"), 404).tag == "errors"


def test_position_and_address_travel_to_the_incident_and_come_back_in_get(open311, pg):
    """lat/long and address_string go into the SUBMIT's location and are stored on the
    incident; GET returns them under the GeoReport names, and with extensions=true where
    the incident was located."""
    r = check_post_response(jbody(open311.post(**good_form(
        address_id="", lat="29.3861", long="-106.5432", address_string="鱼洞街道新市街12号"))))
    rid = r["service_request_id"]
    row = pg.incident(int(rid))
    assert (row["lat"], row["lon"], row["address"]) == (29.3861, -106.5432, "鱼洞街道新市街12号")
    (one,) = jbody(open311.get(f"/requests/{rid}.json"))
    check_request(one)
    assert (one["lat"], one["long"], one["address"]) == (29.3861, -106.5432, "鱼洞街道新市街12号")
    (ext,) = jbody(open311.get(f"/requests/{rid}.json", extensions="true"))
    assert set(ext) == set(one) | {"extended_attributes"}
    assert ext["extended_attributes"] == {
        "location_unit": row["location_unit"] or None,
        "location_unit_name": pg.scalar("SELECT (SELECT name FROM org_unit WHERE code = %s)",
                                        row["location_unit"]),
        "located_by": row["located_by"] or None}
    root = xbody(open311.get(f"/requests/{rid}.xml", extensions="true"))
    req = root.find("request")
    assert req.findtext("lat") == "29.3861" and req.findtext("long") == "-106.5432"
    assert req.findtext("address") == "鱼洞街道新市街12号"
    assert req.find("extended_attributes").find("located_by") is not None

    # a unit the reporter named is the address_id; one the broker found from the position
    # or the address is only in extended_attributes (recorded here as the broker does)
    g = check_post_response(jbody(open311.post(**good_form())))["service_request_id"]
    grid_name = pg.scalar("SELECT name FROM org_unit WHERE code = %s", GRID)
    (given,) = jbody(open311.get(f"/requests/{g}.json", extensions="true"))
    assert given["address_id"] == GRID and given["lat"] is None and given["address"] is None
    assert given["extended_attributes"]["location_unit"] == GRID
    assert given["extended_attributes"]["location_unit_name"] == grid_name
    for how in ("position", "address"):
        pg.conn.cursor().execute("UPDATE incident SET location_unit = %s, located_by = %s "
                                 "WHERE id = %s", (GRID, how, int(rid)))
        (found,) = jbody(open311.get(f"/requests/{rid}.json", extensions="true"))
        assert found["address_id"] is None
        assert found["extended_attributes"] == {"location_unit": GRID,
                                                "location_unit_name": grid_name,
                                                "located_by": how}
    listed = jbody(open311.get("/requests.json", extensions="true"))
    assert {x["service_request_id"] for x in listed} == {rid, g}
    assert all("extended_attributes" in x for x in listed)
    assert all("extended_attributes" not in x for x in jbody(open311.get("/requests.json",
                                                                         extensions="false")))
    (e,) = check_errors(jbody(open311.get("/requests.json", extensions="yes"), 400))
    assert "extensions" in e["description"]


def test_post_with_a_position_or_an_address_lands_in_the_grids_queue(make_broker, dsn, pg,
                                                                     tmp_path):
    """End to end with the broker's location routing (PROTOCOL §11.1): a POST with lat/long
    and no address_id is placed in the grid whose boundary covers the point, one with only an
    address_string through the address table; both are queued at that grid, delivered to its
    worker, and GET shows where they were located and how. A point outside every grid goes to
    triage."""
    west, east = GRID, "500113001001002"
    pg.conn.cursor().execute("DELETE FROM unit_boundary; DELETE FROM address_point")
    for unit, lon in ((west, 106.50), (east, 106.51)):
        pg.all("INSERT INTO unit_boundary (unit, geom) VALUES (%s, ST_Multi(ST_GeomFromText("
               "%s, 4326))) RETURNING unit", unit,
               f"POLYGON(({lon} 29.40,{lon + 0.01} 29.40,{lon + 0.01} 29.41,{lon} 29.41,"
               f"{lon} 29.40))")
    pg.all("INSERT INTO address_point (road, number, geom) VALUES (gd_address_norm('龙洲大道'), "
           "'123', ST_SetSRID(ST_MakePoint(106.515, 29.405), 4326)) RETURNING road")
    broker = make_broker()
    o = Open311(broker, dsn, tmp_path)
    try:
        by_position = check_post_response(jbody(o.post(**good_form(
            address_id="", lat="29.405", long="106.505", address_string="江滨路1号"))))
        by_address = check_post_response(jbody(o.post(**good_form(
            address_id="", address_string="龙洲大道 123号"))))
        outside = check_post_response(jbody(o.post(**good_form(
            address_id="", lat="29.30", long="106.30"))))
        expect = {by_position["service_request_id"]: (west, "position"),
                  by_address["service_request_id"]: (east, "address"),
                  outside["service_request_id"]: ("", "")}
        for rid, (unit, how) in expect.items():
            row = pg.incident(int(rid))
            assert (row["location_unit"], row["located_by"]) == (unit, how), row
            assert row["queue"] == (unit or "triage")
            (r,) = jbody(o.get(f"/requests/{rid}.json", extensions="true"))
            assert r["address_id"] is None, "the reporter named no unit"
            assert r["extended_attributes"]["location_unit"] == (unit or None)
            assert r["extended_attributes"]["located_by"] == (how or None)
        receive = pg.events(int(outside["service_request_id"]))[0]
        assert receive["kind"] == "receive" and receive["note"] == "outside_grids"
        (r,) = jbody(o.get(f"/requests/{by_position['service_request_id']}.json"))
        assert (r["lat"], r["long"], r["address"]) == (29.405, 106.505, "江滨路1号")
        # the grids' workers get them
        for unit, rid in ((west, by_position), (east, by_address)):
            w = broker.worker()
            w.hello([unit], credit=1)
            assert str(w.deliver()["incident"]["id"]) == rid["service_request_id"]
    finally:
        assert o.stop() == 0


# ---- a busy broker ----

def test_busy_broker_gives_503_with_retry_after_and_the_limit_on_concurrency(
        make_broker, dsn, pg, tmp_path):
    broker = make_broker(max_open=1, busy_retry_ms=300)
    o = Open311(broker, dsn, tmp_path, submit_timeout_ms=1500, max_concurrent=1)
    try:
        check_post_response(jbody(o.post(**good_form())))          # fills the capacity
        t0 = time.monotonic()
        code, headers, text = o.post(**good_form())
        waited = time.monotonic() - t0
        assert code == 503, text
        assert int(headers["Retry-After"]) >= 1
        (e,) = check_errors(json.loads(text))
        assert "Idempotency-Key" in e["description"]
        assert 1.0 <= waited < 4.0, "retried within the bounded time, then gave up"
        assert "BUSY" in broker.log_text() or pg.scalar(
            "SELECT count(*) FROM incident") == 1

        # while one POST waits out BUSY answers, a second request is over the limit
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("r", o.post(**good_form())))
        t.start()
        time.sleep(0.4)
        code, headers, text = o.get("/services.json")
        t.join(10)
        assert code == 503 and headers["Retry-After"] == "1", text
        assert "at once" in check_errors(json.loads(text))[0]["description"]
        assert out["r"][0] == 503
    finally:
        assert o.stop() == 0


def test_check_config_and_bad_configs(broker, dsn, tmp_path):
    o_cfg = tmp_path / "c.ini"
    keys = tmp_path / "k"
    keys.write_text(f"{KEY} = {PRINCIPAL}\n")
    o_cfg.write_text(f"intake = {broker.intake_ep}\ndb = {dsn}\nkeys_file = {keys}\n")
    r = subprocess.run([str(open311_binary()), "--config", str(o_cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 0 and "api_keys = 1" in r.stdout and KEY not in r.stdout
    keys.write_text("short = x\n")
    r = subprocess.run([str(open311_binary()), "--config", str(o_cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "8..128" in r.stderr
    keys.write_text(f"{KEY} = Not Valid\n")
    r = subprocess.run([str(open311_binary()), "--config", str(o_cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "principal" in r.stderr
    o_cfg.write_text("intake = x\nfrobnicate = 1\n")
    r = subprocess.run([str(open311_binary()), "--config", str(o_cfg), "--check-config"],
                       capture_output=True, text=True)
    assert r.returncode == 1 and "frobnicate" in r.stderr
    assert subprocess.run([str(open311_binary())], capture_output=True).returncode == 2
