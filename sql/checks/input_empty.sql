-- rule: INPUT_EMPTY
-- severity: warning
-- cites: —
-- zh: 账簿文件只有表头、没有数据行，导出可能失败
-- en: A ledger file has a header but no data rows; the export may have failed
-- stage: input
--
-- Invariant: a ledger export offered to a run holds at least one data row. A nightly export
-- with nothing under its header usually means the accounting system's export failed, while
-- yesterday's file silently stays in use, so the run says so. Rows skipped as blank or as
-- subtotals do not count as data; quarantined rows do (INPUT_ROW_INVALID reports them). Only the
-- files this run loaded are reported: the same file offered again is skipped and not repeated.
with ctx as (
    select run_id from run_context limit 1
),
empty_files as (
    select f.file_id, f.name, f.path
    from run_inputs as i
    join ctx on ctx.run_id = i.run_id
    join input_files as f on f.file_id = i.file_id
    where i.action = 'loaded'
      and f.kind = 'ledger'
      and f.rows_loaded = 0
      and f.rows_quarantined = 0
)
select
    e.name as source_file,
    '0' as observed,
    '账簿文件 ' || e.name || ' 没有数据行（只有表头），当日导出可能失败，仍在使用之前的导出 / ledger file '
        || e.name || ' has no data rows (a header only): the export may have failed; earlier '
        || 'exports are still in use' as message
from empty_files as e
order by e.file_id
