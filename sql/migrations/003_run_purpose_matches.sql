-- Version 3: each run keeps how the sub-account names of its spending were matched to allocation
-- lines (rpt_purpose_matches), for the reports' 项目对应 sheet. Runs recorded before have none:
-- their reports say there was no spending tied to a notice to list.
create table if not exists run_purpose_matches (
    run_id             varchar not null,
    notice_no          varchar not null,
    purpose            varchar,
    purpose_key        varchar,
    match_kind         varchar not null,
    match_by           varchar,
    line_seq           integer,
    allocated_purpose  varchar,
    lines              bigint not null,
    amount             decimal(18,2) not null
);
