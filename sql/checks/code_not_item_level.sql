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
-- (fct_reversed_lines: same sub-account, payee, function code, direct flag, project code, fund
-- source and amount, opposite sign) is corrected and not reported: each reversal cancels the latest
-- such line posted on or before its day and not cancelled already; a reversal with no such line
-- before it to cancel is reported itself. A wrong code whose lines under the allocation line (a
-- sub-account that names none: under the sub-account) net to 0.00 as of the date is corrected,
-- however the correction was booked (one red line for a batch, no payee), and none of its lines
-- is reported (fct_wrong_lines); on a code with something left, each line reported says how
-- much. expectations/fct_recon_lines.json (function_code_status) agrees.
with unreversed as (
    -- fct_miscoded_standing: not corrected in bulk, nor cancelled by a mirror
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
    from fct_miscoded_standing as e
    where e.function_code_status in ('blank', 'malformed', 'class', 'subclass')
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
            || case when u.code_lines > 1  -- what is left on the code, where other lines are on it
                    then '（该用途记入此科目的净额 ' || cast(u.code_net as varchar) || ' 元）' else '' end
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || coalesce(u.purpose, '(blank)') || ' booked to ' || u.level_en || ' '
            || coalesce(nullif(trim(u.function_code), ''), nullif(trim(u.function_code_raw), ''), '(blank)')
            || ', expected the 7-digit item code' || coalesce(' ' || u.allocated_code, '')
            || case when u.code_lines > 1
                    then ' (net ' || cast(u.code_net as varchar) || ' on this code for the purpose)' else '' end as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
