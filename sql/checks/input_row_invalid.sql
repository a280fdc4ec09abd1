-- rule: INPUT_ROW_INVALID
-- severity: error
-- cites: —
-- zh: 账簿行的金额、日期或科目无法识别，该行已隔离未计入
-- en: A ledger row has an unparsable amount, date or code; the row is quarantined, not counted
-- stage: input
--
-- Invariant: every row of a current ledger file is in ledger_lines. Rows the loader could not
-- type are in quarantine instead (one row per bad cell); each is reported with the file, the
-- data row number (1 = first row under the header), the column as headed in the file and the
-- value, so the export can be corrected. Rows of superseded files are not reported.
with active as (
    select file_id, name
    from input_files
    where kind = 'ledger' and status = 'loaded'
),
bad as (
    select a.name, q.row_no, q.column_name, q.value, q.reason
    from quarantine as q
    join active as a on a.file_id = q.file_id
)
select
    b.name as source_file,
    b.row_no as source_row,
    b.column_name as key_detail,
    b.value as observed,
    '文件 ' || b.name || ' 数据第' || b.row_no || '行 ' || b.column_name || ' 的值“'
        || coalesce(b.value, '') || '”：' || split_part(b.reason, ' / ', 1)
        || '，该行未计入 / file ' || b.name || ' data row ' || b.row_no || ', column '
        || b.column_name || ' value "' || coalesce(b.value, '') || '": '
        || split_part(b.reason, ' / ', 2) || '; the row is not counted' as message
from bad as b
order by b.name, b.row_no, b.column_name
