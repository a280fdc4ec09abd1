"""Helpers every report format shares: safe text for spreadsheets, number formatting."""
from __future__ import annotations

from decimal import Decimal

# A cell that starts with one of these is read as a formula by Excel / LibreOffice (CSV included).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value):
    """Neutralise formula injection: text that a spreadsheet would evaluate gets a leading '."""
    if isinstance(value, str) and value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def money(value) -> str:
    """Amount in 元 with two decimals, as text (exact: never through float)."""
    if value is None:
        return ""
    return f"{Decimal(value):.2f}"
