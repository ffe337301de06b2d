"""Glue for workflow entry points: per-job log file, thread count, clear errors.

``run_job(snakemake, main)`` sends the job's stdout/stderr (progress bars included) to its ``log:``
file and limits torch (and the tokenizers library) to the job's ``threads:``. Every failure ends up
in that log file, where Snakemake sends the user: a :class:`ProxyscaleError` (bad config or input, a
diverged loss) as one line, anything unexpected with its traceback. The console gets one line either
way, naming the log, and the job exits non-zero. A job whose resources ask for several ``processes``
starts its script again under torchrun (:mod:`proxyscale.training.distributed`); the processes write to the same log.
A training job that succeeds removes the states it saved to resume from (:mod:`proxyscale.training.resume`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from proxyscale.errors import ProxyscaleError
from proxyscale.training import distributed


def run_job(smk, main: Callable[[], None]) -> None:
    console = sys.stderr
    log_path = smk.log[0] if len(smk.log) else None
    processes = int(getattr(smk.resources, "processes", 1))
    under_torchrun = distributed.launched()
    with contextlib.ExitStack() as stack:
        if log_path and not under_torchrun:  # torchrun's processes inherit the log as stdout and stderr
            handle = stack.enter_context(open(log_path, "w", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(handle))
            stack.enter_context(contextlib.redirect_stderr(handle))
        rank = int(os.environ.get("RANK", 0))
        logging.basicConfig(
            stream=sys.stderr,
            level=logging.INFO if rank == 0 else logging.WARNING,
            format=f"%(asctime)s {f'[rank {rank}] ' if under_torchrun else ''}%(levelname)s %(message)s",
            force=True,
        )
        if processes > 1 and not under_torchrun:
            sys.stdout.flush()
            status = distributed.relaunch(processes, sys.argv[0], sys.stdout, sys.stderr)
            if status:
                _fail(
                    f"error in rule {smk.rule}: {processes} training processes ended with status {status}",
                    log_path,
                    console,
                )
            return
        threads = max(1, int(smk.threads) // (processes if under_torchrun else 1))
        limit_threads(threads)
        start, startup = time.perf_counter(), seconds_since_process_start()
        try:
            main()
            if (resume := sys.modules.get("proxyscale.training.resume")) and rank == 0:  # a training job's
                resume.clear_jobs()  # states are done with
            logging.info(
                "rule %s done in %.1fs (start-up %s)",
                smk.rule,
                time.perf_counter() - start,
                "unknown" if startup is None else f"{startup:.1f}s",
            )
        except ProxyscaleError as exc:
            _fail(f"error in rule {smk.rule}: {exc}", log_path, console)
        except Exception as exc:  # unexpected: the traceback goes to the log, one line to the console
            traceback.print_exc()
            _fail(f"error in rule {smk.rule}: unexpected {type(exc).__name__}: {exc}", log_path, console)
        finally:
            distributed.leave()


def limit_threads(threads: int) -> None:
    """Hold torch (loaded now or later) and the tokenizers library to ``threads`` threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):  # RAYON: tokenizers' batches
        os.environ.setdefault(var, str(threads))
    if "torch" in sys.modules:  # loaded by the entry script's imports; otherwise the variables hold it
        sys.modules["torch"].set_num_threads(threads)


def seconds_since_process_start() -> float | None:
    """Wall seconds since this process started (interpreter, imports, Snakemake's preamble), from
    /proc on Linux; None elsewhere. Jobs log it so benchmarks can split a job's time."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _fail(message: str, log_path: str | None, console) -> None:
    """Write ``message`` to the job's log (the redirected stderr) on a line of its own (progress bars
    the failure interrupted are closed first) and, naming the log, to the console."""
    if "tqdm" in sys.modules:
        for bar in list(sys.modules["tqdm"].tqdm._instances):
            bar.close()
    print(message, file=sys.stderr)
    if log_path:
        print(f"{message} (log: {log_path})", file=console)
    raise SystemExit(1) from None
