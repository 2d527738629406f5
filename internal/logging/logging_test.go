package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestLevelAndTrace(t *testing.T) {
	var buf bytes.Buffer
	log, lv := New(&buf, FormatJSON, slog.LevelInfo)
	traced := log.With("call_id", "c1", TraceKey, true)
	plain := log.With("call_id", "c2")

	plain.Debug("plain debug")
	traced.Debug("traced debug")
	plain.Info("plain info")
	traced.WithGroup("g").Debug("traced group debug")
	traced.With(TraceKey, false).Debug("untraced again")
	lv.Set(slog.LevelDebug)
	plain.Debug("plain debug after level change")
	lv.Set(slog.LevelError)
	plain.Info("plain info at error level")

	var got []string
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not json: %q", line)
		}
		got = append(got, rec["msg"].(string))
	}
	want := []string{"traced debug", "plain info", "traced group debug", "plain debug after level change"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("logged %q\nwant   %q", got, want)
	}
}

func TestTextFormat(t *testing.T) {
	var buf bytes.Buffer
	log, _ := New(&buf, FormatText, slog.LevelInfo)
	log.Info("hello", "k", "v")
	if !strings.Contains(buf.String(), "msg=hello k=v") {
		t.Errorf("text output %q", buf.String())
	}
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"debug", slog.LevelDebug, false},
		{"info", slog.LevelInfo, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"loud", slog.LevelInfo, true},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("ParseLevel(%q) = %v, %v", tt.in, got, err)
		}
	}
}

func TestTraces(t *testing.T) {
	var tr Traces
	if tr.Traced("alice") {
		t.Error("empty set traces")
	}
	tests := []struct {
		name  string
		add   []string
		users []string
		want  bool
	}{
		{"exact user", []string{"alice"}, []string{"bob", "alice"}, true},
		{"case folded", []string{"Alice"}, []string{"ALICE"}, true},
		{"plus ignored on target", []string{"+4930123"}, []string{"4930123"}, true},
		{"plus ignored on user", []string{"4930123"}, []string{"+4930123"}, true},
		{"other user", []string{"alice"}, []string{"bob"}, false},
		{"empty user never matches", []string{"alice"}, []string{""}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr Traces
			for _, a := range tt.add {
				tr.Add(a)
			}
			if got := tr.Traced(tt.users...); got != tt.want {
				t.Errorf("Traced(%q) = %v", tt.users, got)
			}
		})
	}
	if tr.Add("  ") {
		t.Error("blank target added")
	}
	tr.Set([]string{"bob", "+1555"})
	if got := tr.List(); !reflect.DeepEqual(got, []string{"+1555", "bob"}) {
		t.Errorf("List = %q", got)
	}
	if !tr.Remove("1555") || tr.Remove("1555") || tr.Traced("+1555") {
		t.Error("Remove")
	}
}

func TestTracesConcurrent(t *testing.T) {
	var tr Traces
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for j := range 200 {
				tr.Add(string(rune('a' + i)))
				tr.Traced("a", "b")
				if j%10 == 0 {
					tr.Remove(string(rune('a' + i)))
					_ = tr.List()
				}
			}
		})
	}
	wg.Wait()
}
