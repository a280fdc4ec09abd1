-- rule: DIRECT_FLAG_MISSING
-- severity: error
-- cites: 一, 二
-- zh: 中央直达资金支出未标注直达资金标识（或改标为中央参照直达资金）或项目代码
-- en: Expenditure from a 中央直达 allocation line without the direct-fund flag 01 (blank, 09, or changed to 02) or the project code
-- stage: ledger
--
-- Invariant (clause 一/二: 直达资金标识贯穿资金分配、拨付、使用等全流程且保持不变): every expenditure line paid from an
-- allocation line marked （中央直达） carries the direct-fund flag (direct_flag true: 是 / Y / 1 / 01
-- 中央直达资金) and the notice's project code. The flag stays unchanged from allocation to use:
-- 02 中央参照直达资金 (money managed like direct funds, not central direct money itself:
-- fct_expenditure.direct_flag_referenced) on such a line is the flag changed, and is reported
-- with the flag it should carry, 01. A line tied to the notice only by its budget document
-- number, with a blank or other project code, has dropped the code. Money that is not direct
-- funds needs no flag: lines of an allocation line without （中央直达）, and local matching / own-
-- revenue money (资金来源 地方配套资金, 本级财力, naming no central money). Only spending is judged: a reversal
-- nets against a line already judged, and a payment cancelled by its mirror reversal
-- (fct_reversed_lines: same sub-account, payee, function code, direct flag, project code, fund
-- source and amount, opposite sign) is corrected, not reported. A batch booked without the flag
-- is often taken off in bulk, by one red line without payee, and paid again with it: the lines
-- of one allocation line with one flag and project code as booked (fct_wrong_lines: flag_wrong,
-- flag_corrected) that net to 0.00 as of the date are corrected, and none of them is reported;
-- where something is left, each payment no mirror cancels is, saying how much.
-- expectations/fct_recon_lines.json (direct_flag_carried, where neither reversed nor
-- flag_corrected) agrees.
with standing as (
    -- the lines without the flag or the project code (fct_wrong_lines.flag_wrong) with something
    -- left under their allocation line (one with nothing left is corrected, in bulk or line by
    -- line); flag_lines and flag_net, for the message. Which is wrong, for the message:
    -- flag_missing: blank, 否 / 09 or unreadable; flag_referenced: 02 where 01 belongs (its
    -- spelling as written is in `observed`); code_missing: not the notice's project code
    select
        e.*,
        e.direct_flag is distinct from true as flag_missing,
        e.direct_flag_referenced as flag_referenced,
        e.project_code is distinct from e.notice_project_code as code_missing,
        w.flag_lines, w.flag_net
    from fct_expenditure as e
    join fct_wrong_lines as w
      on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
    where w.flag_wrong
      and not w.flag_corrected
),
unreversed as (
    -- spending only: a payment that its mirror reversal cancels is corrected (fct_reversed_lines)
    select d.*
    from standing as d
    where d.amount > 0
      and not exists (select 1 from fct_reversed_lines as c
                        where c.notice_no = d.notice_no and c.file_id = d.file_id and c.row_no = d.row_no)
),
findings as (
    select
        u.notice_no,
        u.allocated_purpose as purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        '直达资金标识=' || case when u.flag_referenced then '01 中央直达资金' else '是' end
            || '; 项目代码=' || u.notice_project_code as expected,
        '直达资金标识=' || coalesce(nullif(trim(u.direct_flag_raw), ''), '(空)')
            || '; 项目代码=' || coalesce(nullif(trim(u.project_code), ''), '(空)') as observed,
        '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 用途 '
            || u.allocated_purpose || ' 为中央直达资金，'
            || case when u.flag_missing
                    then '未标注直达资金标识（实为 ' || coalesce(nullif(trim(u.direct_flag_raw), ''), '空') || '）'
                    when u.flag_referenced
                    then '直达资金标识为 02 中央参照直达资金，应为 01 中央直达资金（标识须全流程保持不变）'
                    else '' end
            || case when (u.flag_missing or u.flag_referenced) and u.code_missing then '，' else '' end
            || case when u.code_missing
                    then '项目代码应为 ' || u.notice_project_code || '（实为 '
                         || coalesce(nullif(trim(u.project_code), ''), '空') || '）'
                    else '' end
            || case when u.flag_lines > 1  -- what is left of the booking, where other lines are in it
                    then '（该用途按此标识和项目代码记账的净额 ' || cast(u.flag_net as varchar) || ' 元）'
                    else '' end
            || ' / voucher ' || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ': purpose ' || u.allocated_purpose || ' is central direct money but the line'
            || case when u.flag_missing
                    then ' lacks the direct-fund flag (found ' || coalesce(nullif(trim(u.direct_flag_raw), ''), 'blank') || ')'
                    when u.flag_referenced
                    then ' carries the direct-fund flag 02 中央参照直达资金 (money managed like direct funds)'
                         || ' instead of 01 中央直达资金 (the flag stays unchanged from allocation to use)'
                    else '' end
            || case when (u.flag_missing or u.flag_referenced) and u.code_missing then ' and' else '' end
            || case when u.code_missing
                    then ' carries project code ' || coalesce(nullif(trim(u.project_code), ''), 'blank')
                         || ' instead of ' || u.notice_project_code
                    else '' end
            || case when u.flag_lines > 1
                    then ' (net ' || cast(u.flag_net as varchar)
                         || ' booked with this flag and project code for the purpose)'
                    else '' end as message,
        u.source_file,
        u.row_no as source_row
    from unreversed as u
)
select * from findings
