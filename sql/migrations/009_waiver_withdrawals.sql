-- Version 9: a waiver can be withdrawn (recon unwaive), recorded with who, when and why in
-- waiver_withdrawals; the waiver itself stays in waivers. Waivers made before are all in force
-- (a key waived twice by the old recon waive: the earliest is the one in force).
create table if not exists waiver_withdrawals (
    finding_key   varchar not null,
    waived_at     timestamp not null,
    reason        varchar not null,
    withdrawn_by  varchar not null,
    withdrawn_at  timestamp not null
);
