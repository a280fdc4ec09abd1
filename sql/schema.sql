-- budget-recon store schema, version 1.
--
-- The store is an embedded DuckDB file (default outputs/recon.duckdb). Tables hold what was
-- loaded (files -> notices / ledger lines) and what runs found (runs -> findings). Staging views
-- (sql/staging.sql) and fact views (sql/facts.sql) are re-created on every open, so they
-- never need migrating; only the tables below do. pipeline/store.py applies this file to a new
-- store and the numbered migrations in sql/migrations/ to an older one.
--
-- Money is DECIMAL(18,2) yuan everywhere. Nothing here is ever deleted by a run: superseded
-- ledger files are marked, waivers and their withdrawals are appended, findings are kept
-- per run.

create table if not exists schema_meta (
    key   varchar primary key,
    value varchar not null
);

create sequence if not exists seq_file_id start 1;

-- One row per input file ever offered to the store, rejected ones included.
create table if not exists input_files (
    file_id          integer primary key default nextval('seq_file_id'),
    sha256           varchar not null,
    kind             varchar not null,          -- notice | ledger
    path             varchar not null,          -- as given on the command line / found in inputs
    name             varchar not null,          -- file name only
    size_bytes       bigint not null,
    loaded_at        timestamp not null,
    status           varchar not null,          -- loaded | superseded | rejected
    encoding         varchar,                   -- detected or given (csv / txt)
    format           varchar,                   -- csv | xlsx | xls | html | xml | parquet | txt | docx
    preset           varchar,                   -- ledger preset used
    rows_loaded      bigint not null default 0,
    rows_quarantined bigint not null default 0,
    superseded_by    integer,                   -- file_id of the export that replaced this one
    message          varchar,                   -- why rejected / superseded (zh / en)
    mtime_ns         bigint                     -- modification time when hashed (null: changing then)
);
-- sha256 is unique among files that loaded; a rejected file may be offered again after a fix.

-- 分配下达通知: one row per allocation notice.
create table if not exists notices (
    notice_no           varchar primary key,    -- 文号, brackets normalised to 〔〕
    file_id             integer not null,
    title               varchar not null,
    fund_name           varchar,                -- the whole fund, e.g. 2024年中央财政城镇保障性安居工程补助资金
    issuer              varchar,
    recipient           varchar,
    fiscal_year         integer not null,
    project_code        varchar,                -- central project code (项目代码)
    revenue_code        varchar,                -- 收入分类, e.g. 1100258
    revenue_name        varchar,
    upstream_docs       varchar[],              -- e.g. ['财综〔2024〕15号', '新财综〔2024〕16号']
    stated_total        decimal(18,2) not null, -- 元
    amount_unit         varchar not null,       -- unit the table was written in: 万元 | 元
    reporting_deadline  varchar,                -- MM-DD as written in clause 四
    allowed_codes       varchar[]               -- clause 三: the item codes the fund may be booked to
);

-- One row per allocation line (purpose) of a notice.
create table if not exists allocation_lines (
    notice_no      varchar not null,
    line_seq       integer not null,            -- order in the allocation table, from 1
    purpose        varchar not null,            -- as written, e.g. 2024年租赁补贴（中央直达）
    purpose_key    varchar not null,            -- normalised for matching (pipeline.text.purpose_key)
    region         varchar,
    amount         decimal(18,2) not null,      -- 元
    function_code  varchar not null,            -- 7-digit item code as written
    is_direct      boolean not null,            -- （中央直达）
    primary key (notice_no, line_seq)
);

-- Clause 三 mapping rules: spending of this kind must go to that code.
create table if not exists code_rules (
    notice_no      varchar not null,
    keyword        varchar not null,            -- e.g. 城中村, 配售型, 危旧房, 棚户区
    function_code  varchar not null,
    clause         varchar not null
);

-- Extra names by which a purpose appears in ledgers (configured, not parsed).
create table if not exists purpose_aliases (
    notice_no      varchar not null,
    alias_key      varchar not null,
    line_seq       integer not null
);

-- 项目支出绩效目标表: one per purpose.
create table if not exists target_tables (
    notice_no      varchar not null,
    table_seq      integer not null,
    purpose        varchar not null,
    purpose_key    varchar not null,
    fiscal_year    integer,
    unit_name      varchar,
    manager        varchar,
    budget_total   decimal(18,2),               -- 元
    budget_fiscal  decimal(18,2),
    budget_other   decimal(18,2),
    overall_goal   varchar,
    primary key (notice_no, table_seq)
);

create table if not exists target_indicators (
    notice_no      varchar not null,
    table_seq      integer not null,
    indicator_seq  integer not null,
    level1         varchar not null,            -- 一级指标
    level2         varchar not null,            -- 二级指标
    name           varchar not null,            -- 三级指标
    target_text    varchar not null,            -- 指标值 as written
    op             varchar,                     -- >= <= = > < ; null when qualitative
    target_value   decimal(18,4),
    target_unit    varchar,
    qualitative    boolean not null,
    basis          varchar,                     -- 指标值设置依据
    last_year      varchar,                     -- 上年完成值
    weight         decimal(9,2),                -- 指标分值权重
    scoring_rule   varchar,
    evidence       varchar,                     -- 佐证资料
    primary key (notice_no, table_seq, indicator_seq)
);

-- Ledger voucher lines, typed and normalised once at load. Raw values are kept where the
-- normalised one loses information (codes with names, flag spellings).
create table if not exists ledger_lines (
    file_id            integer not null,
    row_no             bigint not null,         -- data row in the file, 1 = first row under the header
    voucher_no         varchar,
    line_no            varchar,
    posted_on          date,
    book               varchar,                 -- budget | financial | null when unknown
    account_code       varchar,
    account_name       varchar,
    summary            varchar,
    debit              decimal(18,2) not null,
    credit             decimal(18,2) not null,
    function_code      varchar,                 -- bare digits
    function_code_raw  varchar,
    economic_code      varchar,
    project_code       varchar,
    purpose            varchar,
    purpose_key        varchar,
    fund_source        varchar,
    direct_flag        boolean,                 -- null when blank / unrecognised
    direct_flag_raw    varchar,
    budget_doc_no      varchar,                 -- brackets normalised to 〔〕
    payee              varchar
);

-- Rows that could not be typed: kept with the reason, reported as INPUT_ROW_INVALID.
create table if not exists quarantine (
    file_id     integer not null,
    row_no      bigint not null,
    column_name varchar not null,
    value       varchar,
    reason      varchar not null
);

create table if not exists runs (
    run_id        varchar primary key,
    started_at    timestamp not null,
    finished_at   timestamp,
    as_of         date not null,
    fail_on       varchar not null,
    scope         json,                         -- notice / purpose / from / to chosen
    exit_status   integer,
    counts        json
);

create table if not exists findings (
    run_id        varchar not null,
    finding_key   varchar not null,             -- stable across runs: rule + notice + voucher/purpose
    rule_id       varchar not null,
    severity      varchar not null,             -- error | warning | info
    notice_no     varchar,
    purpose       varchar,
    voucher_no    varchar,
    line_no       varchar,
    posted_on     date,
    amount        decimal(18,2),
    expected      varchar,
    observed      varchar,
    message       varchar not null,             -- Chinese first, English after
    source_file   varchar,
    source_row    bigint,
    change        varchar,                      -- new | persisting | resolved (vs previous run of same scope)
    first_seen    date
);

-- The scope of the run being computed: one row, rewritten at the start of each run. Views in
-- sql/staging.sql and sql/facts.sql read it, so checks stay plain SQL with no parameters.
create table if not exists run_context (
    run_id        varchar not null,
    as_of         date not null,
    notice_no     varchar,                      -- null = every notice
    purpose_key   varchar,                      -- null = every purpose
    date_from     date,
    date_to       date
);

create table if not exists run_indicators (
    run_id        varchar not null,
    notice_no     varchar not null,
    purpose       varchar not null,
    indicator     varchar not null,
    target        varchar not null,
    observed      varchar,
    status        varchar not null,             -- met | not_met | on_track | behind | needs_evidence
    method        varchar,
    over_ceiling  boolean,                      -- behind because a ceiling is already broken
    table_seq     integer,                      -- the target table and row it comes from,
    indicator_seq integer                       -- so reports keep the notice's order
);

-- Per-run snapshot of rpt_allocation_summary, so a run's reports can be rewritten later.
create table if not exists run_summary (
    run_id          varchar not null,
    notice_no       varchar not null,
    line_seq        integer not null,
    purpose         varchar not null,
    function_code   varchar not null,
    allocated       decimal(18,2) not null,
    spent           decimal(18,2) not null,
    balance         decimal(18,2) not null,
    execution_rate  decimal(18,4)                -- spent / allocated; decimal(9,4) before version 6
);

-- Per-run snapshot of rpt_purpose_matches: how each sub-account name was matched to an allocation
-- line, with its lines and amount, so the reports show what each purpose's spending counted.
create table if not exists run_purpose_matches (
    run_id             varchar not null,
    notice_no          varchar not null,
    purpose            varchar,                 -- as written (one spelling); null: left blank
    purpose_key        varchar,
    match_kind         varchar not null,        -- line | pooled | multi | unmatched
    match_by           varchar,                 -- purpose | alias | code | core (match_kind = 'line')
    line_seq           integer,
    allocated_purpose  varchar,
    lines              bigint not null,
    amount             decimal(18,2) not null
);

create table if not exists run_inputs (
    run_id        varchar not null,
    file_id       integer not null,
    action        varchar not null,             -- loaded | skipped | rejected (offered to this
                                                -- run) | earlier (loaded before, counted)
    path          varchar,                      -- where it was offered (null: earlier)
    status        varchar,                      -- input_files.status and .message as the run
    message       varchar                       -- saw them
);

-- An auditor's acceptance of a finding (豁免): who, when, why. A key has one waiver in force at
-- most (recon waive adds none while one is); stores before version 9 may hold repeats of a key,
-- of which the earliest is the one in force.
create table if not exists waivers (
    finding_key   varchar not null,
    reason        varchar not null,
    waived_by     varchar not null,
    waived_at     timestamp not null
);

-- The withdrawal of a waiver (撤销豁免, recon unwaive): who, when, why. It names the waiver it
-- ends by its key and time; the waiver stays in waivers, and the key can be waived again.
create table if not exists waiver_withdrawals (
    finding_key   varchar not null,             -- the waiver withdrawn: waivers.finding_key
    waived_at     timestamp not null,           -- and waivers.waived_at
    reason        varchar not null,
    withdrawn_by  varchar not null,
    withdrawn_at  timestamp not null
);
