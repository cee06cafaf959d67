"""gd-sla against a scripted broker: the SLA stream, WARN/ESCALATE timing, resync, refusals.

The broker is played by the test (a ROUTER speaking GDP/1), so every rule of
PROTOCOL.md §9 "SLA stream" that is the worker's own is checked exactly:
version rules of DEADLINE and CLEAR, firing at (never before) warn_at and
due_at, once per version, deadlines already past, heartbeats, reconnection
with a full resync, DENIED, transient errors and a clean BYE.
"""

import shutil
import tempfile

import pytest
import zmq

from slaworker import FakeBroker, SlaWorker, now_ms

LATE_MS = 150          # allowed lateness on a loaded 2-core machine (tick is 5 ms)
QUIET = (10000, 10)    # heartbeat_ms, liveness: no heartbeats needed within a test


@pytest.fixture
def env():
    """(directory, zmq context, factory of fake brokers, factory of workers)."""
    d = tempfile.mkdtemp(prefix="gds-", dir="/tmp")
    ctx = zmq.Context()
    made, fakes = [], []

    def fake(name="work"):
        f = FakeBroker(ctx, f"ipc://{d}/{name}")
        fakes.append(f)
        return f

    def worker(work=None, **opts):
        w = SlaWorker(d, work or f"ipc://{d}/work", **opts).start()
        made.append(w)
        return w

    yield d, fake, worker
    for w in made:
        w.kill()
        print(w.log_text()[-20000:])  # shown by pytest when the test failed
    for f in fakes:
        f.close()
    ctx.destroy(linger=0)
    shutil.rmtree(d, ignore_errors=True)


def deadline(incident_id, version, due_at, kind="sign", warn_at=0, town="500113001"):
    body = {"incident_id": incident_id, "version": version, "kind": kind, "town": town,
            "level": "grid", "due_at": due_at}
    if warn_at:
        body["warn_at"] = warn_at
    return body


def commands(msgs):
    return [(m.type, m["incident_id"], m["version"], m["kind"]) for m in msgs
            if m.type in ("WARN", "ESCALATE")]


def test_hello_names_the_role_name_and_shard(env):
    _, fake, worker = env
    b = fake()
    worker(shard=["500113001", "500113002"], name="sla-east")
    hello = b.expect("HELLO")
    assert hello.body == {"role": "sla", "name": "sla-east", "shard": ["500113001", "500113002"]}


def test_all_towns_sends_no_shard(env):
    _, fake, worker = env
    b = fake()
    worker()
    hello = b.expect("HELLO")
    assert "shard" not in hello.body and hello["role"] == "sla"


def test_warn_then_escalate_at_their_times_once_per_version(env):
    _, fake, worker = env
    b = fake()
    worker()
    peer, _ = b.session(*QUIET)
    t = now_ms()
    b.send(peer, "DEADLINE", deadline(1, 3, t + 900, warn_at=t + 400))
    b.send(peer, "SYNCED", {"count": 1})
    warn = b.expect("WARN", timeout=3)
    assert (warn["incident_id"], warn["version"], warn["kind"]) == (1, 3, "sign")
    assert t + 400 <= warn.at <= t + 400 + LATE_MS
    b.send(peer, "OK", {"ref": warn["ref"], "incident_id": 1, "version": 4, "applied": True})
    esc = b.expect("ESCALATE", timeout=3)
    assert (esc["incident_id"], esc["version"], esc["kind"]) == (1, 3, "sign")
    assert t + 900 <= esc.at <= t + 900 + LATE_MS
    assert esc["ref"] != warn["ref"]
    b.send(peer, "OK", {"ref": esc["ref"], "incident_id": 1, "version": 5, "applied": False})
    # the same version again (a repeat from the broker) must not fire again
    b.send(peer, "DEADLINE", deadline(1, 3, t + 900, warn_at=t + 400))
    assert commands(b.collect(0.6)) == []


def test_deadlines_already_past_fire_at_once(env):
    _, fake, worker = env
    b = fake()
    worker()
    peer, _ = b.session(*QUIET)
    t = now_ms()
    b.send(peer, "DEADLINE", deadline(7, 2, t - 60000, kind="resolve", warn_at=t - 90000))
    b.send(peer, "DEADLINE", deadline(8, 1, t - 1))
    b.send(peer, "SYNCED", {"count": 2})
    got = commands(b.collect(0.5))
    assert sorted(got) == [("ESCALATE", 7, 2, "resolve"), ("ESCALATE", 8, 1, "sign"),
                           ("WARN", 7, 2, "resolve")]
    assert got.index(("WARN", 7, 2, "resolve")) < got.index(("ESCALATE", 7, 2, "resolve"))


def test_versions_decide_between_deadline_and_clear(env):
    _, fake, worker = env
    b = fake()
    worker()
    peer, _ = b.session(*QUIET)
    b.send(peer, "SYNCED", {"count": 0})
    t = now_ms()
    # a newer DEADLINE replaces; an older one that arrives late is ignored
    b.send(peer, "DEADLINE", deadline(10, 5, t + 600))
    b.send(peer, "DEADLINE", deadline(10, 4, t + 200))
    # CLEAR of an older version leaves it; the two kinds are separate
    b.send(peer, "CLEAR", {"incident_id": 10, "version": 4, "kind": "sign"})
    b.send(peer, "CLEAR", {"incident_id": 10, "version": 9, "kind": "resolve"})
    # cleared at its version: never fires
    b.send(peer, "DEADLINE", deadline(11, 1, t + 300))
    b.send(peer, "CLEAR", {"incident_id": 11, "version": 1, "kind": "sign"})
    # moved later by a new version: fires once, at the new time
    b.send(peer, "DEADLINE", deadline(12, 1, t + 200))
    b.send(peer, "DEADLINE", deadline(12, 2, t + 800))
    msgs = b.collect(1.3)
    assert sorted(commands(msgs)) == [("ESCALATE", 10, 5, "sign"), ("ESCALATE", 12, 2, "sign")]
    at = {m["incident_id"]: m.at for m in msgs if m.type == "ESCALATE"}
    assert t + 600 <= at[10] <= t + 600 + LATE_MS
    assert t + 800 <= at[12] <= t + 800 + LATE_MS


def test_next_level_deadline_after_an_applied_escalation_fires_again(env):
    _, fake, worker = env
    b = fake()
    worker()
    peer, _ = b.session(*QUIET)
    b.send(peer, "SYNCED", {"count": 0})
    t = now_ms()
    b.send(peer, "DEADLINE", deadline(20, 1, t + 100))
    esc = b.expect("ESCALATE", timeout=3)
    b.send(peer, "OK", {"ref": esc["ref"], "incident_id": 20, "version": 2, "applied": True})
    b.send(peer, "DEADLINE", deadline(20, 2, t + 400))
    esc2 = b.expect("ESCALATE", timeout=3)
    assert (esc2["version"], esc2.at >= t + 400) == (2, True)
    b.send(peer, "OK", {"ref": esc2["ref"], "incident_id": 20, "version": 3, "applied": True})
    b.send(peer, "CLEAR", {"incident_id": 20, "version": 3, "kind": "sign"})
    assert commands(b.collect(0.4)) == []


def test_heartbeats_when_idle_and_resync_after_the_broker_goes_silent(env):
    _, fake, worker = env
    b = fake()
    worker()
    peer, _ = b.session(heartbeat_ms=100, liveness=3)
    t = now_ms()
    b.send(peer, "DEADLINE", deadline(30, 1, t - 10))
    b.send(peer, "DEADLINE", deadline(31, 1, t + 60000))
    b.send(peer, "SYNCED", {"count": 2})
    esc = b.expect("ESCALATE", timeout=2)
    assert esc["incident_id"] == 30
    b.send(peer, "OK", {"ref": esc["ref"], "incident_id": 30, "version": 2, "applied": True})
    # silence from the broker: the worker heartbeats, then gives up on it
    before = b.heartbeats
    hello = b.expect("HELLO", timeout=3)
    assert b.heartbeats >= before + 2
    assert hello.peer != peer  # a new connection
    # the full set again: the worker dropped its state, so it escalates the
    # overdue item once more (the broker's version check makes that harmless)
    b.send(hello.peer, "WELCOME", {"session": 2, "heartbeat_ms": 10000, "liveness": 10})
    b.send(hello.peer, "DEADLINE", deadline(30, 1, t - 10))
    b.send(hello.peer, "SYNCED", {"count": 1})
    msgs = b.collect(0.5)
    assert commands(msgs) == [("ESCALATE", 30, 1, "sign")]
    assert all(m.peer == hello.peer for m in msgs)


def test_transient_error_resends_and_no_session_reconnects(env):
    _, fake, worker = env
    b = fake()
    worker(retry_ms=300)
    peer, _ = b.session(*QUIET)
    b.send(peer, "SYNCED", {"count": 0})
    t = now_ms()
    b.send(peer, "DEADLINE", deadline(40, 1, t))
    esc = b.expect("ESCALATE", timeout=2)
    b.send(peer, "ERR", {"ref": esc["ref"], "code": "busy", "message": "database down"})
    again = b.expect("ESCALATE", timeout=2)
    assert again["ref"] != esc["ref"] and again["incident_id"] == 40
    assert again.at - esc.at >= 250
    # stale_version is final: nothing more
    b.send(peer, "ERR", {"ref": again["ref"], "code": "stale_version", "message": "moved on"})
    assert commands(b.collect(0.6)) == []
    b.send(peer, "ERR", {"ref": 0, "code": "no_session", "message": "who are you"})
    assert b.expect("HELLO", timeout=2).peer != peer


def test_denied_is_retried_later_or_ends_the_process(env):
    _, fake, worker = env
    b = fake()
    w = worker(denied_retry_ms=300)
    h1 = b.expect("HELLO")
    b.send(h1.peer, "DENIED", {"code": "overlap", "message": "town 500113001 is served by sla-a"})
    h2 = b.expect("HELLO", timeout=3)
    assert h2.at - h1.at >= 250
    assert w.alive()
    assert "overlap" in w.log_text() and "served by sla-a" in w.log_text()

    w2 = worker(work=w.argv[2], exit_on_denied=True)
    h3 = b.expect(lambda m: m.type == "HELLO" and m.peer not in (h1.peer, h2.peer))
    b.send(h3.peer, "DENIED", {"code": "overlap", "message": "shard overlaps"})
    assert w2.wait(5) == 3
    assert "shard overlaps" in w2.log_text()


def test_fails_over_to_the_next_endpoint(env):
    d, fake, worker = env
    b = fake("second")
    worker(work=[f"ipc://{d}/nobody", f"ipc://{d}/second"], hello_timeout_ms=300)
    peer, _ = b.session(*QUIET)
    b.send(peer, "SYNCED", {"count": 0})
    b.send(peer, "DEADLINE", deadline(50, 1, now_ms()))
    assert b.expect("ESCALATE", timeout=2)["incident_id"] == 50


def test_sigterm_says_bye_and_exits_zero(env):
    _, fake, worker = env
    b = fake()
    w = worker()
    peer, _ = b.session(*QUIET)
    b.send(peer, "SYNCED", {"count": 0})
    b.collect(0.2)
    assert w.stop() == 0
    assert b.expect("BYE", timeout=2)["reason"] == "shutdown"


def test_usage_errors_exit_2(env):
    d, _, worker = env
    assert worker(work=f"ipc://{d}/x", tick_ms=0).wait(5) == 2
    assert worker(work=f"ipc://{d}/x", tick_ms=5, config=f"{d}/missing.ini").wait(5) == 2


def test_config_file_supplies_the_settings(env):
    d, fake, worker = env
    b = fake()
    ini = f"{d}/sla.ini"
    with open(ini, "w") as f:
        f.write(f"[gd-sla]\nwork = ipc://{d}/work\nshard = 500113009\nname = from-file\n")
    w = SlaWorker(d, "ipc://unused", config=ini)
    # the file gives work, shard and name; the command line only --config and defaults
    w.argv = [w.argv[0], "--config", ini, "--tick-ms", "5"]
    w.start()
    try:
        hello = b.expect("HELLO")
        assert hello.body == {"role": "sla", "name": "from-file", "shard": ["500113009"]}
    finally:
        w.kill()
