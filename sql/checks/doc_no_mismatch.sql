-- rule: DOC_NO_MISMATCH
-- severity: warning
-- cites: 一
-- zh: 支出按项目代码计入本通知，但其指标文号是另一文件（未加载）；文号与本项目的通知仅年度不同的，属该年度的指标，不计入本通知
-- en: Expenditure counted under the notice by its project code carries the budget document number of another document (not loaded); a number that differs from a notice of the project code only in its year is that year's allocation and is not counted
-- stage: ledger
--
-- Invariant: a line's 指标文号 names the notice whose money it spends. A line whose 指标文号 names
-- no loaded notice is tied by its project code (fct_notice_lines), so it is counted under the
-- notice of that code: rightly when the 文号 is mistyped beyond what the key forgives
-- (brackets, spaces, full-width digits, leading zeros are forgiven), wrongly when it names other
-- money: another batch of the fund whose notice is not loaded, or local money booked under the
-- central project code. Which of the two cannot be told from the ledger, so it is said, once per
-- notice and 文号, with the lines' count and net amount: load that notice, or correct the 文号.
--
-- One case can be told: a 文号 that is a notice's of the code but for its year (克区财综〔2023〕2号
-- against 克区财综〔2024〕2号; fct_notice_lines.doc_of_other_year) is a document of that year, of
-- the same bureau's series: that year's allocation (last year's money paid late, or refunded).
-- Its lines are not counted under this notice (fct_expenditure leaves them out: no summary, no
-- OVER_ALLOCATION, no rule of single lines), as lines of any other notice are not; they are
-- said here all the same, under the notice whose code they carry, with their count and net, so
-- that the money is reconciled somewhere: load that year's notice (which then takes them by
-- their 文号, and this finding goes). A prior year's refund (fct_expenditure_booked
-- .prior_year_refund) under an unloaded 文号 of this year is not counted either, and
-- OUT_OF_PERIOD reports it: it is left out of the count said here.
with other as (
    select
        e.notice_no,
        e.notice_project_code,
        e.budget_doc_no,
        e.doc_of_other_year,
        count(*) as lines,
        sum(e.amount) as amount,
        min(e.voucher_no) as first_voucher
    from fct_expenditure_booked as e
    where e.tied_by in ('project_code', 'project_code_purpose')
      and not e.batch_repeat
      and coalesce(e.budget_doc_no, '') <> ''
      and e.amount <> 0
      and (e.doc_of_other_year or not e.prior_year_refund)
    group by e.notice_no, e.notice_project_code, e.budget_doc_no, e.doc_of_other_year
),
findings as (
    select
        o.notice_no,
        o.amount,
        o.notice_no as expected,
        o.budget_doc_no as observed,
        case when o.doc_of_other_year
             then cast(o.lines as varchar) || ' 行支出（净额 ' || cast(o.amount as varchar) || ' 元，如凭证 '
                  || coalesce(o.first_voucher, '') || '）指标文号为 ' || o.budget_doc_no || '，与通知 '
                  || o.notice_no || ' 同属项目代码 ' || coalesce(o.notice_project_code, '')
                  || '，但文号年度不同，是 ' || substr(o.budget_doc_no, position('〔' in o.budget_doc_no) + 1, 4)
                  || ' 年的文件（未加载），属该年度的指标，不计入本通知：请加载该通知以核对这些支出 / '
                  || cast(o.lines as varchar) || ' expenditure lines (net ' || cast(o.amount as varchar)
                  || ' yuan, e.g. voucher ' || coalesce(o.first_voucher, '') || ') carry budget document number '
                  || o.budget_doc_no || ', under the project code ' || coalesce(o.notice_project_code, '')
                  || ' of notice ' || o.notice_no || ' but of another year: a document of '
                  || substr(o.budget_doc_no, position('〔' in o.budget_doc_no) + 1, 4)
                  || ' (not loaded), that year''s allocation, not counted under this notice; load that '
                  || 'notice to reconcile them'
             else cast(o.lines as varchar) || ' 行支出（净额 ' || cast(o.amount as varchar) || ' 元，如凭证 '
                  || coalesce(o.first_voucher, '') || '）指标文号为 ' || o.budget_doc_no || '，不是通知 '
                  || o.notice_no || '，按项目代码 ' || coalesce(o.notice_project_code, '')
                  || ' 计入该通知：如属另一文件的资金，请加载该通知；如为录入错误，请更正指标文号 / '
                  || cast(o.lines as varchar) || ' expenditure lines (net ' || cast(o.amount as varchar)
                  || ' yuan, e.g. voucher ' || coalesce(o.first_voucher, '') || ') carry budget document number '
                  || o.budget_doc_no || ', not ' || o.notice_no || ', and are counted under that notice by project code '
                  || coalesce(o.notice_project_code, '') || ': load that document''s notice if the money is '
                  || 'another''s, or correct the number' end as message,
        o.budget_doc_no as key_detail
    from other as o
)
select * from findings
