-- Fact views: the ledger joined to the notices, within the scope of the current run
-- (run_context: as-of date, notice, purpose, date range). Checks and reports read these.

-- Notices in scope.
create or replace view fct_notices as
with ctx as (select * from run_context limit 1)
select n.*
from notices as n
left join ctx on true
where ctx.notice_no is null or n.notice_no = ctx.notice_no;

-- Allocation lines in scope, with the purpose they are matched under.
create or replace view fct_allocation_lines as
with ctx as (select * from run_context limit 1)
select a.*
from allocation_lines as a
join fct_notices as n on n.notice_no = a.notice_no
left join ctx on true
where ctx.purpose_key is null or a.purpose_key = ctx.purpose_key;

-- Budget-book lines on 7xxx accounts, as they stood on the as-of date, tied to a notice by
-- project code or budget document number. amount = debit - credit (a credit is a reversal).
create or replace view fct_expenditure as
with ctx as (select * from run_context limit 1),
budget_lines as (
    select l.*
    from stg_ledger_lines as l
    left join ctx on true
    where l.book = 'budget'
      and l.account_code like '7%'
      and (l.posted_on is null or ctx.as_of is null or l.posted_on <= ctx.as_of)
      and (ctx.date_from is null or l.posted_on >= ctx.date_from)
      and (ctx.date_to is null or l.posted_on <= ctx.date_to)
),
tied as (
    select b.*, n.notice_no, n.fiscal_year, n.fund_name
    from budget_lines as b
    join fct_notices as n
      on b.project_code = n.project_code
      or doc_no_key(b.budget_doc_no) = n.notice_no
),
matched as (
    select
        t.*,
        coalesce(a.line_seq, al.line_seq) as line_seq
    from tied as t
    left join allocation_lines as a
      on a.notice_no = t.notice_no and a.purpose_key = t.purpose_key
    left join purpose_aliases as al
      on al.notice_no = t.notice_no and al.alias_key = t.purpose_key
)
select
    m.*,
    m.debit - m.credit as amount,
    a.purpose as allocated_purpose,
    a.function_code as allocated_code,
    a.is_direct as allocated_is_direct,
    a.amount as allocated_amount,
    case
        when a.line_seq is not null then 'line'
        when m.purpose_key = purpose_key(m.fund_name) then 'pooled'
        else 'unmatched'
    end as match_kind
from matched as m
left join allocation_lines as a
  on a.notice_no = m.notice_no and a.line_seq = m.line_seq;

-- One row per allocation line: allocated, spent (net of reversals), balance, execution rate.
create or replace view rpt_allocation_summary as
with spent as (
    select notice_no, line_seq, sum(amount) as spent
    from fct_expenditure
    where match_kind = 'line'
    group by notice_no, line_seq
)
select
    a.notice_no,
    a.line_seq,
    a.purpose,
    a.function_code,
    a.amount as allocated,
    cast(coalesce(s.spent, 0) as decimal(18,2)) as spent,
    cast(a.amount - coalesce(s.spent, 0) as decimal(18,2)) as balance,
    case when a.amount = 0 then null
         else cast(round(coalesce(s.spent, 0) / a.amount, 4) as decimal(9,4)) end as execution_rate
from fct_allocation_lines as a
left join spent as s on s.notice_no = a.notice_no and s.line_seq = a.line_seq;
