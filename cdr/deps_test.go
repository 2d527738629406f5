package cdr

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoB2BUA: the CDR writers do not depend on the B2BUA (nor, through
// it, on the SIP stack, the media engine and the policy chain): a call's
// record, its causes and its disposition come from b2bua/outcome, a leaf.
func TestNoB2BUA(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool:", err)
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const b2bua = "github.com/sbc-project/sbc/b2bua"
	for _, dep := range strings.Fields(string(out)) {
		if dep == b2bua || strings.HasPrefix(dep, b2bua+"/") && dep != b2bua+"/outcome" {
			t.Errorf("cdr depends on %s", dep)
		}
	}
}
