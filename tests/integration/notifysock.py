"""The service manager's end of the systemd notify protocol, for tests of Type=notify programs.

A test plays systemd: a datagram socket named by NOTIFY_SOCKET, with
WATCHDOG_USEC set, as a Type=notify unit with WatchdogSec= gives the
program. `listen` sets both in the environment the program will inherit.
"""

import signal
import socket
import time

import pytest

WATCHDOG_USEC = 400_000  # pings every 200 ms


class Manager:
    """The service manager's end of NOTIFY_SOCKET: every datagram, as a dict."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.seen = []     # everything, for failure messages
        self.unread = []   # arrived, not yet looked at by wait_for

    def receive(self, timeout):
        """The messages that arrive within `timeout` seconds."""
        got = []
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                break
            msg = dict(line.split("=", 1) for line in data.decode().splitlines() if "=" in line)
            got.append(msg)
        self.seen += got
        return got

    def wait_for(self, pred, timeout, what):
        """The first message, in order of arrival, that `pred` accepts."""
        end = time.monotonic() + timeout
        while True:
            while self.unread:
                m = self.unread.pop(0)
                if pred(m):
                    return m
            left = end - time.monotonic()
            if left <= 0:
                pytest.fail(f"no {what} within {timeout} s; got {self.seen[-20:]}")
            self.unread += self.receive(min(0.05, left))

    def pings(self, seconds):
        """WATCHDOG=1 messages within `seconds` from now (the unread ones are dropped)."""
        self.unread = []
        return sum(1 for m in self.receive(seconds) if m.get("WATCHDOG") == "1")

    def close(self):
        self.sock.close()


def listen(path, monkeypatch, watchdog_usec=WATCHDOG_USEC):
    """A Manager on `path`, named by NOTIFY_SOCKET (with WATCHDOG_USEC) in the environment
    that programs started from now on inherit."""
    m = Manager(path)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", str(watchdog_usec))
    return m


def ready(m):
    return m.get("READY") == "1"


def stopping(m):
    return m.get("STOPPING") == "1"


def status_starts(text):
    """A predicate: a message whose STATUS starts with `text`."""
    return lambda m: m.get("STATUS", "").startswith(text)


def assert_watchdog_fed_by_the_loop(manager, proc):
    """WATCHDOG=1 about every 100 ms (WATCHDOG_USEC / 2), none while `proc` (a Popen) is
    stopped, and again once it runs."""
    assert 3 <= manager.pings(1.0) <= 8
    proc.send_signal(signal.SIGSTOP)
    try:
        manager.receive(0.05)  # what was on its way before the stop (dropped by pings)
        assert manager.pings(0.8) == 0
    finally:
        proc.send_signal(signal.SIGCONT)
    assert manager.pings(0.6) >= 1
