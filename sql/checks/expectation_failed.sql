-- rule: EXPECTATION_FAILED
-- severity: error
-- cites: —
-- zh: 数据期望套件（expectations/*.json）发现不符的行，或套件与对应规则的判定不一致（期望可在其 meta 中降为警告）
-- en: An expectation suite (expectations/*.json) found rows breaking an expectation, or judged differently from the rule it mirrors (an expectation may lower it to a warning in its meta)
-- stage: expectation
--
-- Catalogue entry for the findings of pipeline/expectations.py, which runs the Great
-- Expectations suites in expectations/ through GX's validation API against the store. This
-- query never returns rows: the findings come from the suites. Severity is the default; an
-- expectation may lower it in its meta ("severity": "warning"). Expectations that mirror a SQL
-- rule ("mirrors" in their meta) add nothing where the rule already reported the same rows; a
-- row judged differently by the suite and the rule is reported here as a warning.
with nothing as (
    select
        cast(null as varchar) as notice_no,
        cast(null as varchar) as purpose,
        cast(null as varchar) as voucher_no,
        cast(null as varchar) as message
)
select * from nothing where 1 = 0
