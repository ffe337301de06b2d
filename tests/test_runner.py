"""Job glue: every failure ends up in the job's log file, and as one line on the console."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from proxyscale.errors import ConfigError
from proxyscale.runner import run_job


def _job(tmp_path):
    return SimpleNamespace(log=[str(tmp_path / "job.log")], threads=1, rule="train", resources=SimpleNamespace())


def _run(job, main, capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_job(job, main)
    assert exit_info.value.code == 1
    return capsys.readouterr().err


def test_an_expected_error_is_one_line_in_the_log_and_on_the_console(tmp_path, capsys):
    def main():
        raise ConfigError("sizes.xs.lr: too large")

    console = _run(_job(tmp_path), main, capsys)
    log = (tmp_path / "job.log").read_text()
    assert console.splitlines() == [f"error in rule train: sizes.xs.lr: too large (log: {tmp_path / 'job.log'})"]
    assert log.splitlines()[-1] == "error in rule train: sizes.xs.lr: too large" and "Traceback" not in log


def test_an_unexpected_error_leaves_its_traceback_in_the_log(tmp_path, capsys):
    def main():
        print("progress 50%")
        raise KeyError("missing")

    console = _run(_job(tmp_path), main, capsys)
    log = (tmp_path / "job.log").read_text()
    assert "progress 50%" in log and "Traceback (most recent call last)" in log and "raise KeyError" in log
    assert log.splitlines()[-1] == "error in rule train: unexpected KeyError: 'missing'"
    assert len(console.splitlines()) == 1 and "unexpected KeyError" in console and "job.log" in console


def test_success_is_logged(tmp_path, capsys):
    run_job(_job(tmp_path), lambda: print("work"))
    assert "rule train done in" in (tmp_path / "job.log").read_text() and capsys.readouterr().err == ""
