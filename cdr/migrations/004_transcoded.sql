-- Transcoding in calls (issue 21): whether the SBC transcoded the call's
-- audio (README "CDRs": transcoded; a_codec and b_codec then differ).
-- Rows written before this column existed read false.
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS transcoded boolean NOT NULL DEFAULT false;
