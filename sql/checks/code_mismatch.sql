-- rule: CODE_MISMATCH
-- severity: error
-- cites: 三
-- zh: 支出记入了与分配用途不同的项级科目
-- en: Expenditure of a purpose booked to another valid item code than the one allocated to it
-- stage: ledger
--
-- Invariant: an expenditure line in the sub-account of an allocation line is booked to that
-- line's function code (clause 三: 按支出方向 … 明确至项级科目). Only valid item codes are compared:
-- a line already reported as CODE_NOT_ITEM_LEVEL or CODE_UNKNOWN is not reported again, and
-- lines of pooled, multi-purpose or unmatched sub-accounts have no allocated code to compare
-- (COMMINGLED_ACCOUNT / UNMATCHED_EXPENDITURE report them). Reversed lines are netted out as in
-- CODE_NOT_ITEM_LEVEL. expectations/fct_recon_lines.json enforces the same rule
-- (booked_item_code = allocated_code); tests/test_expectations.py checks that the two agree.
with defects as (
    select e.*
    from fct_expenditure as e
    where e.match_kind = 'line'
      and not e.batch_repeat
      and e.function_code_status = 'item'
      and length(e.allocated_code) = 7
      and e.function_code <> e.allocated_code
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
        u.allocated_purpose as purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        u.allocated_code as expected,
        u.function_code as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 用途 '
            || u.allocated_purpose || ' 应记 ' || u.allocated_code || '，实记 ' || u.function_code
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || u.allocated_purpose || ' expected ' || u.allocated_code
            || ', booked ' || u.function_code as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
