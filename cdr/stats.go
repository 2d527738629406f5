package cdr

// Stats are a Recorder's counters, for metrics and alarms. Counters count
// since Open.
type Stats struct {
	// Recorded counts records made durable in the spool (fsynced), the
	// sbc_restart ones Open made aside.
	Recorded uint64
	// Restarted is how many sbc_restart records Open made for calls the
	// previous run left up.
	Restarted int
	// SpoolFailing is set while the spool cannot be written or fsynced
	// (disk full, I/O error): records are then held in memory (Backlog).
	SpoolFailing bool
	// SpoolErrors counts failed spool writes and fsyncs.
	SpoolErrors uint64
	// Backlog is the number of finished records held in memory because the
	// spool refused them (in the Recorder's backlog, or in the journal's
	// frames waiting for a write); they are retried every second.
	Backlog int
	// Dropped counts records lost: the backlog overflowed, or records came
	// after Close. Anything but 0 needs an operator.
	Dropped uint64
	// Writers has one entry per writer, in configuration order.
	Writers []WriterStats
}

// WriterStats are one writer's counters.
type WriterStats struct {
	Name, Type string
	// Delivered counts records written to the destination.
	Delivered uint64
	// Pending is the writer's queue depth: records in the spool it has yet
	// to deliver.
	Pending uint64
	// Failures counts failed delivery attempts (each retried).
	Failures uint64
	// Failing is set while the last attempt failed: the writer's alarm.
	Failing bool
	// LastError is the last failure's message ("" if none yet).
	LastError string
	// Quarantined counts the records the destination refused for good
	// since Open (bad data, such as a NUL PostgreSQL cannot store): each
	// was set aside in QuarantineFile with the reason, and delivery went
	// on. Anything but 0 needs an operator (README: replay).
	Quarantined uint64
	// LastQuarantined is the id and refusal of the last record set aside
	// ("" if none since Open).
	LastQuarantined string
	// QuarantineFile is the writer's quarantine file in the spool; it
	// exists only once a record was set aside.
	QuarantineFile string
}

// Alarm reports whether an operator should look: the spool or a writer is
// failing, records wait in memory, records were lost, or a writer
// quarantined records.
func (s Stats) Alarm() bool {
	if s.SpoolFailing || s.Backlog > 0 || s.Dropped > 0 {
		return true
	}
	for _, w := range s.Writers {
		if w.Failing || w.Quarantined > 0 {
			return true
		}
	}
	return false
}

// Stats returns the current counters. Safe for concurrent use.
func (r *Recorder) Stats() Stats {
	durable := r.j.durableRecords()
	s := Stats{
		Recorded:     durable - uint64(r.restarted),
		Restarted:    r.restarted,
		SpoolFailing: r.spoolFailing.Load(),
		SpoolErrors:  r.spoolErrors.Load(),
		Backlog:      r.backlogLen() + r.j.refused(),
		Dropped:      r.dropped.Load(),
	}
	for _, run := range r.runners {
		s.Writers = append(s.Writers, run.stats(durable))
	}
	return s
}
