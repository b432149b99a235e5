package local

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestFaultCommands(t *testing.T) {
	for _, tc := range []struct {
		name string
		argv []string
		want string
	}{
		{"partition inserts a DROP of the app's port at the top of INPUT, marked as deploydrill's",
			inNetns(dropPort(ruleInsert, 5000)...),
			"nsenter --net=/proc/self/fd/3 -- iptables -w 5 -t filter -I INPUT 1 -p tcp --dport 5000 -m comment --comment deploydrill:partition -j DROP"},
		{"clearing a partition deletes exactly that rule",
			dropPort(ruleDelete, 5000),
			"iptables -w 5 -t filter -D INPUT -p tcp --dport 5000 -m comment --comment deploydrill:partition -j DROP"},
		{"slow redirects new connections to the app's port to the proxy",
			redirectPort(ruleInsert, 5000, 40123),
			"iptables -w 5 -t nat -I PREROUTING 1 -p tcp --dport 5000 -m comment --comment deploydrill:slow -j REDIRECT --to-ports 40123"},
		{"clearing slow deletes exactly that rule",
			redirectPort(ruleDelete, 5000, 40123),
			"iptables -w 5 -t nat -D PREROUTING -p tcp --dport 5000 -m comment --comment deploydrill:slow -j REDIRECT --to-ports 40123"},
		{"rules are verified by listing the chain",
			inNetns(listRules("nat", "PREROUTING")...),
			"nsenter --net=/proc/self/fd/3 -- iptables -w 5 -t nat -S PREROUTING"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := strings.Join(tc.argv, " "); got != tc.want {
				t.Errorf("argv\n got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestHasRule(t *testing.T) {
	rules := `-P INPUT ACCEPT
-A INPUT -p tcp -m tcp --dport 5000 -m comment --comment deploydrill:partition -j DROP
-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "someone else's" -j ACCEPT
-A INPUT -p tcp -m tcp --dport 80 -m comment --comment deploydrill:slow-old -j DROP
`
	for _, tc := range []struct {
		name, comment string
		want          bool
	}{
		{"our rule is found by its comment", "deploydrill:partition", true},
		{"a longer comment is not ours", "deploydrill:slow", false},
		{"another kind's rule is not ours", "deploydrill:hang", false},
		{"a prefix is not a match", "deploydrill", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := hasRule(rules, tc.comment); got != tc.want {
				t.Errorf("hasRule(%q) = %v, want %v", tc.comment, got, tc.want)
			}
		})
	}
}

// The delaying proxy on loopback (the target runs it inside the app's network namespace).
func TestDelayProxyHoldsEveryResponseBack(t *testing.T) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok")
	}))
	defer app.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const delay = 300 * time.Millisecond
	p := newDelayProxy(ln, delay, func() (net.Conn, error) { return net.Dial("tcp", app.Listener.Addr().String()) })
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + ln.Addr().String() + "/"
	for range 3 {
		start := time.Now()
		resp, err := client.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if took := time.Since(start); took < delay || string(body) != "ok" {
			t.Errorf("answer %q after %s, want ok after at least %s", body, took, delay)
		}
	}

	// Close cuts a connection waiting for its delayed answer and stops listening.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("timed out after 5s waiting for the proxy to close")
	}
	conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if got, _ := io.ReadAll(conn); len(got) > 0 {
		t.Errorf("a connection cut by Close still got %q", got)
	}
	if c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the proxy still accepts after Close")
	}
}
