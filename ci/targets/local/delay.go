package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// delayProxy is the slow fault's data path: a TCP proxy that hands every chunk the app sends
// back to the client Delay after the app sent it (a one-way delay on responses, like netem's
// on egress, which this machine's kernel may lack). It listens inside the app's network
// namespace, where a REDIRECT rule sends it new connections to the app's port.
type delayProxy struct {
	ln    net.Listener
	dial  func() (net.Conn, error)
	delay time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func newDelayProxy(ln net.Listener, delay time.Duration, dial func() (net.Conn, error)) *delayProxy {
	ctx, cancel := context.WithCancel(context.Background())
	p := &delayProxy{ln: ln, dial: dial, delay: delay, ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}}
	p.wg.Go(p.serve)
	return p
}

// Port is the proxy's port in its namespace.
func (p *delayProxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

func (p *delayProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		p.wg.Go(func() { p.handle(c) })
	}
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx.Err() != nil {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *delayProxy) handle(client net.Conn) {
	if !p.track(client) {
		return
	}
	defer p.untrack(client)
	app, err := p.dial()
	if err != nil {
		return // the client sees its connection closed, as with a dead backend
	}
	if !p.track(app) {
		return
	}
	defer p.untrack(app)
	var wg sync.WaitGroup
	wg.Go(func() { // requests go through at once
		io.Copy(app, client)
		closeWrite(app)
	})
	wg.Go(func() { // responses are held back
		p.delayed(client, app)
		closeWrite(client)
	})
	wg.Wait()
}

// delayed copies src to dst, each chunk written delay after it was read; at most 64 chunks
// wait at once (then the app's writes block, as on a full link).
func (p *delayProxy) delayed(dst io.Writer, src io.Reader) {
	type chunk struct {
		due  time.Time
		data []byte
	}
	chunks := make(chan chunk, 64)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				select {
				case chunks <- chunk{time.Now().Add(p.delay), buf[:n]}:
				case <-stop:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for c := range chunks {
		timer.Reset(time.Until(c.due))
		select {
		case <-timer.C:
		case <-p.ctx.Done():
			return
		}
		if _, err := dst.Write(c.data); err != nil {
			return
		}
	}
}

func closeWrite(c io.Writer) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
}

// Close stops accepting, cuts every connection and waits for the proxy's goroutines.
func (p *delayProxy) Close() error {
	p.mu.Lock()
	p.cancel()
	err := p.ln.Close()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// startDelayProxy listens inside ns and reaches the app on ns's loopback at appPort.
func startDelayProxy(ns *os.File, appPort int, delay time.Duration) (*delayProxy, error) {
	var ln net.Listener
	var lnErr error
	if err := inNamespace(ns, func() { ln, lnErr = net.Listen("tcp4", "0.0.0.0:0") }); err != nil {
		return nil, err
	}
	if lnErr != nil {
		return nil, fmt.Errorf("listen in the app's network namespace: %w", lnErr)
	}
	appAddr := fmt.Sprintf("127.0.0.1:%d", appPort)
	dial := func() (net.Conn, error) {
		var c net.Conn
		var dialErr error
		if err := inNamespace(ns, func() { c, dialErr = net.DialTimeout("tcp4", appAddr, 5*time.Second) }); err != nil {
			return nil, err
		}
		return c, dialErr
	}
	return newDelayProxy(ln, delay, dial), nil
}
