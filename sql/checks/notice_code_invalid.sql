-- rule: NOTICE_CODE_INVALID
-- severity: error
-- cites: 三
-- zh: 分配行的支出功能科目不是有效的项级科目，或违反第三条的列支规定
-- en: An allocation line's function code is not a valid 7-digit item code, or breaks the clause 三 mapping
-- stage: notice
--
-- Invariant: every allocation line is booked to a 7-digit item (项) code that exists in the
-- function classification of the notice's fiscal year (reference/function_codes_<year>.csv),
-- is one of the codes clause 三 lists, and agrees with clause 三's mapping rules (code_rules:
-- a purpose naming 危旧房 / 棚户区 goes to 2210103, 城中村 / 配售型 to 2210199). One finding per
-- line, naming every reason. When no classification is kept for the notice's year, the latest
-- earlier year is used (the code table changes rarely; a missing year must not fail every line).
with ref_years as (
    select distinct fiscal_year from ref_function_codes
),
lines as (
    select
        a.notice_no, a.line_seq, a.purpose, a.amount, a.function_code, n.allowed_codes,
        coalesce(
            (select max(y.fiscal_year) from ref_years as y where y.fiscal_year <= n.fiscal_year),
            (select min(y.fiscal_year) from ref_years as y)
        ) as ref_year
    from fct_allocation_lines as a
    join fct_notices as n on n.notice_no = a.notice_no
),
problems as (
    select notice_no, line_seq, 1 as ord, cast(null as varchar) as expected_code,
        '科目“' || coalesce(function_code, '') || '”不是7位项级科目编码' as reason_zh,
        'code "' || coalesce(function_code, '') || '" is not a 7-digit item code' as reason_en
    from lines
    where not regexp_matches(coalesce(function_code, ''), '^[0-9]{7}$')
    union all
    select l.notice_no, l.line_seq, 2, null,
        '科目 ' || l.function_code || ' 不在' || coalesce(cast(l.ref_year as varchar), '') || '年政府收支分类科目（项级）中',
        'code ' || l.function_code || ' is not an item of the ' || coalesce(cast(l.ref_year as varchar), '')
            || ' function classification'
    from lines as l
    where regexp_matches(coalesce(l.function_code, ''), '^[0-9]{7}$')
      and not exists (
          select 1 from ref_function_codes as r
          where r.fiscal_year = l.ref_year and r.code = l.function_code and r.level = 'item'
      )
    union all
    select notice_no, line_seq, 3, null,
        '科目 ' || function_code || ' 不在第三条列明的科目（' || array_to_string(allowed_codes, '、') || '）中',
        'code ' || function_code || ' is not among the codes clause 三 lists ('
            || array_to_string(allowed_codes, ', ') || ')'
    from lines
    where regexp_matches(coalesce(function_code, ''), '^[0-9]{7}$')
      and cardinality(allowed_codes) > 0
      and not exists (select 1 from unnest(allowed_codes) as a(code) where a.code = function_code)
    union all
    select l.notice_no, l.line_seq, 4, r.function_code,
        '用途含“' || r.keyword || '”，按第' || r.clause || '条应列入 ' || r.function_code || '，实际为 ' || coalesce(l.function_code, ''),
        'the purpose names ' || r.keyword || ': clause ' || r.clause || ' books it to ' || r.function_code
            || ', not ' || coalesce(l.function_code, '')
    from lines as l
    join code_rules as r
      on r.notice_no = l.notice_no
     and position(purpose_key(r.keyword) in purpose_key(l.purpose)) > 0
    where r.function_code <> coalesce(l.function_code, '')
),
distinct_problems as (
    select distinct notice_no, line_seq, ord, expected_code, reason_zh, reason_en from problems
),
per_line as (
    select
        notice_no,
        line_seq,
        min(expected_code) as expected_code,
        string_agg(reason_zh, '；' order by ord, reason_zh) as reasons_zh,
        string_agg(reason_en, '; ' order by ord, reason_en) as reasons_en
    from distinct_problems
    group by notice_no, line_seq
)
select
    p.notice_no,
    l.purpose,
    l.amount,
    coalesce(p.expected_code, '7位项级科目 / 7-digit item code') as expected,
    l.function_code as observed,
    '分配行“' || l.purpose || '”：' || p.reasons_zh || ' / allocation line ' || l.purpose || ': '
        || p.reasons_en as message
from per_line as p
join lines as l on l.notice_no = p.notice_no and l.line_seq = p.line_seq
