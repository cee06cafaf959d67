"""The worker programs and their service manager: readiness, status, stopping and the watchdog.

Each test plays systemd for one program (notifysock.Manager: NOTIFY_SOCKET
and WATCHDOG_USEC, as the Type=notify units in deploy/systemd/ give them).
A program is READY once it does its job or waits for what it needs in its
normal way: gd-worker and gd-sla are ready while the broker is down, and
say that they are connecting. The broker, when there is one, is not under
the test's manager.
"""

import signal
import subprocess

import pytest

from demo import TOWN
from notifysock import (assert_watchdog_fed_by_the_loop, listen, ready, status_starts,
                        stopping)
from slaworker import SlaWorker
from test_dashboard import Dashboard
from test_hotline import hotline_binary
from test_open311 import Open311
from test_worker_program import Workers


@pytest.fixture
def notify(tmp_path, monkeypatch):
    """notify() plays the service manager for the programs started from then on."""
    made = []

    def listen_now():
        made.append(listen(tmp_path / f"notify-{len(made)}", monkeypatch))
        return made[-1]
    yield listen_now
    for m in made:
        m.close()


def start_broker_unmanaged(broker, monkeypatch):
    """Starts `broker` without NOTIFY_SOCKET: its datagrams are not the program's."""
    with monkeypatch.context() as env:
        env.delenv("NOTIFY_SOCKET", raising=False)
        env.delenv("WATCHDOG_USEC", raising=False)
        return broker.start()


def test_gd_worker_is_ready_while_the_broker_is_down_then_says_it_serves(
        make_broker, notify, tmp_path, monkeypatch):
    broker = make_broker(start=False)
    manager = notify()
    workers = Workers(tmp_path, broker)
    w = workers.gd_worker("notify-w1")
    try:
        m = manager.wait_for(ready, 5, "READY=1 with no broker")
        assert m["STATUS"] == f"connecting to the broker at {broker.work_ep}", m
        assert_watchdog_fed_by_the_loop(manager, w.proc)

        start_broker_unmanaged(broker, monkeypatch)
        m = manager.wait_for(status_starts("serving 1 queue(s) from the broker at "
                                           f"{broker.work_ep} (session "),
                             10, "STATUS serving once the broker is up")
        assert manager.pings(0.6) >= 1

        # a lost session says so, and the next one says it serves again
        assert broker.stop() == 0
        start_broker_unmanaged(broker, monkeypatch)
        manager.wait_for(status_starts(f"connection to the broker at {broker.work_ep} lost"),
                         10, "STATUS lost")
        manager.wait_for(status_starts("serving"), 10, "STATUS serving after the restart")

        assert w.stop() == 0
        m = manager.wait_for(stopping, 2, "STOPPING=1")
        assert m["STATUS"].startswith("stopping"), m
    finally:
        if w.proc.poll() is None:
            w.kill()
        print(workers.logs())


def test_gd_sla_is_ready_while_the_broker_is_down_then_says_it_times_the_deadlines(
        make_broker, notify, monkeypatch):
    broker = make_broker(start=False)
    manager = notify()
    sla = SlaWorker(broker.dir, broker.work_ep, shard=[TOWN], name="notify-sla").start()
    try:
        m = manager.wait_for(ready, 5, "READY=1 with no broker")
        assert m["STATUS"] == f"connecting to the broker at {broker.work_ep}", m
        assert_watchdog_fed_by_the_loop(manager, sla.proc)

        start_broker_unmanaged(broker, monkeypatch)
        m = manager.wait_for(status_starts("timing "), 10, "STATUS timing once synced")
        assert f"deadlines from the broker at {broker.work_ep} (session " in m["STATUS"], m
        assert manager.pings(0.6) >= 1

        assert sla.stop() == 0
        m = manager.wait_for(stopping, 2, "STOPPING=1")
        assert m["STATUS"].startswith("stopping"), m
    finally:
        sla.kill()
        print(sla.log_text()[-20000:])


def test_gd_dashboard_is_ready_once_serving_http_and_says_when_the_broker_is_silent(
        make_broker, notify, dsn, monkeypatch):
    broker = start_broker_unmanaged(make_broker(start=False), monkeypatch)
    manager = notify()
    dash = Dashboard(broker, dsn, broker_silence_ms=500)
    try:
        m = manager.wait_for(ready, 5, "READY=1")
        serving = f"serving HTTP at {dash.url}/; broker status from {broker.status_ep}"
        assert m["STATUS"] == serving, m
        assert_watchdog_fed_by_the_loop(manager, dash.proc)

        assert broker.stop() == 0
        manager.wait_for(status_starts(f"serving HTTP at {dash.url}/; broker status silent"),
                         10, "STATUS broker status silent")
        start_broker_unmanaged(broker, monkeypatch)
        manager.wait_for(lambda m: m.get("STATUS") == serving, 10,
                         "STATUS broker status again")
        assert manager.pings(0.6) >= 1
    finally:
        dash.stop()  # asserts exit 0
    m = manager.wait_for(stopping, 2, "STOPPING=1")
    assert m["STATUS"].startswith("stopping"), m


def test_gd_hotline_is_ready_while_following_its_feed_and_says_stopping(
        broker, notify, tmp_path):
    feed = tmp_path / "feed.jsonl"
    feed.write_text("")
    manager = notify()
    p = subprocess.Popen([str(hotline_binary()), "--intake", broker.intake_ep, "--input",
                          str(feed), "--state", str(tmp_path / "state"), "--reject",
                          str(tmp_path / "reject.jsonl"), "--follow", "--poll-ms", "1000"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        m = manager.wait_for(ready, 5, "READY=1")
        assert m["STATUS"] == (f"submitting {feed} to the broker at {broker.intake_ep} "
                               "(following it)"), m
        # the poll loop waits up to 1 s for new lines, and still pings every 200 ms
        assert_watchdog_fed_by_the_loop(manager, p)
        p.send_signal(signal.SIGTERM)
        m = manager.wait_for(stopping, 2, "STOPPING=1")
        assert m["STATUS"].startswith("stopping"), m
        assert p.wait(10) == 1  # stopped by a signal, everything final saved (the unit's
                                # SuccessExitStatus=1)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_gd_open311_is_ready_once_serving_and_feeds_the_watchdog_from_the_broker_thread(
        broker, notify, dsn, tmp_path):
    manager = notify()
    o = Open311(broker, dsn, tmp_path)
    try:
        m = manager.wait_for(ready, 5, "READY=1")
        assert m["STATUS"] == (f"serving Open311 at {o.base}/, submitting to the broker at "
                               f"{broker.intake_ep}"), m
        assert_watchdog_fed_by_the_loop(manager, o.proc)
        status, _, _ = o.get("/services.json")
        assert status == 200
    finally:
        assert o.stop() == 0
    m = manager.wait_for(stopping, 2, "STOPPING=1")
    assert m["STATUS"].startswith("stopping"), m
