-- The label a person gave an enrolment at its start, kept with the pending
-- secret until its first code confirms it (operational, like the rest of 0007).
ALTER TABLE mfa_secrets ADD COLUMN pending_label text;
