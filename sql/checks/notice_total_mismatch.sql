-- rule: NOTICE_TOTAL_MISMATCH
-- severity: error
-- cites: 分配表
-- zh: 分配表各行金额之和与合计数不符
-- en: The allocation lines do not add up to the total the notice states
-- stage: notice
--
-- Invariant: for every notice, the sum of its allocation lines equals its stated total (元).
-- All lines of the notice are summed, whatever purpose the run is scoped to, so a run limited to
-- one purpose does not report a false mismatch.
with notice_lines as (
    select a.notice_no, sum(a.amount) as lines_total, count(*) as line_count
    from allocation_lines as a
    join fct_notices as n on n.notice_no = a.notice_no
    group by a.notice_no
),
mismatched as (
    select
        n.notice_no,
        n.stated_total,
        cast(coalesce(l.lines_total, 0) as decimal(18,2)) as lines_total,
        coalesce(l.line_count, 0) as line_count
    from fct_notices as n
    left join notice_lines as l on l.notice_no = n.notice_no
    where coalesce(l.lines_total, 0) <> n.stated_total
)
select
    notice_no,
    cast(lines_total - stated_total as decimal(18,2)) as amount,
    cast(stated_total as varchar) as expected,
    cast(lines_total as varchar) as observed,
    '分配表' || line_count || '行合计 ' || cast(lines_total as varchar) || ' 元，与通知所列合计 '
        || cast(stated_total as varchar) || ' 元不符（差额 ' || cast(lines_total - stated_total as varchar)
        || ' 元） / the ' || line_count || ' allocation lines add up to ' || cast(lines_total as varchar)
        || ' yuan, the stated total is ' || cast(stated_total as varchar) || ' yuan (difference '
        || cast(lines_total - stated_total as varchar) || ')' as message
from mismatched
