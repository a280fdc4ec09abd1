-- rule: INPUT_MISSING
-- severity: error
-- cites: —
-- zh: 没有可核对的输入：数据库中没有分配下达通知，或没有账簿
-- en: Nothing to reconcile: no allocation notice, or no ledger, is loaded
-- stage: input
--
-- Invariant: the store holds at least one allocation notice and at least one ledger export
-- (loaded; a superseded one implies a newer loaded one). Without either, a run checks nothing
-- and used to finish with "0 errors" and exit 0, "nothing to act on", so an inputs folder left
-- empty (the nightly export never arrived, a share not mounted) passed in silence. One finding
-- per missing kind. A ledger with a header only is loaded (INPUT_EMPTY
-- warns of it); a file offered but rejected is INPUT_REJECTED, and counts as missing here.
with missing as (
    select 'notice' as kind
    where not exists (select 1 from notices)
    union all
    select 'ledger' as kind
    where not exists (select 1 from input_files where kind = 'ledger' and status = 'loaded')
)
select
    m.kind as observed,
    m.kind as key_detail,
    case m.kind
        when 'notice' then '数据库中没有分配下达通知，没有可核对的指标（inputs/notices/ 为空？）/ no allocation '
            || 'notice is loaded, so nothing was reconciled (is inputs/notices/ empty?)'
        else '数据库中没有账簿，没有可核对的支出（inputs/ledgers/ 为空？当日导出可能未到）/ no ledger is loaded, '
            || 'so no spending was reconciled (is inputs/ledgers/ empty? the export may not have arrived)'
    end as message
from missing as m
order by m.kind desc
