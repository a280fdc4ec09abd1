-- Version 8: run_inputs keeps each file as this run saw it: the path it was offered at (a copy
-- of a loaded file is named by its own path), and the registry's status and message then (a file
-- superseded later still reads "loaded" in the reports of the runs that counted it). Runs also
-- list the files loaded before and counted (action 'earlier'), so run.json names every file
-- whose lines a run reconciled. Runs made before keep nulls: their reports read the registry.
alter table run_inputs add column if not exists path varchar;
alter table run_inputs add column if not exists status varchar;
alter table run_inputs add column if not exists message varchar;
