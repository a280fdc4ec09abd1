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
-- REVENUE_MISCODED. Reversed lines, and a wrong code corrected in bulk (its lines net to 0.00),
-- are passed over as in CODE_NOT_ITEM_LEVEL.
with unreversed as (
    -- fct_miscoded_standing: not corrected in bulk, nor cancelled by a mirror
    select e.*
    from fct_miscoded_standing as e
    where e.function_code_status = 'unknown'
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
            || case when u.code_lines > 1  -- what is left on the code, where other lines are on it
                    then '（该用途记入 ' || u.function_code || ' 的净额 ' || cast(u.code_net as varchar) || ' 元）'
                    else '' end
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || coalesce(u.purpose, '(blank)') || ' booked to ' || u.function_code
            || ', which is not in the ' || cast(u.fiscal_year as varchar) || ' classification'
            || coalesce('; expected ' || u.allocated_code, '')
            || case when u.code_lines > 1
                    then ' (net ' || cast(u.code_net as varchar) || ' on ' || u.function_code || ' for the purpose)'
                    else '' end as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
