"""Deployment files: systemd-analyze verify of the units against a `meson install` root, and the container checks.

Both run the scripts operators run (deploy/check-units.sh,
deploy/check-container.py) on the build under test; no database is needed.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SOURCE = Path(os.environ.get("GD_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD = Path(os.environ.get("GD_BUILD_DIR", SOURCE / "build" / "test"))
UNITS = ["gd-broker.service", "gd-sla@.service", "gd-worker@.service", "gd-open311.service",
         "gd-hotline.service", "gd-dashboard.service"]


def test_every_program_has_a_unit_and_the_units_are_hardened():
    for name in UNITS:
        text = (SOURCE / "deploy" / "systemd" / name).read_text()
        for setting in ("DynamicUser=yes", "ProtectSystem=strict", "ProtectHome=yes",
                        "PrivateTmp=yes", "NoNewPrivileges=yes", "LimitNOFILE=", "MemoryMax=",
                        "Restart=", "--config /etc/griddispatch/"):
            assert setting in text, f"{name}: no {setting}"
    assert "StateDirectory=gd-hotline" in (SOURCE / "deploy/systemd/gd-hotline.service").read_text()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_is_clean_and_exec_start_passes_check_config():
    r = subprocess.run([str(SOURCE / "deploy" / "check-units.sh"), str(BUILD)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"{len(UNITS)} units clean" in r.stdout


def test_containerfile_and_compose_check():
    r = subprocess.run(["/usr/bin/python3", str(SOURCE / "deploy" / "check-container.py"),
                        str(BUILD)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "compose.yaml ok" in r.stdout
