-- rule: CODE_UNKNOWN
-- severity: error
-- cites: 三
-- zh: 7位功能科目不在当年政府收支分类科目中
-- en: 7-digit function code not in that year's classification
-- stage: ledger
--
-- Invariant: every 7-digit function code on an expenditure line tied to a notice is an item of
-- the government classification of the notice's fiscal year (reference/function_codes_<year>.csv;
-- the latest earlier year when that year has no file). A revenue code (1xxxxxx) on an
-- expenditure line is unknown as an expenditure code and is reported here, not as
-- REVENUE_MISCODED. Reversed lines are netted out as in CODE_NOT_ITEM_LEVEL.
with defects as (
    select e.*
    from fct_expenditure as e
    where e.function_code_status = 'unknown'
      and not e.batch_repeat
      and e.amount <> 0
),
-- A mirror key's payments and reversals laid end to end in posting order (a day's payments
-- before its reversals): `pending` counts the payments not yet reversed. Each reversal cancels
-- the latest payment still pending on or before its day (as in fct_recon_lines).
stacked as (
    select
        d.*,
        sum(case when d.amount > 0 then 1 else -1 end)
            over (mirror rows between unbounded preceding and current row) as pending
    from defects as d
    window mirror as (
        partition by d.notice_no, d.purpose_key, d.payee, d.function_code, d.direct_flag, d.project_code,
                     d.fund_source, abs(d.amount)
        order by d.posted_on, case when d.amount > 0 then 0 else 1 end, d.voucher_no,
                 length(d.line_no), d.line_no, d.source_file, d.row_no)
),
ranked as (
    select
        s.*,
        min(s.pending) over (mirror rows between 1 following and unbounded following) as pending_later,
        min(s.pending) over (mirror rows between unbounded preceding and 1 preceding) as pending_before
    from stacked as s
    window mirror as (
        partition by s.notice_no, s.purpose_key, s.payee, s.function_code, s.direct_flag, s.project_code,
                     s.fund_source, abs(s.amount)
        order by s.posted_on, case when s.amount > 0 then 0 else 1 end, s.voucher_no,
                 length(s.line_no), s.line_no, s.source_file, s.row_no)
),
unreversed as (
    select *
    from ranked
    -- a payment stands unless the count later falls below its own (a later reversal took it);
    -- a reversal stands when no payment was pending (the count at a new low)
    where (amount > 0 and coalesce(pending_later >= pending, true))
       or (amount < 0 and pending < 0 and coalesce(pending < pending_before, true))
),
findings as (
    select
        u.notice_no,
        coalesce(u.allocated_purpose, u.purpose) as purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        coalesce(u.allocated_code, cast(u.fiscal_year as varchar) || '年分类科目') as expected,
        u.function_code as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 用途 '
            || coalesce(u.purpose, '(空)') || ' 记入科目 ' || u.function_code || '，该科目不在'
            || cast(u.fiscal_year as varchar) || '年政府收支分类科目中'
            || coalesce('，应记 ' || u.allocated_code, '')
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || coalesce(u.purpose, '(blank)') || ' booked to ' || u.function_code
            || ', which is not in the ' || cast(u.fiscal_year as varchar) || ' classification'
            || coalesce('; expected ' || u.allocated_code, '') as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
