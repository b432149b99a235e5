package remote

import (
	"bufio"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/deploydrill/deploydrill/internal/testenv"
)

// testSSHD is Debian's real sshd on 127.0.0.1, configured by the test in a temp dir.
type testSSHD struct {
	Addr   string
	User   string
	Host   ssh.Signer // host key
	Client ssh.Signer // authorized client key
	dir    string
}

// newTestSSHD prepares keys and a config for a free port; Start runs it. Split in two so a test can
// dial before sshd listens.
func newTestSSHD(t testing.TB) *testSSHD {
	t.Helper()
	requireSSHD(t)
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := &testSSHD{Addr: freeLoopbackAddr(t), User: u.Username, Host: newSigner(t), Client: newSigner(t), dir: t.TempDir()}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		t.Fatal(err) // privilege separation directory; Debian's tmpfiles make it on a booted system
	}
	writeSigner(t, filepath.Join(s.dir, "host_ed25519"), s.Host)
	authorized := ssh.MarshalAuthorizedKey(s.Client.PublicKey())
	if err := os.WriteFile(filepath.Join(s.dir, "authorized_keys"), authorized, 0o644); err != nil {
		t.Fatal(err)
	}
	// HOME in the temp dir: bash run by sshd sources ~/.bashrc, and a developer's (pyenv init here)
	// can add 150 ms to every session, which would make these tests slow and timing-sensitive.
	config := testenv.SSHDConfig(s.Addr, filepath.Join(s.dir, "host_ed25519"), filepath.Join(s.dir, "authorized_keys"), s.User,
		"HOME="+s.dir)
	if err := os.WriteFile(filepath.Join(s.dir, "sshd_config"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// Start runs sshd in the foreground and returns once it listens; the test's cleanup stops it.
func (s *testSSHD) Start(t testing.TB) {
	t.Helper()
	cmd := exec.Command(sshdPath(t), "-D", "-e", "-f", filepath.Join(s.dir, "sshd_config"))
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	var log strings.Builder
	var logMu sync.Mutex
	listening := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			logMu.Lock()
			log.WriteString(sc.Text() + "\n")
			logMu.Unlock()
			if strings.Contains(sc.Text(), "Server listening on") {
				once.Do(func() { close(listening) })
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			logMu.Lock()
			t.Logf("sshd log:\n%s", log.String())
			logMu.Unlock()
		}
	})
	select {
	case <-listening:
	case <-exited:
		t.Fatalf("sshd exited before listening:\n%s", log.String())
	case <-time.After(10 * time.Second):
		t.Fatal("timed out after 10s waiting for sshd to listen")
	}
}

func (s *testSSHD) config(addr string) Config {
	return Config{Addr: addr, User: s.User, Signer: s.Client, HostKey: s.Host.PublicKey()}
}

func requireSSHD(t testing.TB) {
	t.Helper()
	sshdPath(t)
}

func sshdPath(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/usr/sbin/sshd", "/usr/bin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("sshd not found: install openssh-server (apt-get install -y openssh-server)")
	}
	t.Skip("sshd not found; install openssh-server to run the SSH Runner tests (they fail instead of skipping when CI=true)")
	return ""
}

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	s, keyPEM := testenv.SSHKey(t)
	keys.Store(s, keyPEM)
	return s
}

// keys maps each test signer to its private key file, so writeSigner can store it for sshd.
var keys sync.Map

func writeSigner(t testing.TB, path string, s ssh.Signer) {
	t.Helper()
	keyPEM, _ := keys.Load(s)
	if err := os.WriteFile(path, keyPEM.([]byte), 0o600); err != nil {
		t.Fatal(err)
	}
}

func freeLoopbackAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// tcpProxy sits between the client and sshd: it counts connections, can drop the first ones (a
// booting host closing connections mid-handshake) and can freeze (a host that died without a FIN).
type tcpProxy struct {
	Addr     string
	accepted atomic.Int32
	drop     atomic.Int32 // close this many more connections at once
	frozen   atomic.Bool
}

func startProxy(t testing.TB, target string) *tcpProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{Addr: l.Addr().String()}
	var conns sync.WaitGroup
	var mu sync.Mutex
	var open []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range open {
			c.Close()
		}
		mu.Unlock()
		conns.Wait()
	})
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			p.accepted.Add(1)
			if p.drop.Add(-1) >= 0 {
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			open = append(open, in, out)
			mu.Unlock()
			conns.Add(2)
			go func() { defer conns.Done(); p.pipe(out, in) }()
			go func() { defer conns.Done(); p.pipe(in, out) }()
		}
	}()
	return p
}

// pipe copies src to dst until either closes; while frozen, bytes are read and dropped.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
