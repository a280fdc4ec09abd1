-- rule: UNMATCHED_EXPENDITURE
-- severity: error
-- cites: 一, 三
-- zh: 挂在本通知下的支出，其项目名称不对应任何分配用途
-- en: Expenditure tied to the notice whose purpose names no allocation line
-- stage: ledger
--
-- Invariant: every expenditure line tied to a notice (by project code or budget document
-- number) sits in the sub-account of one of its allocation lines: same name after normalising
-- brackets, width and spaces, a configured alias, or the same core name (fct_purpose_match).
-- A blank sub-account names no line and is reported. The pooled account named after the whole
-- fund, and a sub-account naming several lines, are COMMINGLED_ACCOUNT instead. Lines of other
-- projects and funds are not tied to the notice and never reach this check. A line netted out
-- by its mirror reversal (fct_recon_lines: same sub-account, payee, function code, direct flag,
-- project code, fund source and amount, opposite sign) is not reported.
with defects as (
    select e.*
    from fct_expenditure as e
    where e.match_kind = 'unmatched'
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
allocation_names as (
    select notice_no, string_agg(purpose, '、' order by line_seq) as purposes
    from allocation_lines
    group by notice_no
),
findings as (
    select
        u.notice_no,
        u.purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        a.purposes as expected,
        u.purpose as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 挂在通知 '
            || u.notice_no || ' 下，但项目名称 ' || coalesce(u.purpose, '(空)')
            || ' 不对应任何分配用途（' || coalesce(a.purposes, '') || '）'
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ' is tied to notice ' || u.notice_no || ' but its purpose '
            || coalesce(u.purpose, '(blank)') || ' names no allocation line' as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
    left join allocation_names as a on a.notice_no = u.notice_no
)
select * from findings
