"""Glue for workflow entry points: per-job log file, thread count, clear errors.

``run_job(snakemake, main)`` sends the job's stdout/stderr (progress bars included) to its ``log:``
file, limits torch to the job's ``threads:``, and turns a :class:`ProxyscaleError` into one line on
the console and in the log and a non-zero exit, instead of a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Callable

from proxyscale.errors import ProxyscaleError


def run_job(smk, main: Callable[[], None]) -> None:
    console = sys.stderr
    log_path = smk.log[0] if len(smk.log) else None
    with contextlib.ExitStack() as stack:
        if log_path:
            handle = stack.enter_context(open(log_path, "w", buffering=1))
            stack.enter_context(contextlib.redirect_stdout(handle))
            stack.enter_context(contextlib.redirect_stderr(handle))
        logging.basicConfig(
            stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", force=True
        )
        import torch

        torch.set_num_threads(max(1, int(smk.threads)))
        start = time.perf_counter()
        try:
            main()
            logging.info("rule %s done in %.1fs", smk.rule, time.perf_counter() - start)
        except ProxyscaleError as exc:
            message = f"error in rule {smk.rule}: {exc}"
            print(message, file=sys.stderr)
            if log_path:
                print(message, file=console)
            raise SystemExit(1) from None
