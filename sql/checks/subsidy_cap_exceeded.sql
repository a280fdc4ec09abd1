-- rule: SUBSIDY_CAP_EXCEEDED
-- severity: error
-- cites: 每户补贴标准
-- zh: 收款人单月所得超过每户每月补贴标准
-- en: A payee received more in one month than the per-household monthly standard
-- stage: ledger
--
-- Invariant: within one calendar month, what one payee received net from a purpose (reversals
-- net) does not exceed that purpose's per-household monthly standard, times the months its
-- payments say they pay where they are back pay (below). The cap is the target of
-- the purpose's own target table, never a constant: the indicator whose unit is 元 per 户 per 月
-- (每户补贴标准 <=480元/户/月 in the seed), recognised the same way as in config/indicators.toml.
-- One finding per payee-month over the cap, naming the line at which the month's running total
-- last went over it (the cap times the months); amount = the payee's total for that month;
-- expected = the cap, with ×N个月 where its payments pay N months (below). What a later month paid back of
-- it is said in the message; the month stays over the cap (the household received it then).
-- The cap of a line is its lowest such target; of two equal ones the strict '<' wins, and the
-- cap's value, text and operator all come from that one indicator.
-- Nor is a month paid more than the standard from payments posted in several months (a month
-- paid, and paid again by back pay later: paid_again below), one finding per payee and month paid.
-- A payee that is a bank or paying agency (银行代发: 中国农业银行克州分行, 农村信用合作社, 财政局代发)
-- is no household: its line carries the money of the many households the bank paid, so it is not
-- held to the per-household cap (the 代发清单 shows what each received). is_bank_payee
-- (pipeline/text.py) recognises one; a payee that could be a person's name (李银行, 代发明) is
-- always a household. The indicators say what such lines paid (pipeline/indicators.py).
-- Back pay (补发) and payments of several months: a household approved late is paid several months
-- at once, and rent subsidies are often paid by the quarter; the line's summary (摘要) says so:
-- 补发1-3月租赁补贴, 补发2024年1至3月, 补发2023年12月-2024年2月, 发放3、4月份补贴, 2024年第一季度, 第一、二季度, 上半年,
-- 补发2个月. Such a month is held to the cap times the months its payments say they pay, as an
-- auditor reading the summaries holds it (1,440 for 补发1-3月 or 第一季度 at 480 a month).
-- summary_months_text and month_bits (pipeline/text.py) read them, and only an unambiguous summary:
-- one month of back pay (补发2月 in March) pays that month; one that names one month otherwise or
-- none, or is unclear, pays the month it is posted in, as before.
-- A month's months are those its payments (amount > 0) name together, each counted once: a
-- payment naming months pays those months, one naming none the month it is posted in, and a count
-- (补发2个月, which names no month) adds its months to the others' (the largest count, where two
-- say one). So two ordinary lines in one month are one month (a household paid twice); March's own
-- line (480) and 补发1-2月 (960) are three months (1,440, no finding); 补发1-3月 and March's own line
-- are three months, not four, since the back pay already pays March (1,920 is reported). The
-- finding says the months it counted (摘要所列共付3个月) and the auditor judges. A reversal pays no month:
-- what it takes back nets in the month's total as before. The indicator 每户补贴标准 spreads such a
-- month over the same months, read by the same macros (months_of(bit_or(month_bits(...)))).
with payments as materialized (
    select * from fct_capped_payments
),
-- Totals first: only the few payee-months over the cap of one month can be over it at all, and
-- need their summaries read and their lines ordered.
over_one_month as (
    select notice_no, line_seq, payee, month, sum(amount) as month_total, any_value(cap) as cap,
           any_value(op) as op
    from payments
    group by notice_no, line_seq, payee, month
    having case when any_value(op) = '<' then sum(amount) >= any_value(cap)
                else sum(amount) > any_value(cap) end
       and not is_bank_payee(payee)  -- a bank or agency is no household
),
payment_months as materialized (
    -- the months each payment of such a month names (summary_months_text: read once a line)
    select o.notice_no, o.line_seq, o.payee, o.month, o.month_total, o.cap, o.op, p.amount, p.posted_on,
           case when p.amount > 0 then summary_months_text(p.summary) end as months_text
    from over_one_month as o
    join payments as p
      on p.notice_no = o.notice_no and p.line_seq = o.line_seq and p.payee = o.payee
     and p.month = o.month
),
months_paid as (
    -- the months the month's payments pay together (back pay, quarters; see above); a reversal
    -- pays none (its bits times 0)
    select notice_no, line_seq, payee, month, month_total, cap, op,
           months_of(bit_or(month_bits(months_text, posted_on) * case when amount > 0 then 1 else 0 end))
               as months
    from payment_months
    group by notice_no, line_seq, payee, month, month_total, cap, op
),
over_cap as (
    select notice_no, line_seq, payee, month, month_total, months, cap * months as allowed
    from months_paid
    where case when op = '<' then month_total >= cap * months else month_total > cap * months end
),
paid_back as (
    -- what of an over-cap month was paid back (红字冲销) in a later month: the payee's reversals
    -- whose latest payment on or before their day was in it (as fct_pool_lines and the
    -- indicators' months and paid_back take them). The month stays over the cap, as the
    -- household received it then; the message says what came back.
    select o.notice_no, o.line_seq, o.payee, o.month, sum(r.amount) as amount
    from over_cap as o
    join payments as r
      on r.notice_no = o.notice_no and r.line_seq = o.line_seq and r.payee = o.payee
     and r.month > o.month and r.amount < 0
    where not exists (select 1
                      from payments as p
                      where p.notice_no = r.notice_no and p.line_seq = r.line_seq
                        and p.payee = r.payee and p.amount > 0 and p.month > o.month
                        and p.posted_on <= r.posted_on)
    group by o.notice_no, o.line_seq, o.payee, o.month
),
running as (
    select
        p.*,
        o.month_total,
        o.months,
        o.allowed,
        sum(p.amount) over (
            partition by p.notice_no, p.line_seq, p.payee, p.month
            order by p.posted_on, length(p.voucher_no), p.voucher_no, length(p.line_no), p.line_no, p.file_id,
                     p.row_no
            rows between unbounded preceding and current row) as running_total
    from payments as p
    join over_cap as o
      on o.notice_no = p.notice_no and o.line_seq = p.line_seq and o.payee = p.payee
     and o.month = p.month
),
crossings as (
    select
        r.*,
        cast(r.month as varchar) as month_text,  -- 'YYYY-MM-01[ 00:00:00]': ISO on every engine
        row_number() over (
            partition by r.notice_no, r.line_seq, r.payee, r.month
            order by r.posted_on desc, length(r.voucher_no) desc, r.voucher_no desc, length(r.line_no) desc,
                     r.line_no desc, r.file_id desc, r.row_no desc
        ) as latest
    from running as r
    where case when r.op = '<' then r.running_total >= r.allowed and r.running_total - r.amount < r.allowed
               else r.running_total > r.allowed and r.running_total - r.amount <= r.allowed end
),
-- A month paid again from another month (fct_months_placed: February paid in February, and
-- again by 补发2月 in March beside March's own line, March alone paying two months, within). A
-- month paid from lines of two or more posting months whose total is over the cap is reported at
-- the line that last took it over, when an earlier payment of that month was posted in an
-- earlier month; amount = the month's total, key_detail = the month paid (YYYY-MM). Where that
-- line's posting month is over the cap above, it is reported there only (the same money). The
-- shares are compared exactly, scaled as the view scales them (share_scaled, cap_scaled); the total
-- shown is the view's month_total, to the fen (half up).
paid_again_crossings as (
    select r.*,
           row_number() over (partition by r.notice_no, r.line_seq, r.payee, r.paid_month order by r.ord desc)
               as latest
    from fct_months_placed as r
    where case when r.op = '<' then r.total_scaled >= r.cap_scaled else r.total_scaled > r.cap_scaled end
      and case when r.op = '<' then r.running_scaled >= r.cap_scaled and r.running_scaled - r.share_scaled < r.cap_scaled
               else r.running_scaled > r.cap_scaled and r.running_scaled - r.share_scaled <= r.cap_scaled end
),
paid_again as (
    select c.*,
           cast(c.paid_month as varchar) as paid_text,
           cast(c.month as varchar) as month_text,
           cast(c.first_posted_in as varchar) as first_text
    from paid_again_crossings as c
    where c.latest = 1
      and c.first_posted_in < c.month
      and not exists (select 1
                      from over_cap as o
                      where o.notice_no = c.notice_no and o.line_seq = c.line_seq and o.payee = c.payee
                        and o.month = c.month)
),
paid_again_findings as (
    select
        a.notice_no,
        a.purpose,
        a.voucher_no,
        a.line_no,
        a.posted_on,
        a.month_total as amount,
        a.cap_text as expected,
        cast(a.month_total as varchar) || '元' as observed,
        '收款人 ' || a.payee || ' ' || substr(a.paid_text, 1, 4) || '年' || substr(a.paid_text, 6, 2)
            || '月的补贴 ' || substr(a.first_text, 1, 4) || '年' || substr(a.first_text, 6, 2) || '月 凭证 '
            || coalesce(a.first_voucher, '') || coalesce(' 第' || a.first_line_no || '行', '') || ' 已付，'
            || substr(a.month_text, 1, 4) || '年' || substr(a.month_text, 6, 2) || '月 凭证 '
            || coalesce(a.voucher_no, '') || coalesce(' 第' || a.line_no || '行', '')
            || coalesce('（' || a.summary || '）', '') || '又付，该月共付 '
            || cast(a.month_total as varchar) || ' 元，超过每户补贴标准 ' || a.cap_text
            || ' / payee ' || a.payee || ' was paid for ' || substr(a.paid_text, 1, 7) || ' in '
            || substr(a.first_text, 1, 7) || ' (voucher ' || coalesce(a.first_voucher, '')
            || coalesce(' line ' || a.first_line_no, '') || ') and again in '
            || substr(a.month_text, 1, 7) || ' (voucher '
            || coalesce(a.voucher_no, '') || coalesce(' line ' || a.line_no, '') || coalesce(': ' || a.summary, '') || '), '
            || cast(a.month_total as varchar) || ' yuan for the month, above the per-household standard '
            || a.cap_text as message,
        a.source_file,
        a.row_no as source_row,
        substr(a.paid_text, 1, 7) as key_detail
    from paid_again as a
),
findings as (
    select
        c.notice_no,
        c.purpose,
        c.voucher_no,
        c.line_no,
        c.posted_on,
        cast(c.month_total as decimal(18,2)) as amount,
        c.cap_text || case when c.months > 1 then '×' || cast(c.months as varchar) || '个月' else '' end
            as expected,
        cast(cast(c.month_total as decimal(18,2)) as varchar) || '元' as observed,
        '收款人 ' || c.payee || ' ' || substr(c.month_text, 1, 4) || '年' || substr(c.month_text, 6, 2)
            || '月 共收 '
            || cast(cast(c.month_total as decimal(18,2)) as varchar) || ' 元'
            || case when c.months > 1
                    then '（摘要所列共付' || cast(c.months as varchar) || '个月，按' || cast(c.months as varchar)
                         || '个月计上限 ' || cast(cast(c.allowed as decimal(18,2)) as varchar) || ' 元）'
                    else '' end
            || '，超过每户补贴标准 '
            || c.cap_text || '（凭证 ' || coalesce(c.voucher_no, '') || ' 使其超标）'
            || coalesce('，其后已冲回 ' || cast(cast(-pb.amount as decimal(18,2)) as varchar) || ' 元', '')
            || ' / payee '
            || c.payee || ' received ' || cast(cast(c.month_total as decimal(18,2)) as varchar)
            || ' yuan in ' || substr(c.month_text, 1, 7)
            || case when c.months > 1
                    then ' paying ' || cast(c.months as varchar) || ' months, as its summaries say ('
                         || cast(cast(c.allowed as decimal(18,2)) as varchar) || ' yuan allowed for '
                         || cast(c.months as varchar) || ' months)'
                    else '' end
            || ', above the per-household standard '
            || c.cap_text || ' (voucher ' || coalesce(c.voucher_no, '') || ' crossed it)'
            || coalesce('; ' || cast(cast(-pb.amount as decimal(18,2)) as varchar)
                        || ' yuan of it paid back later', '') as message,
        c.source_file,
        c.row_no as source_row,
        cast(null as varchar) as key_detail
    from crossings as c
    left join paid_back as pb
      on pb.notice_no = c.notice_no and pb.line_seq = c.line_seq and pb.payee = c.payee
     and pb.month = c.month
    where c.latest = 1
)
select * from findings
union all
select * from paid_again_findings
