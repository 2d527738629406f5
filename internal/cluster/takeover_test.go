package cluster

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The takeover command gets the dead node, this node and the dead node's
// service address in its environment.
func TestTakeoverHookEnvironment(t *testing.T) {
	out := filepath.Join(t.TempDir(), "env")
	h := &TakeoverHook{Command: []string{"/bin/sh", "-c", `echo "$SBC_DEAD_NODE $SBC_NODE_ID $SBC_SERVICE_ADDR" > ` + out}, Self: "sbc-2",
		Addrs: map[string]string{"sbc-1": "192.0.2.10"}}
	if err := h.Run(context.Background(), "sbc-1"); err != nil {
		t.Fatalf("Run: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != "sbc-1 sbc-2 192.0.2.10" {
		t.Fatalf("command saw %q", got)
	}
	if runs, fails := h.Counts(); runs != 1 || fails != 0 {
		t.Fatalf("counts %d runs, %d failures", runs, fails)
	}
}

// A failing command and one past its timeout are errors, counted; the
// timeout kills the command.
func TestTakeoverHookFailures(t *testing.T) {
	h := &TakeoverHook{Command: []string{"/bin/sh", "-c", "echo no route to the cloud API >&2; exit 3"}}
	err := h.Run(context.Background(), "sbc-1")
	if err == nil || !strings.Contains(err.Error(), "exit status 3") || !strings.Contains(err.Error(), "sbc-1") {
		t.Fatalf("failing command: %v", err)
	}
	// The shell's child keeps the output open past the kill.
	h.Command, h.Timeout = []string{"/bin/sh", "-c", "sleep 30; true"}, 200*time.Millisecond
	start := time.Now()
	err = h.Run(context.Background(), "sbc-1")
	if err == nil || !strings.Contains(err.Error(), "timed out after 200ms") {
		t.Fatalf("slow command: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("slow command held Run %v", d)
	}
	if runs, fails := h.Counts(); runs != 2 || fails != 2 {
		t.Fatalf("counts %d runs, %d failures", runs, fails)
	}
	if err := (&TakeoverHook{}).Run(context.Background(), "sbc-1"); err != nil {
		t.Fatalf("no command: %v", err)
	}
}
