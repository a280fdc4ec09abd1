"""Allocation notices (分配下达通知). Placeholder until the parser lands."""
from __future__ import annotations


def load_notices(con, paths):
    return []
