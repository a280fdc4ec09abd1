-- rule: INPUT_REJECTED
-- severity: error
-- cites: —
-- zh: 文件无法读取或缺少必需的列，整个文件未加载
-- en: A file could not be read or lacks required columns; nothing of it was loaded
-- stage: input
--
-- Invariant: every file offered to this run was read. A rejected file leaves only its
-- input_files row (status 'rejected', message naming the file and what is wrong); the run
-- records it in run_inputs with action 'rejected'. Files rejected in earlier runs are not
-- reported again unless offered again; `recon check`, which reads no inputs, carries the
-- rejections of the latest run that did (pipeline/run.py, _STILL_REJECTED).
with ctx as (
    select run_id from run_context limit 1
),
rejected as (
    select f.file_id, f.name, f.path, f.kind, f.message
    from run_inputs as i
    join ctx on ctx.run_id = i.run_id
    join input_files as f on f.file_id = i.file_id
    where i.action = 'rejected'
)
select
    r.name as source_file,
    r.kind as observed,
    '文件被拒收，未加载任何内容：' || coalesce(r.message, r.path)
        || ' / file rejected, nothing of it loaded' as message
from rejected as r
order by r.file_id
