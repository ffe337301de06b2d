"""``--cpu-durations N``: the N tests that took the most CPU time, with the processes they started.

The suite is bound by CPU, not by its longest test: most tests start Snakemake, whose jobs each start
Python, and pytest-xdist runs a worker per core beside them. ``--durations`` gives wall time, which under
that contention says more about what ran alongside a test than about the test. This gives, per test
(setup, call and teardown, so a shared fixture counts where it is built), the CPU seconds of the test's
process and of every process it started and waited for: Snakemake, its jobs, torchrun and its ranks
(``getrusage``: a child's time counts once it has been waited for, so work left running in the
background, such as a SLURM job run by slurmd, is not counted). Under xdist each worker measures its
own tests and the table is printed by the controller.
"""

from __future__ import annotations

import resource

import pytest

PROPERTY = "cpu_seconds"


def pytest_addoption(parser):
    parser.getgroup("terminal reporting").addoption(
        "--cpu-durations",
        type=int,
        default=None,
        metavar="N",
        help="show the N tests that used the most CPU, with the processes they started (0 for all)",
    )


def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


_started: dict[str, float] = {}  # in the process that runs the test: its CPU seconds when setup began
_collected: dict[str, float] = {}  # in the process that reports: test -> CPU seconds


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    if item.config.getoption("cpu_durations") is not None:
        _started[item.nodeid] = _cpu_seconds()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.when == "teardown" and item.nodeid in _started:
        report.user_properties.append((PROPERTY, _cpu_seconds() - _started.pop(item.nodeid)))


def pytest_runtest_logreport(report):
    """Collects the teardown reports' measurements (on the xdist controller, as the workers send them)."""
    for name, value in report.user_properties:
        if name == PROPERTY and report.when == "teardown":
            _collected[report.nodeid] = value


def pytest_terminal_summary(terminalreporter, config):
    count = config.getoption("cpu_durations")
    if count is None or not _collected:
        return
    ranked = sorted(_collected.items(), key=lambda kv: -kv[1])
    total = sum(_collected.values())
    title = f"most CPU: {count} tests" if count else "CPU per test"
    terminalreporter.write_sep("=", f"{title} (with the processes they started; {total:.0f} CPU-s in all)")
    for nodeid, seconds in ranked[: count or None]:
        terminalreporter.write_line(f"{seconds:8.1f} CPU-s  {nodeid}")
