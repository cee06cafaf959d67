"""CurveZMQ on every endpoint: who gets in (ZAP), and what each principal may do (role, scope).

The broker runs with --curve-key and --principals; the test clients are
plain pyzmq sockets with CURVE keys made here, so that every refusal comes
from the broker's own checks.
"""

import os
import signal
import time

import msgpack
import pytest
import zmq

import gdclient

TOWN_A = "500113001"
GRID_A = "500113001001001"
GRID_B = "500113002001001"          # a grid of another town
CATEGORY = "LH-0101"                # admitted at grid level
PII = {"name": "保密的名字", "phone": "13912345678", "address": "保密的地址88号"}


def keypair():
    public, secret = zmq.curve_keypair()
    return public.decode(), secret.decode()


class Keys:
    """The broker's key pair and one key pair per principal."""

    def __init__(self, tmp):
        self.dir = tmp
        self.broker = keypair()
        self.of = {}

    def add(self, name):
        self.of[name] = keypair()
        return self.of[name]

    def write(self, principals):
        key_file = os.path.join(self.dir, "broker.key")
        with open(key_file, "w") as f:
            f.write(f"public = {self.broker[0]}\nsecret = {self.broker[1]}\n")
        path = os.path.join(self.dir, "principals.ini")
        with open(path, "w") as f:
            for name, role, scope in principals:
                pub = self.of[name][0] if name in self.of else self.add(name)[0]
                f.write(f"[{name}]\nkey = {pub}\nrole = {role}\nscope = {scope}\n\n")
        return key_file, path


PRINCIPALS = [
    ("hotline", "intake", "500113"),
    ("town-a-app", "intake", TOWN_A),
    ("town-a-worker", "worker", TOWN_A),
    ("timers", "sla", "500113"),
    ("wall", "dashboard", "500113"),
    ("centre", "admin", "500113"),
]


@pytest.fixture
def broker_options():
    """More gd-broker options for `secure` (a test parametrizes it to change them)."""
    return {}


@pytest.fixture
def secure(make_broker, tmp_path, broker_options):
    keys = Keys(str(tmp_path))
    key_file, principals = keys.write(PRINCIPALS)
    broker = make_broker(curve_key=key_file, principals=principals, **broker_options)
    ctx = zmq.Context()
    socks = []

    def connect(endpoint, who=None, kind=zmq.DEALER, server_key=None):
        s = ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        # a refused handshake leaves a DEALER with no peer: never block on it
        s.setsockopt(zmq.SNDTIMEO, 1000)
        if who is not None:
            public, secret = keys.of[who] if isinstance(who, str) else who
            s.curve_serverkey = (server_key or keys.broker[0]).encode()
            s.curve_publickey = public.encode()
            s.curve_secretkey = secret.encode()
        s.connect(endpoint)
        socks.append(s)
        return s

    yield broker, keys, principals, connect
    for s in socks:
        s.close()
    ctx.term()


T = gdclient.TYPES


def send(sock, type_name, body):
    """Sends a request; a socket the broker refused may have no peer to
    send to, which counts as not served (the reply check then fails or
    passes on its own)."""
    try:
        sock.send_multipart([b"GDP1" + bytes([T[type_name]]), msgpack.packb(body)])
    except zmq.Again:
        pass


def recv(sock, timeout=3.0):
    """The next message other than HEARTBEAT, or None within `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not sock.poll(int(left * 1000)):
            return None
        h, b = sock.recv_multipart()
        name = gdclient.NAMES[h[4]]
        if name != "HEARTBEAT":
            return name, msgpack.unpackb(b)


def submit_body(ext, unit=GRID_A):
    return {"ref": 1, "source": "test", "external_id": ext, "category": CATEGORY,
            "location": {"unit": unit}, "reporter": PII}


def test_client_without_keys_is_refused(secure):
    broker, keys, _, connect = secure
    plain = connect(broker.intake_ep)
    send(plain, "SUBMIT", submit_body("nokey"))
    assert recv(plain, 1.0) is None, "a peer without CURVE must get nothing"


def test_unknown_key_is_refused_and_raises_an_alarm(secure, pg):
    broker, keys, _, connect = secure
    alarms = connect(broker.status_ep, "wall", zmq.SUB)
    alarms.setsockopt(zmq.SUBSCRIBE, b"alarm.denied")
    time.sleep(0.3)   # let the subscription reach the broker (SUB has no handshake to wait for)
    stranger = connect(broker.intake_ep, keypair())
    send(stranger, "SUBMIT", submit_body("stranger"))
    assert recv(stranger, 1.0) is None
    assert alarms.poll(3000), "no alarm.denied"
    topic, body = alarms.recv_multipart()
    alarm = msgpack.unpackb(body)
    assert topic == b"alarm.denied" and "unknown key" in alarm["message"]
    assert keys.broker[1] not in alarm["message"], "never a secret in an alarm"
    assert pg.scalar("SELECT count(*) FROM incident") == 0


def test_intake_key_on_the_work_endpoint_is_refused(secure):
    broker, _, _, connect = secure
    w = connect(broker.work_ep, "hotline")
    send(w, "HELLO", {"role": "worker", "queues": [GRID_A], "credit": 1})
    assert recv(w, 1.0) is None


def test_worker_of_town_a_asking_for_a_queue_of_town_b_is_denied(secure):
    broker, _, _, connect = secure
    w = connect(broker.work_ep, "town-a-worker")
    send(w, "HELLO", {"role": "worker", "queues": [GRID_A, GRID_B], "credit": 1})
    m = recv(w)
    assert m and m[0] == "DENIED" and m[1]["code"] == "denied", m
    assert GRID_B in m[1]["message"]
    send(w, "HELLO", {"role": "worker", "queues": [GRID_A, f"{TOWN_A}.safety"], "credit": 1})
    assert recv(w)[0] == "WELCOME"
    send(w, "HELLO", {"role": "sla", "shard": [TOWN_A]})
    m = recv(w)
    assert m[0] == "DENIED" and m[1]["code"] == "denied", "a worker key is not an SLA key"


def test_dashboard_sending_submit_is_refused(secure, pg):
    broker, _, _, connect = secure
    d = connect(broker.intake_ep, "wall")
    send(d, "SUBMIT", submit_body("from-wall"))
    m = recv(d)
    assert m[0] == "REJECTED" and m[1]["code"] == "denied" and m[1]["ref"] == 1, m
    send(d, "SNAPSHOT", {"ref": 2})
    assert recv(d)[0] == "GAUGES", "a dashboard may read the gauges"
    assert pg.scalar("SELECT count(*) FROM incident") == 0


def test_intake_principal_submits_and_queries_only_within_its_scope(secure):
    broker, _, _, connect = secure
    app = connect(broker.intake_ep, "town-a-app")
    send(app, "SUBMIT", submit_body("in-a"))
    m = recv(app)
    assert m[0] == "ACCEPTED", m
    send(app, "SUBMIT", submit_body("in-b", GRID_B))
    m = recv(app)
    assert m[0] == "REJECTED" and m[1]["code"] == "denied" and m[1]["field"] == "location", m
    send(app, "SUBMIT", {"ref": 3, "source": "test", "external_id": "nowhere"})
    assert recv(app)[1]["code"] == "denied", "no location: district-wide principals only"
    hotline = connect(broker.intake_ep, "hotline")
    send(hotline, "SUBMIT", submit_body("b-by-hotline", GRID_B))
    b_id = recv(hotline)[1]["incident_id"]
    send(app, "QUERY", {"ref": 4, "incident_id": b_id})
    m = recv(app)
    assert m[0] == "REJECTED" and m[1]["code"] == "not_found", "another town's incident is hidden"
    send(hotline, "QUERY", {"ref": 5, "incident_id": b_id})
    m = recv(hotline)
    assert m[0] == "INCIDENT" and m[1]["incident"]["reporter"]["phone"] == PII["phone"]


def test_submits_are_scoped_item_by_item_and_refused_to_a_dashboard(secure, pg):
    broker, _, _, connect = secure
    app = connect(broker.intake_ep, "town-a-app")
    items = [{**submit_body("many-in-a"), "ref": 11}, {**submit_body("many-in-b", GRID_B), "ref": 12},
             {"ref": 13, "source": "test", "external_id": "many-nowhere"}]
    send(app, "SUBMITS", {"ref": 10, "items": items})
    m = recv(app)
    assert m[0] == "SUBMITTED" and m[1]["ref"] == 10, m
    res = m[1]["results"]
    assert [r["ref"] for r in res] == [11, 12, 13]
    assert [r["code"] for r in res] == ["ok", "denied", "denied"]
    assert res[1]["field"] == "location" and GRID_B in res[1]["message"]
    assert pg.scalar("SELECT count(*) FROM incident WHERE external_id LIKE 'many-%%'") == 1
    wall = connect(broker.intake_ep, "wall")
    send(wall, "SUBMITS", {"ref": 20, "items": [submit_body("many-from-wall")]})
    m = recv(wall)
    assert m[0] == "REJECTED" and m[1]["code"] == "denied" and m[1]["ref"] == 20, m
    assert "SUBMITS" in m[1]["message"]


def test_admin_commands_are_for_admins_only(secure):
    broker, _, _, connect = secure
    hotline = connect(broker.intake_ep, "hotline")
    send(hotline, "SUBMIT", {"ref": 1, "source": "test", "external_id": "triage",
                             "category": "NO-SUCH", "location": {"unit": GRID_A}})
    acc = recv(hotline)[1]
    assert acc["queue"] == "triage"
    send(hotline, "DISPATCH", {"ref": 2, "incident_id": acc["incident_id"],
                               "version": acc["version"], "unit": GRID_A})
    m = recv(hotline)
    assert m[0] == "REJECTED" and m[1]["code"] == "denied"
    admin = connect(broker.intake_ep, "centre")
    send(admin, "DISPATCH", {"ref": 3, "incident_id": acc["incident_id"],
                             "version": acc["version"], "unit": GRID_A})
    assert recv(admin)[0] == "DONE"


def test_whole_flow_with_keys_and_no_reporter_data_on_the_status_topic(secure, pg):
    broker, _, _, connect = secure
    wall = connect(broker.status_ep, "wall", zmq.SUB)
    wall.setsockopt(zmq.SUBSCRIBE, b"")
    sla = connect(broker.work_ep, "timers")
    send(sla, "HELLO", {"role": "sla", "name": "timers"})
    assert recv(sla)[0] == "WELCOME"
    w = connect(broker.work_ep, "town-a-worker")
    send(w, "HELLO", {"role": "worker", "queues": [GRID_A], "credit": 1})
    assert recv(w)[0] == "WELCOME"
    time.sleep(0.3)
    hotline = connect(broker.intake_ep, "hotline")
    send(hotline, "SUBMIT", submit_body("flow"))
    assert recv(hotline)[0] == "ACCEPTED"
    d = recv(w)
    while d and d[0] != "DELIVER":
        d = recv(w)
    assert d[1]["incident"]["reporter"]["name"] == PII["name"], "the owning worker sees it"
    send(w, "SIGN", {"ref": 7, "incident_id": d[1]["incident"]["id"],
                     "delivery_id": d[1]["delivery_id"]})
    ok = recv(w)
    assert ok[0] == "OK"
    send(w, "RESOLVE", {"ref": 8, "incident_id": ok[1]["incident_id"],
                        "version": ok[1]["version"], "result": "已处理"})
    assert recv(w)[0] == "OK"
    frames = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if wall.poll(100):
            topic, body = wall.recv_multipart()
            frames.append(topic + gdclient.status_body(body))  # PII checked in plain bytes
    assert any(b"inc." in f for f in frames), "the dashboard key receives transitions"
    blob = b"".join(frames)
    for value in PII.values():
        assert value.encode() not in blob, f"reporter data {value!r} on the status topic"


@pytest.mark.parametrize("broker_options", [{"max_intake_clients": 1}])
def test_keyed_client_beyond_max_intake_clients_waits_until_the_other_closes(secure):
    broker, _, _, connect = secure
    hotline = connect(broker.intake_ep, "hotline")
    send(hotline, "QUERY", {"ref": 1, "source": "test", "external_id": "none"})
    assert recv(hotline)[1]["code"] == "not_found"
    app = connect(broker.intake_ep, "town-a-app")
    send(app, "QUERY", {"ref": 2, "source": "test", "external_id": "none"})
    assert recv(app, 1.0) is None, "a second connection got in beyond the limit of one"
    stranger = connect(broker.intake_ep, keypair())
    send(stranger, "QUERY", {"ref": 3, "source": "test", "external_id": "none"})
    hotline.close()
    m = recv(app)
    assert m and m[1]["code"] == "not_found" and m[1]["ref"] == 2, m
    assert recv(stranger, 1.0) is None, "a free place does not let an unknown key in"


def test_removed_key_is_refused_after_sighup_even_on_an_open_connection(secure):
    broker, keys, principals, connect = secure
    app = connect(broker.intake_ep, "town-a-app")
    send(app, "SUBMIT", submit_body("before"))
    assert recv(app)[0] == "ACCEPTED"
    keys.write([p for p in PRINCIPALS if p[0] != "town-a-app"])
    broker.proc.send_signal(signal.SIGHUP)
    gdclient.wait_until(lambda: "principals reloaded" in broker.log_text(), 5, "the reload")
    send(app, "SUBMIT", submit_body("after"))
    m = recv(app)
    assert m[0] == "REJECTED" and m[1]["code"] == "denied", m
    fresh = connect(broker.intake_ep, "town-a-app")
    send(fresh, "SUBMIT", submit_body("after-2"))
    assert recv(fresh, 1.0) is None, "a new connection with the removed key does not get in"
    hotline = connect(broker.intake_ep, "hotline")
    send(hotline, "SUBMIT", submit_body("still-in"))
    assert recv(hotline)[0] == "ACCEPTED", "the others are unaffected"


def test_a_bad_principals_file_on_sighup_keeps_the_old_one(secure):
    broker, keys, principals, connect = secure
    with open(principals, "a") as f:
        f.write("[broken]\nkey = not-a-key\nrole = intake\nscope = 500113\n")
    broker.proc.send_signal(signal.SIGHUP)
    gdclient.wait_until(lambda: "reload failed" in broker.log_text(), 5, "the failed reload")
    assert "not a 40-character Z85 public key" in broker.log_text()
    app = connect(broker.intake_ep, "hotline")
    send(app, "SUBMIT", submit_body("kept"))
    assert recv(app)[0] == "ACCEPTED"


def test_gdctl_watch_reads_the_status_topic_with_a_dashboard_key(secure, tmp_path):
    import subprocess
    from conftest import broker_binary
    broker, keys, _, _ = secure
    gdctl = broker_binary().parent.parent / "workers" / "gdctl" / "gdctl"
    pub, sec = keys.of["wall"]
    key_file = tmp_path / "wall.key"
    key_file.write_text(f"public = {pub}\nsecret = {sec}\n")
    env = {**os.environ, "GD_CURVE_SERVER_KEY": keys.broker[0], "GD_CURVE_KEY": str(key_file)}
    r = subprocess.run([str(gdctl), "watch", "--status", broker.status_ep, "--count", "1",
                        "--seconds", "10", "broker"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    assert "broker" in r.stdout
    # without the key nothing arrives
    env.pop("GD_CURVE_KEY")
    r = subprocess.run([str(gdctl), "watch", "--status", broker.status_ep, "--count", "1",
                        "--seconds", "2", "broker"], env=env, capture_output=True, text=True,
                       timeout=30)
    assert "broker" not in r.stdout
