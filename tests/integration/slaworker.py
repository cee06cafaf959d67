"""The gd-sla process for integration tests: start, stop, kill -9, log, and a fake broker.

gd-sla is $GD_BUILD_DIR/workers/gd-sla/gd-sla (meson sets GD_BUILD_DIR),
else $GD_SLA. FakeBroker is a ROUTER that speaks GDP/1 to one SLA worker,
so that tests can script the broker's side exactly (DEADLINE, CLEAR,
SYNCED, OK/ERR, DENIED, silence).
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import msgpack
import pytest
import zmq

import gdclient


def sla_binary():
    build = os.environ.get("GD_BUILD_DIR")
    if build and (Path(build) / "workers" / "gd-sla" / "gd-sla").is_file():
        return Path(build) / "workers" / "gd-sla" / "gd-sla"
    path = os.environ.get("GD_SLA")
    if path and Path(path).is_file():
        return Path(path)
    pytest.fail("no gd-sla: set GD_BUILD_DIR (meson does) or GD_SLA to the binary")


class SlaWorker:
    """One gd-sla process; its stderr goes to a log file in `directory`."""

    def __init__(self, directory, work, shard=None, **options):
        self.log_path = Path(directory) / f"gd-sla-{time.monotonic_ns()}.log"
        self.argv = [str(sla_binary()), "--work", ",".join(work) if isinstance(work, list)
                     else work]
        self.argv += ["--shard", ",".join(shard)] if shard else ["--all"]
        opts = {"tick-ms": 5, "log-level": "debug", "backoff-min-ms": 50,
                "backoff-max-ms": 200, "report-ms": 200}
        opts.update({k.replace("_", "-"): v for k, v in options.items()})
        for k, v in opts.items():
            if v is True:
                self.argv.append(f"--{k}")
            elif v is not False and v is not None:
                self.argv += [f"--{k}", str(v)]
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(f"==== {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log)
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=5.0):
        """SIGTERM; returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"gd-sla did not stop within {timeout}s of SIGTERM")
        return self.proc.returncode

    def kill(self):
        """kill -9: no BYE, no cleanup."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def wait(self, timeout):
        return self.proc.wait(timeout)

    def log_text(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class FakeBroker:
    """A ROUTER on `endpoint` that plays gd-broker for one SLA worker at a time.

    Messages are (peer, type, body); HEARTBEATs are counted and dropped
    unless `keep_heartbeats`."""

    def __init__(self, ctx, endpoint):
        self.sock = ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.inbox = []
        self.heartbeats = 0
        self.last_heartbeat = None

    def close(self):
        self.sock.close(linger=0)

    def send(self, peer, type_name, body):
        self.sock.send_multipart([peer, gdclient.header(type_name), gdclient.pack(body)])

    def _recv(self, timeout):
        if not self.sock.poll(int(max(0.0, timeout) * 1000)):
            return None
        frames = self.sock.recv_multipart()
        peer, rest = frames[0], frames[1:]
        m = gdclient.decode(rest)
        m.peer = peer
        m.at = time.time() * 1000
        if m.type == "HEARTBEAT":
            self.heartbeats += 1
            self.last_heartbeat = m.at
            return self._recv(0) if self.sock.poll(0) else False
        return m

    def expect(self, match, timeout=gdclient.DEFAULT_TIMEOUT, what=None):
        pred = gdclient._matcher(match)
        for i, m in enumerate(self.inbox):
            if pred(m):
                return self.inbox.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            m = self._recv(min(0.02, max(0.0, deadline - time.monotonic())))
            if m:
                if pred(m):
                    return m
                self.inbox.append(m)
            elif time.monotonic() >= deadline:
                raise gdclient.Timeout(f"fake broker: no {what or match} within {timeout}s; "
                                       f"inbox {self.inbox!r}")

    def collect(self, seconds, heartbeat=None):
        """Everything (but heartbeats) that arrives within `seconds`; with
        heartbeat=(peer, ms) the fake keeps the session alive meanwhile."""
        out, self.inbox = self.inbox, []
        deadline = time.monotonic() + seconds
        last = 0.0
        while time.monotonic() < deadline:
            if heartbeat and time.monotonic() - last >= heartbeat[1] / 3000:
                self.send(heartbeat[0], "HEARTBEAT", {})
                last = time.monotonic()
            m = self._recv(0.01)
            if m:
                out.append(m)
        return out

    def session(self, heartbeat_ms=100, liveness=5, session=1):
        """Waits for HELLO and answers WELCOME; returns (peer, hello)."""
        hello = self.expect("HELLO", what="HELLO")
        self.send(hello.peer, "WELCOME", {"session": session, "heartbeat_ms": heartbeat_ms,
                                          "liveness": liveness})
        return hello.peer, hello


def now_ms():
    return int(time.time() * 1000)
