//go:build !linux

package transport

// Without epoll an idle WebSocket keeps a goroutine blocked in its read
// (see wswait_linux.go for what Linux does instead).

// wsWatcher has nothing to hold here.
type wsWatcher struct{}

// waitReadable runs readWS on a new goroutine, whose first read blocks
// until c is readable; false when the layer is closed.
func (l *Layer) waitReadable(c *Conn) bool {
	return l.start(func() { l.readWS(c, true) })
}

// unwatch has nothing to forget.
func (l *Layer) unwatch(*Conn) {}
