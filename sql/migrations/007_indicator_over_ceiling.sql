-- Version 7: run_indicators.over_ceiling, set by pipeline/indicators.py when an indicator is
-- `behind` during the year because a ceiling it sets is already broken (a payee above 480元/户/月),
-- not because its progress lags the calendar. INDICATOR_BEHIND and the reports word the two apart;
-- before, they told them apart by the target's text. Runs made before it keep null (read: lagging).
alter table run_indicators add column if not exists over_ceiling boolean;
