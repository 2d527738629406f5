// Package cdr turns the B2BUA's call records (outcome.CallRecord) into
// call detail records and delivers them, durably and exactly once, to the
// configured writers: JSON lines files, CSV files and PostgreSQL. It does
// not depend on the B2BUA: the records, their causes and dispositions come
// from b2bua/outcome.
//
// # Durability
//
// The Recorder is the B2BUA's outcome.Observer. Every record passes
// through a spool directory before any writer sees it:
//
//   - CallStarted and CallAnswered append what is known of a call in
//     progress to the spool's journal (no fsync of their own: the next
//     fsync carries them).
//   - CallEnded appends the finished record and returns only once the
//     journal is fsynced past it. Concurrent calls share fsyncs (group
//     commit).
//   - Each writer runs on its own goroutine and reads the journal in order
//     from its cursor, a position kept in the spool and fsynced after each
//     batch the writer has made durable. A failing writer retries with
//     backoff, raising an alarm (Stats) meanwhile; records wait in the
//     spool.
//   - A record the destination refuses for good (bad data: PostgreSQL's
//     data exceptions, a NUL a CSV file cannot carry) is set aside in the
//     writer's quarantine file in the spool, fsynced before the cursor
//     moves past it, counted and alarmed; the records after it are
//     delivered. Replay delivers a quarantine file once the cause is
//     dealt with.
//   - Delivery is idempotent, so a batch redelivered after a crash between
//     the writer's commit and its cursor update leaves no duplicate:
//     PostgreSQL inserts with ON CONFLICT (id) DO NOTHING; a file writer,
//     on start, cuts its unfinished file back to what its cursor covers
//     before writing again, and only finishes (renames) a file once its
//     cursor covers all of it.
//   - On start, calls that were started but never ended (the process died
//     with them up) get a record with hangup_cause sbc_restart, built from
//     what the journal knew and ended at the last sign of life of the
//     previous run (a heartbeat file touched every second).
//
// The journal is a sequence of segment files of checksummed frames. A new
// segment starts every SegmentBytes and at each start; it opens with a
// checkpoint of the calls in progress, so a segment every cursor has passed
// can be deleted.
package cdr
