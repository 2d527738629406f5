package timeline

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// View is a timeline as the API returns it (JSON). ID is the call's id
// in GET /api/v1/calls: its CDR id.
type View struct {
	ID      string      `json:"id"`
	CDRID   string      `json:"cdr_id"`
	Live    bool        `json:"live"`
	Started string      `json:"started"`
	Ended   string      `json:"ended,omitempty"`
	ACallID string      `json:"a_call_id"`
	BCallID string      `json:"b_call_id"`
	Dropped int         `json:"dropped,omitempty"` // events let go past MaxEvents
	Events  []EventView `json:"events"`
}

// EventView is one event of a View.
type EventView struct {
	At     string         `json:"at"`
	Ms     float64        `json:"ms"`
	Kind   string         `json:"kind"`
	Leg    string         `json:"leg"`
	Dir    string         `json:"dir"`
	What   string         `json:"what"`
	Detail map[string]any `json:"detail,omitempty"`
	Text   string         `json:"text,omitempty"`
}

// View renders t: its events in time order.
func (t *Timeline) View() View {
	t.mu.Lock()
	v := View{ID: t.cdrID, CDRID: t.cdrID, Live: t.ended == 0, ACallID: t.id, BCallID: t.bCallID,
		Started: stamp(t.started), Dropped: t.dropped}
	if t.ended != 0 {
		v.Ended = stamp(t.ended)
	}
	evs := t.ordered()
	started := t.started
	t.mu.Unlock()
	// Events are stamped before they take the lock, so two from different
	// goroutines can arrive out of order.
	slices.SortStableFunc(evs, func(a, b Event) int { return cmp.Compare(a.At, b.At) })
	v.Events = make([]EventView, len(evs))
	for i, ev := range evs {
		v.Events[i] = ev.view(started)
	}
	return v
}

// ordered copies the events in the order they were kept (the head, then
// the ring from its oldest), then the quality samples likewise. Called
// under t.mu.
func (t *Timeline) ordered() []Event {
	out := make([]Event, 0, len(t.events.items)+len(t.samples.items))
	t.events.each(t.max, func(sl slot) { out = append(out, t.event(sl)) })
	t.samples.each(t.max, func(q qsample) { out = append(out, q.event()) })
	return out
}

// MarshalJSON renders t as its View.
func (t *Timeline) MarshalJSON() ([]byte, error) { return json.Marshal(t.View()) }

func (ev Event) view(started int64) EventView {
	v := EventView{At: stamp(ev.At), Ms: float64(ev.At-started) / 1e6, Kind: ev.Kind.String(),
		Leg: ev.Leg.String(), Dir: ev.Dir.String(), What: ev.What, Text: ev.Text}
	if ev.Kind == KindSIP && ev.Code != 0 {
		v.What = strconv.Itoa(int(ev.Code)) + " " + ev.What
	}
	if ev.Shape == ShapeNone || ev.Shape >= shapeCount {
		return v
	}
	keys := shapeKeys[ev.Shape]
	v.Detail = make(map[string]any, 4)
	for i, k := range keys.s {
		if k != "" && ev.S[i] != "" {
			v.Detail[k] = ev.S[i]
		}
	}
	for i, k := range keys.n {
		if k != "" {
			v.Detail[k] = ev.N[i]
		}
	}
	if keys.fixed[0] != "" {
		v.Detail[keys.fixed[0]] = keys.fixed[1]
	}
	return v
}

func stamp(ns int64) string { return time.Unix(0, ns).UTC().Format(time.RFC3339Nano) }
