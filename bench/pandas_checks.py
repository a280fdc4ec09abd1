"""The core checks as a finance analyst would write them in pandas: the benchmark's comparison.

Without budget-recon, someone in the finance bureau would reconcile a year-to-date export with a
notebook like this one: `read_csv` the whole file, clean the columns, filter the budget book, join
the allocation table typed in from the notice, then groupby. It implements the same four core
rules as the SQL checks (CODE_MISMATCH, OVER_ALLOCATION, DIRECT_FLAG_MISSING, DUPLICATE_ENTRY)
with the same semantics, so bench/run.py compares like with like, and tests/test_bench_smoke.py
checks that both find the same vouchers.

It is deliberately ordinary pandas (vectorised, no per-row Python loops), not a strawman; money
is handled as integer cents (exact), not float.

Usage:
    python bench/pandas_checks.py LEDGER.csv [--encoding gb18030] [--as-of 2024-12-31] [--json out.json]
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate import FUND_NAME, NOTICE_NO, PROJECT_CODE  # noqa: E402  (the notice, typed in)

COLUMNS = {  # cn-grp header -> the names used below
    "凭证号": "voucher_no", "分录号": "line_no", "凭证日期": "posted_on", "会计体系": "book",
    "科目编码": "account_code", "科目名称": "account_name", "摘要": "summary", "借方金额": "debit",
    "贷方金额": "credit", "功能分类": "function_code", "经济分类": "economic_code",
    "项目代码": "project_code", "项目名称": "purpose", "资金来源": "fund_source",
    "直达资金标识": "direct_flag", "指标文号": "budget_doc_no", "收款人": "payee",
}
# The allocation table of 克区财综〔2024〕2号, typed in from the notice (amounts in cents).
ALLOCATION = pd.DataFrame({
    "allocated_purpose": ["2024年租赁补贴（中央直达）", "2024年保障性租赁住房（中央直达）",
                          "2024年老旧小区改造（中央直达）", "2024年危旧房改造（中央直达）"],
    "allocated_code": ["2210107", "2210110", "2210108", "2210103"],
    "allocated_cents": [17280000, 103720000, 6111000000, 44000000],
    "is_direct": [True, True, True, True],
})
ITEM_CODES_2024 = {"2210101", "2210102", "2210103", "2210104", "2210105", "2210106", "2210107",
                   "2210108", "2210109", "2210110", "2210199"}
# the direct flag's first word -> 01 中央直达资金 / 02 中央参照直达资金 / 09 其他 (the SQL's
# direct_flag with direct_flag_referenced: 02, money managed like direct funds, is not 01)
FLAG_CODES = {
    "01": {"是", "y", "yes", "1", "01", "true", "t", "直达", "中央直达资金"},
    "02": {"2", "02", "中央参照直达资金", "参照直达", "参照直达资金"},
    "09": {"否", "n", "no", "0", "09", "false", "f", "其他", "非直达"},
}
LOCAL_SOURCES = {"地方配套资金", "本级财力", "地方对应安排资金"}

_FULL = "０１２３４５６７８９（）［］【】〔〕﹝﹞｛｝〈〉《》，．：－[]"
_HALF = "0123456789()()()()(){}()(),.:-()"
_KEY = str.maketrans(_FULL, _HALF)


def key(s: pd.Series) -> pd.Series:
    """Purpose names compared with brackets, width, spaces and case normalised."""
    return s.str.translate(_KEY).str.replace(r"[\s\u3000\u00a0]+", "", regex=True).str.lower()


def cents(s: pd.Series) -> pd.Series:
    """'1,234.56' -> 123456; blank -> 0 (the export leaves zero amounts blank)."""
    num = pd.to_numeric(s.str.replace(",", "", regex=False).str.strip(), errors="coerce").fillna(0)
    return (num * 100).round().astype("int64")


def read_ledger(path: Path, encoding: str) -> pd.DataFrame:
    df = pd.read_csv(path, encoding=encoding, dtype=str, keep_default_na=False)
    return df.rename(columns=COLUMNS)


def expenditure(df: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    """Budget-book 7xxx lines tied to the notice, as of the date, matched to allocation lines.

    Filter first, clean what is left (what a sensible analyst does: the budget book is a
    fraction of the export).
    """
    df = df.assign(row_no=range(1, len(df) + 1))
    exp = df[(df["book"].str.strip() == "预算会计") & df["account_code"].str.strip().str.startswith("7")].copy()
    exp["posted_on"] = pd.to_datetime(exp["posted_on"], format="%Y-%m-%d", errors="coerce")
    exp["doc_key"] = (exp["budget_doc_no"].str.replace(r"\s+", "", regex=True)
                      .str.replace(r"[﹝〔\[［(（【](\d{4})[﹞〕\]］)）】]", r"〔\1〕", regex=True))
    exp = exp[(exp["posted_on"].isna() | (exp["posted_on"] <= pd.Timestamp(as_of)))
              & ((exp["project_code"].str.strip() == PROJECT_CODE) | (exp["doc_key"] == NOTICE_NO))].copy()
    exp["debit_c"], exp["credit_c"] = cents(exp["debit"]), cents(exp["credit"])
    exp["amount_c"] = exp["debit_c"] - exp["credit_c"]
    exp["line_len"] = exp["line_no"].str.len()
    exp["voucher_len"] = exp["voucher_no"].str.len()  # 记-9 before 记-10
    exp["code"] = exp["function_code"].str.extract(r"(\d+)", expand=False)
    flag = exp["direct_flag"].str.strip().str.split(" ").str[0].str.lower()
    exp["flag"] = flag.map({v: code for code, spellings in FLAG_CODES.items() for v in spellings})
    exp["purpose_key"] = key(exp["purpose"])
    alloc = ALLOCATION.assign(purpose_key=key(ALLOCATION["allocated_purpose"]))
    exp = exp.merge(alloc, on="purpose_key", how="left")
    exp["match_kind"] = "unmatched"
    exp.loc[exp["allocated_purpose"].notna(), "match_kind"] = "line"
    exp.loc[exp["purpose_key"] == key(pd.Series([FUND_NAME])).iloc[0], "match_kind"] = "pooled"
    return exp


ORDER = ["posted_on", "voucher_len", "voucher_no", "line_len", "line_no", "row_no"]  # date, voucher, line, row
# what makes a reversal the mirror of a payment (as fct_reversed_lines): sub-account, payee,
# code, flag, project code and fund source, with the amount
MIRROR = ["purpose_key", "payee", "code", "flag", "project_code", "fund_source"]


def _unreversed(d: pd.DataFrame, keys: list[str], both_ways: bool) -> pd.DataFrame:
    """Drop payments netted out by reversals of the same amount under the same keys.

    Within each group of equal keys and absolute amount, payments and reversals are laid end to
    end (by date, a day's payments before its reversals, then voucher and line), and each
    reversal cancels the latest payment still pending before it. `pending` counts those: a
    payment survives unless the count later falls below its own; with both_ways, a reversal with
    no payment pending (the count at a new low) is reported too.
    """
    d = d.assign(abs_c=d["amount_c"].abs(), sign=(d["amount_c"] > 0).astype("int8"),
                 reversal=d["amount_c"] < 0)
    d = d.sort_values([ORDER[0], "reversal", *ORDER[1:]], kind="stable")
    grp = keys + ["abs_c"]
    d["pending"] = (2 * d["sign"] - 1).groupby([d[k] for k in grp], dropna=False).cumsum()
    before = d.assign(low=d.groupby(grp, dropna=False)["pending"].cummin())
    d["pending_before"] = before.groupby(grp, dropna=False)["low"].shift(1)
    after = d.iloc[::-1]
    after = after.assign(low=after.groupby(grp, dropna=False)["pending"].cummin())
    d["pending_later"] = after.groupby(grp, dropna=False)["low"].shift(1)
    keep = (d["sign"] == 1) & ~(d["pending_later"] < d["pending"])
    if both_ways:
        keep |= ((d["sign"] == 0) & (d["pending"] < 0)
                 & ~(d["pending_before"] <= d["pending"]))
    return d[keep]


def code_mismatch(exp: pd.DataFrame) -> pd.DataFrame:
    """Clause 三: a purpose's spending is booked to the item code allocated to it.

    A wrong code whose lines under the allocation line net to zero is corrected (a batch taken
    off by one red line, or line by line): none of its lines is reported. On a code with
    something left, the lines no mirror reversal cancels are."""
    d = exp[(exp["match_kind"] == "line") & exp["code"].str.len().eq(7)
            & exp["code"].isin(ITEM_CODES_2024) & (exp["code"] != exp["allocated_code"])
            & (exp["amount_c"] != 0)]
    net = d.groupby(["allocated_purpose", "code"])["amount_c"].transform("sum")
    d = _unreversed(d[net != 0], ["purpose_key", "payee", "code"], both_ways=True)
    return d.assign(rule_id="CODE_MISMATCH")


def over_allocation(exp: pd.DataFrame) -> pd.DataFrame:
    """One per purpose over its allocation: the line after which the running total stayed above it."""
    m = exp[exp["match_kind"] == "line"].sort_values(["allocated_purpose"] + ORDER, kind="stable")
    g = m.groupby("allocated_purpose")
    m = m.assign(ord=g.cumcount() + 1, cum=g["amount_c"].cumsum())
    m["within"] = m["ord"].where(m["cum"] <= m["allocated_cents"], 0)
    per = m.groupby("allocated_purpose").agg(spent=("amount_c", "sum"), last_within=("within", "max"),
                                             allocated=("allocated_cents", "max"))
    per = per[per["spent"] > per["allocated"]]
    m = m.join(per[["last_within"]], on="allocated_purpose", how="inner")
    return m[m["ord"] == m["last_within"] + 1].assign(rule_id="OVER_ALLOCATION")


def direct_flag_missing(exp: pd.DataFrame) -> pd.DataFrame:
    """Clauses 一/二: spending of a 中央直达 line carries the flag 01, unchanged, and the project code.

    The lines of a purpose with one flag and project code as booked that net to zero are
    corrected (a batch taken off by one red line, or line by line): none of them is reported. Of
    the others, the payments no mirror reversal cancels are."""
    src = exp["fund_source"].fillna("")
    local = src.str.contains("地方|配套|本级|自有") & ~src.str.contains("中央") & exp["fund_source"].ne("")
    d = exp[(exp["match_kind"] == "line") & exp["is_direct"].eq(True) & ~local
            & (exp["amount_c"] != 0)
            & (exp["flag"].ne("01") | exp["project_code"].str.strip().ne(PROJECT_CODE))]
    net = d.groupby(["allocated_purpose", "flag", "project_code"], dropna=False)["amount_c"].transform("sum")
    d = _unreversed(d[net != 0], ["purpose_key", "payee", "flag", "project_code"], both_ways=False)
    return d.assign(rule_id="DIRECT_FLAG_MISSING")


LINE_KEY = ["voucher_no", "line_no", "book", "account_code", "debit_c", "credit_c"]  # one voucher line


# a copy of a line: equal in every column a rule reads, not only in DUPLICATE_ENTRY's (two
# households paid on one voucher line number in two units' ledgers are both spent)
COPY_KEY = [*LINE_KEY, "posted_on", "payee", "purpose_key", "function_code", "project_code", "summary"]


def without_copies(exp: pd.DataFrame) -> pd.DataFrame:
    """The expenditure with each voucher line once: a line exported twice is spent once (the SQL
    checks' fct_line_copies, on the same columns); duplicate_entry reports the copies."""
    exp = exp.sort_values("row_no", kind="stable")
    return exp[~exp.duplicated(COPY_KEY, keep="first")]


def duplicate_entry(exp: pd.DataFrame) -> pd.DataFrame:
    """The same line twice, or the same payee, amount, date and purpose in two vouchers."""
    exp = exp.sort_values("row_no", kind="stable")
    first = ~exp.duplicated(LINE_KEY, keep="first")
    same_line = exp[~first]
    # payments a mirror reversal cancels are not compared (a reversed and re-booked payment)
    standing = _unreversed(exp[exp["amount_c"] != 0], MIRROR, both_ways=False)
    pay = standing[first.loc[standing.index] & standing["payee"].str.strip().ne("")]
    pay_key = ["purpose_key", "payee", "posted_on", "amount_c"]
    pay = (pay.groupby(pay_key + ["voucher_len", "voucher_no"], dropna=False, as_index=False)
           .agg(line_no=("line_no", "min"))
           .sort_values(pay_key + ["voucher_len", "voucher_no"], kind="stable"))
    pay["nth"] = pay.groupby(pay_key, dropna=False).cumcount() + 1
    copies = pay[pay["nth"] > 1]
    return pd.concat([same_line, copies]).assign(rule_id="DUPLICATE_ENTRY")


def run_checks(path: Path, encoding: str = "gb18030", as_of: dt.date = dt.date(2024, 12, 31)) -> dict:
    t0 = time.perf_counter()
    df = read_ledger(path, encoding)
    t_read = time.perf_counter() - t0
    exp = expenditure(df, as_of)
    once = without_copies(exp)
    found = pd.concat([code_mismatch(once), over_allocation(once), direct_flag_missing(once),
                       duplicate_entry(exp)])
    t_all = time.perf_counter() - t0
    return {
        "rows": int(len(df)),
        "expenditure_rows": int(len(exp)),
        "counts": {k: int(v) for k, v in found["rule_id"].value_counts().sort_index().items()},
        "findings": sorted(zip(found["rule_id"], found["voucher_no"], found["line_no"])),
        "seconds": {"read": round(t_read, 3), "total": round(t_all, 3)},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pandas implementation of the core checks")
    ap.add_argument("ledger", type=Path)
    ap.add_argument("--encoding", default="gb18030")
    ap.add_argument("--as-of", default="2024-12-31")
    ap.add_argument("--json", type=Path, help="write counts and timings here")
    args = ap.parse_args(argv)
    result = run_checks(args.ledger, args.encoding, dt.date.fromisoformat(args.as_of))
    summary = {k: v for k, v in result.items() if k != "findings"}
    print(json.dumps(summary, ensure_ascii=False))
    if args.json:
        args.json.write_text(json.dumps(result, ensure_ascii=False, default=list), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
