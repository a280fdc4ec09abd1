-- rule: NOTICE_TIE_AMBIGUOUS
-- severity: error
-- cites: 一
-- zh: 支出无指标文号，其项目代码同属本年度多个通知，无法确定动用哪个通知的资金（已分别计入各通知）
-- en: Expenditure without a budget document number carries a project code that several notices of its year carry: which notice's money it draws on cannot be told (counted under each)
-- stage: ledger
--
-- Invariant (clause 一 gives the notice its project code; 指标文号 names the notice): a line tied
-- to a notice by its project code alone (no 指标文号, or one naming no loaded notice) can be told
-- apart from notices of other years (fct_notice_lines ties it to its posting year's), and from
-- another notice of its year carrying the code, such as another batch of the fund, only by its
-- sub-account, when that names an allocation line of one of them alone (tied_by =
-- 'project_code_purpose'). Any other such line is counted by each notice that allocates its
-- purpose (by every notice of the code's year when none does), and which notice's money it
-- spent is a guess: the summary spreads it over the batches in the order they were issued
-- (rpt_allocation_summary), OVER_ALLOCATION counts it once, against the batches' allocations of
-- its purpose together, and the rules of single lines report it once, under the first of the
-- batches as issued. One finding per notice in scope, with the lines' count and net amount,
-- naming the other notices its lines are counted under, as issued (a run of one notice names
-- them too); lines tied by their 指标文号 are not counted in it.
with tied_by_code as (
    select e.notice_no, e.notice_project_code as project_code, e.fiscal_year, e.purpose_key,
           count(*) as lines, sum(e.amount) as amount
    from fct_expenditure as e
    where e.tied_by = 'project_code'
      and e.amount <> 0
    group by e.notice_no, e.notice_project_code, e.fiscal_year, e.purpose_key
),
sharing as (
    -- the other notices each notice's lines are counted under, as fct_notice_lines tied them: the
    -- lines of one sub-account go to the same notices of their code and year (a run of one notice
    -- counts the fund's other batches too, fct_notices_counted, so it names them as well)
    select distinct b.notice_no, o.notice_no as other, n.issue_key
    from tied_by_code as b
    join tied_by_code as o
      on o.project_code = b.project_code and o.fiscal_year = b.fiscal_year
     and o.purpose_key is not distinct from b.purpose_key and o.notice_no <> b.notice_no
    join notices_issued as n on n.notice_no = o.notice_no
),
shared as (
    select
        b.notice_no,
        b.project_code,
        b.fiscal_year,
        string_agg(s.other, '、' order by s.issue_key) as others,
        b.lines,
        b.amount
    from (select notice_no, project_code, fiscal_year, sum(lines) as lines, sum(amount) as amount
          from tied_by_code
          group by notice_no, project_code, fiscal_year) as b
    join sharing as s on s.notice_no = b.notice_no
    group by b.notice_no, b.project_code, b.fiscal_year, b.lines, b.amount
),
findings as (
    select
        s.notice_no,
        s.amount,
        '指标文号 / budget document number' as expected,
        '项目代码 ' || s.project_code || '，同属 ' || s.others || ' / project code ' || s.project_code
            || ', also of ' || s.others as observed,
        cast(s.lines as varchar) || ' 行支出（净额 ' || cast(s.amount as varchar) || ' 元）无指标文号，按项目代码 '
            || s.project_code || ' 对应；该代码同属 ' || cast(s.fiscal_year as varchar) || ' 年度的通知 '
            || s.others || '，明细科目（用途）也不能区分（各通知均分配或均未分配该用途），无法确定动用哪个通知的资金，'
            || '已分别计入各通知（执行情况按通知下达先后分摊，不重复计算；超支按各通知对该用途的分配额合计判断；逐行问题只在其中第一个通知下报告一次）：请在账簿中登记指标文号 / '
            || cast(s.lines as varchar) || ' expenditure lines (net ' || cast(s.amount as varchar)
            || ' yuan) carry no budget document number and are tied by project code ' || s.project_code
            || ', which notice(s) ' || s.others || ' of ' || cast(s.fiscal_year as varchar)
            || ' carry too, and their sub-accounts do not tell them apart (a purpose each or none of them '
            || 'allocates): which notice they draw on cannot be told, so each notice counts them '
            || '(the summary spreads their spending over the notices in the order issued, counted once; '
            || 'over-allocation is judged against their allocations of the '
            || 'purpose together; a problem of a single line is reported once, under the first of them); '
            || 'record the 指标文号 on the lines' as message
    from shared as s
)
select * from findings
