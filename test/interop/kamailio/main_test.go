package kamailio

import (
	"testing"

	"github.com/sbc-project/sbc/test/interop/sbcproc"
)

func TestMain(m *testing.M) { sbcproc.Main(m) }
