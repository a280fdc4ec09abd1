-- rule: CODE_NOT_ITEM_LEVEL
-- severity: error
-- cites: 三
-- zh: 支出功能科目未明确至项级（7位）科目
-- en: Expenditure booked to a function code that is not a 7-digit item code (class, subclass, blank or malformed)
-- stage: ledger
--
-- Invariant: every expenditure line tied to a notice carries a 7-digit item-level function code
-- (clause 三: 按实际支出方向将支出功能科目明确至项级科目). Fires on: class codes (3 digits, 221), subclass codes (5
-- digits, 22101), and also on a blank function code or one that is not digits / has another
-- length: none of them is an item code, and the accountant's fix is the same (book the line to
-- its item). observed is the code (digits), the code as written when it has none, or empty.
-- A 7-digit code missing from the classification is CODE_UNKNOWN instead. A wrong line cancelled by its mirror reversal
-- (fct_recon_lines: same sub-account, payee, function code, direct flag, project code, fund
-- source and amount, opposite sign) is corrected and not reported: each reversal cancels the latest
-- such line posted on or before its day and not cancelled already; a reversal with no such line
-- before it to cancel is reported itself.
with defects as (
    select
        e.*,
        case e.function_code_status
            when 'class' then '类级科目'
            when 'subclass' then '款级科目'
            when 'blank' then '空白科目'
            else '格式不符的科目'
        end as level_zh,
        case e.function_code_status
            when 'class' then 'a class-level code'
            when 'subclass' then 'a subclass-level code'
            when 'blank' then 'no function code'
            else 'a malformed code'
        end as level_en
    from fct_expenditure as e
    where e.function_code_status in ('blank', 'malformed', 'class', 'subclass')
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
        coalesce(u.allocated_code, '7位项级科目') as expected,
        coalesce(nullif(trim(u.function_code), ''), nullif(trim(u.function_code_raw), '')) as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 用途 '
            || coalesce(u.purpose, '(空)') || ' 记入' || u.level_zh || ' '
            || coalesce(nullif(trim(u.function_code), ''), nullif(trim(u.function_code_raw), ''), '(空)')
            || '，应明确至项级科目' || coalesce(' ' || u.allocated_code, '')
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || coalesce(u.purpose, '(blank)') || ' booked to ' || u.level_en || ' '
            || coalesce(nullif(trim(u.function_code), ''), nullif(trim(u.function_code_raw), ''), '(blank)')
            || ', expected the 7-digit item code' || coalesce(' ' || u.allocated_code, '') as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
