"""The installed `recon` command: pipeline.cli.entry, once it has been imported.

Importing the command's modules (click, DuckDB, pandas, the loaders' regular expressions) takes
the first 0.1-0.2 s of every command. Ctrl-C or SIGTERM in that time raised KeyboardInterrupt in
the middle of an import, and Python printed a traceback. Here the two signals stop the command
as they stop it later (cli._stop_on_signals): the same message, status 130 or 143. This module
imports nothing heavier than the standard library's signal handling, so the gap before it
takes over is Python's own start-up.
"""
from __future__ import annotations

import os
import signal
import sys

# pipeline.cli says and returns the same once it has taken over (it imports these)
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
INTERRUPTED = ("已中断：命令未完成；已载入的文件保留，未载完的文件已回滚，请重新运行 / interrupted: the "
               "command did not finish; files already loaded are kept, a load not finished was rolled "
               "back; run it again")


def entry() -> None:
    signalled: list[int] = []

    def stop(signum, frame):
        signalled.append(signum)
        raise KeyboardInterrupt()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    try:
        from .cli import entry as command
    except KeyboardInterrupt:
        sys.stderr.write(INTERRUPTED + "\n")
        sys.stderr.flush()
        os._exit(EXIT_TERMINATED if signal.SIGTERM in signalled else EXIT_INTERRUPTED)
    command()  # installs the command's own handlers first thing
