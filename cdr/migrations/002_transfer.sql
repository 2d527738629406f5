-- Call transfer (REFER): the records of a transferred call name each
-- other (README "CDRs": transferred_from, transferred_to). Rows written
-- before these columns existed read "".
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS transferred_from text NOT NULL DEFAULT '';
ALTER TABLE cdr ADD COLUMN IF NOT EXISTS transferred_to   text NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS cdr_transferred_from_idx ON cdr (transferred_from) WHERE transferred_from <> '';
