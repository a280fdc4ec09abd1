-- rule: OVER_ALLOCATION
-- severity: error
-- cites: 项目预算控制率
-- zh: 用途累计支出超过分配额
-- en: Cumulative spending of a purpose exceeds its allocation
-- stage: ledger
--
-- Invariant (项目预算控制率 <= 100%): the net spending of every allocation line, as of the as-of
-- date, does not exceed its allocation. A purpose's spending is every expenditure line in its
-- sub-account, whatever else is wrong with the line (miscoded, unflagged, out of period,
-- duplicated): all of it was paid from that money. Reversals net, so a purpose whose final total
-- is back within its allocation is not a breach, even if it was above it for a while.
-- One finding per purpose: voucher_no / line_no = the line that pushed the running total (in
-- order of date, voucher, line) above the allocation for good, i.e. the first line after which
-- the running total never came back to the allocation or below; without reversals that is
-- simply the first line to cross it. expected = allocation, observed = total spent,
-- amount = the excess (spent - allocated).
--
-- Batches of one year that both allocate a purpose under one project code (提前下达 and 第二批):
-- a line without 指标文号 counted under each of them (NOTICE_TIE_AMBIGUOUS) is held against the
-- batches' allocations of its purpose together, once (fct_allocation_spending, kind 'pool'): said
-- on the pool's first allocation line, naming the notices, key_detail 'pool'. Each allocation
-- line is held to the lines counted under it alone (kind 'line'). A reduction (调减, a negative
-- allocation line of a later notice of the code and year) is held with the lines it reduces the
-- same way, though their spending cites the first notice's 文号.
with spending as (
    select s.notice_no, s.line_seq, s.kind, s.allocated_purpose, s.allocated_amount, s.voucher_no,
           s.line_no, s.posted_on, s.amount, s.source_file, s.row_no, s.pool_notices
    from fct_allocation_spending as s
    where s.kind <> 'member'
),
totals as (
    select
        notice_no, line_seq, kind,
        max(allocated_purpose) as purpose,
        max(allocated_amount) as allocated,
        sum(amount) as spent,
        max(pool_notices) as notices
    from spending
    group by notice_no, line_seq, kind
    having sum(amount) > max(allocated_amount)
),
-- The crossing line is found without ordering every line of the year. Lines are in order of
-- day first, so the running total at the end of a day is the sum of the days up to it, and
-- within a day it never falls below the total before the day plus the day's credits. Only the
-- days where it can be at or below the allocation after the last day that ended there are put
-- in line order: at 10M ledger lines 0.3 s instead of 1.0 s (the window sorted 1.5M lines).
days as (
    select s.notice_no, s.line_seq, s.kind, s.posted_on,
           sum(s.amount) as day_total,
           sum(case when s.amount < 0 then s.amount else 0 end) as day_credits,
           count(*) as day_lines
    from spending as s
    join totals as t on t.notice_no = s.notice_no and t.line_seq = s.line_seq and t.kind = s.kind
    group by s.notice_no, s.line_seq, s.kind, s.posted_on
),
running_days as (
    select
        d.*,
        t.allocated,
        coalesce(sum(d.day_total) over before, 0) as spent_before,
        coalesce(sum(d.day_lines) over before, 0) as lines_before
    from days as d
    join totals as t on t.notice_no = d.notice_no and t.line_seq = d.line_seq and t.kind = d.kind
    window before as (partition by d.notice_no, d.line_seq, d.kind order by d.posted_on
                      rows between unbounded preceding and 1 preceding)
),
within_days as (
    -- the place of the last line of the last day that ended within the allocation (0: none did)
    select t.notice_no, t.line_seq, t.kind,
           coalesce(max(case when r.spent_before + r.day_total <= r.allocated
                             then r.lines_before + r.day_lines end), 0) as within_to
    from totals as t
    join running_days as r on r.notice_no = t.notice_no and r.line_seq = t.line_seq and r.kind = t.kind
    group by t.notice_no, t.line_seq, t.kind
),
later_days as (
    -- after it: the day that follows it, and the days whose credits may bring the total back
    select r.*
    from running_days as r
    join within_days as w on w.notice_no = r.notice_no and w.line_seq = r.line_seq and w.kind = r.kind
    where r.lines_before = w.within_to
       or (r.lines_before > w.within_to and r.spent_before + r.day_credits <= r.allocated)
),
purpose_lines as (
    select
        s.*,
        d.allocated,
        d.lines_before + row_number() over w as ord,
        d.spent_before + sum(s.amount) over (w rows between unbounded preceding and current row)
            as running_total
    from spending as s
    join later_days as d
      on d.notice_no = s.notice_no and d.line_seq = s.line_seq and d.kind = s.kind
     and d.posted_on is not distinct from s.posted_on
    window w as (partition by s.notice_no, s.line_seq, s.kind, s.posted_on
                 order by length(s.voucher_no), s.voucher_no, length(s.line_no), s.line_no,
                          s.source_file, s.row_no)
),
last_within as (
    select w.notice_no, w.line_seq, w.kind,
           case when max(case when p.running_total <= p.allocated then p.ord end) > w.within_to
                then max(case when p.running_total <= p.allocated then p.ord end)
                else w.within_to end as last_within
    from within_days as w
    left join purpose_lines as p on p.notice_no = w.notice_no and p.line_seq = w.line_seq and p.kind = w.kind
    group by w.notice_no, w.line_seq, w.kind, w.within_to
),
crossing as (
    select t.*, p.voucher_no, p.line_no, p.posted_on, p.source_file, p.row_no
    from totals as t
    join last_within as w on w.notice_no = t.notice_no and w.line_seq = t.line_seq and w.kind = t.kind
    join purpose_lines as p
      on p.notice_no = t.notice_no and p.line_seq = t.line_seq and p.kind = t.kind and p.ord = w.last_within + 1
),
reduced_pools as (
    -- pools holding a reduction (调减): fct_allocation_spending holds it with the lines it reduces
    select pool_notice, pool_seq, bool_or(allocated_amount < 0) as reduced
    from fct_allocation_spending
    where kind = 'member'
    group by pool_notice, pool_seq
),
findings as (
    select
        c.notice_no,
        c.purpose,
        c.voucher_no,
        c.line_no,
        c.posted_on,
        cast(c.spent - c.allocated as decimal(18,2)) as amount,
        cast(c.allocated as varchar) as expected,
        cast(c.spent as varchar) as observed,
        '用途 ' || c.purpose
            || case when c.kind = 'pool' and coalesce(r.reduced, false)
                    then '（' || c.notices || ' 分配并调减此用途，按各通知合计）'
                    when c.kind = 'pool' then '（' || c.notices || ' 同一项目代码下均分配此用途，无指标文号的支出'
                    || '无法分清属哪一批，按各批合计）' else '' end
            || ' 累计支出 ' || cast(c.spent as varchar) || ' 元，超过分配额 '
            || case when c.kind = 'pool' then '合计 ' else '' end
            || cast(c.allocated as varchar) || ' 元（超支 ' || cast(c.spent - c.allocated as varchar)
            || ' 元），自凭证 ' || coalesce(c.voucher_no, '') || ' 第' || coalesce(c.line_no, '')
            || '行 起超出 / purpose ' || c.purpose
            || case when c.kind = 'pool' and coalesce(r.reduced, false)
                    then ' (allocated and reduced by ' || c.notices || ', counted together)'
                    when c.kind = 'pool' then ' (allocated by each of ' || c.notices || ' under one project '
                    || 'code; lines without 指标文号 cannot be told apart, so the batches are counted together)'
                    else '' end
            || ': cumulative spending ' || cast(c.spent as varchar)
            || ' exceeds the allocation ' || case when c.kind = 'pool' then 'in all ' else '' end
            || cast(c.allocated as varchar) || ' by '
            || cast(c.spent - c.allocated as varchar) || ', crossed by voucher '
            || coalesce(c.voucher_no, '') || ' line ' || coalesce(c.line_no, '') as message,
        c.source_file,
        c.row_no as source_row,
        case when c.kind = 'pool' then 'pool' end as key_detail
    from crossing as c
    left join reduced_pools as r on c.kind = 'pool' and r.pool_notice = c.notice_no and r.pool_seq = c.line_seq
)
select * from findings
