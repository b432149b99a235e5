package awsdouble

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"go.yaml.in/yaml/v4"
	"golang.org/x/crypto/ssh"
)

// SSHD stands in for the sshd of the double's instances: a loopback SSH server that "boots"
// from an instance's user-data, presenting the host key from cloud-init's ssh_keys and
// accepting the keys in ssh_authorized_keys. Install it with d.OnRunInstances = sshd.Boot and
// point the client at Port. It completes handshakes only; sessions are refused.
type SSHD struct {
	// RefuseFirst closes this many connections after each boot before the first handshake, as
	// an instance whose sshd is not up yet does.
	RefuseFirst int
	// HostKeyOverride, when set, is presented instead of the user-data's key (an impostor).
	HostKeyOverride ssh.Signer
	// OnRefuse is called for each connection refused after a boot (a test can cancel here).
	OnRefuse func()

	ln     net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	cfg    *ssh.ServerConfig
	left   int
	conns  map[net.Conn]bool
	logins int
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
			_, chans, reqs, err := ssh.NewServerConn(conn, cfg)
			if err != nil {
				return
			}
			go ssh.DiscardRequests(reqs)
			for ch := range chans {
				_ = ch.Reject(ssh.Prohibited, "the double's sshd only proves the handshake")
			}
		}()
	}
}
