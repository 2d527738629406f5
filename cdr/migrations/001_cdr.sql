-- The cdr table: one row per call attempt, columns as the CDR contract
-- (README "CDRs"), in the same order as the JSON and CSV fields.
--
-- The SBC applies every file in cdr/migrations, in name order, each time
-- its postgres writer connects, in one transaction under an advisory lock
-- (several nodes may share the database). Every statement must therefore be
-- idempotent: CREATE ... IF NOT EXISTS, ADD COLUMN IF NOT EXISTS.
--
-- Rows are inserted with ON CONFLICT (id) DO NOTHING: a record delivered
-- again after a crash or an outage is not duplicated.

CREATE TABLE IF NOT EXISTS cdr (
    id               text PRIMARY KEY,
    node_id          text NOT NULL,
    a_call_id        text NOT NULL,
    b_call_id        text NOT NULL,
    from_uri         text NOT NULL,
    to_uri           text NOT NULL,
    src_addr         text NOT NULL,
    a_transport      text NOT NULL,
    trunk            text NOT NULL,
    start_time       timestamptz,          -- NULL: unknown
    ring_time        timestamptz,          -- NULL: no 18x was relayed
    answer_time      timestamptz,          -- NULL: not answered
    end_time         timestamptz,
    setup_ms         bigint NOT NULL,
    duration_s       numeric(14,3) NOT NULL,
    billsec_s        numeric(14,3) NOT NULL,
    disposition      text NOT NULL
        CHECK (disposition IN ('ANSWERED', 'NO ANSWER', 'BUSY', 'FAILED', 'CANCELLED', 'REJECTED')),
    sip_code         integer NOT NULL,
    hangup_cause     text NOT NULL,
    hangup_side      text NOT NULL,
    a_codec          text NOT NULL,
    b_codec          text NOT NULL,
    a_to_b_packets   bigint NOT NULL,
    a_to_b_bytes     bigint NOT NULL,
    a_to_b_lost      bigint NOT NULL,
    a_to_b_jitter_ms double precision NOT NULL,
    a_to_b_mos       double precision NOT NULL,
    b_to_a_packets   bigint NOT NULL,
    b_to_a_bytes     bigint NOT NULL,
    b_to_a_lost      bigint NOT NULL,
    b_to_a_jitter_ms double precision NOT NULL,
    b_to_a_mos       double precision NOT NULL,
    inserted_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS cdr_start_time_idx ON cdr (start_time);
-- a_call_id is looked up by equality only, and SIP sets no limit on a
-- Call-ID's length: a btree index refuses a key over about 2.7 kB
-- (SQLSTATE 54000), which would keep the record of a call with a long
-- Call-ID out of the table. A hash index keeps only the key's hash. (Tables
-- made before it had a btree index, cdr_a_call_id_idx: replaced here.)
CREATE INDEX IF NOT EXISTS cdr_a_call_id_hash_idx ON cdr USING hash (a_call_id);
DROP INDEX IF EXISTS cdr_a_call_id_idx;
