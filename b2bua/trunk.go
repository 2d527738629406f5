package b2bua

import (
	"strconv"
	"time"

	"github.com/sbc-project/sbc/b2bua/sipmsg"
)

// failTLS answers A when the last trunk could not be reached because its
// TLS handshake failed (its certificate not valid for its name or from an
// unknown CA, or a client certificate missing): 503, and a CDR whose
// hangup_cause says so. The details are in the log, not in the answer.
func (c *Call) failTLS() {
	c.fail(503, "Service Unavailable", "trunk_tls_failed",
		sipmsg.Generic("Retry-After", strconv.Itoa(int(c.s.cfg.RetryAfter/time.Second))),
		sipmsg.Generic("Warning", `399 sbc "TLS handshake with the trunk failed"`))
	c.side = "sbc"
}
