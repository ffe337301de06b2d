"""Glue for workflow entry points: per-job log file, thread count, clear errors.

``run_job(snakemake, main)`` sends the job's stdout/stderr (progress bars included) to its ``log:``
file, limits torch (and the tokenizers library) to the job's ``threads:`` and keeps freed host memory
in the process (:func:`keep_freed_memory`). Every failure ends up
in that log file, where Snakemake sends the user: a :class:`ProxyscaleError` (bad config or input, a
diverged loss) as one line, anything unexpected with its traceback. The console gets one line either
way, naming the log, and the job exits non-zero. A job whose resources ask for several ``processes``
starts its script again under torchrun (:mod:`proxyscale.training.distributed`); the processes write to the same log.
A training job that succeeds removes the states it saved to resume from (:mod:`proxyscale.training.resume`).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from proxyscale.errors import ProxyscaleError
from proxyscale.training import distributed

CUDA_ALLOCATOR = "expandable_segments:True"
"""PyTorch's CUDA allocator setting for every job (unless the environment sets its own): segments that
grow in place rather than new blocks of each size, so memory a step freed can serve the next step's
other shapes instead of fragmenting the card."""


def run_job(smk, main: Callable[[], None]) -> None:
    os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", CUDA_ALLOCATOR)  # read when CUDA first allocates
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
            status, signals = distributed.relaunch(processes, sys.argv[0], sys.stdout, sys.stderr)
            if status and signals:
                _fail(
                    f"error in rule {smk.rule}: stopped by {', '.join(dict.fromkeys(signals))}, passed on to its "
                    f"{processes} training processes, which save their state to resume from (the log says where): "
                    "run the job again to resume",
                    log_path,
                    console,
                )
            if status:
                _fail(
                    f"error in rule {smk.rule}: {processes} training processes ended with status {status}",
                    log_path,
                    console,
                )
            return
        threads = max(1, int(smk.threads) // (processes if under_torchrun else 1))
        limit_threads(threads)
        keep_freed_memory()
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


def outlive_stop_warnings() -> None:
    """Let this process (the workflow's, which SLURM runs as ``srun ... snakemake`` for each job) outlive
    SIGUSR1, the warning ``--signal=USR1@...`` sends every process of a job ahead of its time limit: by
    default it would end the job-level Snakemake, and SLURM would then kill the job's training processes
    while they save. The handler does nothing; the job's own processes act on the signal. Outside the
    main thread (no signal handlers there) it does nothing either."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)


def limit_threads(threads: int) -> None:
    """Hold torch (loaded now or later) and the tokenizers library to ``threads`` threads."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS"):  # RAYON: tokenizers' batches
        os.environ.setdefault(var, str(threads))
    if "torch" in sys.modules:  # loaded by the entry script's imports; otherwise the variables hold it
        sys.modules["torch"].set_num_threads(threads)


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # the most glibc's own adaptive threshold ever reaches on 64-bit
TRIM_THRESHOLD = 64 << 20


def keep_freed_memory() -> bool:
    """Have glibc's malloc keep up to 64 MB of freed memory for reuse instead of returning it to the OS
    at every free; True when the C library took the settings (glibc), False elsewhere (no change).

    A CPU training step frees its activations and gradients, then allocates the same sizes again. By
    default glibc returns the freed top of its heap to the OS once more than twice its adaptive mmap
    threshold is free, and the next step page-faults every page of it back in: training the default
    config's reference took 2.6M-4.2M minor faults instead of 19k, and a fifth more time
    (``bench/host_allocator.py``). Fixed thresholds (blocks under 32 MB from the heap, trimmed only
    past 64 MB free) are what PyTorch's CPU tuning guide gets from jemalloc or tcmalloc; larger blocks
    (memory-mapped arrays, big score blocks) are still returned when freed, so streaming jobs keep their
    memory bounds."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


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
