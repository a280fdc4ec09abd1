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
unreversed as (
    -- a wrong line that its mirror reversal cancels is corrected (fct_reversed_lines); a
    -- reversal that cancels nothing is reported too
    select d.*
    from defects as d
    where not exists (select 1 from fct_reversed_lines as c
                      where c.notice_no = d.notice_no and c.file_id = d.file_id and c.row_no = d.row_no)
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
