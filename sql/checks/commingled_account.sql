-- rule: COMMINGLED_ACCOUNT
-- severity: error
-- cites: 三
-- zh: 支出记入资金池账户，或一个明细账户混记多个支出方向
-- en: Expenditure in a pooled sub-account, or one sub-account carrying several purposes
-- stage: ledger
--
-- Invariant (clause 三: 按支出方向单独记账，分别核算): each purpose has its own sub-account and
-- carries only its own spending. Three shapes break it:
--   pooled  a line in the sub-account named after the whole fund (notices.fund_name, e.g.
--           2024年中央财政城镇保障性安居工程补助资金): one finding per line;
--   multi   a line in a sub-account whose name names two or more allocation lines
--           (2024年租赁补贴及保障性租赁住房): one finding per line;
--   codes   a sub-account of one allocation line whose lines are booked (net of reversals) to
--           the function codes of two or more different allocation lines: one finding per
--           sub-account (voucher empty, purpose set) listing the codes and the vouchers on the
--           other lines' codes (the first 10 by voucher number, then how many in all: a year
--           booked to the wrong codes would otherwise make one message of megabytes). Each such
--           line is also CODE_MISMATCH: that finding says the line is miscoded, this one says the
--           account is not kept separately.
-- Pooled / multi lines cancelled by their mirror reversal (fct_reversed_lines: same sub-account,
-- payee, function code, direct flag, project code, fund source and amount, opposite sign) are not
-- reported. A batch booked to such a sub-account is often taken off in bulk, by one red line
-- without payee, and booked again to its purpose's own: the lines of the sub-account as booked
-- (notice, purpose_key) that net to 0.00 as of the date (fct_wrong_lines: account_wrong,
-- account_corrected) are corrected, and none of them is reported; where something is left, each
-- line no mirror cancels is, saying how much. expectations/fct_recon_lines.json (match_kind, where
-- neither reversed nor account_corrected) agrees.
with account_lines as (
    -- the pooled and multi lines of a sub-account with something left on it (fct_wrong_lines:
    -- account_wrong; one with nothing left is corrected, in bulk or line by line), and for the
    -- message what is left on it, where other lines are on it
    select
        e.*,
        case when w.account_lines > 1 then '（该账户的净额 ' || cast(w.account_net as varchar) || ' 元）'
             else '' end as net_zh,
        case when w.account_lines > 1 then ' (net ' || cast(w.account_net as varchar) || ' on the sub-account)'
             else '' end as net_en
    from fct_expenditure as e
    join fct_wrong_lines as w
      on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
    where w.account_wrong
      and not w.account_corrected
      and e.match_kind in ('pooled', 'multi')
),
pooled_or_multi as (
    select
        u.notice_no,
        u.purpose,
        u.voucher_no,
        u.line_no,
        u.posted_on,
        u.amount,
        '按用途分设明细账户 / one sub-account per purpose' as expected,
        u.purpose as observed,
        case when u.match_kind = 'pooled' then
            '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 记入资金池账户 '
            || u.purpose || '，未按支出方向单独记账' || u.net_zh || ' / voucher ' || coalesce(u.voucher_no, '')
            || ' line ' || coalesce(u.line_no, '') || ' is booked to the pooled fund account '
            || u.purpose || ', not to the sub-account of its purpose' || u.net_en
        else
            '凭证 ' || coalesce(u.voucher_no, '') || ' 第' || coalesce(u.line_no, '') || '行 记入账户 '
            || u.purpose || '，该账户混合了多个用途（' || u.purposes_named || '）' || u.net_zh || ' / voucher '
            || coalesce(u.voucher_no, '') || ' line ' || coalesce(u.line_no, '')
            || ' is booked to sub-account ' || u.purpose || ', which names several purposes ('
            || u.purposes_named || ')' || u.net_en
        end as message,
        u.source_file,
        u.row_no as source_row
    from account_lines as u
    where not exists (select 1 from fct_reversed_lines as c
                      where c.notice_no = u.notice_no and c.file_id = u.file_id and c.row_no = u.row_no)
),
allocation_codes as (
    select distinct notice_no, function_code
    from allocation_lines
),
booked_codes as (
    -- per sub-account of an allocation line: net spending on each allocation line's code
    select
        e.notice_no, e.line_seq, e.allocated_purpose, e.allocated_code, e.function_code,
        sum(e.amount) as net_amount
    from fct_expenditure as e
    join allocation_codes as c on c.notice_no = e.notice_no and c.function_code = e.function_code
    where e.match_kind = 'line' and not e.batch_repeat
    group by e.notice_no, e.line_seq, e.allocated_purpose, e.allocated_code, e.function_code
    having sum(e.amount) <> 0
),
foreign_vouchers as (
    -- the vouchers on the codes of other lines (net of reversals, as above), each once, numbered
    select
        v.notice_no, v.line_seq, v.voucher_no,
        row_number() over (partition by v.notice_no, v.line_seq order by length(v.voucher_no), v.voucher_no) as nth,
        count(*) over (partition by v.notice_no, v.line_seq) as vouchers
    from (
        select distinct e.notice_no, e.line_seq, e.voucher_no
        from fct_expenditure as e
        join booked_codes as b
          on b.notice_no = e.notice_no and b.line_seq = e.line_seq and b.function_code = e.function_code
        where e.match_kind = 'line' and not e.batch_repeat and e.function_code <> e.allocated_code
    ) as v
),
listed_vouchers as (
    select
        f.notice_no, f.line_seq,
        string_agg(f.voucher_no, '、' order by length(f.voucher_no), f.voucher_no) as listed,
        max(f.vouchers) as vouchers
    from foreign_vouchers as f
    where f.nth <= 10
    group by f.notice_no, f.line_seq
),
mixed_accounts as (
    select
        b.notice_no,
        b.line_seq,
        b.allocated_purpose,
        max(b.allocated_code) as allocated_code,
        sum(case when b.function_code <> b.allocated_code then b.net_amount else 0 end) as foreign_amount,
        string_agg(b.function_code || ' ' || cast(b.net_amount as varchar), '; ' order by b.function_code) as codes
    from booked_codes as b
    group by b.notice_no, b.line_seq, b.allocated_purpose
    having count(distinct b.function_code) >= 2
),
mixed as (
    select
        m.notice_no,
        m.allocated_purpose as purpose,
        cast(null as varchar) as voucher_no,
        cast(null as varchar) as line_no,
        cast(null as date) as posted_on,
        m.foreign_amount as amount,
        m.allocated_code as expected,
        m.codes as observed,
        '账户 ' || m.allocated_purpose || ' 的支出分别记入多个用途的科目（' || m.codes || '），应只记 '
            || m.allocated_code || '；其他科目凭证：' || coalesce(v.listed, '')
            || case when v.vouchers > 10
                    then ' 等 ' || cast(v.vouchers as varchar) || ' 张（逐笔见 CODE_MISMATCH）' else '' end
            || ' / sub-account ' || m.allocated_purpose || ' carries spending on the codes of several purposes ('
            || m.codes || '), expected only ' || m.allocated_code || '; vouchers on other codes: '
            || coalesce(v.listed, '')
            || case when v.vouchers > 10
                    then ' and ' || cast(v.vouchers - 10 as varchar) || ' more (each a CODE_MISMATCH finding)'
                    else '' end as message,
        cast(null as varchar) as source_file,
        cast(null as bigint) as source_row
    from mixed_accounts as m
    left join listed_vouchers as v on v.notice_no = m.notice_no and v.line_seq = m.line_seq
),
findings as (
    select * from pooled_or_multi
    union all
    select * from mixed
)
select * from findings
