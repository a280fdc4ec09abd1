-- rule: TARGET_WEIGHTS_UNBALANCED
-- severity: warning
-- cites: 绩效目标表
-- zh: 绩效目标表指标分值权重合计不等于90（列有预算执行率指标时为100）
-- en: A performance target table's indicator weights do not add up to 90 (100 where the budget execution rate is listed)
-- stage: notice
--
-- Invariant: the weights (指标分值权重) of a target table add up to 90, the remaining 10 points
-- of the self-evaluation belonging to the budget execution rate (预算执行率); a table that lists
-- 预算执行率 among its own indicators adds up to 100. A table with no weights at all is skipped.
with tables as (
    select
        tt.notice_no,
        tt.table_seq,
        tt.purpose,
        sum(i.weight) as total_weight,
        count(i.weight) as weighted,
        bool_or(position('预算执行率' in replace(i.name, ' ', '')) > 0) as lists_execution_rate
    from target_tables as tt
    join fct_notices as n on n.notice_no = tt.notice_no
    join target_indicators as i on i.notice_no = tt.notice_no and i.table_seq = tt.table_seq
    group by tt.notice_no, tt.table_seq, tt.purpose
),
unbalanced as (
    select
        t.*,
        case when t.lists_execution_rate then 100 else 90 end as expected_weight,
        regexp_replace(cast(cast(t.total_weight as decimal(18,2)) as varchar), '\.00$', '') as observed_weight
    from tables as t
    where t.weighted > 0
      and t.total_weight <> case when t.lists_execution_rate then 100 else 90 end
)
select
    u.notice_no,
    u.purpose,
    cast(u.expected_weight as varchar) as expected,
    u.observed_weight as observed,
    '绩效目标表“' || u.purpose || '”指标权重合计 ' || u.observed_weight || '，应为 '
        || cast(u.expected_weight as varchar) || ' / the weights of the target table for '
        || u.purpose || ' add up to ' || u.observed_weight || ', expected '
        || cast(u.expected_weight as varchar) as message,
    cast(u.table_seq as varchar) as key_detail
from unbalanced as u
