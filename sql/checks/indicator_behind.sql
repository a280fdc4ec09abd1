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
        -- a ceiling: at most so much (<=480元/户/月, ≤100%), not by a month or day (<=1月)
        regexp_matches(r.target, '^(<|≤|≦|＜|不超过|不高于|小于|低于)')
            and not regexp_matches(r.target, '[0-9０-９] *(月|日)$') as ceiling
    from run_indicators as r
    join ctx on r.run_id = ctx.run_id
    where r.status = 'behind'
)
select
    b.notice_no,
    b.purpose,
    b.target as expected,
    b.observed,
    -- a ceiling (<=480元/户/月, <=100%) broken before year end is over it, not late; a deadline
    -- (<=1月: paid by January) passed is late
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
