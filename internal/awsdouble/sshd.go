package awsdouble

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/ssh"
)

// SSHD stands in for the sshd of the double's instances: a loopback SSH server that "boots"
// from an instance's user-data, presenting the host key from cloud-init's ssh_keys and
// accepting the keys in ssh_authorized_keys. Install it with d.OnRunInstances = sshd.Boot and
// point the client at Port. Without Exec it completes handshakes only and refuses sessions.
type SSHD struct {
	// RefuseFirst closes this many connections after each boot before the first handshake, as
	// an instance whose sshd is not up yet does.
	RefuseFirst int
	// HostKeyOverride, when set, is presented instead of the user-data's key (an impostor).
	HostKeyOverride ssh.Signer
	// OnRefuse is called for each connection refused after a boot (a test can cancel here).
	OnRefuse func()
	// Exec, when set, answers each exec request: the test plays the host's programs (docker).
	Exec func(Exec) ExecResult

	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	cfg    *ssh.ServerConfig
	left   int
	conns  map[net.Conn]bool
	logins int
	seq    int // connections that completed the handshake
}

// Exec is one command a client ran.
type Exec struct {
	Login   int    // which login this connection was, counting from 1: a group a user joined later shows on new logins only
	User    string // the login user
	Command string // the command line as sent (the shell would run it)
	Stdin   []byte // all of stdin, read before Exec is called
}

// ExecResult is what the command printed and how it exited.
type ExecResult struct {
	Stdout, Stderr string
	Status         int
}

// StartSSHD listens on 127.0.0.1 on a free port.
func StartSSHD() (*SSHD, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sshd: %w", err)
	}
	s := &SSHD{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Port is the port the server listens on.
func (s *SSHD) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server, drops its connections and waits for them.
func (s *SSHD) Close() error {
	err := s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}

// Logins reports how many logins were accepted.
func (s *SSHD) Logins() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.logins
}

type cloudConfig struct {
	SSHKeys struct {
		Private string `yaml:"ed25519_private"`
		Public  string `yaml:"ed25519_public"`
	} `yaml:"ssh_keys"`
	AuthorizedKeys []string `yaml:"ssh_authorized_keys"`
}

// Boot configures the server from an instance's user-data and returns its address; its
// signature fits Double.OnRunInstances.
func (s *SSHD) Boot(_ string, userData []byte) (string, error) {
	var cc cloudConfig
	if err := yaml.Unmarshal(userData, &cc); err != nil {
		return "", fmt.Errorf("sshd: user-data is not YAML: %w", err)
	}
	hostKey, err := ssh.ParsePrivateKey([]byte(cc.SSHKeys.Private))
	if err != nil {
		return "", fmt.Errorf("sshd: ssh_keys.ed25519_private: %w", err)
	}
	authorized := map[string]bool{}
	for _, line := range cc.AuthorizedKeys {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return "", fmt.Errorf("sshd: ssh_authorized_keys: %w", err)
		}
		authorized[string(k.Marshal())] = true
	}
	if len(authorized) == 0 {
		return "", errors.New("sshd: user-data authorizes no key")
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if authorized[string(k.Marshal())] {
			// Counted here, before the server answers, so a client that returned from its
			// handshake always sees it.
			s.mu.Lock()
			s.logins++
			s.mu.Unlock()
			return &ssh.Permissions{}, nil
		}
		return nil, errors.New("unknown key")
	}}
	if s.HostKeyOverride != nil {
		hostKey = s.HostKeyOverride
	}
	cfg.AddHostKey(hostKey)
	s.mu.Lock()
	s.cfg, s.left = cfg, s.RefuseFirst
	s.mu.Unlock()
	return "127.0.0.1", nil
}

// Addr is host:port of the server.
func (s *SSHD) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port())) }

func (s *SSHD) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		cfg := s.cfg
		refuse := cfg == nil || s.left > 0
		if cfg != nil && s.left > 0 {
			s.left--
		}
		hook := s.OnRefuse
		s.mu.Unlock()
		if refuse {
			conn.Close()
			if cfg != nil && hook != nil {
				hook()
			}
			continue
		}
		s.mu.Lock()
		s.conns[conn] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() {
				conn.Close()
				s.mu.Lock()
				delete(s.conns, conn)
				s.mu.Unlock()
			}()
			sc, chans, reqs, err := ssh.NewServerConn(conn, cfg)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.seq++
			login, exec := s.seq, s.Exec
			s.mu.Unlock()
			go ssh.DiscardRequests(reqs)
			for ch := range chans {
				if exec == nil || ch.ChannelType() != "session" {
					_ = ch.Reject(ssh.Prohibited, "the double's sshd only proves the handshake")
					continue
				}
				s.wg.Add(1)
				go func() {
					defer s.wg.Done()
					serveSession(ch, exec, Exec{Login: login, User: sc.User()})
				}()
			}
		}()
	}
}

// serveSession runs one exec request of a session through exec and reports its exit status.
func serveSession(newCh ssh.NewChannel, exec func(Exec) ExecResult, e Exec) {
	ch, reqs, err := newCh.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	for req := range reqs {
		if req.Type != "exec" {
			if req.WantReply {
				_ = req.Reply(req.Type == "env", nil)
			}
			continue
		}
		var payload struct{ Command string }
		if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
			_ = req.Reply(false, nil)
			return
		}
		_ = req.Reply(true, nil)
		go ssh.DiscardRequests(reqs) // signals and the like: the fake commands end on their own
		e.Command = payload.Command
		e.Stdin, _ = io.ReadAll(ch)
		res := exec(e)
		_, _ = io.WriteString(ch, res.Stdout)
		_, _ = io.WriteString(ch.Stderr(), res.Stderr)
		_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(res.Status)}))
		return
	}
}
