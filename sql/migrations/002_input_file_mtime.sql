-- Version 2: input_files keeps each file's modification time as it was when the file was hashed,
-- so that a nightly run skips a file it has already loaded (same path, size and time) without
-- reading it again. Files registered before stay null: the next run that hashes one fills it in.
alter table input_files add column mtime_ns bigint;
