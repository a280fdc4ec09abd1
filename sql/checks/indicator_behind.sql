-- rule: INDICATOR_BEHIND
-- severity: warning
-- cites: 绩效目标表; 财预〔2019〕136号
-- zh: 年度中，绩效指标进度落后于时间进度
-- en: During the year, a performance indicator's progress lags the share of the year elapsed
-- stage: indicator
--
-- Invariant: during the fiscal year, no indicator measured from the ledger is behind: its
-- progress is not below the time progress by more than the configured threshold (double
-- monitoring, config/indicators.toml), and no ceiling it sets is already broken. The judgement
-- is made by pipeline/indicators.py into run_indicators; its method column says by how much.
with ctx as (select * from run_context limit 1),
behind as (
    select
        r.*,
        split_part(coalesce(r.method, ''), ' / ', 1) as method_zh,
        case when position(' / ' in r.method) > 0
             then substr(r.method, position(' / ' in r.method) + 3) else '' end as method_en,
        -- a ceiling (<=480元/户/月, <=100%) already broken, as pipeline/indicators.py judged it;
        -- otherwise progress lags the calendar, or a deadline (<=1月: paid by January) passed
        coalesce(r.over_ceiling, false) as ceiling
    from run_indicators as r
    join ctx on r.run_id = ctx.run_id
    where r.status = 'behind'
)
select
    b.notice_no,
    b.purpose,
    b.target as expected,
    b.observed,
    '绩效指标“' || b.indicator || case when b.ceiling then '”年度中已超出上限：目标 '
                                       else '”进度滞后：目标 ' end
        || b.target || '，截至目前 '
        || coalesce(b.observed, '无') || '（' || b.method_zh || '） / indicator ' || b.indicator
        || case when b.ceiling then ' is already over its ceiling during the year: target '
                else ' is behind: target ' end
        || b.target || ', so far ' || coalesce(b.observed, 'none')
        || ' (' || b.method_en || ')' as message,
    b.indicator as key_detail
from behind as b
