package e2e

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestSmokeBuiltinScenarios(t *testing.T) {
	needSIPp(t)
	uasPort := freeUDPPort(t, "127.0.0.3")
	sbc := startSBC(t, sbcOptions{trunks: []trunkSpec{{name: "uas", addr: "127.0.0.3", port: uasPort, transport: "udp"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-i", "127.0.0.3", "-p", itoa(uasPort), "-m", "1", "-nostdin", "-trace_err")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	uac := exec.CommandContext(ctx, "sipp", "-sn", "uac", "-i", "127.0.0.2", "-m", "1", "-nostdin", "-trace_err",
		"-s", "1000", sbc.udp.String())
	uac.Dir = t.TempDir()
	out, err := uac.CombinedOutput()
	if err != nil {
		t.Fatalf("uac: %v\n%s", err, tail(out))
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("uas: %v", err)
	}
	sbc.waitIdle(t)
}
