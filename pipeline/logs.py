"""Logging for unattended runs, and progress for people at a terminal.

Cron runs at 02:00 with nobody watching: every run appends to `<outputs>/logs/recon.log`
(rotated at 5 MB, 10 files kept) with per-file and per-stage timings; stdout gets one summary
line (with --quiet, only when the exit status is not 0: cron mails what a job prints); errors
go to stderr. A progress display appears only when stderr is a terminal, so cron mail stays
clean.
"""
from __future__ import annotations

import logging
import os
import re
import sys
from contextlib import contextmanager
from logging.handlers import RotatingFileHandler
from pathlib import Path

LOG_BYTES = 5 * 1024 * 1024
LOG_BACKUPS = 10

# Text from inputs (file names, cell values, parser messages quoting a line) ends up in the log
# and on the terminal: control characters and bidi overrides are written escaped, so an export
# cannot forge a log line, move the cursor or reverse how a file name reads.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: object) -> str:
    """`text` safe to print or log on one line: control and bidi characters as \\xNN / \\uNNNN."""
    return _UNPRINTABLE.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}",
        str(text))


class _OneLineFormatter(logging.Formatter):
    """One record, one line: the message is escaped (a traceback, appended after it, is not)."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = printable(record.message)
        return super().formatMessage(record)


class _LogFile(RotatingFileHandler):
    """The log file, which says nothing on stderr when it cannot be written.

    logging reports a handler's failed write (a full disk) as "--- Logging error ---" and a
    traceback on stderr, into cron's mail, and the command carries on. The disk is the outputs'
    own, which the command's reports then stop on, saying so in one line
    (cli._short_of_resources); the record that could not be written is dropped. A record that
    cannot be formatted (a mistake in a log call) is still reported as logging does."""

    def handleError(self, record: logging.LogRecord) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handleError(record)


# Loggers of libraries whose records go to the log file too. Great Expectations logs a Data Docs
# page it could not write (a full disk) at ERROR, traceback included; with no handler of its own
# that went to stderr through logging's last resort, into cron's mail, once per page.
LIBRARY_LOGGERS = ("great_expectations",)


def setup_logging(outputs: Path) -> Path:
    log_dir = outputs / "logs"
    outputs.mkdir(parents=True, exist_ok=True, mode=0o700)  # a new outputs folder is private too
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = log_dir / "recon.log"
    logger = logging.getLogger("recon")
    logger.setLevel(logging.INFO)
    for name in ("recon", *LIBRARY_LOGGERS):
        for h in list(logging.getLogger(name).handlers):
            if isinstance(h, RotatingFileHandler):
                logging.getLogger(name).removeHandler(h)
                h.close()
    old_umask = os.umask(0o077)
    try:
        handler = _LogFile(path, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS, encoding="utf-8")
    finally:
        os.umask(old_umask)
    handler.setFormatter(_OneLineFormatter("%(asctime)s pid=%(process)d %(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    for name in LIBRARY_LOGGERS:  # at the level the library is set to (expectations.py: ERROR)
        library = logging.getLogger(name)
        library.addHandler(handler)
        library.propagate = False
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
