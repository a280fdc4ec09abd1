-- rule: INDICATOR_NOT_MET
-- severity: error
-- cites: 绩效目标表
-- zh: 年度结束后，可由账簿计量的绩效指标未达到目标值
-- en: After year end, a performance indicator measurable from the ledger missed its target
-- stage: indicator
--
-- Invariant: once the fiscal year is over (as-of on or after 12-31), every indicator measured
-- from the ledger (pipeline/indicators.py -> run_indicators of this run) meets its target.
-- Indicators a ledger cannot show are needs_evidence and never reported here.
with ctx as (select * from run_context limit 1),
missed as (
    select
        r.*,
        split_part(coalesce(r.method, ''), ' / ', 1) as method_zh,
        case when position(' / ' in r.method) > 0
             then substr(r.method, position(' / ' in r.method) + 3) else '' end as method_en
    from run_indicators as r
    join ctx on r.run_id = ctx.run_id
    where r.status = 'not_met'
)
select
    m.notice_no,
    m.purpose,
    m.target as expected,
    m.observed,
    '绩效指标“' || m.indicator || '”未达到目标 ' || m.target || '，实际 ' || coalesce(m.observed, '无')
        || '（' || m.method_zh || '） / indicator ' || m.indicator || ' missed its target '
        || m.target || ': observed ' || coalesce(m.observed, 'none') || ' (' || m.method_en || ')'
        as message,
    m.indicator as key_detail
from missed as m
