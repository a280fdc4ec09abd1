-- rule: OUT_OF_PERIOD
-- severity: error
-- cites: 一
-- zh: 支出记账日期不在通知的预算年度内
-- en: Expenditure posted outside the notice's fiscal year
-- stage: ledger
--
-- Invariant (clause 一: 下达2024年补助资金预算): every expenditure line tied to a notice is
-- posted within the notice's fiscal year, e.g. a December 2023 prepayment booked to the 2024
-- fund, or a 2025 payment still drawn on it. Every such line is reported, reversals included:
-- a line in another year's books stays there whatever is done later. Lines without a date are
-- INPUT_ROW_INVALID at load and not judged here. The as-of date and the run's date range
-- still apply (a range that excludes 2023 does not see 2023 lines).
with dated as (
    select e.*
    from fct_expenditure as e
    where e.posted_on is not null
      and not e.batch_repeat
      and e.amount <> 0
      and extract(year from e.posted_on) <> e.fiscal_year
),
findings as (
    select
        d.notice_no,
        coalesce(d.allocated_purpose, d.purpose) as purpose,
        d.voucher_no,
        d.line_no,
        d.posted_on,
        d.amount,
        cast(d.fiscal_year as varchar) || '-01-01..' || cast(d.fiscal_year as varchar) || '-12-31' as expected,
        cast(d.posted_on as varchar) as observed,
        '凭证 ' || coalesce(d.voucher_no, '') || ' 第' || coalesce(d.line_no, '') || '行 记账日期 '
            || cast(d.posted_on as varchar) || ' 不在通知 ' || d.notice_no || ' 的预算年度 '
            || cast(d.fiscal_year as varchar) || ' 年内 / voucher ' || coalesce(d.voucher_no, '')
            || ' line ' || coalesce(d.line_no, '') || ' posted on ' || cast(d.posted_on as varchar)
            || ', outside fiscal year ' || cast(d.fiscal_year as varchar) || ' of notice '
            || d.notice_no as message,
        d.source_file,
        d.row_no as source_row
    from dated as d
)
select * from findings
