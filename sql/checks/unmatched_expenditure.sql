-- rule: UNMATCHED_EXPENDITURE
-- severity: error
-- cites: 一, 三
-- zh: 挂在本通知下的支出，其项目名称不对应任何分配用途
-- en: Expenditure tied to the notice whose purpose names no allocation line
-- stage: ledger
--
-- Invariant: every expenditure line tied to a notice (by project code or budget document
-- number) sits in the sub-account of one of its allocation lines: same name after normalising
-- brackets, width and spaces, a configured alias, or the same core name (fct_purpose_match).
-- A blank sub-account names no line and is reported. The pooled account named after the whole
-- fund, and a sub-account naming several lines, are COMMINGLED_ACCOUNT instead. Lines of other
-- projects and funds are not tied to the notice and never reach this check. A line netted out
-- by its mirror reversal (fct_reversed_lines: same sub-account, payee, function code, direct flag,
-- project code, fund source and amount, opposite sign) is not reported. A batch booked to a
-- purpose the notice does not allocate is often taken off in bulk, by one red line without
-- payee, and booked again to the right sub-account: the lines of the purpose as booked (notice,
-- purpose_key) that net to 0.00 as of the date (fct_wrong_lines: account_wrong, account_corrected)
-- are corrected, and none of them is reported; where something is left, each line no mirror cancels
-- is, saying how much. expectations/fct_recon_lines.json (match_kind, where neither reversed nor
-- account_corrected) agrees.
with defects as (
    -- the unmatched lines of a purpose with something left on it (fct_wrong_lines: account_wrong;
    -- one with nothing left is corrected, in bulk or line by line); purpose_lines and
    -- purpose_net, for the message
    select e.*, w.account_lines as purpose_lines, w.account_net as purpose_net
    from fct_expenditure as e
    join fct_wrong_lines as w
      on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
    where w.account_wrong
      and not w.account_corrected
      and e.match_kind = 'unmatched'
),
unreversed as (
    -- a wrong line that its mirror reversal cancels is corrected (fct_reversed_lines); a
    -- reversal that cancels nothing is reported too
    select d.*
    from defects as d
    where not exists (select 1 from fct_reversed_lines as c
                      where c.notice_no = d.notice_no and c.file_id = d.file_id and c.row_no = d.row_no)
),
allocation_names as (
    select notice_no, string_agg(purpose, '、' order by line_seq) as purposes
    from allocation_lines
    group by notice_no
),
findings as (
    select
        u.notice_no,
        u.purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        a.purposes as expected,
        u.purpose as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 挂在通知 '
            || u.notice_no || ' 下，但项目名称 ' || coalesce(u.purpose, '(空)')
            || ' 不对应任何分配用途（' || coalesce(a.purposes, '') || '）'
            || case when u.purpose_lines > 1  -- what is left on the purpose, where other lines are on it
                    then '（该项目名称的净额 ' || cast(u.purpose_net as varchar) || ' 元）' else '' end
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ' is tied to notice ' || u.notice_no || ' but its purpose '
            || coalesce(u.purpose, '(blank)') || ' names no allocation line'
            || case when u.purpose_lines > 1
                    then ' (net ' || cast(u.purpose_net as varchar) || ' on the purpose)' else '' end as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
    left join allocation_names as a on a.notice_no = u.notice_no
)
select * from findings
