-- Calls that survive their node (issue 19): the record of a call another
-- node continued names the node it was taken over from (README "CDRs":
-- taken_over_from). Rows written before this column existed read "".
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS taken_over_from text NOT NULL DEFAULT '';
