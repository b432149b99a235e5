package aws_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/ci/environment"
	"github.com/deploydrill/deploydrill/ci/targets/aws"
	"github.com/deploydrill/deploydrill/infra/runtag"
	"github.com/deploydrill/deploydrill/internal/awsdouble"
	"github.com/deploydrill/deploydrill/internal/retention"
)

const sweepR1 = "go run ./ci sweep --run-id r1 --region eu-west-1 --repository drill"

func stepNames(td environment.Teardown) []string {
	var out []string
	for _, s := range td.Steps {
		out = append(out, s.Name)
	}
	return out
}

func TestTeardownLeavesNothingAndIsIdempotent(t *testing.T) {
	e := newEnv(t)
	tg := e.target(t)
	e.up(t, tg)
	td, err := tg.Teardown(t.Context(), retention.Policy{Keep: []string{"v"}, KeepVerified: 5})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"find", "terminate instances", "wait until terminated", "delete security groups", "delete key pairs",
		"delete detached volumes", "delete ephemeral repositories", "ecr retention"}
	if got := stepNames(td); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
	for _, s := range td.Steps {
		if s.Error != "" {
			t.Errorf("step %s: %s", s.Name, s.Error)
		}
	}
	if len(td.Left) != 0 || td.Sweep != "" || td.Retention != "" {
		t.Errorf("a clean teardown of an ephemeral repository: left %v, sweep %q, retention %q", td.Left, td.Sweep, td.Retention)
	}
	if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	n := len(e.d.Operations())
	again, err := tg.Teardown(t.Context(), retention.Policy{})
	if err != nil || len(again.Steps) != 0 || len(e.d.Operations()) != n {
		t.Errorf("a second teardown: %+v, %v, %d calls; want nothing done", again, err, len(e.d.Operations())-n)
	}
}

func TestTeardownBeforeAnythingWasCreated(t *testing.T) {
	e := newEnv(t)
	td, err := e.target(t).Teardown(t.Context(), retention.Policy{})
	if err != nil || len(td.Left) != 0 {
		t.Fatalf("teardown of a run that created nothing: %v, left %v", err, td.Left)
	}
}

// TestTeardownAppliesRetention covers a persistent repository (it existed before the run, so
// the run uses it as it is): teardown keeps V, K and the newest verified images, deletes the
// rest, after the host is gone.
func TestTeardownAppliesRetention(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(d *awsdouble.Double, digests []string)
		wantErr  string
		wantTags []string
	}{
		{"everything but V, K and the newest verified goes", func(*awsdouble.Double, []string) {}, "",
			[]string{"t1", "t3", "t4", "verified-t1"}},
		{"a per-image failure is reported and the rest still goes", func(d *awsdouble.Double, digests []string) {
			_ = d.FailImageDelete("drill", digests[0], "ImageReferencedByManifestList")
		}, "ImageReferencedByManifestList", []string{"t0", "t1", "t3", "t4", "verified-t1"}},
		{"listing refused leaves the images alone", func(d *awsdouble.Double, _ []string) {
			d.Inject(awsdouble.Fault{Op: "ecr:DescribeImages", Code: "AccessDeniedException"})
		}, "access denied", []string{"t0", "t1", "t2", "t3", "t4", "verified-t1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.d.CreateRepository("drill", true, nil); err != nil {
				t.Fatal(err)
			}
			var digests []string
			for i := range 5 {
				m := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","n":%d}`, i)
				dg, err := e.d.PushImage("drill", fmt.Sprint("t", i), m, created.Add(time.Duration(i)*time.Hour))
				if err != nil {
					t.Fatal(err)
				}
				digests = append(digests, dg)
			}
			tg := e.target(t)
			e.up(t, tg)
			if err := tg.Inventory().MarkVerified(t.Context(), "t1"); err != nil {
				t.Fatal(err)
			}
			tt.damage(e.d, digests)
			td, err := tg.Teardown(t.Context(), retention.Policy{Keep: []string{"t4", "t3"}, KeepVerified: 1})
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("teardown: %v, want error %q", err, tt.wantErr)
			}
			repo, _ := e.d.Repository("drill")
			var tags []string
			for _, img := range repo.Images {
				tags = append(tags, img.Tags...)
			}
			slices.Sort(tags)
			if !slices.Equal(tags, tt.wantTags) {
				t.Errorf("left %v, want %v", tags, tt.wantTags)
			}
			if tt.wantErr == "" && !strings.HasPrefix(td.Retention, "kept 3, removed 2") {
				t.Errorf("retention %q, want kept 3, removed 2", td.Retention)
			}
			if len(td.Left) != 0 || td.Sweep != "" {
				t.Errorf("left %v, sweep %q: retention failing leaves no AWS resource", td.Left, td.Sweep)
			}
			if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// TestTeardownWithTheAPIStalledSaysWhatMayRemain is the regression test for a teardown cut
// short: the AWS API stops answering, and the teardown's context ends part way (a second
// Ctrl-C, or its deadline). Teardown must return an error and a report that names every
// resource that may remain, from its ledger and what it found, and the exact sweep command.
func TestTeardownWithTheAPIStalledSaysWhatMayRemain(t *testing.T) {
	tests := []struct {
		stall string
		left  func(ledger) []string
	}{
		{"*", func(l ledger) []string { // nothing answers: only the ledger is known
			return []string{l.instance, l.group, l.key, l.volume, "anything else tagged", "repository drill of run r1"}
		}},
		{"ec2:TerminateInstances", func(l ledger) []string {
			return []string{l.instance + " (running)", l.group, l.key, l.volume + " (in-use)", "repository drill of run r1"}
		}},
		{"ec2:DeleteKeyPair", func(l ledger) []string { return []string{l.key, "repository drill of run r1"} }},
		{"ecr:DeleteRepository", func(l ledger) []string { return []string{"repository drill of run r1"} }},
	}
	for _, tt := range tests {
		t.Run("stalled at "+tt.stall, func(t *testing.T) {
			e := newEnv(t)
			tg := e.target(t)
			e.up(t, tg)
			l := ledgerOf(t, e)

			stalled, release := e.d.Stall(tt.stall)
			defer release()
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			go func() {
				select {
				case <-stalled:
					cancel() // the second Ctrl-C
				case <-ctx.Done():
				}
			}()
			td, err := tg.Teardown(ctx, retention.Policy{})
			if err == nil {
				t.Fatal("an aborted teardown returned no error")
			}
			if td.Sweep != sweepR1 {
				t.Errorf("sweep %q, want %q", td.Sweep, sweepR1)
			}
			want := tt.left(l)
			if len(td.Left) != len(want) {
				t.Errorf("left %q, want %d entries like %q", td.Left, len(want), want)
			}
			for i := range min(len(want), len(td.Left)) {
				if !strings.HasPrefix(td.Left[i], want[i]) {
					t.Errorf("left[%d] = %q, want it to start %q", i, td.Left[i], want[i])
				}
			}
			if last := td.Steps[len(td.Steps)-1]; !strings.Contains(last.Error, "not run") {
				t.Errorf("the last step after the abort: %+v, want not run", last)
			}

			// Once AWS answers again, the same target finishes the job.
			release()
			if td, err := tg.Teardown(t.Context(), retention.Policy{}); err != nil || len(td.Left) != 0 {
				t.Fatalf("second teardown: %v, left %v", err, td.Left)
			}
			if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
		})
	}
}

// ledger is the run's resources as teardown names them.
type ledger struct{ instance, group, key, volume string }

func ledgerOf(t *testing.T, e *env) ledger {
	t.Helper()
	in := e.d.Instances()
	if len(in) != 1 || len(in[0].Volumes) != 1 {
		t.Fatalf("instances %+v, want one with its root volume", in)
	}
	return ledger{
		instance: "instance " + in[0].ID,
		group:    "security group " + in[0].SecurityGroups[0],
		key:      "key pair deploydrill-r1",
		volume:   "volume " + in[0].Volumes[0].ID,
	}
}

func TestTeardownDeletesOnlyWhatTheRunCreated(t *testing.T) {
	// A reused --run-id: a key pair named like the run's exists, not made by this tool.
	e := newEnv(t)
	if err := e.d.ImportKeyPair("deploydrill-r1", nil); err != nil {
		t.Fatal(err)
	}
	tg := e.target(t)
	if _, err := tg.Registry(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := tg.Provision(t.Context()); err == nil || !strings.Contains(err.Error(), "InvalidKeyPair.Duplicate") {
		t.Fatalf("provision: %v, want the duplicate key pair", err)
	}
	td, err := tg.Teardown(t.Context(), retention.Policy{})
	if err != nil || len(td.Left) != 0 {
		t.Fatalf("teardown: %v, left %v", err, td.Left)
	}
	if keys := e.d.KeyPairs(); len(keys) != 1 || keys[0].Name != "deploydrill-r1" {
		t.Errorf("key pairs %+v: the unrelated deploydrill-r1 must survive", keys)
	}
	if left := e.d.Leftovers(runtag.KeyRunID, "r1"); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func TestNewInventoryListsWithoutARun(t *testing.T) {
	d := awsdouble.New(awsdouble.Options{})
	t.Cleanup(d.Close)
	inv := aws.NewInventory(d.Config(), "nosuch")
	recs, err := inv.List(t.Context())
	if err != nil || len(recs) != 0 {
		t.Errorf("List of a repository that does not exist = %v, %v; want empty", recs, err)
	}
	if _, err := inv.Resolve(t.Context(), "v1"); err == nil || !strings.Contains(err.Error(), "repository does not exist") {
		t.Errorf("Resolve = %v, want it to say the repository does not exist", err)
	}
	if err := d.CreateRepository("drill", true, nil); err != nil {
		t.Fatal(err)
	}
	d.Inject(awsdouble.Fault{Op: "ecr:DescribeImages", Code: "AccessDeniedException", Message: "not authorized"})
	_, err = aws.NewInventory(d.Config(), "drill").List(t.Context())
	if want := "list images in repository drill (region eu-west-1): access denied (AccessDeniedException): not authorized"; err == nil || err.Error() != want {
		t.Errorf("err = %v\nwant  %s", err, want)
	}
}
