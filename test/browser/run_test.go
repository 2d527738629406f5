package browser

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRunPrefixGatesResult runs a shell script as the Prefix in place of
// ip netns exec: it gets node, the driver's absolute path and the
// scenario's file; it checks them, reports a mark, waits for the gate the
// Run creates on that mark, and prints a result with a passed phone
// (stats kept) and a failed one whose page could not be read.
func TestRunPrefixGatesResult(t *testing.T) {
	gate := filepath.Join(t.TempDir(), "gate")
	script := fmt.Sprintf(`[ "$1" = node ] && [ -f "$2" ] && grep -q '"browser":"firefox"' "$3" || { echo '{"setupError":"bad argv"}'; exit 2; }
echo '{"event":"mark","phone":"a","name":"up"}'
i=0; while [ ! -e %q ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i+1)); done
[ -e %q ] || exit 3
echo '{"result":{"a":{"ok":true,"marks":{"s":{"packetsReceived":60},"x":"hi"}},"b":{"ok":false,"step":"wait","dom":"Error: closed"}}}'`,
		gate, gate)
	sc := Scenario{Browser: "firefox", Phones: []Phone{{Name: "a", Steps: []Step{Do("mark", "name", "up")}}},
		Prefix: []string{"sh", "-c", script, "sh"}, Gates: map[string]string{"a/up": gate}, Deadline: 20 * time.Second}
	r := Start(t, sc)
	r.WaitEvent("a", "mark", "up", 10*time.Second)
	r.WaitExit(15 * time.Second)
	res := r.Wait()
	if a := res["a"]; !a.OK || a.Stats(t, "s").PacketsReceived != 60 || a.Text("x") != "hi" {
		t.Errorf("phone a: %+v", a)
	}
	if b := res["b"]; b.OK || b.Step != "wait" || !strings.Contains(b.DOM.Error, "Error: closed") {
		t.Errorf("phone b: %+v", b)
	}
	if _, err := os.Stat(gate); err != nil {
		t.Errorf("the gate of a/up: %v", err)
	}
}

func TestDo(t *testing.T) {
	s := Do("wait", "call", "in-call", "timeoutMs", 500)
	if len(s) != 3 || s["do"] != "wait" || s["call"] != "in-call" || s["timeoutMs"] != 500 {
		t.Errorf("Do: %v", s)
	}
}

func TestWriteTone(t *testing.T) {
	b, err := os.ReadFile(WriteTone(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 44+48000*2*2 || string(b[:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " || string(b[36:40]) != "data" {
		t.Errorf("tone: %d bytes, header %q", len(b), b[:44])
	}
}
