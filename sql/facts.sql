-- Fact views: the ledger joined to the notices, within the scope of the current run
-- (run_context: as-of date, notice, purpose, date range). Checks, reports, indicators and the
-- expectation suites read these; none of them re-derives a tie, a match or a code class.
--
-- Built for tens of millions of ledger lines: every string normalisation (document numbers,
-- purpose matching) is computed once per DISTINCT value, which is a small set, and joined back
-- to the lines by equality; no correlated subqueries, no OR-joins over the ledger.

-- Every loaded notice, with issue_key: it orders them as issued, by the year and number of the
-- 文号 (〔2024〕2号 before 〔2024〕15号: 提前下达 before 第二批), then as text; a 文号 of another
-- form after them. Batches of one fund are taken in this order (the first of them: where a line
-- counted under several is reported, and where their pool is said). fct_notices: those in scope.
create or replace view notices_issued as
select
    n.*,
    case when regexp_matches(n.notice_no, '^.*〔[0-9]{4}〕[0-9]{1,9}号$')
         then substr(regexp_replace(n.notice_no, '^.*〔', ''), 1, 4)
              || lpad(replace(regexp_replace(n.notice_no, '^.*〕', ''), '号', ''), 9, '0')
         else '9999999999999' end || n.notice_no as issue_key
from notices as n;

create or replace view fct_notices as
with ctx as (select * from run_context limit 1)
select n.*
from notices_issued as n
left join ctx on true
where ctx.notice_no is null or n.notice_no = ctx.notice_no;

-- Notices whose lines the run counts: those in scope, and the other batches of their fund (notices
-- of the same project code and fiscal year). A line of such a code without 指标文号 is counted
-- under each batch, and how much of it a batch spent depends on the others: the summary spreads it
-- over them, OVER_ALLOCATION judges them together. So a run of one batch (--notice) counts the
-- other batches' lines too, to say of its batch what a run of all of them says, and reports on
-- the batches in scope alone (fct_notices; the lines under the others are batch_repeat).
create or replace view fct_notices_counted as
with ctx as (select * from run_context limit 1)
select n.*
from notices_issued as n
left join ctx on true
left join notices as s on s.notice_no = ctx.notice_no
where ctx.notice_no is null or n.notice_no = ctx.notice_no
   or (n.project_code = s.project_code and n.fiscal_year = s.fiscal_year);

-- Allocation lines of the notices counted, with the purpose they are matched under.
create or replace view fct_allocation_lines as
with ctx as (select * from run_context limit 1)
select a.*
from allocation_lines as a
join fct_notices_counted as n on n.notice_no = a.notice_no
left join ctx on true
where ctx.purpose_key is null or a.purpose_key = ctx.purpose_key;

-- How each distinct sub-account name (purpose_key) matches the allocation lines of each loaded
-- notice (fct_purpose_match: of the notices counted):
--   line      names one allocation line: same key, a configured alias, the same key once the
--             project code an accounting system prints before the name is left out
--             ('[0101]2024年租赁补贴（中央直达）', '0101 2024年租赁补贴（中央直达）': match_by 'code'),
--             or the same core name (that code, the notice's year prefix and the note
--             （中央直达） stripped: '租赁补贴' and '2024年租赁补贴' are the 租赁补贴 line's account;
--             '2024年租赁补贴（地方配套）' is not, it is another sub-account, for other money)
--   pooled    named after the whole fund (notices.fund_name): the pooled account clause 三 forbids
--   multi     names two or more allocation lines at once ('2024年租赁补贴及保障性租赁住房')
--   unmatched names none of them (blank included)
create or replace view notice_purpose_match as
with ledger_purposes as (
    -- a lookup table: every sub-account name on a budget expenditure account, once
    select distinct l.purpose_key
    from stg_ledger_lines as l
    where l.book = 'budget' and l.account_code like '7%'
),
purposes as (
    select n.notice_no, n.fiscal_year, n.fund_name, p.purpose_key
    from ledger_purposes as p
    cross join notices as n
),
coded as (
    -- bare: the key without a project code before the name: bracketed ('(0101)…'), or letters and
    -- digits (three or more) run into the name, as keys drop the space between them ('0101…',
    -- '01012024年…'); a year ('2024年…') is not a code
    select
        p.*,
        case when p.purpose_key is null then ''
             when regexp_matches(p.purpose_key, '^\([0-9a-z._-]+\).')
                 then regexp_replace(p.purpose_key, '^\([0-9a-z._-]+\)', '')
             when regexp_matches(p.purpose_key, '^[0-9a-z._-]+?(19|20)[0-9]{2}年')
                 then regexp_replace(p.purpose_key, '^[0-9a-z._-]+?((19|20)[0-9]{2}年)', '\1')
             when regexp_matches(p.purpose_key, '^[0-9][0-9a-z._-]{2,}[^0-9a-z._()年-]')
                 then regexp_replace(p.purpose_key, '^[0-9][0-9a-z._-]{2,}', '')
             else p.purpose_key end as bare
    from purposes as p
),
named as (
    select
        p.*,
        regexp_replace(replace(p.bare, '(中央直达)', ''), '^(19|20)[0-9]{2}年', '') as core,
        (not regexp_matches(p.bare, '^(19|20)[0-9]{2}年')
         or p.bare like cast(p.fiscal_year as varchar) || '年%') as year_ok
    from coded as p
),
alloc as (
    select
        a.notice_no, a.line_seq, a.purpose_key,
        regexp_replace(replace(a.purpose_key, '(中央直达)', ''),
                       '^(19|20)[0-9]{2}年', '') as core
    from allocation_lines as a
),
by_key as (
    select n.notice_no, n.purpose_key, a.line_seq, 'purpose' as match_by
    from named as n
    join alloc as a on a.notice_no = n.notice_no and a.purpose_key = n.purpose_key
),
by_alias as (
    select n.notice_no, n.purpose_key, min(al.line_seq) as line_seq, 'alias' as match_by
    from named as n
    join purpose_aliases as al on al.notice_no = n.notice_no and al.alias_key = n.purpose_key
    left join by_key as k on k.notice_no = n.notice_no and k.purpose_key = n.purpose_key
    where k.line_seq is null
    group by n.notice_no, n.purpose_key
),
by_code as (
    select n.notice_no, n.purpose_key, a.line_seq, 'code' as match_by
    from named as n
    join alloc as a on a.notice_no = n.notice_no and a.purpose_key = n.bare
    left join by_key as k on k.notice_no = n.notice_no and k.purpose_key = n.purpose_key
    left join by_alias as s on s.notice_no = n.notice_no and s.purpose_key = n.purpose_key
    where n.bare <> n.purpose_key and k.line_seq is null and s.line_seq is null
),
by_core as (
    -- only when exactly one allocation line has that core name
    select n.notice_no, n.purpose_key, min(a.line_seq) as line_seq, 'core' as match_by
    from named as n
    join alloc as a on a.notice_no = n.notice_no and a.core = n.core
    left join by_key as k on k.notice_no = n.notice_no and k.purpose_key = n.purpose_key
    left join by_alias as s on s.notice_no = n.notice_no and s.purpose_key = n.purpose_key
    left join by_code as c on c.notice_no = n.notice_no and c.purpose_key = n.purpose_key
    where k.line_seq is null and s.line_seq is null and c.line_seq is null and n.year_ok
      and n.core <> ''
    group by n.notice_no, n.purpose_key
    having count(*) = 1
),
matched as (
    select * from by_key
    union all select * from by_alias
    union all select * from by_code
    union all select * from by_core
),
contained as (
    -- allocation core names written inside an unmatched sub-account name
    select n.notice_no, n.purpose_key, a.line_seq, a.core
    from named as n
    join alloc as a on a.notice_no = n.notice_no
    left join matched as m on m.notice_no = n.notice_no and m.purpose_key = n.purpose_key
    where m.line_seq is null and a.core <> '' and position(a.core in n.core) > 0
),
outermost as (
    -- a core inside another contained core ('租赁住房' in '保障性租赁住房') is not a second purpose
    select c.notice_no, c.purpose_key, c.line_seq, c.core
    from contained as c
    left join contained as o
      on o.notice_no = c.notice_no and o.purpose_key = c.purpose_key
     and o.core <> c.core and position(c.core in o.core) > 0
    where o.line_seq is null
),
multi as (
    select notice_no, purpose_key, string_agg(core, '、' order by line_seq) as purposes_named
    from outermost
    group by notice_no, purpose_key
    having count(distinct core) >= 2
)
select
    n.notice_no,
    n.purpose_key,
    m.line_seq,
    m.match_by,
    case
        when m.line_seq is not null then 'line'
        when n.bare = purpose_key(n.fund_name)
          or (n.year_ok and n.core <> '' and n.core = regexp_replace(replace(
                purpose_key(n.fund_name), '(中央直达)', ''), '^(19|20)[0-9]{2}年', ''))
            then 'pooled'
        when mu.purpose_key is not null then 'multi'
        else 'unmatched'
    end as match_kind,
    mu.purposes_named
from named as n
left join matched as m on m.notice_no = n.notice_no and m.purpose_key is not distinct from n.purpose_key
left join multi as mu on mu.notice_no = n.notice_no and mu.purpose_key is not distinct from n.purpose_key;

create or replace view fct_purpose_match as
select m.*
from notice_purpose_match as m
join fct_notices_counted as n on n.notice_no = m.notice_no;

-- Every active ledger line (either book, any account) as it stood on the as-of date, tied to a
-- notice: by its budget document number (tied_by = 'budget_doc_no', the loader has already
-- normalised 文号 brackets) or, when that names no loaded notice, by the notice's project code
-- (tied_by = 'project_code'). The document number wins because it names one notice, while a
-- central project code may stay the same from year to year: where notices of several fiscal
-- years share a code, a line tied by the code goes to the notice of its posting year (a year
-- without one: the latest notice before it, money carried over; before them all: the earliest,
-- money paid ahead), not to each of them. Where notices of one year share the code (batches of
-- one fund), a line whose sub-account names an allocation line of exactly one of them goes to
-- that one (tied_by = 'project_code_purpose', notice_purpose_match); a line whose sub-account
-- several of them allocate goes to each of those, and any other line of the code to each of
-- them (NOTICE_TIE_AMBIGUOUS says so). batch_repeat marks such a line under all but the first of
-- its notices in scope, as issued (fct_notices.issue_key), and every line under a batch counted
-- but not in scope (fct_notices_counted), so that the rules of single lines report a line once,
-- and only under a notice in scope. Lines are tied against every loaded notice and then kept
-- when their notice is counted, so `--notice` never hands another notice's lines to the one
-- chosen. A line of another project or fund ties to no notice and appears
-- nowhere below: out of scope, never reconciled, never flagged. One pass over the ledger: both
-- ties are left joins to the few notices.
--
-- doc_of_other_year: the line's 指标文号 names no loaded notice, but is the 文号 of a notice of its
-- project code in another year (克区财综〔2023〕2号 against 克区财综〔2024〕2号): the same series of
-- the same bureau, a document of that year, so that year's allocation (last year's money paid
-- late, or refunded), not this notice's, however the code ties it. doc_no_key keeps the year,
-- so the line never named this notice; but with that year's notice not loaded, the code used to
-- tie it here, and it counted against this year's allocation (OVER_ALLOCATION, the summary).
-- Such a line is kept tied by its code only so that DOC_NO_MISMATCH can say, under the notice
-- whose code it carries, that it is not counted (load that year's notice to reconcile it), as
-- it says of any other unloaded 文号 under the code: fct_expenditure leaves it out, and no other
-- rule judges it (a line of another notice). Loaded, that year's notice takes it by its 文号, as
-- any notice takes its lines.
create or replace view fct_notice_lines as
with ctx as (select * from run_context limit 1),
-- read twice (tied, closing): not materialized, or DuckDB copies every column of every line
active as not materialized (
    select l.*
    from stg_ledger_lines as l
    left join ctx on true
    where (l.posted_on is null or ctx.as_of is null or l.posted_on <= ctx.as_of)
      and (ctx.date_from is null or l.posted_on >= ctx.date_from)
      and (ctx.date_to is null or l.posted_on <= ctx.date_to)
),
code_years as (
    -- each fiscal year a project code has notices in, with the posting years it claims: its own
    -- up to the next such year's; the first also those before it, the last those after it
    select
        project_code,
        fiscal_year,
        case when lag(fiscal_year) over w is not null then fiscal_year end as year_from,
        lead(fiscal_year) over w - 1 as year_to
    from (select distinct project_code, fiscal_year from notices where project_code is not null) as y
    window w as (partition by project_code order by fiscal_year)
),
by_code as (
    -- first_key: the first notice of the code's year in scope, as issued
    select n.notice_no, n.project_code, n.fiscal_year, c.year_from, c.year_to, n.issue_key,
           s.notice_no is not null as in_scope,
           min(case when s.notice_no is not null then n.issue_key end)
               over (partition by n.project_code, n.fiscal_year) as first_key
    from notices_issued as n
    join code_years as c on c.project_code = n.project_code and c.fiscal_year = n.fiscal_year
    left join fct_notices as s on s.notice_no = n.notice_no
),
doc_forms as (
    -- each notice's 文号 with its year left open, a LIKE pattern (克区财综〔____〕2号), by project
    -- code; a 文号 of the canonical form only (its issuer's prefix holds no % or _)
    select distinct project_code,
           regexp_replace(notice_no, '^([^〔%_]+)〔[0-9]{4}〕([0-9]+号)$', '\1〔____〕\2') as doc_form
    from notices
    where project_code is not null
      and regexp_matches(notice_no, '^[^〔%_]+〔[0-9]{4}〕[0-9]+号$')
),
by_purpose as (
    -- a code's batches of one year told apart by sub-account (none of this where no two notices of
    -- a year share a code): a sub-account that names an allocation line of some of them goes to
    -- those, not to the others; batches: how many they are; first_key: the first of them in scope
    select b.project_code, b.year_from, b.year_to, m.purpose_key, b.notice_no, b.issue_key,
           count(*) over w as batches,
           min(case when b.in_scope then b.issue_key end) over w as first_key
    from by_code as b
    join (select project_code, fiscal_year
          from by_code
          group by project_code, fiscal_year
          having count(*) > 1) as s
      on s.project_code = b.project_code and s.fiscal_year = b.fiscal_year
    join notice_purpose_match as m on m.notice_no = b.notice_no and m.match_kind = 'line'
    window w as (partition by b.project_code, b.fiscal_year, m.purpose_key)
),
tied as (
    select
        a.*,
        coalesce(nd.notice_no, np.notice_no) as notice_no,
        ny.doc_form is not null as doc_of_other_year,
        case when nd.notice_no is not null then 'budget_doc_no'
             when bp.batches = 1 then 'project_code_purpose'
             else 'project_code' end as tied_by,
        -- the line counted again, under a later batch than the first in scope it goes to (it is
        -- under that one too), or under a batch counted but not in scope: the rules of single
        -- lines report it once, under the first (NOTICE_TIE_AMBIGUOUS names every batch)
        sc.notice_no is null
        or coalesce(nd.notice_no is null
                    and case when bp.notice_no is not null then bp.issue_key <> bp.first_key
                             else np.issue_key <> np.first_key end, false) as batch_repeat
    from active as a
    left join notices as nd
      on nd.notice_no = a.budget_doc_no
    -- another year's 文号 of a notice of its code (at most one form matches: the year is four
    -- characters, the prefix and number are the form's own). Only a line with a 文号 that names no
    -- notice has a key to look up: most lines name theirs or none, and pass by without a probe
    left join doc_forms as ny
      on ny.project_code = case when nd.notice_no is null and a.budget_doc_no is not null
                                then a.project_code end
     and a.budget_doc_no like ny.doc_form
    left join by_purpose as bp
      on nd.notice_no is null and bp.project_code = a.project_code
     and bp.purpose_key = a.purpose_key
     and (bp.year_from is null or extract(year from a.posted_on) >= bp.year_from)
     and (bp.year_to is null or extract(year from a.posted_on) <= bp.year_to)
    left join by_code as np
      on nd.notice_no is null and np.project_code = a.project_code
     and (a.posted_on is null
          or ((np.year_from is null or extract(year from a.posted_on) >= np.year_from)
              and (np.year_to is null or extract(year from a.posted_on) <= np.year_to)))
     and (bp.notice_no is null or np.notice_no = bp.notice_no)
    left join fct_notices as sc
      on sc.notice_no = coalesce(nd.notice_no, np.notice_no)
    where nd.notice_no is not null or np.notice_no is not null
),
closing as (
    -- year-end closing vouchers (年末结转): the year's 7xxx spending credited against
    -- 财政拨款结转 / 结余 and the other balances (8101 … 8701), not against 8001 资金结存, the
    -- other side of every payment. Their credits close the books; they do not pay anything back.
    select distinct file_id, period, voucher_no
    from active
    where book = 'budget' and account_code like '8%' and account_code not like '80%'
)
select
    t.*,
    n.fiscal_year,
    n.fund_name,
    n.project_code as notice_project_code,
    n.revenue_code as notice_revenue_code,
    t.debit - t.credit as amount,
    (t.book = 'budget' and t.account_code like '7%' and c.voucher_no is null) as is_expenditure
from tied as t
join fct_notices_counted as n on n.notice_no = t.notice_no
left join closing as c
  on c.file_id = t.file_id and c.period = t.period and c.voucher_no = t.voucher_no;

-- Expenditure: budget-book lines on 7xxx accounts tied to a notice, amount = debit - credit (a
-- credit, or a negative debit, is a reversal and nets), but for the year-end closing voucher's
-- (7xxx credited against 8101 财政拨款结转 …: fct_notice_lines.is_expenditure). Each line carries the allocation line
-- its sub-account names (match_kind, see fct_purpose_match) and the class of its function code:
--   blank | malformed (not digits, or a length other than 3/5/7) | class (3 digits, 221) |
--   subclass (5 digits, 22101) | item (7 digits in the classification of the notice's year) |
--   unknown (7 digits not in it). The classification used is reference/function_codes_<year>
--   of the notice's fiscal year, or the latest earlier year when that year has no file.
-- direct_flag_referenced: the flag is 02 中央参照直达资金 (`02`, `2`, `02 中央参照直达资金`,
--   `中央参照直达资金`, `参照直达`), money managed like direct funds but not central direct money
--   itself. The loader reads it, like 01, as direct_flag true (the flag is present); the rules of
--   central direct money tell it apart from 01 (中央直达资金, 是, Y, 1), which the flag of a 中央直达
--   allocation line must stay (DIRECT_FLAG_MISSING). False where direct_flag is not true.
-- prior_year_refund: a credit (amount < 0) whose summary (摘要) says it takes back money paid out
--   in an earlier year: a word of taking back (收回, 退回, 缴回, 追回, 退还, 返还, 冲回, 冲销, 冲减,
--   冲红, 红冲) and an earlier year, in words (以前年度, 上年, 上一年, 往年) or by naming an
--   earlier year than the line's posting year, and not that year (收回2023年多发租赁补贴, posted in
--   2024; 收回2023年12月至2024年1月多发 is unclear, and nets). Under 政府会计制度 a refund of a
--   prior year's expenditure (以前年度支出收回) is no reduction of this year's budget expenditure:
--   the budget book credits 8101 财政拨款结转 (年初余额调整) or the money goes back to the
--   treasury, the financial book 以前年度盈余调整. Credited to a
--   7xxx account of this year, it nets this year's spending down: an overspent purpose looks
--   within its allocation, and the rates and the direct-fund figures are understated. Such a line
--   is this year's spending of nothing: fct_expenditure leaves it out (summary, OVER_ALLOCATION,
--   the indicators, the reversals and the netting of wrong bookings never see it), and
--   OUT_OF_PERIOD reports it, as booked across years (跨年度). A same-year reversal (冲销3月多发,
--   收回2024年3月多发 posted in 2024) still nets, and a line whose summary is unclear stays
--   spending: only the summary tells a refund from a reversal (its payment is in last year's
--   books, not this ledger).
-- fct_expenditure_booked is every such line, as booked; fct_expenditure the expenditure the
-- notice's allocation counts: without the lines of another year's 文号 (fct_notice_lines
-- .doc_of_other_year), the prior years' refunds and the copies of a line loaded twice
-- (fct_line_copies). Only DOC_NO_MISMATCH, OUT_OF_PERIOD and DUPLICATE_ENTRY, which report those,
-- and fct_recon_lines, which restates them, read the booked lines.
-- fct_expenditure_lines is the booked lines without line_copy, which fct_line_copies reads; only
-- fct_expenditure_booked reads it. A run's snapshot (pipeline.run.SNAPSHOT_VIEWS) stores
-- fct_expenditure_booked with line_copy, so fct_expenditure is a filter of one table: with
-- fct_line_copies joined to each of its readers instead (until the thirty-fourth session), the
-- run at 2M lines took 150 MiB more memory, and a read 0.05 s against a filter's 0.006-0.012 s
-- (bench/README.md, thirty-fourth section).
create or replace view fct_expenditure_lines as
with ref_years as (
    select n.notice_no,
           coalesce(max(case when r.fiscal_year <= n.fiscal_year then r.fiscal_year end),
                    min(r.fiscal_year)) as ref_year
    from fct_notices_counted as n
    left join (select distinct fiscal_year from ref_function_codes) as r on true
    group by n.notice_no
),
lines as (
    select l.*
    from fct_notice_lines as l
    where l.is_expenditure
),
classified as (
    select
        l.*,
        case
            when l.function_code is null or trim(l.function_code) = '' then 'blank'
            when not regexp_matches(l.function_code, '^[0-9]+$') then 'malformed'
            when length(l.function_code) = 3 then 'class'
            when length(l.function_code) = 5 then 'subclass'
            when length(l.function_code) <> 7 then 'malformed'
            when rc.code is not null then 'item'
            else 'unknown'
        end as function_code_status,
        -- the fund source names local matching / own-revenue money (地方配套, 本级财力, 自有):
        -- local money alone (is_local_money), or beside central money (is_mixed_money)
        coalesce(l.fund_source like '%地方%' or l.fund_source like '%配套%' or l.fund_source like '%本级%'
                 or l.fund_source like '%自有%', false) as names_local_money
    from lines as l
    join ref_years as y on y.notice_no = l.notice_no
    left join ref_function_codes as rc
      on rc.fiscal_year = y.ref_year and rc.code = l.function_code and rc.level = 'item'
)
select
    c.*,
    pm.line_seq,
    pm.match_by,
    coalesce(pm.match_kind, 'unmatched') as match_kind,
    pm.purposes_named,
    a.purpose as allocated_purpose,
    a.function_code as allocated_code,
    a.is_direct as allocated_is_direct,
    a.amount as allocated_amount,
    -- read from the flag as written (trimmed at load), here rather than at load: ledger_lines
    -- has no column for it. A run computes it once (SNAPSHOT_VIEWS): 10M values took 0.7 s on
    -- two cores, and the bench's 10M-line ledger has 1.5M expenditure lines
    coalesce(c.direct_flag
             and (regexp_matches(c.direct_flag_raw, '^0?2([^0-9]|$)')
                  or position('参照' in c.direct_flag_raw) > 0), false) as direct_flag_referenced,
    -- local matching / own-revenue money (地方配套, 本级财力) that names no central money, and
    -- central money named together with local money (中央直达资金+地方配套资金: sources mixed)
    (c.names_local_money and c.fund_source not like '%中央%') as is_local_money,
    (c.names_local_money and c.fund_source like '%中央%') as is_mixed_money,
    -- the summary is read only on credits: few, and a debit is never a refund; read as purpose_key
    -- writes it (spaces out, full-width digits and brackets as ASCII: 收回 2023 年, 收回２０２３年)
    case when c.amount < 0 and c.summary is not null
         then coalesce(regexp_matches(purpose_key(c.summary), '收回|退回|缴回|追回|退还|返还|冲回|冲销|冲减|冲红|红冲')
                       and (regexp_matches(purpose_key(c.summary), '以前年度|以前年|上年|上一年|往年')
                            -- the last year it names (four digits compare as text as they do as
                            -- numbers, and no cast can fail), read only where it names one
                            or case when regexp_matches(purpose_key(c.summary), '(19|20)[0-9]{2}年')
                                    then regexp_replace(purpose_key(c.summary), '^.*((19|20)[0-9]{2})年.*$', '\1')
                                             < cast(extract(year from c.posted_on) as varchar)
                                         and position(cast(extract(year from c.posted_on) as varchar) || '年'
                                                      in purpose_key(c.summary)) = 0
                                    else false end), false)
         else false end as prior_year_refund
from classified as c
left join fct_purpose_match as pm
  on pm.notice_no = c.notice_no and pm.purpose_key is not distinct from c.purpose_key
left join allocation_lines as a
  on a.notice_no = c.notice_no and a.line_seq = pm.line_seq
left join (select * from run_context limit 1) as ctx on true
-- a run scoped to one purpose sees only the lines of that purpose's sub-account
where ctx.purpose_key is null or a.purpose_key = ctx.purpose_key;

-- The copies of a voucher line loaded twice: the same line in the active data again, every column
-- a rule reads equal (period, voucher, line, book, account, debit, credit as DUPLICATE_ENTRY
-- compares them, and the day, payee, sub-account, codes and summary), such as October's 记-10-0008
-- in the October and the November exports (monthly files that overlap), or a row repeated in one
-- export. A voucher line is booked once, so its copies are no spending: every copy after the
-- first (by file, row) is listed here, and fct_expenditure leaves it out. Two lines that share
-- only DUPLICATE_ENTRY's columns (记-1 line 1 of 480 to two households, in two units' ledgers)
-- are both spent, and DUPLICATE_ENTRY asks a person to look. DUPLICATE_ENTRY reports each copy, naming the first. Before,
-- the rules reported the copy while the summary, OVER_ALLOCATION and the indicators counted it
-- again (a false OVER_ALLOCATION of the copy's amount). Keys whose hash repeats are found first
-- (a grouping of one number), and only their lines are ranked; the exact columns decide. A run
-- computes it once (pipeline.run.SNAPSHOT_VIEWS).
create or replace view fct_line_copies as
with keyed as not materialized (
    -- hash() has no standard form; it only narrows the candidates
    select e.notice_no, e.file_id, e.row_no, e.source_file, e.period, e.voucher_no, e.line_no, e.book,
           e.account_code, e.debit, e.credit, e.posted_on, e.payee, e.purpose_key, e.function_code,
           e.project_code, e.summary,
           hash(e.notice_no, e.period, e.voucher_no, e.line_no, e.book, e.account_code, e.debit,
                e.credit, e.posted_on, e.payee, e.purpose_key, e.function_code, e.project_code,
                e.summary) as line_hash
    from fct_expenditure_lines as e
    where not e.doc_of_other_year and not e.prior_year_refund
),
repeated as (
    select line_hash
    from keyed
    group by line_hash
    having count(*) > 1
),
ranked as (
    select k.notice_no, k.file_id, k.row_no,
           row_number() over (partition by k.notice_no, k.period, k.voucher_no, k.line_no, k.book,
                                           k.account_code, k.debit, k.credit, k.posted_on, k.payee,
                                           k.purpose_key, k.function_code, k.project_code, k.summary
                              order by k.source_file, k.row_no) as nth
    from keyed as k
    where k.line_hash in (select r.line_hash from repeated as r)
)
select notice_no, file_id, row_no
from ranked
where nth > 1;

-- line_copy: a copy of a line loaded twice (fct_line_copies), left out of fct_expenditure
create or replace view fct_expenditure_booked as
select l.*, c.row_no is not null as line_copy
from fct_expenditure_lines as l
left join fct_line_copies as c on c.notice_no = l.notice_no and c.file_id = l.file_id and c.row_no = l.row_no;

create or replace view fct_expenditure as
select e.*
from fct_expenditure_booked as e
where not e.doc_of_other_year and not e.prior_year_refund and not e.line_copy;

-- The spending each allocation line is held to (OVER_ALLOCATION, and the suite that mirrors it),
-- one row per expenditure line and unit:
--   kind 'line': an allocation line, and the lines counted under it alone (a 指标文号, a purpose
--     only its batch allocates, or no other batch of its year);
--   kind 'pool': batches of one year that both allocate a purpose under one project code
--     (提前下达 and 第二批). A line without 指标文号 is counted under each of them
--     (NOTICE_TIE_AMBIGUOUS), and which batch's money paid it is not known: held against any one
--     batch, it would push each over alone. The allocation lines such shared lines are counted
--     under make a pool, on its first allocation line (the first notice in scope as issued,
--     notices_issued.issue_key, the first line of it), with every line counted under any of them,
--     once, against their allocations together (pool_notices names the notices). The batches
--     counted but not in scope (fct_notices_counted) are members of the pool like the others.
--   kind 'member': no spending (amount 0), one row per allocation line of a pool, naming its pool
--     (pool_notice, pool_seq; null on the other rows): rpt_allocation_summary spreads the pool's
--     shared spending over them.
-- shared: on a pool's rows, the line is counted under several of its allocation lines (a member's
-- own lines are in the pool too, and shared is false on them); false on kind 'line'.
-- Neither breached, the shared lines can be spread over the pool without a breach. A line counted
-- under allocation lines of two pools (three batches whose sub-accounts match apart) is put in
-- the pool of its first one.
create or replace view fct_allocation_spending as
with counted as not materialized (
    select e.notice_no, e.line_seq, e.allocated_purpose, e.allocated_amount, e.voucher_no,
           e.line_no, e.posted_on, e.amount, e.source_file, e.row_no, e.file_id, e.tied_by,
           e.batch_repeat, e.payee
    from fct_expenditure as e
    where e.match_kind = 'line'
),
shared as (
    -- ledger lines counted under more than one notice (only a line tied by the project code can
    -- be: most lines name their notice by 指标文号)
    select file_id, row_no
    from counted
    where tied_by = 'project_code'
    group by file_id, row_no
    having count(*) > 1
),
shared_first as (
    -- the first of them (fct_notice_lines: the one it is not a batch_repeat under)
    select c.file_id, c.row_no, c.notice_no as first_notice, n.issue_key as first_key,
           min(c.line_seq) as first_seq
    from shared as s
    join counted as c on c.file_id = s.file_id and c.row_no = s.row_no and not c.batch_repeat
    join notices_issued as n on n.notice_no = c.notice_no
    group by c.file_id, c.row_no, c.notice_no, n.issue_key
),
reduced as (
    -- a reduction (调减: a negative allocation line) and the lines of other notices of its project
    -- code and year that allocate its purpose: it takes money back from them, though the
    -- spending goes on citing their 文号 (the payment system keeps the first 指标文号)
    select r.notice_no as r_notice, r.line_seq as r_seq, t.notice_no, t.line_seq, nt.issue_key
    from fct_allocation_lines as r
    join notices as nr on nr.notice_no = r.notice_no
    join fct_allocation_lines as t on t.purpose_key = r.purpose_key and t.notice_no <> r.notice_no
                                 and t.amount > 0
    join notices as n2 on n2.notice_no = t.notice_no and n2.project_code = nr.project_code
                      and n2.fiscal_year = nr.fiscal_year
    join notices_issued as nt on nt.notice_no = t.notice_no
    where r.amount < 0 and nr.project_code is not null
),
reduced_first as (
    -- the first issued of the lines it reduces: the pool's, as for batches sharing lines
    select r_notice, r_seq, notice_no as first_notice, issue_key as first_key, line_seq as first_seq
    from (select r.*, row_number() over (partition by r.r_notice, r.r_seq
                                         order by r.issue_key, r.line_seq) as nth
          from reduced as r) as ordered
    where nth = 1
),
touched as (
    select distinct c.notice_no, c.line_seq, f.first_notice, f.first_key, f.first_seq
    from counted as c
    join shared_first as f on f.file_id = c.file_id and f.row_no = c.row_no
    union
    -- a reduction and the lines it reduces are held together, as batches sharing lines are
    select r.notice_no, r.line_seq, f.first_notice, f.first_key, f.first_seq
    from reduced as r
    join reduced_first as f on f.r_notice = r.r_notice and f.r_seq = r.r_seq
    union
    select f.r_notice, f.r_seq, f.first_notice, f.first_key, f.first_seq
    from reduced_first as f
),
pool_of as (
    -- each allocation line a shared line is counted under, and its pool's first allocation line
    select t.notice_no, t.line_seq, t.first_notice as pool_notice, min(t.first_seq) as pool_seq
    from touched as t
    join (select notice_no, line_seq, min(first_key) as first_key
          from touched
          group by notice_no, line_seq) as m
      on m.notice_no = t.notice_no and m.line_seq = t.line_seq and m.first_key = t.first_key
    group by t.notice_no, t.line_seq, t.first_notice
),
pools as (
    select p.pool_notice, p.pool_seq, sum(a.amount) as allocated,
           string_agg(p.notice_no, '、' order by n.issue_key) as notices
    from (select distinct pool_notice, pool_seq, notice_no, line_seq from pool_of) as p
    join fct_allocation_lines as a on a.notice_no = p.notice_no and a.line_seq = p.line_seq
    join notices_issued as n on n.notice_no = p.notice_no
    group by p.pool_notice, p.pool_seq
)
-- kind 'line': an allocation line and the lines counted under it alone
select c.notice_no, c.line_seq, 'line' as kind, c.allocated_purpose, c.allocated_amount,
       c.voucher_no, c.line_no, c.posted_on, c.amount, c.source_file, c.row_no,
       cast(null as varchar) as pool_notices, cast(null as varchar) as pool_notice,
       cast(null as integer) as pool_seq, c.file_id, c.payee, false as shared
from counted as c
where not exists (select 1 from shared as s where s.file_id = c.file_id and s.row_no = c.row_no)
union all
-- kind 'pool': a pool, on its first allocation line, and every line counted under it, once
select u.pool_notice, u.pool_seq, 'pool', a.purpose, p.allocated,
       u.voucher_no, u.line_no, u.posted_on, u.amount, u.source_file, u.row_no, p.notices,
       cast(null as varchar), cast(null as integer), u.file_id, u.payee, u.shared
from (select distinct o.pool_notice, o.pool_seq, c.file_id, c.row_no, c.voucher_no, c.line_no,
                      c.posted_on, c.amount, c.source_file, c.payee,
                      s.file_id is not null as shared
      from counted as c
      join pool_of as o on o.notice_no = c.notice_no and o.line_seq = c.line_seq
      left join shared as s on s.file_id = c.file_id and s.row_no = c.row_no) as u
join pools as p on p.pool_notice = u.pool_notice and p.pool_seq = u.pool_seq
join fct_allocation_lines as a on a.notice_no = u.pool_notice and a.line_seq = u.pool_seq
union all
-- kind 'member': each allocation line of a pool
select o.notice_no, o.line_seq, 'member', a.purpose, a.amount,
       cast(null as varchar), cast(null as varchar), cast(null as date), 0, cast(null as varchar),
       cast(null as bigint), cast(null as varchar), o.pool_notice, o.pool_seq,
       cast(null as integer), cast(null as varchar), cast(null as boolean)
from pool_of as o
join fct_allocation_lines as a on a.notice_no = o.notice_no and a.line_seq = o.line_seq;

-- Per unit of fct_allocation_spending: allocated and spent (the expectation suite
-- rpt_allocation_summary judges spending within each allocation on it, as OVER_ALLOCATION does).
create or replace view rpt_allocation_control as
select
    notice_no,
    line_seq,
    kind,
    max(allocated_purpose) as purpose,
    max(allocated_amount) as allocated,
    cast(sum(amount) as decimal(18,2)) as spent,
    max(pool_notices) as pool_notices
from fct_allocation_spending
where kind <> 'member'
  and notice_no in (select notice_no from fct_notices)  -- a batch counted, not in scope: not judged
group by notice_no, line_seq, kind;

-- One row per allocation line: allocated, spent (net of reversals), balance, execution rate.
-- Spent is what the lines counted under the allocation line alone spent (fct_allocation_spending,
-- kind 'line'). An allocation line of a pool (batches of one fund that both allocate a purpose,
-- with lines counted under each, NOTICE_TIE_AMBIGUOUS) also takes a part of what those shared lines
-- spent, in the order the batches were issued, as money is drawn: each takes what its own lines
-- left of its allocation, the last takes the rest, so its balance shows what the pool overspent
-- (which OVER_ALLOCATION reports). The parts add up to the shared lines' total, counted once.
-- Such a line names its pool (pool_notice, pool_seq) and its part of the shared spending, as a
-- range of the pool's running total, [pool_part_from, pool_part_to) (null: open; the first's part
-- starts below zero, the last's has no end): fct_pool_lines gives a member the shared lines whose
-- stretch of that total meets its part, for the indicators' counts.
create or replace view rpt_allocation_summary as
with units as materialized (  -- a row per unit: planned and computed once
    select notice_no, line_seq, kind, max(pool_notice) as pool_notice, max(pool_seq) as pool_seq,
           sum(amount) as spent
    from fct_allocation_spending
    group by notice_no, line_seq, kind
),
own as (
    select notice_no, line_seq, spent from units where kind = 'line'
),
pool_spent as (
    select notice_no as pool_notice, line_seq as pool_seq, spent from units where kind = 'pool'
),
members as (
    select p.notice_no, p.line_seq, p.pool_notice, p.pool_seq, n.issue_key,
           coalesce(o.spent, 0) as own,
           case when a.amount > coalesce(o.spent, 0) then a.amount - coalesce(o.spent, 0) else 0 end as room
    from units as p
    join notices_issued as n on n.notice_no = p.notice_no
    join fct_allocation_lines as a on a.notice_no = p.notice_no and a.line_seq = p.line_seq
    left join own as o on o.notice_no = p.notice_no and o.line_seq = p.line_seq
    where p.kind = 'member'
),
ordered as (
    select
        m.notice_no,
        m.line_seq,
        m.pool_notice,
        m.pool_seq,
        m.room,
        s.spent - sum(m.own) over pool as shared,
        coalesce(sum(m.room) over earlier, 0) as room_before,
        row_number() over (partition by m.pool_notice, m.pool_seq
                           order by m.issue_key, m.line_seq) = 1 as is_first,
        row_number() over (partition by m.pool_notice, m.pool_seq
                           order by m.issue_key desc, m.line_seq desc) = 1 as is_last
    from members as m
    join pool_spent as s on s.pool_notice = m.pool_notice and s.pool_seq = m.pool_seq
    window pool as (partition by m.pool_notice, m.pool_seq),
           earlier as (partition by m.pool_notice, m.pool_seq order by m.issue_key, m.line_seq
                       rows between unbounded preceding and 1 preceding)
),
shares as (
    select
        notice_no,
        line_seq,
        case when is_last  -- the rest: what the ones before it did not take
                 then shared - case when shared <= 0 then 0
                                    when shared < room_before then shared else room_before end
             when shared <= room_before then 0
             when shared - room_before < room then shared - room_before
             else room end as share,
        pool_notice,
        pool_seq,
        case when not is_first then room_before end as part_from,
        case when not is_last then room_before + room end as part_to
    from ordered
),
spent as (
    select a.notice_no, a.line_seq, a.purpose, a.function_code, a.amount as allocated,
           coalesce(o.spent, 0) + coalesce(sh.share, 0) as spent,
           sh.pool_notice, sh.pool_seq, sh.part_from, sh.part_to
    from fct_allocation_lines as a
    left join own as o on o.notice_no = a.notice_no and o.line_seq = a.line_seq
    left join shares as sh on sh.notice_no = a.notice_no and sh.line_seq = a.line_seq
),
rates as (
    -- spent / allocated to four places, halves away from zero (0.00035 -> 0.0004), as the
    -- indicators round. Dividing two decimals gives a double, a hair off at a half (0.00035 is
    -- 0.000349999…): its rounding, r0, is put right by the exact remainder spent - r0 × allocated
    select s.*,
           case when s.allocated > 0 then cast(round(s.spent / s.allocated, 4) as decimal(18,4)) end as r0
    from spent as s
)
select
    s.notice_no,
    s.line_seq,
    s.purpose,
    s.function_code,
    s.allocated,
    cast(s.spent as decimal(18,2)) as spent,
    cast(s.allocated - s.spent as decimal(18,2)) as balance,
    -- no rate of a line that allocates nothing or takes money back (a batch's 调减)
    cast(case when s.r0 is null then null
              when s.spent >= 0 and s.spent - s.r0 * s.allocated >= 0.00005 * s.allocated then s.r0 + 0.0001
              when s.spent >= 0 and s.spent - s.r0 * s.allocated < -0.00005 * s.allocated then s.r0 - 0.0001
              when s.spent < 0 and s.spent - s.r0 * s.allocated <= -0.00005 * s.allocated then s.r0 - 0.0001
              when s.spent < 0 and s.spent - s.r0 * s.allocated > 0.00005 * s.allocated then s.r0 + 0.0001
              else s.r0 end as decimal(18,4)) as execution_rate,
    s.pool_notice,
    s.pool_seq,
    cast(s.part_from as decimal(18,2)) as pool_part_from,
    cast(s.part_to as decimal(18,2)) as pool_part_to
from rates as s
where s.notice_no in (select notice_no from fct_notices);  -- spread over every batch counted

-- The shared lines of each pool (fct_allocation_spending, kind 'pool': counted under several of
-- its allocation lines), once, each with the stretch of the pool's shared spending it paid,
-- [place_from, place_to): the lines are laid end to end in posting order (date, voucher, line),
-- a reversal (a negative line) netted into the payee's latest payment among them on or before its
-- day (the payment it reverses, as far as the ledger shows: both take the stretch of what is left
-- of it; of one day's lines the ledger cannot say which came first, and the indicators' months
-- and paid_back and SUBSIDY_CAP_EXCEEDED's paid_back take the same payment), other lines in their
-- own place.
-- The stretches add up to the shared lines' total, as the parts of rpt_allocation_summary do
-- (pool_part_from, pool_part_to): a member of the pool is given the lines whose stretch meets
-- its part (a line of nothing left: whose place is in it), so the lines the indicators count
-- under a batch (payees, months) are those the summary spreads its money from, and a line across
-- two parts was paid by both.
create or replace view fct_pool_lines as
with lines as (
    select s.notice_no as pool_notice, s.line_seq as pool_seq, s.file_id, s.row_no, s.amount,
           nullif(trim(s.payee), '') as payee, s.posted_on,
           row_number() over (partition by s.notice_no, s.line_seq
                              order by s.posted_on, length(s.voucher_no), s.voucher_no,
                                       length(s.line_no), s.line_no, s.file_id, s.row_no) as seq
    from fct_allocation_spending as s
    where s.kind = 'pool' and s.shared
),
anchored as (
    -- anchor: the line whose place a line takes (a reversal: the payment it reverses, if any:
    -- the payee's latest payment on or before its day, the greatest seq of them)
    select l.*,
           case when l.amount < 0 and l.payee is not null
                then coalesce(max(case when l.amount > 0 then l.seq end) over (
                                  partition by l.pool_notice, l.pool_seq, l.payee order by l.posted_on
                                  range between unbounded preceding and current row), l.seq)
                else l.seq end as anchor
    from lines as l
),
places as (
    select pool_notice, pool_seq, anchor, net,
           coalesce(sum(net) over (partition by pool_notice, pool_seq order by anchor
                                   rows between unbounded preceding and 1 preceding), 0) as before
    from (select pool_notice, pool_seq, anchor, sum(amount) as net
          from anchored
          group by pool_notice, pool_seq, anchor) as n
)
select
    a.pool_notice, a.pool_seq, a.file_id, a.row_no, a.amount, a.payee,
    case when p.net < 0 then p.before + p.net else p.before end as place_from,
    case when p.net < 0 then p.before else p.before + p.net end as place_to
from anchored as a
join places as p on p.pool_notice = a.pool_notice and p.pool_seq = a.pool_seq and p.anchor = a.anchor;

-- The per-household monthly standard each allocation line is held to (SUBSIDY_CAP_EXCEEDED,
-- fct_months_placed): the target of the purpose's own target table whose unit is 元 per 户 per
-- 月 (每户补贴标准 <=480元/户/月 in the seed), recognised the same way as in
-- config/indicators.toml, never a constant. Of several, the lowest; of two equal ones the strict
-- '<'; the cap's value, text and operator all come from that one indicator.
create or replace view fct_monthly_caps as
with cap_candidates as (
    select
        tt.notice_no,
        a.line_seq,
        i.target_value as cap,
        i.target_text as cap_text,
        i.op,
        row_number() over (
            partition by tt.notice_no, a.line_seq
            order by i.target_value, case i.op when '<' then 0 else 1 end, i.table_seq, i.indicator_seq
        ) as pick
    from target_tables as tt
    join target_indicators as i on i.notice_no = tt.notice_no and i.table_seq = tt.table_seq
    join fct_allocation_lines as a on a.notice_no = tt.notice_no and a.purpose_key = tt.purpose_key
    where not i.qualitative
      and i.op in ('<=', '<', '=')
      and i.target_value is not null
      and replace(replace(i.target_unit, ' ', ''), '·', '/') in ('元/户/月', '元/月/户', '元/户/每月')
)
select notice_no, line_seq, cap, cap_text, op from cap_candidates where pick = 1;

-- The payments held to a per-household monthly standard (SUBSIDY_CAP_EXCEEDED, fct_months_placed):
-- an allocation line's lines (match_kind 'line') under a standard (fct_monthly_caps: cap,
-- cap_text, op), each once (not batch_repeat), dated, with a payee (trimmed); month: the month
-- posted.
create or replace view fct_capped_payments as
select e.notice_no, e.line_seq, e.allocated_purpose as purpose, trim(e.payee) as payee,
       date_trunc('month', e.posted_on) as month, e.voucher_no, e.line_no, e.posted_on, e.amount,
       e.summary, e.source_file, e.file_id, e.row_no, c.cap, c.cap_text, c.op
from fct_expenditure as e
join fct_monthly_caps as c on c.notice_no = e.notice_no and c.line_seq = e.line_seq
where e.match_kind = 'line'
  and not e.batch_repeat
  and e.posted_on is not null
  and nullif(trim(e.payee), '') is not null;

-- The months each payment pays, placed on the calendar: SUBSIDY_CAP_EXCEEDED's months paid again
-- from another month, and 每户补贴标准 with it. A month can be paid twice from two posting months:
-- February's own 480 posted in February, and 补发2月 480 posted in March beside March's own 480
-- (March then pays two months, 960: within, judged by the month posted). So each payment is placed
-- on the months it pays (month_bits, as the rule reads a summary), its amount shared equally among
-- them (补发1-3月 1,440: 480 a month), a payment naming none paying the month posted, a reversal
-- taking back from the months of the payee's latest payment on or before its day (one of the same
-- day counts as before it, as in fct_pool_lines). A count (补发2个月) names no month, and pays
-- none here. Only the payees with a payment for a month other than the month posted are placed
-- (most have none), and never a bank or paying agency (is_bank_payee: no household). The lines are
-- SUBSIDY_CAP_EXCEEDED's (fct_capped_payments).
-- One row per line and month it pays (paid_month, its first day); months: how many it pays;
-- shares are exact: share_scaled is the amount times 144403552893600 / months (the least common
-- multiple of 1 … 36, as a line pays at most 36 months: month_bits' range), running_scaled and
-- total_scaled the payee's shares of the month paid up to the line (in the order the lines are
-- posted and numbered, ord) and in all, cap_scaled the standard scaled the same; month_total the
-- month's total to the fen (half up) and month_total_4 to four places; first_posted_in: the first
-- month posted of a payment of the month paid up to the line, posted_from / posted_to of all of
-- them; first_voucher and first_line_no: the voucher and line of its first payment.
create or replace view fct_months_placed as
with payments as (
    select * from fct_capped_payments
),
months_named as materialized (
    -- summary_months_text read once a line, into a column that month_bits reads
    select notice_no, line_seq, payee, posted_on, summary_months_text(summary) as months_text
    from payments
    where amount > 0
),
placed_payees as (
    select distinct notice_no, line_seq, payee
    from months_named
    where months_text is not null
      and month_bits(months_text, posted_on) <> month_bits(null, posted_on)
      and not is_bank_payee(payee)
),
placed as materialized (
    -- the placed payees' summaries are read again here, rather than every payment's columns kept
    -- in months_named: at 2M bench lines 0.054 s against 0.049 s without back pay, 0.11 s against
    -- 0.17 s with 1 line in 20 back pay of 25,000 payees
    select p.*,
           row_number() over (
               partition by p.notice_no, p.line_seq, p.payee
               order by p.posted_on, length(p.voucher_no), p.voucher_no, length(p.line_no), p.line_no, p.file_id,
                        p.row_no) as ord,
           case when p.amount > 0 then summary_months_text(p.summary) end as months_text
    from payments as p
    join placed_payees as b on b.notice_no = p.notice_no and b.line_seq = p.line_seq and b.payee = p.payee
),
placed_bits as (
    select *,
           case when amount > 0 then month_bits(months_text, posted_on) end as bits,
           case when amount > 0 then ord
                else max(case when amount > 0 then ord end) over (
                         partition by notice_no, line_seq, payee order by posted_on
                         range between unbounded preceding and current row) end as paid_by
    from placed
),
-- month_bits' months, from the month posted: MONTH_BITS_BACK (24) before it to MONTH_BITS_AHEAD
-- (11) after it (pipeline/text.py; tests/test_indicators.py holds the two together)
month_offsets as (
    select k from (values (-24), (-23), (-22), (-21), (-20), (-19), (-18), (-17), (-16), (-15), (-14), (-13),
           (-12), (-11), (-10), (-9), (-8), (-7), (-6), (-5), (-4), (-3), (-2), (-1),
           (0), (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11)) as v (k)
),
shares as (
    select r.notice_no, r.line_seq, r.purpose, r.payee, r.month, r.ord, r.voucher_no, r.line_no,
           r.posted_on, r.amount, r.summary, r.source_file, r.file_id, r.row_no, r.cap, r.cap_text, r.op,
           cast(p.month as date) + m.k * interval '1' month as paid_month,
           count(*) over (partition by r.notice_no, r.line_seq, r.payee, r.ord) as months
    from placed_bits as r
    join placed_bits as p
      on p.notice_no = r.notice_no and p.line_seq = r.line_seq and p.payee = r.payee and p.ord = r.paid_by
    join month_offsets as m on pays_month(p.bits, m.k)
),
scaled as (
    select s.*, s.amount * cast(144403552893600 / s.months as bigint) as share_scaled,
           s.cap * 144403552893600 as cap_scaled
    from shares as s
),
totals as (
    select s.*,
           sum(s.share_scaled) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month order by s.ord
               rows between unbounded preceding and current row) as running_scaled,
           sum(s.share_scaled) over (partition by s.notice_no, s.line_seq, s.payee, s.paid_month) as total_scaled,
           min(case when s.amount > 0 then s.month end) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month order by s.ord
               rows between unbounded preceding and current row) as first_posted_in,
           min(case when s.amount > 0 then s.month end) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month) as posted_from,
           max(case when s.amount > 0 then s.month end) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month) as posted_to,
           first_value(s.voucher_no) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month
               order by case when s.amount > 0 then 0 else 1 end, s.ord) as first_voucher,
           first_value(s.line_no) over (
               partition by s.notice_no, s.line_seq, s.payee, s.paid_month
               order by case when s.amount > 0 then 0 else 1 end, s.ord) as first_line_no
    from scaled as s
)
select t.*,
       -- the month's total to the fen, half up: (fen × scale + half the scale) less its remainder,
       -- over the scale, is a whole number of fen (the one double here holds it exactly)
       cast(cast((cast(t.total_scaled * 100 as decimal(38,0)) + 72201776446800
                  - mod(cast(t.total_scaled * 100 as decimal(38,0)) + 72201776446800, 144403552893600))
                 / 144403552893600 as decimal(18,0)) * 0.01 as decimal(18,2)) as month_total,
       -- and to four places, as 每户补贴标准 shows a month spread over several (480.0033)
       cast(round(t.total_scaled / 144403552893600, 4) as decimal(38,4)) as month_total_4
from totals as t;

-- How the sub-account names (项目名称) of the expenditure tied to each notice were matched to
-- allocation lines (fct_purpose_match): by the line's own name, by an alias configured in
-- inputs/purpose_aliases.csv, or by the core name (year and 中央直达 left out); or not at all
-- (a pooled account, several purposes in one name, unmatched). One row per name, with its lines
-- and net amount: which money each line's spent was counted from, and which money no line's.
create or replace view rpt_purpose_matches as
select
    e.notice_no,
    min(e.purpose) as purpose,
    e.purpose_key,
    e.match_kind,
    e.match_by,
    e.line_seq,
    min(e.allocated_purpose) as allocated_purpose,
    count(*) as lines,
    cast(sum(e.amount) as decimal(18,2)) as amount
from fct_expenditure as e
where e.notice_no in (select notice_no from fct_notices)
group by e.notice_no, e.purpose_key, e.match_kind, e.match_by, e.line_seq;

-- The expenditure lines that their mirror reversals cancel: one row per cancelled line, the
-- payment and the reversal that cancels it. A mirror is a reversal (红字冲销) with the same
-- sub-account, payee, function code, direct flag (02 中央参照直达资金 told from 01:
-- fct_expenditure.direct_flag_referenced), project code, fund source and amount of
-- opposite sign. A key's payments and reversals are laid end to end in posting order (by date, a
-- day's payments before its reversals, then voucher and line), and each reversal cancels the
-- latest payment still pending on or before its day, as the indicators and SUBSIDY_CAP_EXCEEDED
-- take a reversal to the payee's latest payment: a month's duplicate paid back in that month
-- cancels that month's payment, not January's. `pending` counts the payments not cancelled yet:
-- a payment is cancelled when the count later falls below its own; a reversal with no payment
-- pending (the count at a new low) cancels nothing and is not listed. The rules of single lines
-- pass over the lines listed here (a wrong line reversed is corrected), and fct_recon_lines marks
-- them `reversed`. Each line is counted once, as the rules take it (not its later counts under a
-- batch of the same fund, batch_repeat). Only lines whose key has a reversal at all are ranked,
-- so a ledger with few reversals costs one hash join, not a sort of every line; a run computes
-- it once (pipeline.run.SNAPSHOT_VIEWS).
create or replace view fct_reversed_lines as
-- read twice, each time a few columns: not worth a materialised copy of every line (at 10M
-- ledger lines, on the run's snapshot of fct_expenditure, 0.32-0.37 s in all against 0.58-0.71 s;
-- on the view itself, outside a run, a rule reading this took 1.23-1.32 s, and 1.95-2.05 s with
-- the copy)
with lines as not materialized (
    select e.notice_no, e.file_id, e.row_no, e.source_file, e.voucher_no, e.line_no, e.posted_on,
           e.amount, e.purpose_key, e.payee, e.function_code, e.direct_flag, e.direct_flag_referenced,
           e.project_code, e.fund_source
    from fct_expenditure as e
    where e.amount <> 0
      and not e.batch_repeat
),
reversal_keys as (
    select row_number() over () as key_id, k.*
    from (select distinct notice_no, purpose_key, payee, function_code, direct_flag,
                 direct_flag_referenced, project_code, fund_source, -amount as amount
          from lines
          where amount < 0) as k
),
stacked as (
    -- each line of a key, numbered in posting order (seq), and the payments pending after it
    select
        l.notice_no, l.file_id, l.row_no, l.amount, k.key_id,
        row_number() over mirror as seq,
        sum(case when l.amount > 0 then 1 else -1 end)
            over (mirror rows between unbounded preceding and current row) as pending
    from lines as l
    join reversal_keys as k
      on k.notice_no = l.notice_no
     and k.purpose_key is not distinct from l.purpose_key
     and k.payee is not distinct from l.payee
     and k.function_code is not distinct from l.function_code
     and k.direct_flag is not distinct from l.direct_flag
     and k.direct_flag_referenced = l.direct_flag_referenced
     and k.project_code is not distinct from l.project_code
     and k.fund_source is not distinct from l.fund_source
     and k.amount = abs(l.amount)
    window mirror as (
        partition by k.key_id
        order by l.posted_on, case when l.amount > 0 then 0 else 1 end, length(l.voucher_no), l.voucher_no,
                 length(l.line_no), l.line_no, l.source_file, l.row_no)
),
judged as (
    select
        s.notice_no, s.file_id, s.row_no, s.amount, s.pending,
        min(s.pending) over (stack rows between 1 following and unbounded following) as pending_later,
        min(s.pending) over (stack rows between unbounded preceding and 1 preceding) as pending_before
    from stacked as s
    window stack as (partition by s.key_id order by s.seq)
)
select j.notice_no, j.file_id, j.row_no
from judged as j
where (j.amount > 0 and j.pending_later < j.pending)
   or (j.amount < 0 and (j.pending >= 0 or j.pending >= j.pending_before));

-- What is left of each wrong booking, as of the run's date. A wrong booking is often corrected in
-- bulk, not line for line: a month's 480 + 480 on 2210108 taken off by one red line of -960 with
-- no payee (红字冲销 of the batch), then rebooked to 2210107; or a batch paid without the
-- direct-fund flag, taken off in one line and paid again with it. The lines of one wrong booking
-- are grouped, with their count and net: a group whose lines net to 0.00 is corrected, however
-- the correction was booked: nothing is left of it, and its rule reports none of its lines. A
-- group with something left (partly corrected, over-corrected, or never) is judged line by line
-- as before: each line not cancelled by its mirror (fct_reversed_lines) is reported, with the net
-- in the message. Mirrors net to zero within a group, so a group of mirror pairs only is corrected
-- as well.
--
-- One row per line wrong in any way, with for each kind of wrong (code, flag, source, account):
--   <kind>_wrong      the line is wrong that way: the rule's test of a wrong line, stated here
--                     alone (the rules read it, and pick their own shapes of it: the rules of
--                     codes by function_code_status, COMMINGLED_ACCOUNT and UNMATCHED_EXPENDITURE
--                     by match_kind)
--   <kind>_lines, <kind>_net   the count and the net of the line's wrong booking of that kind
--                     (null where the line is not wrong that way), for the messages
--   <kind>_corrected  that booking nets to 0.00 (false where the line is not wrong that way): the
--                     rule reports none of its lines, and fct_recon_lines marks them so
-- The rules and fct_recon_lines join a line here by the line (notice_no, file_id, row_no), so
-- each kind's group key is stated once, below. What "one wrong booking" is, by kind (its key):
--   code     a function code the rules of codes judge wrong (CODE_NOT_ITEM_LEVEL: not an item
--            code; CODE_UNKNOWN: not in the year's classification; CODE_MISMATCH: another item
--            than the allocation line's): notice, allocation line (a sub-account that names none:
--            by its name, purpose_key) and the code as booked. COMMINGLED_ACCOUNT nets the codes
--            of a sub-account the same way (notice, allocation line, code), in its own query.
--   flag     DIRECT_FLAG_MISSING: spending of a 中央直达 allocation line, not local money, without
--            the flag 01 or the notice's project code: notice, allocation line, and the flag and
--            project code as booked (direct_flag, direct_flag_referenced, project_code, as
--            fct_reversed_lines tells mirrors apart: a red line with 否 does not take off lines
--            booked blank, nor one with 02 lines booked with 09).
--   source   SOURCE_NOT_SEPARATED: a blank fund source, central and local money in one line, or
--            local money in the sub-account of a 中央直达 line: notice, allocation line (a
--            sub-account that names none: by its name) and the fund source as booked (blank:
--            null). A red line of another source (中央直达资金) takes nothing off a blank source.
--   account  UNMATCHED_EXPENDITURE and COMMINGLED_ACCOUNT's pooled and multi shapes: a
--            sub-account that names no single allocation line: notice and the sub-account as
--            booked (purpose_key; blank included).
-- A group holds the lines wrong that way with its key (the test leads the key), and no others.
-- A line may be wrong in several ways, and is then in a group of each kind, each netted on its
-- own: a batch on a wrong code and without the flag, its code corrected in bulk but its flag not,
-- still lacks the flag. Each line is counted once, as the rules take it (amount <> 0, not
-- batch_repeat; fct_expenditure: no prior years' refund, which is no spending of the year and in
-- no group). One pass over the lines: the wrong ones, few, partitioned by each kind's key; a run
-- computes it once (pipeline.run.SNAPSHOT_VIEWS).
create or replace view fct_wrong_lines as
with wrong as materialized (
    -- the lines wrong in any way, once, with a column per kind; read five times
    select *
    from (
        select
            e.notice_no, e.file_id, e.row_no, e.amount, e.line_seq, e.purpose_key, e.function_code,
            e.direct_flag, e.direct_flag_referenced, e.project_code,
            case when e.line_seq is null then e.purpose_key end as unallocated_key,
            nullif(trim(e.fund_source), '') as fund_source,
            coalesce(e.function_code_status <> 'item'
                     or (e.match_kind = 'line' and length(e.allocated_code) = 7
                         and e.function_code <> e.allocated_code), false) as code_wrong,
            coalesce(e.match_kind = 'line' and e.allocated_is_direct and not e.is_local_money
                     and (e.direct_flag is distinct from true
                          or e.direct_flag_referenced
                          or e.project_code is distinct from e.notice_project_code), false) as flag_wrong,
            coalesce(nullif(trim(e.fund_source), '') is null
                     or (e.match_kind = 'line' and e.allocated_is_direct and e.is_local_money)
                     or e.is_mixed_money,
                     false) as source_wrong,
            e.match_kind in ('pooled', 'multi', 'unmatched') as account_wrong
        from fct_expenditure as e
        where e.amount <> 0
          and not e.batch_repeat
    ) as l
    where l.code_wrong or l.flag_wrong or l.source_wrong or l.account_wrong
),
-- each kind's wrong bookings: the lines wrong that way, partitioned by the kind's key (written
-- here alone; the lines join back by the line, and the rules and fct_recon_lines likewise)
code_groups as (
    select w.notice_no, w.file_id, w.row_no,
           count(*) over booking as lines, sum(w.amount) over booking as net
    from wrong as w
    where w.code_wrong
    window booking as (partition by w.notice_no, w.line_seq, w.unallocated_key, w.function_code)
),
flag_groups as (
    select w.notice_no, w.file_id, w.row_no,
           count(*) over booking as lines, sum(w.amount) over booking as net
    from wrong as w
    where w.flag_wrong
    window booking as (partition by w.notice_no, w.line_seq,
                                    w.direct_flag, w.direct_flag_referenced, w.project_code)
),
source_groups as (
    select w.notice_no, w.file_id, w.row_no,
           count(*) over booking as lines, sum(w.amount) over booking as net
    from wrong as w
    where w.source_wrong
    window booking as (partition by w.notice_no, w.line_seq, w.unallocated_key, w.fund_source)
),
account_groups as (
    select w.notice_no, w.file_id, w.row_no,
           count(*) over booking as lines, sum(w.amount) over booking as net
    from wrong as w
    where w.account_wrong
    window booking as (partition by w.notice_no, w.purpose_key)
)
select
    w.notice_no, w.file_id, w.row_no,
    w.code_wrong, c.lines as code_lines, cast(c.net as decimal(18,2)) as code_net,
    coalesce(c.net = 0, false) as code_corrected,
    w.flag_wrong, f.lines as flag_lines, cast(f.net as decimal(18,2)) as flag_net,
    coalesce(f.net = 0, false) as flag_corrected,
    w.source_wrong, s.lines as source_lines, cast(s.net as decimal(18,2)) as source_net,
    coalesce(s.net = 0, false) as source_corrected,
    w.account_wrong, a.lines as account_lines, cast(a.net as decimal(18,2)) as account_net,
    coalesce(a.net = 0, false) as account_corrected
from wrong as w
left join code_groups as c
  on c.notice_no = w.notice_no and c.file_id = w.file_id and c.row_no = w.row_no
left join flag_groups as f
  on f.notice_no = w.notice_no and f.file_id = w.file_id and f.row_no = w.row_no
left join source_groups as s
  on s.notice_no = w.notice_no and s.file_id = w.file_id and s.row_no = w.row_no
left join account_groups as a
  on a.notice_no = w.notice_no and a.file_id = w.file_id and a.row_no = w.row_no;

-- Views of the names before fct_wrong_lines took their place (fct_miscoded_nets held the groups
-- of kind 'code' alone, fct_wrong_nets the groups of each kind, which the rules and
-- fct_recon_lines joined each by its key): gone from a store created before, so that nothing
-- reads them by mistake.
drop view if exists fct_miscoded_nets;
drop view if exists fct_wrong_nets;

-- The lines on wrong codes that stand, as the rules of codes (CODE_MISMATCH, CODE_NOT_ITEM_LEVEL,
-- CODE_UNKNOWN) report them, each rule its own kind of wrong code (by function_code_status): on
-- a code with something left under its allocation line (fct_wrong_lines: code_wrong, not
-- code_corrected; code_lines and code_net, for the message), and not cancelled by their mirror
-- (fct_reversed_lines; a reversal that cancels nothing stands).
create or replace view fct_miscoded_standing as
select e.*, w.code_lines, w.code_net
from fct_expenditure as e
join fct_wrong_lines as w
  on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
where w.code_wrong
  and not w.code_corrected
  and not exists (select 1 from fct_reversed_lines as c
                  where c.notice_no = e.notice_no and c.file_id = e.file_id and c.row_no = e.row_no);

-- The joined reconciliation table: one row per in-scope expenditure line that moves money
-- (amount <> 0), with the allocation line it maps to and what the rules judge it on. The
-- expectation suite expectations/fct_recon_lines.json guards it; the SQL checks state the same
-- rules line by line, and tests/test_expectations.py checks that the two agree.
--
-- It holds the prior years' refunds too (fct_expenditure_booked.prior_year_refund), which are no
-- spending of the year: only OUT_OF_PERIOD judges them, and the suite's other expectations pass
-- over them as the other rules do (they read fct_expenditure).
--
-- reversed: the line is cancelled by its mirror, or is the reversal that cancels it
-- (fct_reversed_lines, which the rules of single lines read too).
-- code_corrected, flag_corrected, source_corrected, account_corrected: the line is in a wrong
-- booking of that kind whose lines net to 0.00 (fct_wrong_lines, which the rules read too):
-- corrected, in bulk or line by line, as the rules take it (code: the rules of codes; flag:
-- DIRECT_FLAG_MISSING; source: SOURCE_NOT_SEPARATED; account: UNMATCHED_EXPENDITURE and
-- COMMINGLED_ACCOUNT's pooled and multi lines). Each of the suite's expectations passes over the
-- lines corrected in its own kind, as over reversed ones; a line corrected in one kind is judged
-- by the others as before, as their rules do. A prior years' refund is in no wrong booking.
create or replace view fct_recon_lines as
select
    e.notice_no, e.fiscal_year, e.file_id, e.row_no, e.source_file, e.voucher_no, e.line_no,
    e.posted_on, e.amount, e.purpose, e.purpose_key, e.payee, e.match_kind, e.line_seq,
    e.allocated_purpose, e.allocated_code, e.function_code, e.function_code_status,
    case when e.function_code_status = 'item' then e.function_code end as booked_item_code,
    case when length(e.allocated_code) = 7 then e.allocated_code end as allocated_item_code,
    e.direct_flag, e.project_code, e.notice_project_code, e.fund_source,
    nullif(trim(e.fund_source), '') as fund_source_named,
    cast(extract(year from e.posted_on) as integer) as posted_year,
    -- null where the rule asks for no flag (not direct money, or not in a line's account); false
    -- where the line lacks the flag 01 (blank, 09, or 02 中央参照直达资金) or the project code
    case when e.match_kind = 'line' and e.allocated_is_direct and not e.is_local_money
         then (e.direct_flag is not distinct from true
               and not e.direct_flag_referenced
               and e.project_code is not distinct from e.notice_project_code)
    end as direct_flag_carried,
    -- false where local money sits in the sub-account of central direct money; null elsewhere
    case when e.match_kind = 'line' and e.allocated_is_direct then not e.is_local_money end
        as local_money_apart,
    r.row_no is not null as reversed,
    coalesce(w.code_corrected, false) as code_corrected,
    coalesce(w.flag_corrected, false) as flag_corrected,
    coalesce(w.source_corrected, false) as source_corrected,
    coalesce(w.account_corrected, false) as account_corrected,
    e.prior_year_refund
from fct_expenditure_booked as e
left join fct_reversed_lines as r
  on r.notice_no = e.notice_no and r.file_id = e.file_id and r.row_no = e.row_no
-- the line's wrong bookings, each kind's with what is left of it
left join fct_wrong_lines as w
  on w.notice_no = e.notice_no and w.file_id = e.file_id and w.row_no = e.row_no
where e.amount <> 0
  and not e.batch_repeat  -- a line of batches of one purpose once, as the rules take it
  and not e.doc_of_other_year;  -- another year's allocation: not this notice's line

-- Each waiver and when it was withdrawn (null while it is in force): a withdrawal names its
-- waiver by key and time. A key waived twice before version 9 has two rows here.
create or replace view waiver_spans as
select w.finding_key, w.reason, w.waived_by, w.waived_at,
       (select min(x.withdrawn_at) from waiver_withdrawals as x
        where x.finding_key = w.finding_key and x.waived_at = w.waived_at) as withdrawn_at
from waivers as w;

-- The waivers in force now: made and not withdrawn. A key waived twice before version 9 has two
-- rows here; the earliest is the one in force.
create or replace view waivers_in_force as
select s.finding_key, s.reason, s.waived_by, s.waived_at
from waiver_spans as s
where s.withdrawn_at is null;

-- The waivers each run went by: those in force when it finished, made before and not withdrawn
-- by then. A waiver made or withdrawn afterwards counts from the next run on, so `recon report
-- RUN_ID` writes a past run's reports as it wrote them (its exit status was decided without it).
create or replace view run_waivers as
select r.run_id, s.finding_key, s.reason, s.waived_by, s.waived_at
from waiver_spans as s
join runs as r on s.waived_at <= r.finished_at
where s.withdrawn_at is null or s.withdrawn_at > r.finished_at;
