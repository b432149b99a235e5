package lab

import (
	"encoding/csv"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ServerStat is one server (target) as HAProxy's stats socket reports it (`show stat`): the
// data plane's own view, which is the ground truth of who gets traffic.
type ServerStat struct {
	Backend, Server string
	Addr            string // address:port
	// Status is HAProxy's operational state: UP, DOWN, DRAIN, MAINT, NOLB or "no check";
	// Transition is set while it moves ("1/2": UP but failing, or DOWN but passing).
	Status, Transition string
	Weight             int
	// CheckStatus is the last health check's result (L7OK, L7STS, L4CON, L4TOUT, L7TOUT, INI
	// before the first); CheckCode its HTTP code, CheckDesc its words.
	CheckStatus string
	CheckCode   int
	CheckDesc   string
	// Sessions is how many connections it has now; TotalSessions how many it ever had: one
	// per request, as each server connection carries one request.
	Sessions, TotalSessions int
	// ConnectionErrors are failed connects, ResponseErrors failed or cut answers, Failed5xx
	// the 5xx answers it gave.
	ConnectionErrors, ResponseErrors, Failed5xx int
	// CheckFailures counts failed checks while it was up, Downs its UP to DOWN transitions.
	CheckFailures, Downs int
	// LastChange is how long ago its status last changed (whole seconds).
	LastChange time.Duration
}

// Up reports a server HAProxy sends new requests to.
func (s ServerStat) Up() bool { return s.Status == "UP" || s.Status == "no check" }

// parseStat reads `show stat` CSV (its header line starts with "# "), keeping the servers.
func parseStat(out string) ([]ServerStat, error) {
	out = strings.TrimPrefix(strings.TrimSpace(out), "# ")
	if out == "" {
		return nil, nil
	}
	r := csv.NewReader(strings.NewReader(out))
	r.FieldsPerRecord = -1
	rows, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("parse show stat: %w", err)
	}
	if len(rows) == 0 || len(rows[0]) < 2 || rows[0][0] != "pxname" {
		return nil, fmt.Errorf("parse show stat: no header in %q", firstLine(out))
	}
	col := map[string]int{}
	for i, name := range rows[0] {
		col[name] = i
	}
	get := func(row []string, name string) string {
		if i, ok := col[name]; ok && i < len(row) {
			return row[i]
		}
		return ""
	}
	num := func(row []string, name string) int {
		n, _ := strconv.Atoi(get(row, name))
		return n
	}
	var servers []ServerStat
	for _, row := range rows[1:] {
		if get(row, "type") != "2" { // 0 frontend, 1 backend, 2 server, 3 listener
			continue
		}
		status, transition, _ := strings.Cut(get(row, "status"), " ")
		if status == "no" {
			status, transition = "no check", ""
		}
		servers = append(servers, ServerStat{
			Backend: get(row, "pxname"), Server: get(row, "svname"), Addr: get(row, "addr"),
			Status: status, Transition: transition, Weight: num(row, "weight"),
			CheckStatus: strings.TrimPrefix(get(row, "check_status"), "* "), CheckCode: num(row, "check_code"), CheckDesc: get(row, "check_desc"),
			Sessions: num(row, "scur"), TotalSessions: num(row, "stot"),
			ConnectionErrors: num(row, "econ"), ResponseErrors: num(row, "eresp"), Failed5xx: num(row, "hrsp_5xx"),
			CheckFailures: num(row, "chkfail"), Downs: num(row, "chkdown"),
			LastChange: time.Duration(num(row, "lastchg")) * time.Second,
		})
	}
	return servers, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
