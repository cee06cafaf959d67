"""The broker and its service manager: readiness, status and the watchdog (sd_notify).

Each test plays systemd: a datagram socket named by NOTIFY_SOCKET, with
WATCHDOG_USEC set, as a Type=notify unit with WatchdogSec= gives it
(deploy/systemd/gd-broker.service).
"""

import signal

import pytest

import faultload
from notifysock import WATCHDOG_USEC, Manager, ready


@pytest.fixture
def manager(tmp_path, monkeypatch):
    m = Manager(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
    yield m
    m.close()


def test_ready_once_serving_and_the_watchdog_is_fed_by_the_loop(make_broker, manager):
    b = make_broker()
    m = manager.wait_for(ready, 5, "READY=1")
    assert m["STATUS"].startswith(f"active: serving intake {b.intake_ep}, work {b.work_ep}"), m
    assert "0 open incidents" in m["STATUS"]
    assert 3 <= manager.pings(1.0) <= 8  # every 200 ms

    # a broker whose loop is stuck stops feeding the watchdog, so that
    # systemd kills and restarts it
    b.proc.send_signal(signal.SIGSTOP)
    try:
        manager.receive(0.05)  # what was on its way before the stop (dropped by pings)
        assert manager.pings(0.8) == 0
    finally:
        b.proc.send_signal(signal.SIGCONT)
    assert manager.pings(0.6) >= 1

    # a reload says so, then ready again
    b.proc.send_signal(signal.SIGHUP)
    manager.wait_for(lambda m: m.get("RELOADING") == "1", 5, "RELOADING=1")
    m = manager.wait_for(ready, 5, "READY=1 after the reload")
    assert m["STATUS"].startswith("active: reloaded"), m

    assert b.stop() == 0
    m = manager.wait_for(lambda m: m.get("STOPPING") == "1", 2, "STOPPING=1")
    assert m["STATUS"].startswith("stopping"), m


def test_a_standby_is_ready_as_standby_feeds_the_watchdog_while_it_waits_then_serves(
        make_broker, pg, tmp_path, monkeypatch):
    # the active broker is not under this manager
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    a = make_broker()
    mgr = Manager(tmp_path / "notify-b")
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify-b"))
        monkeypatch.setenv("WATCHDOG_USEC", str(WATCHDOG_USEC))
        b = make_broker(start=False)
        faultload.launch(b)
        faultload.wait_standby(pg.dsn)
        m = mgr.wait_for(ready, 5, "READY=1 from the standby")
        assert m["STATUS"].startswith("standby: waiting for the active broker's lock"), m
        # blocked on the lock, outside the loop, and still feeding the watchdog
        assert mgr.pings(1.0) >= 3
        assert not faultload.is_ready(b)

        assert a.stop() == 0
        m = mgr.wait_for(lambda m: ready(m) and m["STATUS"].startswith("active: serving"),
                         15, "READY=1 with STATUS active once the lock is ours")
        faultload.wait_ready(b)
        assert mgr.pings(0.6) >= 1
    finally:
        mgr.close()


def test_without_notify_socket_nothing_is_sent_and_the_broker_serves(make_broker, manager,
                                                                      monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET")
    b = make_broker()
    r = b.intake().query(source="notify", external_id="none")
    assert r.type == "REJECTED" and r["code"] == "not_found"
    assert manager.receive(0.5) == []


def test_status_tells_a_database_outage_and_a_failed_reload(make_broker, manager):
    b = make_broker()
    manager.wait_for(ready, 5, "READY=1")
    faultload.pg_stop("fast")
    try:
        manager.wait_for(lambda m: "database is unreachable" in m.get("STATUS", ""), 15,
                         "STATUS: the database is unreachable")
        b.proc.send_signal(signal.SIGHUP)   # the reload cannot read the database
        m = manager.wait_for(ready, 10, "READY=1 after the reload")
        assert m["STATUS"].startswith("active: reload failed"), m
    finally:
        faultload.pg_start()
    manager.wait_for(lambda m: m.get("STATUS", "").startswith("active: the database is back"),
                     20, "STATUS: the database is back")
