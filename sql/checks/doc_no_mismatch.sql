-- rule: DOC_NO_MISMATCH
-- severity: warning
-- cites: 一
-- zh: 支出按项目代码计入本通知，但其指标文号是另一文件（未加载）
-- en: Expenditure counted under the notice by its project code carries the budget document number of another document (not loaded)
-- stage: ledger
--
-- Invariant: a line's 指标文号 names the notice whose money it spends. A line whose 指标文号 names
-- no loaded notice is tied by its project code (fct_notice_lines), so it is counted under the
-- notice of that code: rightly when the 文号 is mistyped beyond what the key forgives
-- (brackets, spaces, full-width digits, leading zeros are forgiven), wrongly when it names other
-- money: another batch of the fund whose notice is not loaded, or local money booked under the
-- central project code. Which of the two cannot be told from the ledger, so it is said, once per
-- notice and 文号, with the lines' count and net amount: load that notice, or correct the 文号.
with other as (
    select
        e.notice_no,
        e.notice_project_code,
        e.budget_doc_no,
        count(*) as lines,
        sum(e.amount) as amount,
        min(e.voucher_no) as first_voucher
    from fct_expenditure as e
    where e.tied_by in ('project_code', 'project_code_purpose')
      and not e.batch_repeat
      and coalesce(e.budget_doc_no, '') <> ''
      and e.amount <> 0
    group by e.notice_no, e.notice_project_code, e.budget_doc_no
),
findings as (
    select
        o.notice_no,
        o.amount,
        o.notice_no as expected,
        o.budget_doc_no as observed,
        cast(o.lines as varchar) || ' 行支出（净额 ' || cast(o.amount as varchar) || ' 元，如凭证 '
            || coalesce(o.first_voucher, '') || '）指标文号为 ' || o.budget_doc_no || '，不是通知 '
            || o.notice_no || '，按项目代码 ' || coalesce(o.notice_project_code, '')
            || ' 计入该通知：如属另一文件的资金，请加载该通知；如为录入错误，请更正指标文号 / '
            || cast(o.lines as varchar) || ' expenditure lines (net ' || cast(o.amount as varchar)
            || ' yuan, e.g. voucher ' || coalesce(o.first_voucher, '') || ') carry budget document number '
            || o.budget_doc_no || ', not ' || o.notice_no || ', and are counted under that notice by project code '
            || coalesce(o.notice_project_code, '') || ': load that document''s notice if the money is '
            || 'another''s, or correct the number' as message,
        o.budget_doc_no as key_detail
    from other as o
)
select * from findings
