-- Staging views: the loaded inputs as checks may read them. Loaders type and normalise every
-- value once, at load (pipeline/ledgers.py, pipeline/notices.py); these views only choose which
-- rows are current: ledger lines of files that are loaded and not superseded.

create or replace view stg_ledger_lines as
select
    l.*,
    f.name as source_file
from ledger_lines as l
join input_files as f on f.file_id = l.file_id
where f.status = 'loaded';
