-- rule: OUT_OF_PERIOD
-- severity: error
-- cites: 一
-- zh: 支出记账日期不在通知的预算年度内，或以前年度支出收回冲减了本年度支出
-- en: Expenditure posted outside the notice's fiscal year, or a refund of a prior year's expenditure credited against this year's
-- stage: ledger
--
-- Invariant (clause 一: 下达2024年补助资金预算): every expenditure line tied to a notice is
-- posted within the notice's fiscal year, e.g. a December 2023 prepayment booked to the 2024
-- fund, or a 2025 payment still drawn on it. Every such line is reported, reversals included:
-- a line in another year's books stays there whatever is done later. Lines without a date are
-- INPUT_ROW_INVALID at load and not judged here. The as-of date and the run's date range
-- still apply (a range that excludes 2023 does not see 2023 lines).
--
-- The same holds the other way round: what this year's expenditure records is this year's. A
-- refund of money paid out in an earlier year (以前年度支出收回, fct_expenditure_booked
-- .prior_year_refund: a credit whose summary says 收回 / 退回 … of 以前年度 / 上年 or of an
-- earlier year) credited to a 7xxx account of this year is a booking across years (跨年度):
-- under 政府会计制度 it is no reduction of the year's budget expenditure (it goes to 财政拨款结转
-- 年初余额调整, or back to the treasury), and netted it hides what the year spent. The facts
-- count it nowhere (fct_expenditure leaves it out: the summary and OVER_ALLOCATION read the
-- year's spending without it); this rule reports it, an error like any line of another year, so
-- that the voucher is rebooked. No rule of its own: the contract's catalogue has this one for
-- what belongs to another year. A line of another year's 文号 (fct_notice_lines
-- .doc_of_other_year) is that year's notice's, not judged here (DOC_NO_MISMATCH says it). A
-- refund posted in another year than the notice's is said as posted out of the year, as before.
with dated as (
    select e.*
    from fct_expenditure_booked as e
    where e.posted_on is not null
      and not e.batch_repeat
      and not e.doc_of_other_year
      and e.amount <> 0
      and (extract(year from e.posted_on) <> e.fiscal_year or e.prior_year_refund)
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
        case when d.prior_year_refund and extract(year from d.posted_on) = d.fiscal_year
             then '以前年度支出收回 / refund of a prior year: ' || d.summary
             else cast(d.posted_on as varchar) end as observed,
        case when d.prior_year_refund and extract(year from d.posted_on) = d.fiscal_year
             then '凭证 ' || coalesce(d.voucher_no, '') || ' 第' || coalesce(d.line_no, '') || '行（'
                  || d.summary || '）是以前年度支出收回，贷记本年支出科目 ' || coalesce(d.account_code, '')
                  || '，冲减了通知 ' || d.notice_no || ' 的 ' || cast(extract(year from d.posted_on) as varchar)
                  || ' 年支出 ' || cast(-d.amount as varchar) || ' 元：以前年度支出收回不冲减本年预算支出，'
                  || '应记入财政拨款结转（年初余额调整）或缴回国库；未计入本年支出 / voucher '
                  || coalesce(d.voucher_no, '') || ' line ' || coalesce(d.line_no, '') || ' ('
                  || d.summary || ') refunds a prior year''s expenditure and is credited to this year''s '
                  || 'expenditure account ' || coalesce(d.account_code, '') || ', netting '
                  || cast(-d.amount as varchar) || ' yuan off ' || cast(extract(year from d.posted_on) as varchar)
                  || '''s spending under notice ' || d.notice_no || ': such a refund is no reduction of '
                  || 'the year''s budget expenditure (book it to 财政拨款结转 年初余额调整, or return it to '
                  || 'the treasury); not counted as this year''s spending'
             else '凭证 ' || coalesce(d.voucher_no, '') || ' 第' || coalesce(d.line_no, '') || '行 记账日期 '
                  || cast(d.posted_on as varchar) || ' 不在通知 ' || d.notice_no || ' 的预算年度 '
                  || cast(d.fiscal_year as varchar) || ' 年内 / voucher ' || coalesce(d.voucher_no, '')
                  || ' line ' || coalesce(d.line_no, '') || ' posted on ' || cast(d.posted_on as varchar)
                  || ', outside fiscal year ' || cast(d.fiscal_year as varchar) || ' of notice '
                  || d.notice_no end as message,
        d.source_file,
        d.row_no as source_row
    from dated as d
)
select * from findings
