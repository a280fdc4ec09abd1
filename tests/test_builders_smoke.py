"""The test builders produce a store the fact views read as intended."""
from decimal import Decimal

from builders import RENT, add_ledger, new_store, seed_notice, set_context


def test_fct_expenditure__nets_reversal_and_ignores_financial_book(tmp_path):
    con = new_store(tmp_path)
    seed_notice(con)
    add_ledger(con, [
        dict(voucher_no="记-1", debit=480),
        dict(voucher_no="记-1", line_no="2", book="financial", account_code="5001", debit=480),
        dict(voucher_no="记-2", credit=100),
    ])
    set_context(con)
    rows = con.execute("select purpose, spent from rpt_allocation_summary where purpose = ?",
                       [RENT]).fetchall()
    assert rows == [(RENT, Decimal("380.00"))]
