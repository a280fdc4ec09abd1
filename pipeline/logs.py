"""Logging for unattended runs, and progress for people at a terminal.

Cron runs at 02:00 with nobody watching: every run appends to `<outputs>/logs/recon.log`
(rotated at 5 MB, 10 files kept) with per-file and per-stage timings; stdout gets one summary
line (none with --quiet); errors go to stderr. A progress display appears only when stderr is a
terminal, so cron mail stays clean.
"""
from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 10


def setup_logging(outputs: Path) -> Path:
    log_dir = outputs / "logs"
    outputs.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new outputs folder is private too
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = log_dir / "recon.log"
    logger = logging.getLogger("recon")
    logger.setLevel(logging.INFO)
    for h in list(logger.handlers):
        if isinstance(h, RotatingFileHandler):
            logger.removeHandler(h)
            h.close()
    old_umask = os.umask(0o077)
    try:
        handler = RotatingFileHandler(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    finally:
        os.umask(old_umask)
    handler.setFormatter(logging.Formatter("%(asctime)s pid=%(process)d %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    return path


@contextmanager
def progress_reporter(enabled: bool = True):
    """Yield a callable(description) that shows progress on a terminal, or None under cron."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.status import Status

    status = Status("", console=Console(stderr=True))
    status.start()
    try:
        yield lambda text: status.update(text)
    finally:
        status.stop()
