package console

import (
	"sync"
	"time"
)

// HistoryLen is how many state changes TrunkLog keeps per trunk.
const HistoryLen = 50

// maxTrunks bounds how many trunks TrunkLog remembers: a reload can rename
// trunks, and names no longer configured must not pile up.
const maxTrunks = 1000

// Change is one trunk state change.
type Change struct {
	At time.Time
	Up bool
}

// TrunkLog keeps each trunk's last HistoryLen up/down changes, oldest
// first, as the OPTIONS monitor reports them. Safe for concurrent use; the
// zero value is ready.
type TrunkLog struct {
	mu   sync.Mutex
	byTr map[string][]Change
}

// Changed records that trunk name went up or down now.
func (l *TrunkLog) Changed(name string, up bool) { l.changedAt(name, up, time.Now()) }

func (l *TrunkLog) changedAt(name string, up bool, at time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.byTr == nil {
		l.byTr = map[string][]Change{}
	}
	h, known := l.byTr[name]
	if !known && len(l.byTr) >= maxTrunks {
		return
	}
	if len(h) == HistoryLen {
		h = append(h[:0], h[1:]...)
	}
	l.byTr[name] = append(h, Change{At: at.UTC(), Up: up})
}

// History returns a copy of trunk name's changes, oldest first; nil if
// none.
func (l *TrunkLog) History(name string) []Change {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.byTr[name]
	if len(h) == 0 {
		return nil
	}
	return append([]Change(nil), h...)
}
