"""Ledger exports (账簿导出). Placeholder until the loader lands."""
from __future__ import annotations


def load_ledgers(con, paths, preset=None, encoding=None):
    return []
