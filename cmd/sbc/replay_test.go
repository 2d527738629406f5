package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCDRReplay: sbc -cdr-replay delivers a quarantined record to its
// writer, the NUL that got it refused made U+FFFD, and says so; a record
// for a writer the config lacks is an error naming it.
func TestCDRReplay(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "cdr")
	cfg := writeFile(t, "cdr:\n  - {type: jsonl, dir: "+out+"}\ncdr_spool: "+filepath.Join(dir, "spool")+"\n")
	quarantine := filepath.Join(dir, "quarantine-jsonl.jsonl")
	line := `{"time":"2026-11-21T10:15:00.123Z","writer":"jsonl","error":"refused","record":{"id":"0123456789abcdef0123456789abcdef",` +
		`"node_id":"sbc-1","a_call_id":"evil\u0000id","disposition":"FAILED","start_time":null,"ring_time":null,"answer_time":null,"end_time":null}}` + "\n"
	if err := os.WriteFile(quarantine, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := sbc(t, nil, "-config", cfg, "-cdr-replay", quarantine)
	if code != 0 || stdout != "cdr replay: 1 records delivered to writer jsonl\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(out, "cdr-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("files %v, want one finished file", files)
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"a_call_id":"evil`+"\uFFFD"+`id"`) {
		t.Errorf("replayed record %s, want the NUL made U+FFFD", data)
	}

	other := filepath.Join(dir, "other.jsonl")
	if err := os.WriteFile(other, []byte(strings.Replace(line, `"writer":"jsonl"`, `"writer":"postgres"`, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = sbc(t, nil, "-config", cfg, "-cdr-replay", other)
	if code != 1 || !strings.Contains(stderr, `writer "postgres" is not in the configuration`) {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}
