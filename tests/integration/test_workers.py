"""Worker sessions on the work endpoint: sharing, credit, liveness, poison items, BYE, HELLO refusals."""

import signal
import time

import pytest

from demo import COMMUNITY, GRID, MICRO_GRID, TOWN, submission
from gdclient import wait_until


def submit_many(broker, n, prefix, **kw):
    intake = broker.intake()
    ids = []
    for i in range(n):
        r = intake.submit(**submission(f"{prefix}-{i}", **kw))
        assert r.type == "ACCEPTED", r
        ids.append(r["incident_id"])
    return ids


def test_two_workers_on_one_queue_share_it(broker, pg):
    a = broker.worker(queues=[GRID], credit=2, name="a")
    b = broker.worker(queues=[GRID], credit=2, name="b")
    ids = set(submit_many(broker, 12, "SH"))
    got = {"a": set(), "b": set()}
    done = set()

    def work():
        for name, w in (("a", a), ("b", b)):
            for m in w.drain(0.02):
                if m.type != "DELIVER":
                    continue
                iid = m["incident"]["id"]
                got[name].add(iid)
                r = w.resolve(iid, m["incident"]["version"], f"by {name}")
                assert r.type == "OK", r
                done.add(iid)
        return done == ids

    wait_until(work, what="all items resolved", hub=broker.hub)
    assert got["a"] and got["b"], f"one worker got nothing: {got}"
    assert not got["a"] & got["b"], "an item was delivered to both workers"
    assert got["a"] | got["b"] == ids
    assert pg.scalar("SELECT count(*) FROM incident WHERE state = 'RESOLVED'") == 12


def test_credit_is_never_exceeded(broker, pg):
    ids = submit_many(broker, 8, "CR")
    w = broker.worker(queues=[GRID], credit=3)
    open_ = {}

    def take(within, credit):
        for m in w.drain(within):
            assert m.type == "DELIVER", m
            open_[m["incident"]["id"]] = m
            assert len(open_) <= credit, f"{len(open_)} deliveries open with credit {credit}"

    take(0.4, 3)
    assert len(open_) == 3
    first = next(iter(open_))
    r = w.resolve(first, open_.pop(first)["incident"]["version"], "done")
    assert r.type == "OK", r
    take(0.4, 3)
    assert len(open_) == 3, "the freed credit was not used exactly once"
    # a larger credit lets more in, but never more than it says
    w.credit(5)
    take(0.4, 5)
    assert len(open_) == 5
    queued = pg.scalar("SELECT count(*) FROM incident WHERE state = 'QUEUED'")
    assert queued == len(ids) - 1 - 5


def test_signed_work_holds_no_credit(broker, pg):
    """Handling may take days: only unsigned deliveries count against the credit."""
    submit_many(broker, 4, "SC")
    w = broker.worker(queues=[GRID], credit=1)
    first = w.deliver()
    w.nothing("DELIVER", within=0.3)
    assert w.sign(first).type == "OK"
    second = w.deliver()
    assert second["incident"]["id"] != first["incident"]["id"]
    assert w.sign(second).type == "OK"
    w.deliver()
    assert pg.scalar("SELECT count(*) FROM incident WHERE state = 'SIGNED'") == 2


def test_broker_sends_heartbeats_to_an_idle_worker(broker):
    w = broker.worker(queues=[GRID], credit=1)
    wait_until(lambda: w.drain(0.05) is not None and w.heartbeats_seen >= 2,
               what="HEARTBEATs from the broker", hub=broker.hub)


@pytest.mark.parametrize("how", ["stops_heartbeating", "closes_its_socket"])
def test_dead_workers_unsigned_deliveries_go_to_another_worker_with_attempt_2(broker, pg, how):
    dying = broker.worker(queues=[GRID], credit=2, name="dying")
    unsigned, signed = submit_many(broker, 2, "DW")
    d1, d2 = dying.deliver(), dying.deliver()
    by_id = {d1["incident"]["id"]: d1, d2["incident"]["id"]: d2}
    assert dying.sign(by_id[signed]).type == "OK"
    other = broker.worker(queues=[GRID], credit=5, name="other")
    if how == "stops_heartbeating":
        dying.silence()
    else:
        dying.close()
    d = other.deliver(timeout=5)
    assert d["incident"]["id"] == unsigned
    assert d["attempt"] == 2
    other.nothing("DELIVER", within=0.3)   # the signed one stays with its signer
    row = pg.wait_incident(unsigned, lambda r: r["state"] == "DELIVERED" and r["version"] == 4,
                           hub=broker.hub)
    assert row["attempts"] == 1
    ev = pg.events(unsigned)
    assert [e["kind"] for e in ev] == ["receive", "deliver", "requeue", "deliver"]
    assert ev[2]["to_state"] == "QUEUED" and ev[3]["actor"] == "other"
    assert pg.incident(signed)["state"] == "SIGNED"


def test_after_max_attempts_an_item_moves_up_one_level_with_a_poison_alarm(broker, pg):
    alarms = broker.status("alarm.")
    (iid,) = submit_many(broker, 1, "PO")
    w = broker.worker(queues=[GRID], credit=1)
    for attempt in (1, 2, 3):
        d = w.deliver()
        assert d["incident"]["id"] == iid and d["attempt"] == attempt
        # saying HELLO again ends the old session as if it had died
        w.hello(queues=[GRID], credit=1)
    up = broker.worker(queues=[COMMUNITY], credit=1)
    d = up.deliver()
    assert d["incident"]["id"] == iid and d["incident"]["queue"] == COMMUNITY
    assert d["attempt"] == 1 and d["incident"]["escalations"] == 1
    a = alarms.topic("alarm.poison")
    assert a["alarm"] == "poison" and a["incident_id"] == iid, a
    assert a["severity"] in ("warning", "critical")
    w.nothing("DELIVER", within=0.2)
    row = pg.wait_incident(iid, lambda r: r["state"] == "DELIVERED" and r["queue"] == COMMUNITY,
                           hub=broker.hub)
    assert row["owner_level"] == "community" and row["escalations"] == 1
    kinds = pg.kinds(iid)
    assert kinds == ["receive", "deliver", "requeue", "deliver", "requeue", "deliver",
                     "escalate", "deliver"]
    esc = pg.events(iid)[6]
    assert esc["queue"] == COMMUNITY and esc["owner_level"] == "community"


def test_max_attempts_is_the_configured_number(make_broker, pg):
    broker = make_broker(max_attempts=1)
    (iid,) = submit_many(broker, 1, "PO1")
    w = broker.worker(queues=[GRID], credit=1)
    assert w.deliver()["attempt"] == 1
    w.hello(queues=[COMMUNITY], credit=1)
    d = w.deliver()
    assert d["incident"]["id"] == iid and d["incident"]["queue"] == COMMUNITY


def test_bye_requeues_without_counting_an_attempt(broker, pg):
    (iid,) = submit_many(broker, 1, "BY")
    leaving = broker.worker(queues=[GRID], credit=1, name="leaving")
    leaving.deliver()
    other = broker.worker(queues=[GRID], credit=1, name="other")
    leaving.bye("end of shift")
    d = other.deliver()
    assert d["incident"]["id"] == iid and d["attempt"] == 1
    row = pg.wait_incident(iid, lambda r: r["version"] == 4, hub=broker.hub)
    assert row["attempts"] == 0 and row["state"] == "DELIVERED"
    assert pg.kinds(iid) == ["receive", "deliver", "requeue", "deliver"]
    # after BYE the old session is gone
    r = leaving.resolve(iid, 4, "too late")
    assert r.type == "ERR" and r["code"] == "no_session", r


def test_a_broker_stopped_for_a_while_does_not_take_its_workers_for_dead(broker, pg):
    """The broker's process stopped for four times the liveness window (a
    paused VM, a starved CPU): the worker heartbeats all along, its
    HEARTBEATs wait unread in the socket, and the broker's liveness check,
    which runs before the loop reads them, must not count the broker's own
    absence as the worker's silence."""
    w = broker.worker(queues=[GRID], credit=1, name="patient")
    broker.proc.send_signal(signal.SIGSTOP)
    try:
        until = time.monotonic() + 2.0
        wait_until(lambda: time.monotonic() >= until, 5, "2 s with the broker stopped",
                   hub=broker.hub)
    finally:
        broker.proc.send_signal(signal.SIGCONT)
    (iid,) = submit_many(broker, 1, "ST")
    d = w.deliver()
    assert d["incident"]["id"] == iid
    assert "(patient) lost" not in broker.log_text()
    # a worker that really goes silent is still found out
    w.silence()
    wait_until(lambda: "(patient) lost: silent" in broker.log_text(), 5,
               "the silent worker's session lost")


def test_unsigned_delivery_goes_back_to_its_queue_when_the_broker_restarts(broker, pg):
    (iid,) = submit_many(broker, 1, "RS")
    w = broker.worker(queues=[GRID], credit=1)
    w.deliver()
    pg.wait_incident(iid, lambda r: r["state"] == "DELIVERED", hub=broker.hub)
    broker.restart()
    again = broker.worker(queues=[GRID], credit=1)
    d = again.deliver()
    assert d["incident"]["id"] == iid
    # the new delivery goes out before the requeue and it are committed
    wait_until(lambda: len(pg.events(iid)) >= 3, what="the requeue in the event log",
               hub=broker.hub)
    ev = pg.events(iid)
    assert [e["kind"] for e in ev][:3] == ["receive", "deliver", "requeue"]
    assert ev[2]["to_state"] == "QUEUED"


UNKNOWN_QUEUES = [
    ("no_such_code", "no-such-queue"),
    ("micro_grid_has_no_queue", MICRO_GRID),
    ("town_without_sector", TOWN),
    ("town_with_unknown_sector", f"{TOWN}.tourism"),
]


@pytest.mark.parametrize("queue", [q[1] for q in UNKNOWN_QUEUES],
                         ids=[q[0] for q in UNKNOWN_QUEUES])
def test_hello_with_an_unknown_queue_is_denied_not_found(broker, queue):
    w = broker.worker()
    m = w.hello(queues=[GRID, queue], credit=1, expect_welcome=False)
    assert m.type == "DENIED", m
    assert (m["code"], m["field"]) == ("not_found", "queues"), m
    # no session was opened
    r = w.resolve(1, 1, "x")
    assert r.type == "ERR" and r["code"] == "no_session", r


def test_credit_above_max_credit_is_denied_limit(make_broker):
    broker = make_broker(max_credit=4)
    w = broker.worker()
    m = w.hello(queues=[GRID], credit=5, expect_welcome=False)
    assert m.type == "DENIED", m
    assert (m["code"], m["field"]) == ("limit", "credit"), m
    assert w.hello(queues=[GRID], credit=4).type == "WELCOME"
