-- Version 6: run_summary.execution_rate as decimal(18,4), as rpt_allocation_summary computes it.
-- decimal(9,4) held rates below 100,000 (10,000,000%): a ledger line that spent far more than an
-- allocation (a typing slip of a few zeros) stopped the run, and every run after it.
alter table run_summary alter column execution_rate type decimal(18,4);
