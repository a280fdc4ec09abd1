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
-- (COMMINGLED_ACCOUNT / UNMATCHED_EXPENDITURE report them). A wrong code whose lines under the
-- allocation line net to 0.00 as of the date is corrected, in bulk or line by line, and none of
-- its lines is reported (fct_wrong_lines); on a code with something left, the lines not
-- cancelled by their mirror are, as in CODE_NOT_ITEM_LEVEL, each saying what is left on the
-- code. expectations/fct_recon_lines.json enforces the same rule (booked_item_code =
-- allocated_item_code where neither reversed nor code_corrected); tests/test_expectations.py
-- checks that the two agree.
with unreversed as (
    -- fct_miscoded_standing: on a wrong code (fct_wrong_lines.code_wrong), not corrected in bulk,
    -- nor cancelled by a mirror. A valid item code is wrong only as another than the 7-digit
    -- code of the allocation line whose sub-account the line is in
    select e.*
    from fct_miscoded_standing as e
    where e.function_code_status = 'item'
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
            || case when u.code_lines > 1  -- what is left on the code, where other lines are on it
                    then '（该用途记入 ' || u.function_code || ' 的净额 ' || cast(u.code_net as varchar) || ' 元）'
                    else '' end
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || u.allocated_purpose || ' expected ' || u.allocated_code
            || ', booked ' || u.function_code
            || case when u.code_lines > 1
                    then ' (net ' || cast(u.code_net as varchar) || ' on ' || u.function_code || ' for the purpose)'
                    else '' end as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
