package local

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// front is the target's stable address (Config.Listen): a TCP forwarder to the running
// version's own tunnel. It listens only while a version serves, so a stopped or killed version
// refuses connections as a stopped host's port does; pointing it at another version's tunnel
// is how a rollback to a K that is already up (Prepare started it) becomes a switch, not a
// start, as a blue/green cut-over is.
type front struct {
	addr string

	mu      sync.Mutex
	ln      net.Listener
	backend string // host:port of the serving version's tunnel
	conns   map[net.Conn]struct{}
}

func newFront(addr string) *front { return &front{addr: addr, conns: map[net.Conn]struct{}{}} }

// serve points new connections at backend, listening first if the front is down.
func (f *front) serve(backend string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.backend = backend
	if f.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		f.backend = ""
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	f.ln = ln
	go f.accept(ln)
	return nil
}

// down stops listening and resets the connections in flight: what a client of a stopped app
// sees, whatever the engine still does to the container behind it.
func (f *front) down() {
	f.mu.Lock()
	ln, conns := f.ln, f.conns
	f.ln, f.backend, f.conns = nil, "", map[net.Conn]struct{}{}
	f.mu.Unlock()
	if ln != nil {
		ln.Close()
	}
	for c := range conns {
		reset(c)
	}
}

func (f *front) accept(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // down closed it
		}
		go f.forward(c)
	}
}

// forward joins client to the backend in force when it connected; a backend that refuses
// (its tunnel gone) resets the client, as the app's own port would.
func (f *front) forward(client net.Conn) {
	f.mu.Lock()
	backend := f.backend
	live := f.track(client)
	f.mu.Unlock()
	if !live || backend == "" {
		reset(client)
		return
	}
	defer f.untrack(client)
	up, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil {
		reset(client)
		return
	}
	f.mu.Lock()
	live = f.track(up)
	f.mu.Unlock()
	if !live {
		reset(client)
		up.Close()
		return
	}
	defer f.untrack(up)
	done := make(chan struct{})
	go func() { pipe(up, client); close(done) }()
	pipe(client, up)
	<-done
	client.Close()
	up.Close()
}

// track adds c to the connections down resets; false once the front is down. Called with f.mu.
func (f *front) track(c net.Conn) bool {
	if f.ln == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *front) untrack(c net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, c)
}

// pipe copies src to dst, then half-closes dst so the other side sees the end.
func pipe(dst, src net.Conn) {
	_, err := io.Copy(dst, src)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		reset(dst)
		return
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
}

// reset closes c with a TCP RST rather than a FIN.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}
