-- rule: REVENUE_MISCODED
-- severity: error
-- cites: 一
-- zh: 挂在本通知下的收入分录，收入分类科目不是通知规定的科目
-- en: A line tied to the notice carries a revenue classification (1xxxxxx) other than the notice's revenue code
-- stage: ledger
--
-- Invariant (clause 一: 列入 "1100258 住房保障共同财政事权转移支付收入"): a line tied to the
-- notice that carries a revenue classification (a code of digits starting with 1: 110, 11002,
-- 1100258) carries the notice's own revenue code. Typically the receipt of the transfer,
-- booked in both books (budget 6xxx and financial 4xxx), so each book's line is judged.
-- Budget-book expenditure lines (7xxx) are left to the CODE_* rules: a revenue code there is
-- CODE_UNKNOWN. amount is the line's absolute amount (a receipt is a credit).
with coded as (
    select l.*
    from fct_notice_lines as l
    where not l.is_expenditure
      and not l.batch_repeat
      and not l.doc_of_other_year  -- another year's 文号: that year's notice's line
      and l.function_code like '1%'
      and regexp_matches(l.function_code, '^1[0-9]{2}([0-9]{2}){0,2}$')
      and l.function_code is distinct from l.notice_revenue_code
),
findings as (
    select
        c.notice_no,
        c.purpose,
        c.voucher_no,
        c.line_no,
        c.posted_on,
        abs(c.amount) as amount,
        c.notice_revenue_code as expected,
        c.function_code as observed,
        '凭证 ' || coalesce(c.voucher_no, '') || ' 第' || coalesce(c.line_no, '') || '行 科目 '
            || coalesce(c.account_code, '') || ' ' || coalesce(c.account_name, '') || ' 收入分类记为 '
            || c.function_code || '，通知 ' || c.notice_no || ' 规定列入 '
            || coalesce(c.notice_revenue_code, '(未载明)')
            || ' / voucher ' || coalesce(c.voucher_no, '') || ' line ' || coalesce(c.line_no, '')
            || ' (account ' || coalesce(c.account_code, '') || ') carries revenue code '
            || c.function_code || '; notice ' || c.notice_no || ' classifies the receipt as '
            || coalesce(c.notice_revenue_code, '(not stated)') as message,
        c.source_file,
        c.row_no as source_row
    from coded as c
)
select * from findings
