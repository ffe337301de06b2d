"""``--cpu-durations``: each test is charged the CPU of its own process and of the processes it started
(tests/cpu_durations.py), so a test that waits is not confused with one that works."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO

BURN = 0.6  # CPU seconds the child below uses, whatever the machine's speed
TESTS = f"""
import subprocess, sys, time

def test_starts_a_busy_child():
    subprocess.run([sys.executable, "-c", "import time\\nwhile time.process_time() < {BURN}: pass"], check=True)

def test_sleeps():
    time.sleep({BURN})
"""


def test_a_test_is_charged_the_cpu_of_the_processes_it_started_and_not_its_waiting(tmp_path):
    (tmp_path / "test_two.py").write_text(TESTS)
    env = {**os.environ, "PYTHONPATH": str(REPO / "tests")}
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "cpu_durations",
        "--cpu-durations",
        "0",
        "-p",
        "no:cacheprovider",
    ]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    rows = [line.split() for line in out.stdout.splitlines() if " CPU-s  " in line]
    ranked = [nodeid.split("::")[-1] for _, _, nodeid in rows]
    assert ranked == ["test_starts_a_busy_child", "test_sleeps"]
    busy, idle = (float(seconds) for seconds, _, _ in rows)
    assert busy >= 0.95 * BURN  # (the kernel's accounting may round the child's time down by a tick)
    assert idle < BURN / 2
