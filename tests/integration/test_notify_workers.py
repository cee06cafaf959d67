"""The worker programs and their service manager: readiness, status, stopping and the watchdog.

Each test plays systemd for one program (notifysock.Manager: NOTIFY_SOCKET
and WATCHDOG_USEC, as the Type=notify units in deploy/systemd/ give them).
A program is READY once it does its job or waits for what it needs in its
normal way: gd-worker and gd-sla are ready while the broker is down, and
say that they are connecting. The broker, when there is one, is not under
the test's manager.
"""

import pytest

from demo import TOWN
from notifysock import (assert_watchdog_fed_by_the_loop, listen, ready, status_starts,
                        stopping)
from slaworker import SlaWorker
from test_worker_program import Workers


@pytest.fixture
def manager(tmp_path, monkeypatch):
    m = listen(tmp_path / "notify", monkeypatch)
    yield m
    m.close()


def start_broker_unmanaged(broker, monkeypatch):
    """Starts `broker` without NOTIFY_SOCKET: its datagrams are not the program's."""
    monkeypatch.delenv("NOTIFY_SOCKET")
    monkeypatch.delenv("WATCHDOG_USEC")
    return broker.start()


def test_gd_worker_is_ready_while_the_broker_is_down_then_says_it_serves(
        make_broker, manager, tmp_path, monkeypatch):
    broker = make_broker(start=False)
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
        assert broker.restart()
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
        make_broker, manager, monkeypatch):
    broker = make_broker(start=False)
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
