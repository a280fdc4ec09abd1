"""Performance indicators (绩效指标) of the target tables, measured from the ledger.

Finance staff are scored on the performance target tables (项目支出绩效目标表) of each notice;
auditors want the year-end result with its evidence. `measure` gives every indicator of every
target table in scope one row in `run_indicators`: the target as written, what the ledger shows
(observed), a status and how it was measured. The findings that follow from those rows
(INDICATOR_NOT_MET, INDICATOR_BEHIND) are plain SQL checks of stage `indicator` reading
`run_indicators`, so every rule stays in the one registry of `sql/checks/`; `measure` itself
returns no findings.

Which indicator is measured how is data (`config/indicators.toml`): indicators are matched by
meaning (wording and unit), never by exact text. Statuses:

* after the fiscal year (as-of on or after 12-31): `met` / `not_met`;
* during it: `on_track` / `behind`, comparing the target's progress with the time progress
  (支出进度 vs 时间进度, the double monitoring of 财预〔2019〕136号; thresholds in the config).
  A ceiling already broken during the year (a payee above the monthly standard, spending above
  the allocation) is `behind`, not `not_met`: the year is not over, and the breach itself is
  reported at once as an error by its own rule (SUBSIDY_CAP_EXCEEDED, OVER_ALLOCATION). Such a
  row is marked `over_ceiling`, so that INDICATOR_BEHIND and the reports say 已超上限 (over), not
  进度滞后 (late);
* `needs_evidence`: the ledger cannot show it (satisfaction, 有效解决, works quantities and
  schedules, …). Never met.

Spending is the budget-book net expenditure of the purpose's allocation line, within the run's
scope and as-of date: the figure of summary.csv (rpt_allocation_summary), where lines counted under
two batches of one purpose are spread over them. Payees, months and lines are counted from the
lines counted under the allocation line (fct_expenditure, match_kind = 'line'); of those shared
by batches, a batch counts the payees and months of the lines its part of the money paid
(fct_pool_lines), so that 2号 taking all the shared money leaves 15号 none of their households.
A ceiling (元/户/月) is held in the payee-months a batch paid, on all the payee received in them.

Months (次, the first and the last month) count where the money stayed paid: a reversal (红字冲销)
naming a payee nets into the month of the payment it reverses, the payee's latest payment on or
before its day (the payment fct_pool_lines nets it into too), so a month whose payments were all
paid back later is not a batch paid, and the month of the reversal keeps its own batch. A
ceiling is held by the month of posting, as SUBSIDY_CAP_EXCEEDED holds it: a household paid
twice in February received 960 then, whatever March paid back. Where a later month did pay some
of it back, the method says the most a payee kept of one month less what came back (480), as the
finding's message says what came back. A month of back pay is read per month paid: a payment whose
summary (摘要) says it pays several months (补发1-3月, 第一季度, 上半年; text.month_bits)
spreads over them, so 1,440 paid in March for January to March is 480 元/户/月, where
SUBSIDY_CAP_EXCEEDED holds that month to three times the standard; a month's payments pay the
months they name together, each once, and a payment naming none its own month (March's own 480
and 补发1-2月 960: three months; two ordinary lines: one), as the rule counts them
(text.months_of), and the method says how many payee-months were spread.

A payee that is a bank or paying agency (银行代发: 中国农业银行克州分行, 财政局代发, recognised by
text.is_bank_payee, never a name that could be a person's) is no household: one line carries the
money of many households, which the ledger does not name. Its lines count as spending, months
and batches like any other, but as no household: the standard (元/户/月) is held on the households
named, and the count of households counts those; the method says how many lines and how much
went through a bank, so the bank's list (代发清单) is the evidence. A count that the named
households alone do not settle (25 named against >=30户) is `needs_evidence`, never `not_met`: the
bank paid more households, how many the ledger cannot show. With no household named, both are
`needs_evidence`, as with no payee at all.
"""
from __future__ import annotations

import calendar
import datetime as dt
import re
import tomllib
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb

from .findings import Finding
from .paths import CONFIG_DIR
from .store import transaction

CONFIG_PATH = CONFIG_DIR / "indicators.toml"
STATUSES = ("met", "not_met", "on_track", "behind", "needs_evidence")
CEILINGS = ("<=", "<")
HUNDRED = Decimal(100)
_TARGET = re.compile(r"^\s*(>=|<=|≥|≤|=|>|<)?\s*(\d+(?:\.\d+)?)\s*(.*?)\s*$")
_OPS = {"≥": ">=", "≤": "<="}


# --- configuration ------------------------------------------------------------------------

@dataclass(frozen=True)
class Measure:
    id: str
    names: tuple[str, ...]
    units: tuple[str, ...]
    zh: str
    en: str

    @property
    def method(self) -> str:
        return f"{self.zh} / {self.en}"


@dataclass(frozen=True)
class Config:
    measures: tuple[Measure, ...]
    evidence_names: tuple[str, ...]
    behind_gap_points: Decimal
    behind_ratio: Decimal
    rate_tolerance_points: Decimal


def load_config(path: Path = CONFIG_PATH) -> Config:
    data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    thresholds = data.get("thresholds", {})
    measures = tuple(
        Measure(m["id"], tuple(_squash(n) for n in m.get("names", [])),
                tuple(_unit(u) for u in m.get("units", [])), m["zh"], m["en"])
        for m in data.get("measure", [])
    )
    return Config(
        measures=measures,
        evidence_names=tuple(_squash(n) for n in data.get("evidence", {}).get("names", [])),
        behind_gap_points=Decimal(str(thresholds.get("behind_gap_points", 10))),
        behind_ratio=Decimal(str(thresholds.get("behind_ratio", 0))),
        rate_tolerance_points=Decimal(str(thresholds.get("rate_tolerance_points", 0))),
    )


def _squash(text: str | None) -> str:
    return re.sub(r"[\s\u3000]+", "", text or "")


def _unit(text: str | None) -> str:
    return _squash(text).replace("·", "/").replace("％", "%")


@dataclass(frozen=True)
class Target:
    text: str
    op: str | None
    value: Decimal | None
    unit: str
    qualitative: bool


def parse_target(text: str, op=None, value=None, unit=None, qualitative=None) -> Target:
    """The target as stored by the notice parser; parsed from the text where it left gaps."""
    if op is None or value is None:
        m = _TARGET.match(text or "")
        if m and not qualitative:
            op = op or _OPS.get(m.group(1), m.group(1)) or "="
            value = value if value is not None else Decimal(m.group(2))
            unit = unit if unit is not None else m.group(3)
    if op is None or value is None:
        return Target(text, None, None, _unit(unit), True)
    return Target(text, _OPS.get(op, op), Decimal(str(value)), _unit(unit), False)


def classify(name: str, target: Target, config: Config) -> Measure | None:
    """The measure for an indicator, or None when the ledger cannot show it."""
    key = _squash(name)
    if target.qualitative or any(w in key for w in config.evidence_names):
        return None
    for m in config.measures:
        if (not m.names or any(n in key for n in m.names)) and (not m.units or target.unit in m.units):
            return m
    return None


# --- the clock ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Clock:
    """Where the run stands in the fiscal year."""

    fiscal_year: int
    as_of: dt.date

    @property
    def closed(self) -> bool:
        return self.as_of >= dt.date(self.fiscal_year, 12, 31)

    @property
    def time_progress(self) -> Decimal:
        """Share of the fiscal year elapsed on as_of (时间进度), 0..1."""
        start = dt.date(self.fiscal_year, 1, 1)
        if self.as_of < start:
            return Decimal(0)
        if self.closed:
            return Decimal(1)
        days = 366 if calendar.isleap(self.fiscal_year) else 365
        return Decimal((self.as_of - start).days + 1) / Decimal(days)

    @property
    def month_index(self) -> int:
        """as_of's month counted from January of the fiscal year (1..12 within it)."""
        return (self.as_of.year - self.fiscal_year) * 12 + self.as_of.month


# --- what the ledger shows per allocation line -------------------------------------------

@dataclass(frozen=True)
class Stats:
    allocated: Decimal | None
    spent: Decimal
    lines: int
    payee_lines: int  # lines naming a household: a payee, not a bank or agency (银行代发)
    max_payee_month: Decimal | None
    payees: int
    months: int
    first_month: int | None
    last_month: int | None
    shared: bool = False  # lines without 指标文号 shared with other batches of the fund (a pool)
    # max_payee_month less what later months paid back of each payee-month (红字冲销)
    max_payee_month_kept: Decimal | None = None
    # lines paid to a bank or paying agency (银行代发, text.is_bank_payee), and their net amount:
    # spending like any other, but of households the ledger does not name
    bank_lines: int = 0
    bank_amount: Decimal = Decimal(0)
    # payee-months of back pay (补发1-3月): their payments say they pay more than one month, and
    # max_payee_month reads them per month paid
    back_pay_months: int = 0
    # payee-months paid from two or more posting months (补发2月 in March of a February already
    # paid: fct_months_placed); max_payee_month holds what each received for it in all
    months_paid_again: int = 0

    @property
    def rate(self) -> Decimal | None:
        """spent ÷ allocated, in percent."""
        if not self.allocated:
            return None
        return self.spent / self.allocated * HUNDRED


NO_STATS = Stats(None, Decimal(0), 0, 0, None, 0, 0, None, None)
SHARED_ZH = "与同一资金其他批次共用的无指标文号账行，按下达顺序分摊计入（先下达者先用）"
SHARED_EN = ("lines without 指标文号 shared with the fund's other batches are counted where their "
             "money is spread, in the order issued (the first issued draws first)")

SUMMARY = "rpt_allocation_summary"  # the view of each allocation line's spending
NO_PAYEE = "账簿未记录收款人，无法计量 / the ledger names no payee"


def _bank_paid(stats: Stats) -> tuple[str, str]:
    """What the lines paid to a bank or agency came to, in Chinese and English."""
    n, amount = stats.bank_lines, stats.bank_amount.quantize(Decimal("0.01"))
    lines, verb = ("line", "was") if n == 1 else ("lines", "were")
    return (f"{n}笔共{amount}元付给银行或代发机构（银行代发）",
            f"{n} {lines}, {amount} yuan, {verb} paid to a bank or paying agency (代发)")


def _bank_only(stats: Stats) -> str:
    """The method of a household measure when no line names a household but some paid a bank."""
    zh, en = _bank_paid(stats)
    return (f"账簿未列明住户：{zh}，无法计量，需代发清单 / the ledger names no household: {en}; "
            "needs the bank's list of households (代发清单)")


_STATS_SQL = """
with given as (
    -- the allocation lines each line shared by a pool is given to count: those of its pool whose
    -- part of the shared spending its stretch meets (fct_pool_lines)
    select e.file_id, e.row_no, e.notice_no, e.line_seq,
           coalesce(bool_or(pl.pool_notice = r.pool_notice and pl.pool_seq = r.pool_seq
                            and (r.pool_part_to is null or pl.place_from < r.pool_part_to)
                            and (r.pool_part_from is null or pl.place_to > r.pool_part_from
                                 or pl.place_from >= r.pool_part_from)), false) as given
    from fct_pool_lines as pl
    join fct_expenditure as e on e.file_id = pl.file_id and e.row_no = pl.row_no
    left join {summary} as r on r.notice_no = e.notice_no and r.line_seq = e.line_seq
    where e.match_kind = 'line'
    group by e.file_id, e.row_no, e.notice_no, e.line_seq
),
lines as materialized (
    select
        e.notice_no,
        e.line_seq,
        e.amount,
        nullif(trim(e.payee), '') as payee,
        (year(e.posted_on) - e.fiscal_year) * 12 + month(e.posted_on) as month_index,
        coalesce(g.given, true) as given,  -- a line no pool shares: its allocation line's
        e.posted_on,  -- for a reversal's payment: payee_months, reversal_days
        -- the months a payment's summary names (back pay, 补发1-3月; a quarter), as
        -- SUBSIDY_CAP_EXCEEDED reads them; a reversal pays none
        case when e.amount > 0 and nullif(trim(e.payee), '') is not null
             then summary_months_text(e.summary) end as months_text
    from fct_expenditure as e
    left join given as g
      on g.file_id = e.file_id and g.row_no = e.row_no and g.notice_no = e.notice_no
     and g.line_seq = e.line_seq
    -- the year's targets count the year's payments: one posted in another year (OUT_OF_PERIOD)
    -- is no household, batch or month of it
    where e.match_kind = 'line' and year(e.posted_on) = e.fiscal_year
),
spent as (
    select notice_no, line_seq, count(*) as lines
    from lines
    group by notice_no, line_seq
),
named_months as (
    -- the months the payments whose summaries name months pay (back pay, quarters), OR-ed per
    -- payee-month. Apart from the other lines so that month_bits runs on these few lines only:
    -- scattered among all of them (180 of 299,527 lines of the 2M bench ledger) the query took
    -- 0.41-0.44 s against 0.26-0.29 s on the ledger without them, month_bits' lambdas set up again
    -- for every vector holding one (0.28-0.32 s this way)
    select notice_no, line_seq, payee, month_index, bit_or(month_bits(months_text, posted_on)) as bits
    from lines
    where months_text is not null and month_index is not null
    group by notice_no, line_seq, payee, month_index
),
payee_month_lines as (
    -- a ceiling (元/户/月): what a payee received in a month, from every line counted (shared
    -- ones too: a household paid by two batches in a month received both) ...
    select notice_no, line_seq, payee, month_index, sum(amount) as total, bool_or(given) as paid,
           sum(amount) filter (where given) as given_total,  -- for the counts: payees
           -- the first day of a payment, given to it / of any: for reversals
           min(posted_on) filter (where amount > 0 and given) as first_paid_on,
           min(posted_on) filter (where amount > 0) as first_received_on,
           count(*) as lines,
           -- the month posted, if a payment names no months (a reversal pays none)
           coalesce(bit_or(month_bits(null, posted_on)) filter (where amount > 0 and months_text is null), 0)
               as posted_bits,
           -- a bank or paying agency (银行代发) is no household: one line, many households' money.
           -- Its lines still count as paid (months, reversals), never as a household's.
           is_bank_payee(payee) as bank
    from lines
    where payee is not null and month_index is not null
    group by notice_no, line_seq, payee, month_index
),
payee_months as (
    -- ... with the months it paid: those its payments name together, each once (back pay,
    -- quarters), as SUBSIDY_CAP_EXCEEDED holds a month to the cap times these
    select g.notice_no, g.line_seq, g.payee, g.month_index, g.total, g.paid, g.given_total, g.first_paid_on,
           g.first_received_on, g.lines, months_of(g.posted_bits | coalesce(n.bits, 0)) as months, g.bank
    from payee_month_lines as g
    left join named_months as n
      on n.notice_no = g.notice_no and n.line_seq = g.line_seq and n.payee = g.payee
     and n.month_index = g.month_index
),
payee_lines as (
    -- the lines naming a household, and those paid to a bank or agency with what they paid net
    -- (every line counted, as `lines`): the households of these the ledger does not name
    select notice_no, line_seq,
           coalesce(sum(lines) filter (where not bank), 0) as household_lines,
           coalesce(sum(lines) filter (where bank), 0) as bank_lines,
           coalesce(sum(total) filter (where bank), 0) as bank_amount
    from payee_months
    group by notice_no, line_seq
),
month_lines as (
    -- what each month paid, less the reversals (红字冲销) naming a payee, counted below ...
    select notice_no, line_seq, month_index, sum(amount) as amount
    from lines
    where month_index is not null and given and not (amount < 0 and payee is not null)
    group by notice_no, line_seq, month_index
),
reversal_days as (
    -- amount: the reversals of lines given to it (for the months); received: of every line (for
    -- the ceiling, which is held on every line counted)
    select notice_no, line_seq, payee, posted_on, month_index,
           sum(amount) filter (where given) as amount, sum(amount) as received
    from lines
    where month_index is not null and amount < 0 and payee is not null
    group by notice_no, line_seq, payee, posted_on, month_index
),
reversals as (
    -- each reversal day and the month of the payee's latest payment on or before it (one of the
    -- same day counts as before it, as in fct_pool_lines and in SUBSIDY_CAP_EXCEEDED's
    -- paid_back): among the lines given to it (paid_month, for the months) and among every line
    -- (received_month, for the ceiling); null with none. One join: a given payment is a line too.
    select r.notice_no, r.line_seq, r.payee, r.month_index, r.amount, r.received,
           max(pm.month_index) filter (where pm.first_paid_on <= r.posted_on) as paid_month,
           max(pm.month_index) as received_month
    from reversal_days as r
    left join payee_months as pm
      on pm.notice_no = r.notice_no and pm.line_seq = r.line_seq and pm.payee = r.payee
     and pm.first_received_on <= r.posted_on
    group by r.notice_no, r.line_seq, r.payee, r.posted_on, r.month_index, r.amount, r.received
),
paid_months as (
    -- ... in the month of the payment they reverse; with none, in their own month. Aggregates
    -- only, so the lines above are read once, by every aggregate side by side.
    select notice_no, line_seq, month_index, amount from month_lines
    union all
    select notice_no, line_seq, coalesce(paid_month, month_index), amount
    from reversals
    where amount is not null
),
paid_back as (
    -- what later months paid back of a payee-month: the reversals whose latest payment on or
    -- before their day was in it, read on every line as SUBSIDY_CAP_EXCEEDED's paid_back reads
    -- them. The ceiling stays held by the month of posting; this only says what came back.
    select notice_no, line_seq, payee, received_month as month_index, sum(received) as amount
    from reversals
    where received_month < month_index
    group by notice_no, line_seq, payee, received_month
),
payee_max as (
    -- ... in the months the allocation line's money paid the payee, per month paid: a month of
    -- back pay spread over the months it paid (1,440 for 补发1-3月 is 480 a month), to four places
    -- (exact enough that it is over a cap of two places whenever the total is over the cap times
    -- the months, as SUBSIDY_CAP_EXCEEDED judges it; both branches four places, or DuckDB takes the
    -- case to the total's two); and the same less what later months paid
    -- back of each (paid_back); and how many such months were spread
    select pm.notice_no, pm.line_seq,
           max(case when pm.months = 1 then cast(pm.total as decimal(38,4))
                    else cast(round(pm.total / pm.months, 4) as decimal(38,4)) end)
               filter (where pm.paid and not pm.bank) as max_payee_month,
           max(case when pm.months = 1 then cast(pm.total + coalesce(b.amount, 0) as decimal(38,4))
                    else cast(round((pm.total + coalesce(b.amount, 0)) / pm.months, 4) as decimal(38,4)) end)
               filter (where pm.paid and not pm.bank) as max_payee_month_kept,
           count(*) filter (where pm.paid and not pm.bank and pm.months > 1) as back_pay_months
    from payee_months as pm
    left join paid_back as b
      on b.notice_no = pm.notice_no and b.line_seq = pm.line_seq and b.payee = pm.payee
     and b.month_index = pm.month_index
    group by pm.notice_no, pm.line_seq
),
paid_again as (
    -- a month paid from lines of two or more posting months (fct_months_placed: February paid in
    -- February, and again by 补发2月 in March beside March's own line): what the payee received
    -- for it in all, per month paid, as SUBSIDY_CAP_EXCEEDED judges it; the months above judge
    -- each posting month alone. To four places, as payee_max.
    select notice_no, line_seq, max(month_total_4) as most,
           count(distinct payee || '|' || cast(paid_month as varchar)) as months_paid_again
    from fct_months_placed
    where posted_from < posted_to
    group by notice_no, line_seq
),
payees as (
    -- the counts (户, 次, months): the lines given to it, so no batch claims another's payees;
    -- a bank or agency is no household
    -- (every line with a payee has a month: payee_months holds them all)
    select notice_no, line_seq, count(*) filter (where total > 0 and not bank) as payees
    from (select notice_no, line_seq, payee, sum(given_total) as total, bool_or(bank) as bank
          from payee_months group by notice_no, line_seq, payee)
    group by notice_no, line_seq
),
months as (
    select notice_no, line_seq,
           count(*) filter (where total > 0) as months,
           min(month_index) filter (where total > 0) as first_month,
           max(month_index) filter (where total > 0) as last_month
    from (select notice_no, line_seq, month_index, sum(amount) as total
          from paid_months group by notice_no, line_seq, month_index)
    group by notice_no, line_seq
)
select
    a.notice_no, a.line_seq, a.amount,
    coalesce(r.spent, 0), coalesce(s.lines, 0), coalesce(pl.household_lines, 0),
    greatest(pm.max_payee_month, pa.most), coalesce(p.payees, 0), coalesce(m.months, 0), m.first_month,
    m.last_month, r.pool_notice is not null, greatest(pm.max_payee_month_kept, pa.most),
    coalesce(pl.bank_lines, 0), coalesce(pl.bank_amount, 0), coalesce(pm.back_pay_months, 0),
    coalesce(pa.months_paid_again, 0)
from allocation_lines as a
-- what the summary says it spent: lines counted under batches of one purpose spread over them
left join {summary} as r on r.notice_no = a.notice_no and r.line_seq = a.line_seq
left join spent as s on s.notice_no = a.notice_no and s.line_seq = a.line_seq
left join payee_lines as pl on pl.notice_no = a.notice_no and pl.line_seq = a.line_seq
left join payee_max as pm on pm.notice_no = a.notice_no and pm.line_seq = a.line_seq
left join paid_again as pa on pa.notice_no = a.notice_no and pa.line_seq = a.line_seq
left join payees as p on p.notice_no = a.notice_no and p.line_seq = a.line_seq
left join months as m on m.notice_no = a.notice_no and m.line_seq = a.line_seq
"""

# Every indicator of every target table in scope, with the allocation line its purpose names
# (by purpose key or a configured alias, as ledger lines are matched).
_INDICATORS_SQL = """
with ctx as (select * from run_context limit 1),
tables as (
    select
        tt.notice_no, tt.table_seq, tt.purpose as table_purpose, tt.purpose_key,
        n.fiscal_year,
        coalesce(a.line_seq, al.line_seq) as line_seq
    from target_tables as tt
    join fct_notices as n on n.notice_no = tt.notice_no
    left join allocation_lines as a
      on a.notice_no = tt.notice_no and a.purpose_key = tt.purpose_key
    left join purpose_aliases as al
      on al.notice_no = tt.notice_no and al.alias_key = tt.purpose_key
)
select
    t.notice_no, t.table_seq, coalesce(a.purpose, t.table_purpose) as purpose, t.fiscal_year,
    t.line_seq, i.indicator_seq, i.name, i.target_text, i.op, i.target_value, i.target_unit,
    i.qualitative, i.evidence
from tables as t
join target_indicators as i on i.notice_no = t.notice_no and i.table_seq = t.table_seq
left join allocation_lines as a on a.notice_no = t.notice_no and a.line_seq = t.line_seq
left join ctx on true
where ctx.purpose_key is null or t.purpose_key = ctx.purpose_key or a.purpose_key = ctx.purpose_key
order by t.notice_no, t.table_seq, i.indicator_seq
"""


def line_stats(con: duckdb.DuckDBPyConnection, summary: str = SUMMARY) -> dict[tuple[str, int], Stats]:
    """Each allocation line's figures; spent from `summary`: rpt_allocation_summary, or the copy of
    it a run has already made (a table of the same columns), so that it is computed once."""
    sql = _STATS_SQL.replace("{summary}", summary)
    return {(r[0], r[1]): Stats(*r[2:]) for r in con.execute(sql).fetchall()}


# --- judging one indicator ----------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    observed: str | None
    status: str
    method: str
    # during the year, `behind` because a ceiling is already broken (a payee above the monthly
    # standard, spending above the allocation), not because progress lags the calendar
    over_ceiling: bool = False


def _holds(value: Decimal, op: str, target: Decimal, tol: Decimal = Decimal(0)) -> bool:
    return {
        "<=": value <= target + tol,
        "<": value < target,
        ">=": value >= target - tol,
        ">": value > target,
        "=": abs(value - target) <= tol,
    }[op]


def _pct(value: Decimal, target: Decimal | None = None) -> str:
    """Percent with two decimals, or with as many as it takes (up to six) to show that a rate
    differs from its target when two would hide it (100.0006% over a ceiling of 100%)."""
    shown = value.quantize(Decimal("0.01"), ROUND_HALF_UP)  # 12.345% -> 12.35%, as the summary rounds
    places = 2
    while target is not None and value != target and shown == target and places < 6:
        places += 1
        shown = value.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return f"{shown}%"


def _per_month(value: Decimal, target: Decimal | None) -> Decimal:
    """An amount per month with two decimals, or four where two would hide that it differs from
    the target: back pay spread over its months (1,440.01 over three is 480.0033, over 480)."""
    shown = value.quantize(Decimal("0.01"))
    if target is not None and value != target and shown == target:
        shown = value.quantize(Decimal("0.0001"))
    return shown


def _month(index: int, fiscal_year: int) -> str:
    if 1 <= index <= 12:
        return f"{index}月"
    year, month = fiscal_year + (index - 1) // 12, (index - 1) % 12 + 1
    return f"{year}年{month}月"


def _count(n: int, unit: str) -> str:
    return f"{n}{unit}"


def _noted(method: str, zh: str, en: str) -> str:
    """A method ("中文 / English") with a note added to each half."""
    method_zh, _, method_en = method.partition(" / ")
    return f"{method_zh}；{zh} / {method_en}; {en}"


class _Judge:
    def __init__(self, config: Config, clock: Clock):
        self.config = config
        self.clock = clock

    def lagging(self, progress: Decimal) -> bool:
        """Double monitoring: progress (0..1) against time progress, by the configured thresholds."""
        tp = self.clock.time_progress
        if progress * HUNDRED < tp * HUNDRED - self.config.behind_gap_points:
            return True
        return self.config.behind_ratio > 0 and progress < self.config.behind_ratio * tp

    def with_progress(self, measure: Measure, progress: Decimal) -> str:
        """The method, with the double-monitoring comparison that decided the status."""
        p, tp = _pct(progress * HUNDRED), _pct(self.clock.time_progress * HUNDRED)
        return _noted(measure.method, f"进度{p}，时间进度{tp}", f"progress {p} vs time {tp}")

    @staticmethod
    def deadline_passed(measure: Measure) -> str:
        if measure.id == "first_month":
            zh, en = "目标月份已过仍未开始发放", "the target month has passed with no payment"
        else:
            zh, en = "目标月份已过仍未发放完毕", "the target month has passed with payments outstanding"
        return _noted(measure.method, zh, en)

    def judge(self, measure: Measure, target: Target, stats: Stats) -> Result:
        result = getattr(self, measure.id)(measure, target, stats)
        if stats.shared and result.status != "needs_evidence":
            # say where the figure's shared lines came from, so 0户 beside spending on the
            # purpose in the ledger reads right: the batch issued before took them
            result = replace(result, method=_noted(result.method, SHARED_ZH, SHARED_EN))
        return result

    # Each measure returns observed, status and method.

    def _final_or_progress(self, measure, target, value: Decimal, observed: str,
                           tol: Decimal = Decimal(0)) -> Result:
        """Targets that accumulate over the year (rates, counts)."""
        holds = _holds(value, target.op, target.value, tol)
        if self.clock.closed:
            return Result(observed, "met" if holds else "not_met", measure.method)
        overshoot = target.op in CEILINGS or (target.op == "=" and value > target.value + tol)
        if overshoot:
            # A ceiling already broken stays broken; the breach is reported by its own rule.
            return Result(observed, "on_track" if holds else "behind", measure.method,
                          over_ceiling=not holds)
        if target.value <= 0:
            return Result(observed, "on_track", measure.method)
        progress = value / target.value
        status = "behind" if self.lagging(progress) else "on_track"
        return Result(observed, status, self.with_progress(measure, progress))

    def _rate(self, measure, target, stats) -> Result:
        rate = stats.rate
        if rate is None:
            return Result(None, "needs_evidence", "无分配额，无法计量 / no allocation to measure against")
        return self._final_or_progress(measure, target, rate, _pct(rate, target.value),
                                       self.config.rate_tolerance_points)

    control_rate = _rate
    payment_rate = _rate

    @staticmethod
    def with_bank_paid(method: str, stats: Stats) -> str:
        """A household measure's method, saying what was paid through a bank (代发) besides."""
        if not stats.bank_lines:
            return method
        zh, en = _bank_paid(stats)
        return _noted(method, f"另有{zh}，所发住户账簿未列明，以代发清单为据",
                      f"besides, {en}, whose households the ledger does not name: the bank's list "
                      "(代发清单) is the evidence")

    def max_monthly_per_payee(self, measure, target, stats) -> Result:
        # judged on the households the ledger names; a line paid to a bank or agency carries
        # many households' money and is held to no household's standard (nor by
        # SUBSIDY_CAP_EXCEEDED)
        if stats.lines and not stats.payee_lines:
            return Result(None, "needs_evidence", _bank_only(stats) if stats.bank_lines else NO_PAYEE)
        if stats.max_payee_month is None:
            if self.clock.closed:
                return Result("无发放记录", "needs_evidence", "无发放记录，无法计量 / no payments to measure")
            return Result("无发放记录", "on_track", measure.method)
        value = stats.max_payee_month
        unit = target.unit or "元"
        observed = f"{_per_month(value, target.value)}{unit}"
        holds = _holds(value, target.op, target.value)
        method = self.with_bank_paid(measure.method, stats)
        if stats.back_pay_months:
            n = stats.back_pay_months
            method = _noted(method, f"摘要注明所付多个月的（如补发1-3月、第一季度），按所列月数分摊（{n}户次）",
                            f"a payment whose summary names several months (补发1-3月, 第一季度) is "
                            f"spread over them ({n} payee-{'month' if n == 1 else 'months'})")
        if stats.months_paid_again:
            n = stats.months_paid_again
            method = _noted(method, f"同一月份在不同月份重复发放的（如已发2月、3月又补发2月），按该月所付合计（{n}户次）",
                            f"a month paid again from another month (February paid, and 补发2月 in March) "
                            f"counts what it was paid in all ({n} payee-{'month' if n == 1 else 'months'})")
        kept = stats.max_payee_month_kept
        if not holds and kept is not None and kept < value:
            # the ceiling is held by the month of posting (the household received it then), but
            # say what later months paid back, as SUBSIDY_CAP_EXCEEDED's message does
            kept_text = f"{_per_month(kept, target.value)}{unit}"
            method = _noted(method, f"其后有冲回，扣除后单户单月最多{kept_text}",
                            f"less what later months paid back, the most was {kept_text}")
        if self.clock.closed:
            return Result(observed, "met" if holds else "not_met", method)
        return Result(observed, "on_track" if holds else "behind", method, over_ceiling=not holds)

    def distinct_payees(self, measure, target, stats) -> Result:
        if stats.lines and not stats.payee_lines:
            return Result(None, "needs_evidence", _bank_only(stats) if stats.bank_lines else NO_PAYEE)
        value = Decimal(stats.payees)
        result = self._final_or_progress(measure, target, value, _count(stats.payees, target.unit))
        if not stats.bank_lines:
            return result
        # The households named are the fewest paid: a bank (代发) paid some more, how many the
        # ledger does not show. So the named ones decide only a floor they already meet, or a
        # ceiling they already break; else the 代发清单 must.
        if target.op in (">=", ">"):
            decided = result.status in ("met", "on_track")
        else:
            decided = value >= target.value and not _holds(value, target.op, target.value)
        if decided:
            return replace(result, method=self.with_bank_paid(result.method, stats))
        zh, en = _bank_paid(stats)
        return Result(result.observed, "needs_evidence", _noted(
            measure.method, f"账簿列明{result.observed}；另有{zh}，所发户数账簿未列明，需代发清单",
            f"the ledger names {stats.payees} households; besides, {en}, how many households the ledger does "
            "not show: needs the bank's list (代发清单)"))

    def payment_months(self, measure, target, stats) -> Result:
        return self._final_or_progress(measure, target, Decimal(stats.months),
                                       _count(stats.months, target.unit))

    def first_month(self, measure, target, stats) -> Result:
        first, deadline = stats.first_month, target.value
        if first is None:
            if self.clock.closed:
                return Result("无发放记录", "not_met", measure.method)
            late = target.op in CEILINGS + ("=",) and self.clock.month_index > deadline
            return Result("无发放记录", "behind" if late else "on_track",
                          self.deadline_passed(measure) if late else measure.method)
        observed = _month(first, self.clock.fiscal_year)
        holds = _holds(Decimal(first), target.op, deadline)
        if self.clock.closed:
            return Result(observed, "met" if holds else "not_met", measure.method)
        return Result(observed, "on_track" if holds else "behind", measure.method)

    def last_month(self, measure, target, stats) -> Result:
        last, deadline = stats.last_month, target.value
        if last is None:
            if self.clock.closed:
                return Result("无发放记录", "not_met", measure.method)
            late = self.clock.month_index > deadline
            return Result("无发放记录", "behind" if late else "on_track",
                          self.deadline_passed(measure) if late else measure.method)
        observed = _month(last, self.clock.fiscal_year)
        holds = _holds(Decimal(last), target.op, deadline)
        if self.clock.closed:
            return Result(observed, "met" if holds else "not_met", measure.method)
        # During the year: behind when paid after the deadline, or when the deadline has passed
        # with the allocation not yet fully paid.
        unpaid = stats.rate is not None and stats.rate < HUNDRED - self.config.rate_tolerance_points
        late = self.clock.month_index > deadline and unpaid
        if late and holds:
            return Result(observed, "behind", self.deadline_passed(measure))
        return Result(observed, "on_track" if holds else "behind", measure.method)


def needs_evidence(evidence: str | None) -> Result:
    what = f"（{evidence}）" if evidence else ""
    return Result(None, "needs_evidence", f"账簿无法计量，需佐证材料{what} / not measurable from the ledger; needs evidence")


# --- the stage ----------------------------------------------------------------------------

def evaluate(con: duckdb.DuckDBPyConnection, as_of: dt.date, config: Config | None = None,
             summary: str = SUMMARY) -> list[dict]:
    """One row per indicator in the scope of run_context, judged as of as_of."""
    config = config or load_config()
    stats = line_stats(con, summary)
    cur = con.execute(_INDICATORS_SQL)
    cols = [d[0] for d in cur.description]
    rows = []
    for rec in (dict(zip(cols, r)) for r in cur.fetchall()):
        target = parse_target(rec["target_text"], rec["op"], rec["target_value"], rec["target_unit"],
                              rec["qualitative"])
        kind = classify(rec["name"], target, config)
        if kind is None:
            result = needs_evidence(rec["evidence"])
        else:
            judge = _Judge(config, Clock(rec["fiscal_year"], as_of))
            line_stats_ = stats.get((rec["notice_no"], rec["line_seq"]), NO_STATS)
            if rec["line_seq"] is None:
                result = Result(None, "needs_evidence",
                                "目标表未对应分配行，无法计量 / the table names no allocation line")
            else:
                result = judge.judge(kind, target, line_stats_)
        rows.append({
            "notice_no": rec["notice_no"], "purpose": rec["purpose"], "indicator": rec["name"],
            "target": rec["target_text"], "observed": result.observed, "status": result.status,
            "method": result.method, "over_ceiling": result.over_ceiling,
            "measure": kind.id if kind else None,
            "table_seq": rec["table_seq"], "indicator_seq": rec["indicator_seq"],
        })
    return rows


def measure(con: duckdb.DuckDBPyConnection, run_id: str, scope, summary: str = SUMMARY) -> list[Finding]:
    """Measure every indicator in scope into run_indicators; findings come from the SQL checks
    of stage `indicator` (indicator_not_met.sql, indicator_behind.sql) that read these rows.
    summary: where the spending of each allocation line is read (see line_stats)."""
    as_of = scope.as_of
    if getattr(scope, "date_to", None) and scope.date_to < as_of:
        as_of = scope.date_to  # the books are cut there: judge the year at that date
    rows = evaluate(con, as_of, summary=summary)
    date_from = getattr(scope, "date_from", None)
    if date_from is not None:
        # a period slice (--from) counts that period's postings only: a start month of 8月 or
        # "3户" are the slice's, not the year's, and the method says so beside each figure
        to = as_of.isoformat()
        for r in rows:
            if r["measure"] is not None and r["status"] != "needs_evidence":
                r["method"] = _noted(r["method"], f"仅计 {date_from.isoformat()} 至 {to} 期间的记账",
                                     f"counting only postings from {date_from.isoformat()} to {to}")
    with transaction(con):
        con.execute("delete from run_indicators where run_id = ?", [run_id])
        if rows:
            # one statement, a list a column (executemany is a call into DuckDB a row, each waiting
            # for the interpreter while the suites run GX beside it: 0.2-0.3 s for 35 rows)
            # (the insert casts each list's values to its column's type, a list of nulls too)
            columns = ("notice_no", "purpose", "indicator", "target", "observed", "status", "method",
                       "over_ceiling", "table_seq", "indicator_seq")
            con.execute(
                f"insert into run_indicators (run_id, {', '.join(columns)}) "
                f"select ?, {', '.join('unnest(?)' for _ in columns)}",
                [run_id, *([r[c] for r in rows] for c in columns)],
            )
    return []
