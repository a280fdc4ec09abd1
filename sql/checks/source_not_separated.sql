-- rule: SOURCE_NOT_SEPARATED
-- severity: error
-- cites: 二
-- zh: 资金来源为空，一笔分录混合了中央资金与地方资金，或地方资金记入中央直达资金的用途账户
-- en: Fund source blank, central and local money mixed in one line, or local money booked in the sub-account of a central direct allocation line
-- stage: ledger
--
-- Invariant (clause 二: 按资金明细来源分别列示和登录): every expenditure line tied to a notice
-- names one source of money. Reported: a blank fund source, and a source that names central
-- money (中央) together with local money (地方 / 配套 / 本级 / 自有), e.g. 中央直达资金+地方配套资金,
-- 中央及地方 (fct_expenditure.is_mixed_money). Applies to every in-scope expenditure line, whichever sub-account it sits in. Also
-- reported: local money (地方配套 / 本级财力 / 自有, no 中央: fct_expenditure.is_local_money) booked
-- in the sub-account of a 中央直达 allocation line, which keeps central money apart; the line then
-- counts toward that line's spending as booked (OVER_ALLOCATION), and needs no direct flag. Only
-- spending is judged; a payment cancelled by its mirror reversal (fct_reversed_lines: same
-- sub-account, payee, function code, direct flag, project code, fund source and amount,
-- opposite sign) is not reported. A batch booked with a wrong source is often taken off in bulk,
-- by one red line without payee, and booked again right: the lines of one allocation line (a
-- sub-account that names none: that sub-account) with one fund source as booked (blank as one)
-- that net to 0.00 as of the date (fct_wrong_lines: source_wrong, source_corrected) are corrected,
-- and none of them is reported; where something is left, each payment no mirror cancels is, saying
-- how much. expectations/fct_recon_lines.json (fund_source_named, local_money_apart, where neither
-- reversed nor source_corrected) agrees.
with standing as (
    -- the lines of a wrong source (fct_wrong_lines.source_wrong) with something left under their
    -- allocation line (one with nothing left is corrected, in bulk or line by line);
    -- source_lines and source_net, for the message. Which is wrong, for the message: source_blank,
    -- local_in_central, or else central and local money named together (is_mixed_money)
    select
        e.*,
        nullif(trim(coalesce(e.fund_source, '')), '') is null as source_blank,
        e.match_kind = 'line' and e.allocated_is_direct and e.is_local_money as local_in_central,
        w.source_lines, w.source_net
    from fct_expenditure as e
    join fct_wrong_lines as w
      on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
    where w.source_wrong
      and not w.source_corrected
),
findings as (
    select
        r.notice_no,
        coalesce(r.allocated_purpose, r.purpose) as purpose,
        r.voucher_no,
        r.line_no,
        r.posted_on,
        r.amount,
        '单一资金来源 / one source per line' as expected,
        nullif(trim(coalesce(r.fund_source, '')), '') as observed,
        '凭证 ' || coalesce(r.voucher_no, '') || ' 第' || coalesce(r.line_no, '') || '行 用途 '
            || coalesce(r.purpose, '(空)')
            || case when r.source_blank then ' 资金来源为空'
                    when r.local_in_central then ' 记入中央直达资金的用途账户，资金来源却为 ' || r.fund_source
                    else ' 资金来源 ' || r.fund_source || ' 混合了中央资金与地方资金' end
            || case when r.source_lines > 1  -- what is left of the booking, where other lines are in it
                    then '（该用途此资金来源的净额 ' || cast(r.source_net as varchar) || ' 元）' else '' end
            || '，应按来源分别记账 / voucher ' || coalesce(r.voucher_no, '') || ' line '
            || coalesce(r.line_no, '') || ': purpose ' || coalesce(r.purpose, '(blank)')
            || case when r.source_blank then ' has no fund source'
                    when r.local_in_central then ' is the sub-account of central direct money, but the line '
                                                 || 'is local money (' || r.fund_source || ')'
                    else ' mixes central and local money in one line (' || r.fund_source || ')' end
            || case when r.source_lines > 1
                    then ' (net ' || cast(r.source_net as varchar) || ' on this fund source for the purpose)'
                    else '' end
            || '; book each source separately' as message,
        r.source_file,
        r.row_no as source_row
    from standing as r
    -- spending only: a payment that its mirror reversal cancels is corrected
    where r.amount > 0
      and not exists (select 1 from fct_reversed_lines as c
                        where c.notice_no = r.notice_no and c.file_id = r.file_id and c.row_no = r.row_no)
)
select * from findings
