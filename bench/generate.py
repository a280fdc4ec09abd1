"""Generate realistic cn-grp year-to-date ledger exports for the seed notice, fast.

A benchmark needs ledgers of 1M-10M lines that look like what a unit's accounting software
exports (账簿导出) for 克区财综〔2024〕2号: both books (budget 7201 / 8001 and the financial
5001 or 1613 / 1011 parallel lines of each payment), codes with their names attached, amounts
with thousands separators, GB18030 text. Mostly clean; a small, bounded share of planted faults;
about 40% of vouchers out of scope (other projects and funds).

Everything is one DuckDB query over `range()` (no Python per row), written with `COPY ... TO`;
values are derived from `hash(voucher, seed, salt)`, so a given (lines, seed) always yields the
same file. GB18030 is produced by transcoding the UTF-8 file with iconv (or Python in chunks when
iconv is missing), because DuckDB writes UTF-8 only.

Shape of one voucher (4 lines, 分录号 1-4), amounts equal:
    1  预算会计  7201 事业支出        debit   function / economic code, payee
    2  预算会计  8001 资金结存        credit
    3  财务会计  5001 业务活动费用 or 1613 在建工程   debit   function / economic code, payee
    4  财务会计  1011 零余额账户用款额度  credit
A reversal (红字冲销, 0.5% of in-scope vouchers) swaps debit and credit.

Planted faults, by share of in-scope vouchers (a voucher copied as a duplicate keeps its
source's faults):
    0.10% CODE_MISMATCH        another purpose's item code
    0.10% CODE_NOT_ITEM_LEVEL  22101
    0.10% COMMINGLED_ACCOUNT   the pooled fund account as purpose
    0.10% DIRECT_FLAG_MISSING  blank direct flag
    0.10% OUT_OF_PERIOD        dated December 2023
    0.10% SOURCE_NOT_SEPARATED blank fund source
    0.05% UNMATCHED_EXPENDITURE  a purpose the notice does not allocate
    0.05% CODE_UNKNOWN         2210119 (not in the 2024 classification)
and, of all vouchers, 0.10% exported twice (same voucher number and lines) and 0.10% copied
into a second voucher (same payee, amount, date and purpose): DUPLICATE_ENTRY.
About 0.6% of rent payments say they pay more months than their own (补发2-3月租赁补贴: back pay of
the month before; 第一季度租赁补贴 in a quarter's last month), within the standard for those months
and never in a voucher the next one copies: no finding changes, and SUBSIDY_CAP_EXCEEDED and the
indicators read and place their months (fct_months_placed) as they would a real ledger's.

Usage:
    python bench/generate.py --lines 1e6 --out bench/data/ledger_1m.csv [--encoding gb18030|utf-8|utf-8-sig]
"""
from __future__ import annotations

import argparse
import codecs
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

# The seed notice (../shared/seed/000_a45419bc3fccfd31.txt) as this generator sees it.
NOTICE_NO = "克区财综〔2024〕2号"
PROJECT_CODE = "10000013Z135080000028"
FUND_NAME = "2024年中央财政城镇保障性安居工程补助资金"
PURPOSES = [  # purpose, function code with name, economic code, financial-book account
    ("2024年租赁补贴（中央直达）", "2210107", "保障性住房租金补贴", "30305 生活补助", "5001 业务活动费用"),
    ("2024年保障性租赁住房（中央直达）", "2210110", "保障性租赁住房", "31001 房屋建筑物购建", "1613 在建工程"),
    ("2024年老旧小区改造（中央直达）", "2210108", "老旧小区改造", "31005 基础设施建设", "1613 在建工程"),
    ("2024年危旧房改造（中央直达）", "2210103", "棚户区改造", "31006 大型修缮", "1613 在建工程"),
]
ALLOCATED = {  # 元, for reference (bench/pandas_checks.py reads the notice from here)
    "2024年租赁补贴（中央直达）": 17280000,  # cents
    "2024年保障性租赁住房（中央直达）": 103720000,
    "2024年老旧小区改造（中央直达）": 6111000000,
    "2024年危旧房改造（中央直达）": 44000000,
}

HEADER = ["凭证号", "分录号", "凭证日期", "会计体系", "科目编码", "科目名称", "摘要", "借方金额", "贷方金额",
          "功能分类", "经济分类", "项目代码", "项目名称", "资金来源", "直达资金标识", "指标文号", "收款人"]

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟",
         "涛", "明", "超", "秀兰", "霞", "平", "刚", "桂英", "建华", "玉兰", "阿依古丽", "买买提", "古丽娜", "热合曼", "努尔"]
CONTRACTORS = [f"克拉玛依市{a}{b}有限公司" for a in ("宏达", "天山", "金盾", "瑞丰", "华建", "昆仑", "油城", "博达")
               for b in ("建筑工程", "建设集团", "市政工程", "装饰工程", "安装工程")]


def _sql_list(values: list[str]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


def ledger_query(lines: int, seed: int) -> str:
    """The SELECT that yields `lines` ledger lines, ordered by voucher and line.

    lines and seed are integers (validated by the caller); every other value is a constant of
    this module, so building the text here carries no user input into SQL.
    """
    lines = int(lines)
    seed = int(seed)
    vouchers = (lines + 3) // 4
    p = PURPOSES
    return f"""
with base as (
    select
        i,
        i // 4 as v,
        (i % 4)::integer as k,
        (hash(i // 4, {seed}, 11) % 10000)::integer as dup_bucket
    from range({lines}) as t(i)
),
src as (
    -- a duplicated voucher takes all its content from the voucher before it
    select
        *,
        case when dup_bucket < 20 and v > 0 then v - 1 else v end as sv
    from base
),
attrs as (
    select
        *,
        hash(sv, {seed}, 1) % 10000 >= 4000 as in_scope,
        (hash(sv, {seed}, 2) % 100)::integer as pick,
        (hash(sv, {seed}, 3) % 10000)::integer as fault,
        hash(sv, {seed}, 4) % 1000 < 5 as reversal,
        hash(sv + 1, {seed}, 11) % 10000 < 20 as copied,  -- the next voucher takes its content
        (hash(sv, {seed}, 5) >> 2)::bigint as r,
        (hash(sv, {seed}, 6) >> 2)::bigint as r2,
        date '2024-01-01' + least(365, (sv * 366) // {vouchers})::integer as day
    from src
),
kinds as (
    select
        *,
        case
            when in_scope and pick < 10 then 0     -- rent subsidies
            when in_scope and pick < 25 then 1     -- rental housing
            when in_scope and pick < 90 then 2     -- old estates
            when in_scope then 3                   -- dilapidated housing
            when pick < 60 then 4                  -- office running costs (own revenue)
            when pick < 85 then 5                  -- another central direct project
            else 6                                 -- local matching money for housing
        end as kind,
        in_scope and not reversal as faultable
    from attrs
),
valued as (
    select
        *,
        case kind
            when 0 then case when r % 10 < 8 then 48000 else 30000 + (r % 19) * 1000 end
            when 1 then 1000000 + r % 19000000
            when 2 then 500000 + r % 29500000
            when 3 then 2000000 + r % 13000000
            when 4 then 5000 + r % 1995000
            when 5 then 1000000 + r % 9000000
            else 500000 + r % 19500000
        end as cents,
        case when faultable and fault between 40 and 49
             then date '2023-12-31' - (r2 % 7)::integer else day end as posted_on,
        case when kind < 4 then kind else 0 end as pidx
    from kinds
),
fields as (
    select
        *,
        '记-' || strftime(posted_on, '%m') || '-'
            || lpad((case when dup_bucket between 10 and 19 then v else sv end)::varchar, 8, '0') as voucher_no,
        case kind
            when 4 then '650203241000000001234'
            when 5 then '10000013Z135080000031'
            when 6 then '650203242000000005678'
            else '{PROJECT_CODE}'
        end as project_code,
        case
            when kind = 4 then '2024年机关运行经费'
            when kind = 5 then '2024年农村危房改造（中央直达）'
            when kind = 6 then '2024年老旧小区改造（地方配套）'
            when faultable and fault between 20 and 29 then '{FUND_NAME}'
            when faultable and fault between 80 and 84 then '2024年公共租赁住房（中央直达）'
            else replace(replace(
                    {_sql_list([x[0] for x in p])}[pidx + 1],
                    -- 5% half-width brackets, 2% a stray space: what hand-kept sub-accounts look like
                    '（', case when r2 % 100 < 5 then '(' else '（' end),
                    '）', case when r2 % 100 < 5 then ')' else '）' end)
        end as purpose0,
        case
            when kind = 4 then '2120101 行政运行'
            when kind = 5 then '2210105 农村危房改造'
            when kind = 6 then '2210108 老旧小区改造'
            when faultable and fault between 0 and 9 then
                {_sql_list([x[1] + " " + x[2] for x in p])}[(pidx + 1) % 4 + 1]
            when faultable and fault between 10 and 19 then '22101 保障性安居工程支出'
            when faultable and fault between 80 and 84 then '2210106 公共租赁住房'
            when faultable and fault between 85 and 89 then '2210119 保障性安居工程'
            when r2 % 10 = 0 then '[' || {_sql_list([x[1] for x in p])}[pidx + 1] || ']'
                                 || {_sql_list([x[2] for x in p])}[pidx + 1]
            else {_sql_list([x[1] + " " + x[2] for x in p])}[pidx + 1]
        end as function_code,
        case
            when kind = 4 then case when r2 % 2 = 0 then '30201 办公费' else '30211 差旅费' end
            when kind = 5 then '31006 大型修缮'
            when kind = 6 then '31005 基础设施建设'
            else {_sql_list([x[3] for x in p])}[pidx + 1]
        end as economic_code,
        case
            when kind = 4 then '5001 业务活动费用'
            when kind < 4 then {_sql_list([x[4] for x in p])}[pidx + 1]
            else '1613 在建工程'
        end as financial_account,
        case
            when kind = 4 then '本级财力'
            when kind = 6 then '地方配套资金'
            when faultable and fault between 70 and 79 then null
            else '中央直达资金'
        end as fund_source,
        case
            when kind in (4, 6) then case when r2 % 3 = 0 then '否' else '09 其他' end
            when faultable and fault between 30 and 39 then null
            when r2 % 20 < 16 then '01 中央直达资金'
            when r2 % 20 < 18 then '是'
            when r2 % 20 < 19 then 'Y'
            else '1'
        end as direct_flag,
        case
            when kind = 4 then '克区财行〔2024〕1号'
            when kind = 5 then '克区财综〔2024〕9号'
            when kind = 6 then '克区财建〔2024〕3号'
            when r2 % 50 = 7 then '克区财综[2024]2号'
            when r2 % 50 = 8 then null
            else '{NOTICE_NO}'
        end as budget_doc_no,
        case
            when kind = 0 then {_sql_list(list(SURNAMES))}[r % {len(SURNAMES)} + 1]
                               || {_sql_list(GIVEN)}[r2 % {len(GIVEN)} + 1]
                               || '-' || lpad(sv::varchar, 8, '0')
            when kind = 4 then case when r % 3 = 0 then '克拉玛依市办公用品商行' else '克拉玛依区住建局职工' end
            else {_sql_list(CONTRACTORS)}[r % {len(CONTRACTORS)} + 1]
        end as payee,
        (case when reversal then '冲销：' else '' end) || case kind
            -- 1% of rent payments say they pay more than their month: back pay of the month before
            -- (补发2-3月, 2 months) or the quarter that ends in the month (第一季度); none of a
            -- voucher the next one copies, so every payee-month stays as before
            when 0 then case
                when not reversal and not copied and r2 % 200 = 1 and month(day) > 1
                    then '补发' || (month(day) - 1)::varchar || '-' || month(day)::varchar || '月租赁补贴'
                when not reversal and not copied and r2 % 200 = 2 and month(day) % 3 = 0
                    then '第' || {_sql_list(['一', '二', '三', '四'])}[month(day) // 3] || '季度租赁补贴'
                else '发放' || month(day)::varchar || '月租赁补贴' end
            when 1 then '支付保障性租赁住房筹集款'
            when 2 then '支付老旧小区改造工程进度款'
            when 3 then '支付危旧房改造工程款'
            when 4 then '报销办公经费'
            when 5 then '支付农村危房改造补助'
            else '支付老旧小区改造配套工程款'
        end as summary
    from valued
),
money as (
    select
        *,
        format('{{:,.2f}}', cents::decimal(18, 0) / 100) as amount_text,
        -- debit on lines 1 and 3, credit on 2 and 4; a reversal swaps them
        (k % 2 = 0) <> reversal as on_debit,
        case when purpose0 like '%（中央直达）' and r2 % 100 between 5 and 6
             then replace(purpose0, '年', '年 ') else purpose0 end as purpose
    from fields
)
select
    voucher_no as "凭证号",
    (k + 1)::varchar as "分录号",
    strftime(posted_on, '%Y-%m-%d') as "凭证日期",
    case when k < 2 then '预算会计' else '财务会计' end as "会计体系",
    case k when 0 then '7201' when 1 then '8001' when 2 then split_part(financial_account, ' ', 1) else '1011' end
        as "科目编码",
    case k when 0 then '事业支出' when 1 then '资金结存' when 2 then split_part(financial_account, ' ', 2)
        else '零余额账户用款额度' end as "科目名称",
    summary as "摘要",
    case when on_debit then amount_text end as "借方金额",
    case when not on_debit then amount_text end as "贷方金额",
    case when k in (0, 2) then function_code end as "功能分类",
    case when k in (0, 2) then economic_code end as "经济分类",
    project_code as "项目代码",
    purpose as "项目名称",
    fund_source as "资金来源",
    direct_flag as "直达资金标识",
    budget_doc_no as "指标文号",
    case when k in (0, 2) then payee end as "收款人"
from money
"""


def transcode(src: Path, dst: Path, encoding: str) -> None:
    """UTF-8 file -> encoding, streaming (iconv when present: ~10x faster than Python)."""
    if encoding == "utf-8-sig":
        with open(dst, "wb") as out, open(src, "rb") as inp:
            out.write(codecs.BOM_UTF8)
            shutil.copyfileobj(inp, out, 16 << 20)
        return
    iconv = shutil.which("iconv")
    if iconv:
        with open(dst, "wb") as out:
            subprocess.run([iconv, "-f", "UTF-8", "-t", encoding.upper(), str(src)], stdout=out, check=True)
        return
    dec = codecs.getincrementaldecoder("utf-8")()
    with open(src, "rb") as inp, open(dst, "w", encoding=encoding, newline="") as out:
        while chunk := inp.read(16 << 20):
            out.write(dec.decode(chunk))
        out.write(dec.decode(b"", final=True))


def generate(lines: int, out: Path, encoding: str = "gb18030", seed: int = 2024,
             threads: int | None = None) -> Path:
    """Write a cn-grp export of `lines` lines to `out` in `encoding`; returns out."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    utf8 = out if encoding == "utf-8" else out.with_name(out.name + ".utf8.tmp")
    con = duckdb.connect()
    try:
        if threads:
            con.execute(f"set threads = {int(threads)}")
        con.execute("set preserve_insertion_order = true")
        # COPY takes no parameters for its target; the path is ours (not user data), quoted.
        target = str(utf8).replace("'", "''")
        con.execute(f"copy ({ledger_query(lines, seed)}) to '{target}' (header, delimiter ',', quote '\"')")
    finally:
        con.close()
    if utf8 != out:
        try:
            transcode(utf8, out, encoding)
        finally:
            utf8.unlink(missing_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=float, required=True, help="number of ledger lines, e.g. 1e6")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--encoding", default="gb18030", choices=["gb18030", "utf-8", "utf-8-sig"],
                    help="file encoding [default: gb18030, what Excel on Chinese Windows saves]")
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    path = generate(int(args.lines), args.out, args.encoding, args.seed)
    size = os.path.getsize(path)
    print(f"{path}: {int(args.lines):,} lines, {size / 2**20:,.1f} MiB, {args.encoding}, "
          f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
