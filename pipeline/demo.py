"""The shipped demo ledger: a realistic year-to-date cn-grp export for the seed notice.

`python -m pipeline.demo` rebuilds `inputs/ledgers/ledger_2024_ytd_20241130.csv` byte for byte:
what the housing bureau's (区住建局) accounting software would export on 30 November 2024 for
克区财综〔2024〕2号 (project code 10000013Z135080000028), saved from Excel on Chinese Windows
(GB18030, CRLF, dates `2024/3/15`, amounts `1,234.56`, codes with their names attached).
Everything comes from `random.Random(seed)`, never from the clock, so a seed gives one file.

What is in it (政府会计制度 parallel bookkeeping: every payment in both books, one voucher)
    budget book     7201 事业支出 debit / 8001 资金结存 credit
    financial book  5001 业务活动费用 (subsidies, office costs) or 1613 在建工程 (works) debit /
                    1011 零余额账户用款额度 credit
    receipts        the four allocation lines received in March: 1011 debit, 4001 财政拨款收入
                    and 6001 财政拨款预算收入 credit (kept, never reconciled)
    租赁补贴        30 households a month, January to November, 300-480 元/户/月, purpose
                    `2024年租赁补贴（中央直达）`, function `2210107 保障性住房租金补贴`, economic
                    `30305 生活补助`, one batch voucher a month (one budget and one financial line
                    per household)
    works           progress payments to contractors for 老旧小区改造 (2210108), 保障性租赁住房
                    (2210110) and 危旧房改造 (2210103), economic 31005 / 31001, within each allocation
    reversal        a progress payment entered as 1,850,000.00 instead of 1,580,000.00, reversed in
                    red ink (negative debit and credit, 红字冲销) and re-entered correctly
    out of scope    office costs of the bureau's own budget (project 65020324R000000117, function
                    `2120101 行政运行`, 本级财力, direct flag `09 其他`, 克区财预〔2024〕1号)
    Fund source 中央直达资金, direct flag `01 中央直达资金`, 指标文号 `克区财综[2024]2号`.

Planted mistakes (what the rule checks must find in the shipped file)
    CODE_NOT_ITEM_LEVEL    老旧小区改造 progress payment of 2024-06 booked to `22101 保障性安居工程支出`
    COMMINGLED_ACCOUNT     保障性租赁住房 payment of 2024-09 under the pooled sub-account
                           `2024年中央财政城镇保障性安居工程补助资金`
    CODE_MISMATCH          危旧房改造 payment of 2024-10 booked to `2210108 老旧小区改造`
    DIRECT_FLAG_MISSING    one household's May rent subsidy with a blank direct flag
    DUPLICATE_ENTRY        one household's August rent subsidy paid again in a second voucher on
                           the same day (same payee, amount, date and purpose) ...
    SUBSIDY_CAP_EXCEEDED   ... so that household received 2 x 480 = 960 元 in August (> 480元/户/月)
Nothing is over its allocation, out of period or unmatched.

As a library (benchmarks, tests): `generate_ledger(path, seed=..., households=..., ...)` writes
the same kind of file at any size (`target_lines` picks the number of households), and
`ledger_rows(...)` yields the rows without writing them.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from .paths import ROOT

DEMO_SEED = 20241130
DEMO_FILE = ROOT / "inputs" / "ledgers" / "ledger_2024_ytd_20241130.csv"
HEADER = ["凭证号", "分录号", "凭证日期", "会计体系", "科目编码", "科目名称", "摘要", "借方金额", "贷方金额",
          "功能分类", "经济分类", "项目代码", "项目名称", "资金来源", "直达资金标识", "指标文号", "收款人"]

NOTICE_DOC = "克区财综[2024]2号"          # as the accounting system spells it (one bracket form)
PROJECT_CODE = "10000013Z135080000028"
POOLED = "2024年中央财政城镇保障性安居工程补助资金"
DIRECT = "01 中央直达资金"
CENTRAL = "中央直达资金"
RENT = "2024年租赁补贴（中央直达）"
RENTAL_HOUSING = "2024年保障性租赁住房（中央直达）"
OLD_ESTATES = "2024年老旧小区改造（中央直达）"
DILAPIDATED = "2024年危旧房改造（中央直达）"
FUNCTION = {
    RENT: "2210107 保障性住房租金补贴",
    RENTAL_HOUSING: "2210110 保障性租赁住房",
    OLD_ESTATES: "2210108 老旧小区改造",
    DILAPIDATED: "2210103 棚户区改造",
}
ALLOCATED = {
    RENT: Decimal("172800.00"), RENTAL_HOUSING: Decimal("1037200.00"),
    OLD_ESTATES: Decimal("61110000.00"), DILAPIDATED: Decimal("440000.00"),
}
BUDGET, FINANCIAL = "预算会计", "财务会计"
ACCOUNTS = {
    "7201": "事业支出", "8001": "资金结存", "6001": "财政拨款预算收入", "5001": "业务活动费用",
    "1613": "在建工程", "1011": "零余额账户用款额度", "4001": "财政拨款收入",
}

OFFICE_PROJECT = "65020324R000000117"
OFFICE_PURPOSE = "2024年部门公用经费"
OFFICE_DOC = "克区财预〔2024〕1号"
OFFICE_COSTS = [
    ("30201 办公费", "购买办公用品", ("克拉玛依市新华书店有限公司", "克拉玛依市鑫源办公用品商行")),
    ("30206 电费", "支付电费", ("国网新疆电力有限公司克拉玛依供电公司",)),
    ("30205 水费", "支付水费", ("克拉玛依市水务集团有限公司",)),
    ("30207 邮电费", "支付通讯费", ("中国电信股份有限公司克拉玛依分公司",)),
    ("30211 差旅费", "报销差旅费", None),
    ("30213 维修（护）费", "办公楼维修", ("克拉玛依市安泰物业服务有限公司",)),
]

SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = ("伟 芳 娜 秀英 敏 静 丽 强 磊 军 洋 勇 艳 杰 娟 涛 明 超 秀兰 霞 平 刚 桂英 玉兰 萍 "
         "建华 建国 春梅 海燕 志强 红梅 丽娟 文华 国庆 晓东 玉梅 凤英 淑珍 德明 振华 阿依古丽 "
         "买买提 古丽娜尔 热依汗 努尔兰 艾尔肯 帕提古丽 迪丽拜尔").split()

CONTRACTORS = {
    OLD_ESTATES: [
        ("新疆克拉玛依市城建工程有限公司", "昆仑路街道老旧小区改造（一期）"),
        ("克拉玛依市恒盛建筑安装有限责任公司", "银河路街道老旧小区改造"),
        ("新疆天山建工集团有限公司", "天山路街道老旧小区供热管网改造"),
        ("克拉玛依华宇市政工程有限公司", "胜利路街道老旧小区道路及雨污分流改造"),
    ],
    RENTAL_HOUSING: [("克拉玛依市安居房屋建设有限公司", "保障性租赁住房配套基础设施建设")],
    DILAPIDATED: [("克拉玛依市宏远建筑工程有限公司", "城市危旧房改造（南湖片区）")],
}


@dataclass
class _Voucher:
    no: str
    date: dt.date
    lines: list[dict]


def _money(amount: Decimal | None) -> str:
    return "" if amount is None or amount == 0 else f"{amount:,.2f}"


def _date_text(d: dt.date) -> str:
    return f"{d.year}/{d.month}/{d.day}"  # as Excel on Chinese Windows writes a date cell to CSV


def _workday(year: int, month: int, day: int) -> dt.date:
    d = dt.date(year, month, day)
    while d.weekday() >= 5:
        d += dt.timedelta(days=1)
    return d


def _names(rng: random.Random, n: int) -> list[str]:
    names: list[str] = []
    while len(names) < n:
        name = rng.choice(SURNAMES) + rng.choice(GIVEN)
        if len(name) < 3 and rng.random() < 0.5:
            name += rng.choice("华明军英兰芳玲")
        if name not in names:
            names.append(name)
    return names


def _payment(no: str, date: dt.date, purpose: str, payee: str, amount: Decimal, summary: str,
             economic: str, *, works: bool, function: str | None = None, direct: str = DIRECT,
             project: str = PROJECT_CODE, doc: str = NOTICE_DOC, source: str = CENTRAL,
             purpose_text: str | None = None) -> _Voucher:
    """One payment in both books: 7201 / 8001 and 5001 or 1613 / 1011."""
    common = dict(function=function or FUNCTION[purpose], project=project,
                  purpose=purpose_text or purpose, source=source, direct=direct, doc=doc)
    expense = "1613" if works else "5001"
    return _Voucher(no, date, [
        dict(book=BUDGET, account="7201", summary=summary, debit=amount, economic=economic,
             payee=payee, **common),
        dict(book=BUDGET, account="8001", summary=summary, credit=amount, economic=None, payee=None,
             **common),
        dict(book=FINANCIAL, account=expense, summary=summary, debit=amount, economic=economic,
             payee=payee, **common),
        dict(book=FINANCIAL, account="1011", summary=summary, credit=amount, economic=None,
             payee=None, **common),
    ])


def _rent_batch(no: str, date: dt.date, month: int, households: list[tuple[str, Decimal]],
                blank_flag_for: str | None) -> _Voucher:
    """The monthly rent subsidy batch: one budget and one financial line per household."""
    summary = f"发放2024年{month}月保障性住房租赁补贴"
    lines = []
    total = sum(a for _, a in households)
    common = dict(function=FUNCTION[RENT], project=PROJECT_CODE, purpose=RENT, source=CENTRAL,
                  doc=NOTICE_DOC)
    for payee, amount in households:
        direct = "" if payee == blank_flag_for else DIRECT
        lines.append(dict(book=BUDGET, account="7201", summary=summary, debit=amount,
                          economic="30305 生活补助", payee=payee, direct=direct, **common))
    lines.append(dict(book=BUDGET, account="8001", summary=summary, credit=total, economic=None,
                      payee=None, direct=DIRECT, **common))
    for payee, amount in households:
        lines.append(dict(book=FINANCIAL, account="5001", summary=summary, debit=amount,
                          economic="30305 生活补助", payee=payee, direct=DIRECT, **common))
    lines.append(dict(book=FINANCIAL, account="1011", summary=summary, credit=total, economic=None,
                      payee=None, direct=DIRECT, **common))
    return _Voucher(no, date, lines)


def _vouchers(seed: int, households: int, end: dt.date, faults: bool) -> list[_Voucher]:
    rng = random.Random(seed)
    dated: list[tuple[dt.date, int, str, object]] = []  # (date, order, kind, builder args)
    order = 0

    def add(date: dt.date, make) -> None:
        nonlocal order
        if date <= end:
            dated.append((date, order, make))
        order += 1

    # Receipts: the four allocation lines received on the zero-balance account in March.
    receipt_day = _workday(2024, 3, 8)
    for purpose, amount in ALLOCATED.items():
        def receipt(no, purpose=purpose, amount=amount):
            common = dict(function=FUNCTION[purpose], project=PROJECT_CODE, purpose=purpose,
                          source=CENTRAL, direct=DIRECT, doc=NOTICE_DOC, economic=None, payee=None)
            summary = f"收到{purpose}用款额度"
            return [dict(book=FINANCIAL, account="1011", summary=summary, debit=amount, **common),
                    dict(book=FINANCIAL, account="4001", summary=summary, credit=amount, **common),
                    dict(book=BUDGET, account="8001", summary=summary, debit=amount, **common),
                    dict(book=BUDGET, account="6001", summary=summary, credit=amount, **common)]
        add(receipt_day, receipt)

    # Rent subsidies: the same households every month, each with its own standard (<= 480).
    payees = _names(rng, households)
    standard = {p: Decimal(rng.choice((480, 480, 480, 450, 420, 400, 360, 300))) for p in payees}
    flag_missing = payees[rng.randrange(households)] if faults else None
    duplicate_payee = payees[rng.randrange(households)] if faults else None
    if duplicate_payee:
        standard[duplicate_payee] = Decimal("480")
    for month in range(1, 12):
        day = _workday(2024, month, rng.randint(10, 15))
        batch = [(p, standard[p]) for p in payees]
        missing = flag_missing if month == 5 else None
        add(day, lambda no, d=day, m=month, b=batch, f=missing: _rent_batch(no, d, m, b, f).lines)
        if duplicate_payee and month == 8:
            add(day, lambda no, d=day, p=duplicate_payee: _payment(
                no, d, RENT, p, standard[p], "补发2024年8月保障性住房租赁补贴", "30305 生活补助",
                works=False).lines)

    # Works: progress payments per contractor, within each allocation.
    plans = {
        OLD_ESTATES: [(3, "预付款", Decimal("0.30")), (6, "第一期进度款", Decimal("0.25")),
                      (8, "第二期进度款", Decimal("0.15")), (10, "第三期进度款", Decimal("0.10"))],
        RENTAL_HOUSING: [(4, "预付款", Decimal("0.30")), (7, "进度款", Decimal("0.30")),
                         (9, "进度款", Decimal("0.20"))],
        DILAPIDATED: [(5, "预付款", Decimal("0.40")), (10, "进度款", Decimal("0.35"))],
    }
    shares = {OLD_ESTATES: [Decimal("0.34"), Decimal("0.26"), Decimal("0.22"), Decimal("0.18")]}
    for purpose, steps in plans.items():
        contractors = CONTRACTORS[purpose]
        for ci, (contractor, works_name) in enumerate(contractors):
            contract = (ALLOCATED[purpose] * (shares[purpose][ci] if purpose in shares else 1)
                        * Decimal("0.97")).quantize(Decimal("1000"))
            for month, stage, share in steps:
                day = _workday(2024, month, rng.randint(16, 26))
                amount = (contract * share).quantize(Decimal("0.01"))
                amount -= Decimal(rng.randrange(0, 5000)) if amount > 100000 else 0
                summary = f"支付{works_name}{stage}"
                economic = "31005 基础设施建设" if purpose == OLD_ESTATES else "31001 房屋建筑物购建"
                kwargs = {}
                if faults and purpose == OLD_ESTATES and ci == 1 and month == 6:
                    kwargs["function"] = "22101 保障性安居工程支出"
                if faults and purpose == RENTAL_HOUSING and month == 9:
                    kwargs["purpose_text"] = POOLED
                if faults and purpose == DILAPIDATED and month == 10:
                    kwargs["function"] = FUNCTION[OLD_ESTATES]
                if purpose == OLD_ESTATES and ci == 2 and month == 8:
                    # entered as 1,850,000.00, reversed in red ink, re-entered as 1,580,000.00
                    wrong, right = Decimal("1850000.00"), Decimal("1580000.00")
                    add(day, lambda no, d=day, c=contractor, s=summary: _payment(
                        no, d, OLD_ESTATES, c, wrong, s, "31005 基础设施建设", works=True).lines)
                    fix_day = day + dt.timedelta(days=3 if day.weekday() < 2 else 5)
                    add(fix_day, lambda no, d=fix_day, c=contractor, s=summary: [
                        {**line, "summary": f"红字冲销：{s}（金额录入错误）",
                         "debit": -line["debit"] if line.get("debit") else None,
                         "credit": -line["credit"] if line.get("credit") else None}
                        for line in _payment(no, d, OLD_ESTATES, c, wrong, s, "31005 基础设施建设",
                                             works=True).lines])
                    add(fix_day, lambda no, d=fix_day, c=contractor, s=summary: _payment(
                        no, d, OLD_ESTATES, c, right, f"{s}（更正）", "31005 基础设施建设",
                        works=True).lines)
                    continue
                add(day, lambda no, d=day, p=purpose, c=contractor, a=amount, s=summary, e=economic,
                    k=kwargs: _payment(no, d, p, c, a, s, e, works=True, **k).lines)

    # Out of scope: the bureau's own office costs, every month.
    for month in range(1, 12):
        for economic, what, vendors in rng.sample(OFFICE_COSTS, 3):
            day = _workday(2024, month, rng.randint(3, 27))
            payee = rng.choice(vendors) if vendors else _names(rng, 1)[0]  # a staff member
            amount = Decimal(rng.randrange(30000, 900000)) / 100
            add(day, lambda no, d=day, e=economic, w=what, p=payee, a=amount: _payment(
                no, d, OFFICE_PURPOSE, p, a, f"{w}（{d.month}月）", e, works=False,
                function="2120101 行政运行", direct="09 其他", project=OFFICE_PROJECT,
                doc=OFFICE_DOC, source="本级财力", purpose_text=OFFICE_PURPOSE).lines)

    # Number vouchers as the accounting system does: 记-MM-NNNN in posting order.
    dated.sort(key=lambda t: (t[0], t[1]))
    vouchers: list[_Voucher] = []
    per_month: dict[int, int] = {}
    for date, _, make in dated:
        per_month[date.month] = per_month.get(date.month, 0) + 1
        no = f"记-{date.month:02d}-{per_month[date.month]:04d}"
        vouchers.append(_Voucher(no, date, make(no)))
    return vouchers


def ledger_rows(seed: int = DEMO_SEED, households: int = 30, end: dt.date = dt.date(2024, 11, 30),
                faults: bool = True) -> Iterator[list[str]]:
    """The export's data rows (cn-grp column order, as text), in voucher order."""
    for v in _vouchers(seed, households, end, faults):
        for i, line in enumerate(v.lines, start=1):
            yield [
                v.no, str(i), _date_text(v.date), line["book"], line["account"],
                ACCOUNTS[line["account"]], line["summary"], _money(line.get("debit")),
                _money(line.get("credit")), line["function"] or "", line.get("economic") or "",
                line["project"], line["purpose"], line["source"], line["direct"], line["doc"],
                line.get("payee") or "",
            ]


def generate_ledger(path: Path | str = DEMO_FILE, *, seed: int = DEMO_SEED, households: int = 30,
                    target_lines: int | None = None, end: dt.date = dt.date(2024, 11, 30),
                    faults: bool = True, encoding: str = "gb18030") -> int:
    """Write a cn-grp year-to-date export; return the number of data rows.

    target_lines, when given, sets the number of rent-subsidy households so the file has about
    that many lines (each household adds two lines a month); the rest of the ledger is fixed.
    """
    if target_lines is not None:
        months = max(1, min(end.month, 11))
        base = sum(1 for _ in ledger_rows(seed, 1, end, faults)) - 2 * months
        households = max(households if target_lines >= base else 1,
                         (target_lines - base) // (2 * months))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(HEADER)
        buf = []
        for row in ledger_rows(seed, households, end, faults):
            buf.append(row)
            n += 1
            if len(buf) >= 10000:
                writer.writerows(buf)
                buf.clear()
        writer.writerows(buf)
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="生成演示账簿导出 / write the demo ledger export")
    parser.add_argument("--out", type=Path, default=DEMO_FILE)
    parser.add_argument("--seed", type=int, default=DEMO_SEED)
    parser.add_argument("--households", type=int, default=30)
    parser.add_argument("--lines", type=float, default=None, help="approximate number of lines")
    parser.add_argument("--encoding", default="gb18030")
    parser.add_argument("--no-faults", action="store_true", help="leave out the planted mistakes")
    args = parser.parse_args(argv)
    n = generate_ledger(args.out, seed=args.seed, households=args.households,
                        target_lines=int(args.lines) if args.lines else None,
                        faults=not args.no_faults, encoding=args.encoding)
    print(f"{args.out}: {n} rows ({args.encoding})")


if __name__ == "__main__":
    main()
