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
FLAG_TRUE = {"是", "y", "yes", "1", "01", "true", "t", "直达", "中央直达资金", "02"}
FLAG_FALSE = {"否", "n", "no", "0", "09", "false", "f", "其他", "非直达"}
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
    exp = df[(df["book"].str.strip() == "预算会计") & df["account_code"].str.strip().str.startswith("7")].copy()
    exp["posted_on"] = pd.to_datetime(exp["posted_on"], format="%Y-%m-%d", errors="coerce")
    exp["doc_key"] = (exp["budget_doc_no"].str.replace(r"\s+", "", regex=True)
                      .str.replace(r"[﹝〔\[［(（【](\d{4})[﹞〕\]］)）】]", r"〔\1〕", regex=True))
    exp = exp[(exp["posted_on"].isna() | (exp["posted_on"] <= pd.Timestamp(as_of)))
              & ((exp["project_code"].str.strip() == PROJECT_CODE) | (exp["doc_key"] == NOTICE_NO))].copy()
    exp["amount_c"] = cents(exp["debit"]) - cents(exp["credit"])
    exp["code"] = exp["function_code"].str.extract(r"(\d+)", expand=False)
    flag = exp["direct_flag"].str.strip().str.split(" ").str[0].str.lower()
    exp["flag"] = flag.map({**{v: True for v in FLAG_TRUE}, **{v: False for v in FLAG_FALSE}})
    exp["purpose_key"] = key(exp["purpose"])
    alloc = ALLOCATION.assign(purpose_key=key(ALLOCATION["allocated_purpose"]))
    exp = exp.merge(alloc, on="purpose_key", how="left")
    exp["match_kind"] = "unmatched"
    exp.loc[exp["allocated_purpose"].notna(), "match_kind"] = "line"
    exp.loc[exp["purpose_key"] == key(pd.Series([FUND_NAME])).iloc[0], "match_kind"] = "pooled"
    return exp


def code_mismatch(exp: pd.DataFrame) -> pd.DataFrame:
    m = exp[(exp["match_kind"] == "line") & exp["code"].str.len().eq(7)
            & exp["code"].isin(ITEM_CODES_2024) & (exp["code"] != exp["allocated_code"])]
    return m.assign(rule_id="CODE_MISMATCH")


def over_allocation(exp: pd.DataFrame) -> pd.DataFrame:
    m = exp[exp["match_kind"] == "line"].sort_values(
        ["allocated_purpose", "posted_on", "voucher_no", "line_no"], na_position="last")
    m = m.assign(cum=m.groupby("allocated_purpose")["amount_c"].cumsum())
    over = m[m["cum"] > m["allocated_cents"]]
    first = over.groupby("allocated_purpose", as_index=False).head(1)
    return first.assign(rule_id="OVER_ALLOCATION")


def direct_flag_missing(exp: pd.DataFrame) -> pd.DataFrame:
    m = exp[(exp["match_kind"] == "line") & exp["is_direct"].eq(True)
            & ~exp["fund_source"].isin(LOCAL_SOURCES)
            & (exp["flag"].ne(True) | exp["project_code"].str.strip().eq(""))]
    return m.assign(rule_id="DIRECT_FLAG_MISSING")


def duplicate_entry(exp: pd.DataFrame) -> pd.DataFrame:
    same_line = exp[exp.duplicated(["voucher_no", "line_no"], keep="first")]
    groups = exp.groupby(["payee", "amount_c", "posted_on", "purpose_key"], dropna=False)["voucher_no"]
    n_vouchers = groups.transform("nunique")
    first_voucher = groups.transform("min")
    twice = exp[(n_vouchers > 1) & (exp["voucher_no"] != first_voucher) & exp["payee"].ne("")]
    return pd.concat([same_line, twice]).drop_duplicates(["voucher_no", "line_no"]).assign(
        rule_id="DUPLICATE_ENTRY")


def run_checks(path: Path, encoding: str = "gb18030", as_of: dt.date = dt.date(2024, 12, 31)) -> dict:
    t0 = time.perf_counter()
    df = read_ledger(path, encoding)
    t_read = time.perf_counter() - t0
    exp = expenditure(df, as_of)
    found = pd.concat([code_mismatch(exp), over_allocation(exp), direct_flag_missing(exp),
                       duplicate_entry(exp)])
    t_all = time.perf_counter() - t0
    return {
        "rows": int(len(df)),
        "expenditure_rows": int(len(exp)),
        "counts": {k: int(v) for k, v in found["rule_id"].value_counts().sort_index().items()},
        "findings": sorted({(r, v) for r, v in zip(found["rule_id"], found["voucher_no"])}),
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
