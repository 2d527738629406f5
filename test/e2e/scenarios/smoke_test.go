package scenarios

import (
	"context"
	"github.com/sbc-project/sbc/test/e2e"
	"os/exec"
	"testing"
	"time"
)

func TestSmokeBuiltinScenarios(t *testing.T) {
	e2e.NeedSIPp(t)
	uasPort := e2e.FreeUDPPort(t, e2e.PBXIP())
	sbc := e2e.StartSBC(t, e2e.SBCOptions{Trunks: []e2e.TrunkSpec{{Name: "uas", Addr: e2e.PBXIP(), Port: uasPort, Transport: "udp"}}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	uas := exec.CommandContext(ctx, "sipp", "-sn", "uas", "-i", e2e.PBXIP(), "-p", e2e.Itoa(uasPort), "-m", "1", "-nostdin", "-trace_err")
	uas.Dir = t.TempDir()
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	uac := exec.CommandContext(ctx, "sipp", "-sn", "uac", "-i", e2e.CallerIP(), "-m", "1", "-nostdin", "-trace_err",
		"-s", "1000", sbc.UDP.String())
	uac.Dir = t.TempDir()
	out, err := uac.CombinedOutput()
	if err != nil {
		t.Fatalf("uac: %v\n%s", err, e2e.Tail(out))
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("uas: %v", err)
	}
	sbc.WaitIdle(t)
}
