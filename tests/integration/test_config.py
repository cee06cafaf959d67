"""Configuration files of every program: good and bad files, precedence, --check-config of the examples in deploy/config/.

No broker and no database: `--check-config` only reads and checks.
"""

import os
import re
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("GD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("GD_BUILD_DIR", SOURCE / "build" / "test"))
EXAMPLES = SOURCE / "deploy" / "config"
BIN = {
    "gd-broker": BUILD / "broker" / "gd-broker",
    "gd-sla": BUILD / "workers" / "gd-sla" / "gd-sla",
    "gd-worker": BUILD / "workers" / "gd-worker" / "gd-worker",
    "gd-open311": BUILD / "workers" / "open311" / "gd-open311",
    "gd-hotline": BUILD / "workers" / "hotline" / "gd-hotline",
    "gd-dashboard": BUILD / "workers" / "dashboard" / "gd-dashboard",
}
CLEAN_ENV = {k: v for k, v in os.environ.items()
             if k not in ("GD_DB_DSN", "GD_INTAKE", "GD_STATUS")}


def check(prog, *args, env=None):
    return subprocess.run([str(BIN[prog]), *args, "--check-config"], capture_output=True,
                          text=True, timeout=10, env=env or CLEAN_ENV)


def effective(stdout):
    """key -> value of a printed configuration (comments and sections left out)."""
    out = {}
    for line in stdout.splitlines():
        if line and line[0] not in ";[":
            key, _, value = line.partition(" = ")
            out[key] = value
    return out


# ---- gd-broker ----

GOOD = """; a comment
[gd-broker]
db = host=/run/postgresql dbname=griddispatch user=griddispatch
intake = tcp://*:7701
flush-ms = 5
batch_max = 500
extension_approval = above
log_level = debug
"""


def test_broker_file_values_apply_and_the_command_line_wins(tmp_path):
    f = tmp_path / "b.ini"
    f.write_text(GOOD)
    r = check("gd-broker", "--config", str(f), "--batch-max", "700")
    assert r.returncode == 0, r.stderr
    cfg = effective(r.stdout)
    assert cfg["flush_ms"] == "5" and cfg["batch_max"] == "700"
    assert cfg["intake"] == "tcp://*:7701" and cfg["work"] == "tcp://127.0.0.1:7702"
    assert cfg["extension_approval"] == "above" and cfg["log_level"] == "debug"
    assert "[gd-broker]" in r.stdout


def test_broker_environment_dsn_wins_over_the_file_and_passwords_are_masked(tmp_path):
    f = tmp_path / "b.ini"
    f.write_text(GOOD)
    env = dict(CLEAN_ENV, GD_DB_DSN="postgresql://gd:s3cret@db.example/griddispatch")
    r = check("gd-broker", "--config", str(f), env=env)
    assert r.returncode == 0, r.stderr
    assert effective(r.stdout)["db"] == "postgresql://gd:***@db.example/griddispatch"
    assert "s3cret" not in r.stdout
    r = check("gd-broker", "--db", "dbname=x password=s3cret")
    assert r.returncode == 0 and "s3cret" not in r.stdout and "password=***" in r.stdout


def test_broker_printed_configuration_reads_back_to_the_same(tmp_path):
    f = tmp_path / "b.ini"
    f.write_text(GOOD)
    first = check("gd-broker", "--config", str(f))
    again = tmp_path / "again.ini"
    again.write_text(first.stdout)
    second = check("gd-broker", "--config", str(again))
    assert second.returncode == 0, second.stderr
    assert effective(second.stdout) == effective(first.stdout)


@pytest.mark.parametrize("body, line, message", [
    ("[gd-broker]\ndb = dbname=x\nfrobnicate = 1\n", 3, "unknown key 'frobnicate'"),
    ("[gd-broker]\ndb = dbname=x\n\nflush_ms = 5000\n", 4,
     "flush_ms needs a whole number from 0 to 1000, not '5000'"),
    ("[gd-broker]\nheartbeat-ms = soon\n", 2, "heartbeat-ms needs a whole number"),
    ("[gd-sla]\nwork = tcp://x:1\n", 2, "unknown section [gd-sla]"),
    ("[gd-broker]\nthis line has no equals sign\n", 2, "syntax error"),
    ("[gd-broker]\nlog_level = loud\n", 2, "log_level must be error, warn, info or debug"),
    ("[gd-broker]\nextension_approval = always\n", 2, "extension_approval is auto or above"),
    ("[gd-broker]\nutc_offset_min = 2000\n", 2, "utc_offset_min needs minutes"),
    ("[gd-broker]\nintake =\n", 2, "intake needs a value"),
    ("[gd-broker]\ncheck-config = 1\n", 2, "unknown key 'check-config'"),
])
def test_broker_bad_file_names_file_and_line(tmp_path, body, line, message):
    f = tmp_path / "bad.ini"
    f.write_text(body)
    r = check("gd-broker", "--config", str(f), "--db", "dbname=x")
    assert r.returncode == 2 and r.stdout == ""
    assert f"gd-broker: {f}:{line}: " in r.stderr and message in r.stderr, r.stderr


@pytest.mark.parametrize("args, message", [
    (["--config", "/nonexistent/gd-broker.ini"], "cannot read config file /nonexistent"),
    ([], "no database"),
    (["--db", "dbname='unterminated"], "not a libpq connection string"),
    (["--db", "frobnicate=1"], "not a libpq connection string"),
    (["--db", "dbname=x", "--batch-max", "5000", "--backlog-max", "1000"],
     "backlog_max (1000) must be at least batch_max (5000)"),
    (["--db", "dbname=x", "--migrations", "/nonexistent/sql"], "is not a directory"),
    (["--db", "dbname=x", "--flush-ms", "-1"], "--flush-ms needs a whole number"),
])
def test_broker_bad_settings_are_refused_with_a_reason(args, message):
    r = check("gd-broker", *args)
    assert r.returncode == 2 and message in r.stderr, r.stderr


def test_broker_warns_about_a_password_in_a_world_readable_file(tmp_path):
    f = tmp_path / "b.ini"
    f.write_text("[gd-broker]\ndb = dbname=x password=hunter2\n")
    f.chmod(0o644)
    r = check("gd-broker", "--config", str(f))
    assert r.returncode == 0 and "readable by everyone" in r.stderr
    f.chmod(0o600)
    assert "readable by everyone" not in check("gd-broker", "--config", str(f)).stderr


# ---- the other programs: same shape ----

@pytest.mark.parametrize("prog, body, line, message", [
    ("gd-hotline", "[gd-hotline]\nintake = tcp://x:1\nwindow = 0\n", 3, "window needs"),
    ("gd-hotline", "[gd-hotline]\nintake = tcp://x:1\nbatch = 257\n", 3,
     "batch needs a whole number from 1 to 256"),
    ("gd-hotline", "[gd-hotline]\nfollow = maybe\n", 2, "follow is true or false"),
    ("gd-dashboard", "[gd-dashboard]\nstatus = tcp://x:1\npush_ms = 5\n", 3, "push_ms needs"),
    ("gd-dashboard", "[dashboard]\nstatus = tcp://x:1\n", 2, "unknown section [dashboard]"),
    ("gd-dashboard", "[gd-dashboard]\nstatus = tcp://x:1\nbroker_silence_ms = 100\n", 3,
     "broker_silence_ms is 0 (never) or at least 500"),
    ("gd-sla", "[gd-sla]\nwork = tcp://x:1\ntick_ms = 0\n", 3, "tick_ms"),
    ("gd-sla", "[gd-sla]\nall = true\nbogus = 1\n", 3, "unknown key 'bogus'"),
    ("gd-worker", "[gd-worker]\nendpoints = tcp://x:1\ncredit = 5000\n", 3, "credit"),
])
def test_other_programs_name_file_and_line_of_a_bad_setting(tmp_path, prog, body, line, message):
    f = tmp_path / "bad.ini"
    f.write_text(body)
    r = check(prog, "--config", str(f))
    assert r.returncode == 2 and f"{f}:{line}: " in r.stderr and message in r.stderr, r.stderr


def test_hotline_and_dashboard_take_the_command_line_over_the_file(tmp_path):
    f = tmp_path / "h.ini"
    f.write_text("[gd-hotline]\nintake = tcp://a:1\ninput = -\nstate = s\nreject = r\n"
                 "window = 10\nbatch = 8\n")
    r = check("gd-hotline", "--config", str(f), "--window", "20")
    assert r.returncode == 0 and effective(r.stdout)["window"] == "20", r.stderr
    assert effective(r.stdout)["batch"] == "8"
    assert effective(check("gd-hotline", "--config", str(f), "--batch", "1").stdout)["batch"] == "1"
    r = check("gd-hotline", "--config", str(f), env=dict(CLEAN_ENV, GD_INTAKE="tcp://env:2"))
    assert effective(r.stdout)["intake"] == "tcp://env:2"
    f.write_text("[gd-dashboard]\nstatus = tcp://a:1\ndb = dbname=x\nhttp = 0.0.0.0:9000\n")
    r = check("gd-dashboard", "--config", str(f), "--http", "127.0.0.1:9001")
    assert r.returncode == 0 and effective(r.stdout)["http"] == "127.0.0.1:9001", r.stderr


def test_intake_endpoint_lists_of_the_adapters_are_checked_with_a_reason(tmp_path):
    f = tmp_path / "h.ini"
    for intake, message in (("tcp://a:1,", "entry 2 is empty"),
                            ("tcp://a:1, ,tcp://b:1", "entry 2 is empty"),
                            (",".join(["tcp://a:1"] * 17), "more than 16 endpoints")):
        f.write_text(f"[gd-hotline]\nintake = {intake}\ninput = -\nstate = s\nreject = r\n")
        r = check("gd-hotline", "--config", str(f))
        assert r.returncode == 2 and "intake: " in r.stderr and message in r.stderr, r.stderr
    f.write_text("[gd-hotline]\nintake = tcp://a:1 , tcp://b:1\ninput = -\nstate = s\n"
                 "reject = r\nfailover_ms = 250\n")
    r = check("gd-hotline", "--config", str(f))
    assert r.returncode == 0 and effective(r.stdout)["failover_ms"] == "250", r.stderr
    keys = tmp_path / "keys"
    keys.write_text("k-000000000000001 = app\n")
    o = tmp_path / "o.ini"
    o.write_text(f"[open311]\nintake = tcp://a:1,,tcp://b:1\ndb = dbname=x\n"
                 f"keys_file = {keys}\n")
    r = check("gd-open311", "--config", str(o))
    assert r.returncode != 0 and "intake: " in r.stderr and "entry 2 is empty" in r.stderr, \
        r.stderr


# ---- the examples of deploy/config/ ----

def example_files():
    """(program, example file) for every deploy/config/*.ini."""
    pairs = []
    for f in sorted(EXAMPLES.glob("*.ini")):
        prog = next(p for p in sorted(BIN, key=len, reverse=True) if f.name.startswith(p))
        pairs.append((prog, f.name))
    return pairs


def test_every_program_has_an_example():
    assert {p for p, _ in example_files()} == set(BIN)


@pytest.mark.parametrize("prog, name", example_files())
def test_example_passes_check_config(tmp_path, prog, name):
    # paths under /etc/griddispatch/ are where the examples get installed
    text = (EXAMPLES / name).read_text().replace("/etc/griddispatch/", f"{EXAMPLES}/")
    f = tmp_path / name
    f.write_text(text)
    r = check(prog, "--config", str(f))
    assert r.returncode == 0, r.stderr
    assert f"[{prog}]" in r.stdout
    # every key the example sets shows in the effective configuration with its value
    printed = effective(r.stdout)
    for key, value in effective(text).items():
        if key in printed:
            assert printed[key].replace(" ", "") == value.replace(" ", ""), key


def test_examples_ports_match_the_documented_defaults():
    broker = effective((EXAMPLES / "gd-broker.ini").read_text())
    assert [broker[k].rsplit(":", 1)[1] for k in ("intake", "work", "status")] == \
        ["7701", "7702", "7703"]
    for f in EXAMPLES.glob("*.ini"):
        for key, value in effective(f.read_text()).items():
            m = re.search(r":(77\d\d)\b", value)
            if m and key in ("work", "endpoints"):
                assert m.group(1) == "7702", (f.name, key)
            elif m and key in ("intake",) and not f.name.startswith("gd-broker"):
                assert m.group(1) == "7701", (f.name, key)
            elif m and key == "status":
                assert m.group(1) == "7703", (f.name, key)
