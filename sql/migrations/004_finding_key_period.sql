-- Version 4: a finding's key names its voucher's period, rule | notice | voucher:line@yyyymm
-- (pipeline/checks.py FINDING_KEY_SQL), since vouchers are numbered afresh each month: 记-1 of
-- January and 记-1 of February broke a rule twice, and kept one key, so a run kept one finding.
-- The stored findings and waivers are keyed again, so a finding of the last run stays
-- persisting, not new, and a waiver keeps applying (to the earliest period of an old key that
-- stood for several).
create temp table _rekeyed as
select
    rowid as row_id,
    finding_key as old_key,
    rule_id || '|' || coalesce(notice_no, '') || '|' || voucher_no || ':' || coalesce(line_no, '')
        || '@' || cast(extract(year from posted_on) * 100 + extract(month from posted_on) as varchar)
        || substr(finding_key, length(rule_id || '|' || coalesce(notice_no, '') || '|' || voucher_no
                                      || ':' || coalesce(line_no, '')) + 1) as new_key
from findings
where coalesce(voucher_no, '') <> '' and posted_on is not null;

update waivers
set finding_key = (select min(r.new_key) from _rekeyed as r where r.old_key = waivers.finding_key)
where finding_key in (select old_key from _rekeyed);

update findings
set finding_key = r.new_key
from _rekeyed as r
where findings.rowid = r.row_id;

drop table _rekeyed;
