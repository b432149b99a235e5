// Package teardown removes what a drill run created, as an ordered list of named, idempotent
// steps whose errors are collected so none hides another; and sweeps up after runs that were
// killed before they could tear down.
package teardown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
)

// Step is one named teardown step. Steps are idempotent: what is already gone counts as done.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
}

// Run runs every step in order, whatever the earlier ones did, writes one progress line per
// step and joins the errors, each prefixed with its step's name.
func Run(ctx context.Context, steps []Step, progress io.Writer) error {
	var errs []error
	for _, s := range steps {
		start := time.Now()
		err := s.Run(ctx)
		took := time.Since(start).Round(time.Millisecond)
		if err != nil {
			fmt.Fprintf(progress, "teardown: %s: failed after %s: %v\n", s.Name, took, err)
			errs = append(errs, fmt.Errorf("%s: %w", s.Name, err))
			continue
		}
		fmt.Fprintf(progress, "teardown: %s: done in %s\n", s.Name, took)
	}
	if len(errs) > 0 {
		return fmt.Errorf("teardown: %w", errors.Join(errs...))
	}
	return nil
}

// FreshContext is the context for a deferred teardown: it keeps the run context's values but
// not its cancellation (the run may have been interrupted), with its own deadline.
func FreshContext(run context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(run), timeout)
}

// Plan is what one run's teardown knows. Every field but Hosts and RunID may be empty: a run
// that failed early tears down what it got to.
type Plan struct {
	RunID string
	Hosts *ec2.Hosts
	Host  *ec2.Host // as LaunchHost returned it, possibly partial
	// Repository is the drill's repository. Teardown deletes it when its tags say this run
	// created it as ephemeral (whatever EnsureRepository got to report); otherwise it applies
	// Retention, unless that is nil (say, nothing was pushed).
	Repository *ecr.Repository
	Retention  *ecr.Retention
	// Logf reports details (retention results, recovered instances); nil discards them.
	Logf func(format string, args ...any)
}

// Steps lists the run's teardown: terminate → wait terminated → delete the security group →
// delete the key pair → delete detached volumes → ECR retention (or the ephemeral repository).
// Resources are found both from what the run recorded and by the run's tag, so a resource
// whose creation answer was lost is removed as well.
func (p Plan) Steps() []Step {
	logf := p.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	host := p.Host
	if host == nil {
		host = &ec2.Host{RunID: p.RunID}
	}
	var found ec2.Found
	var terminated []string
	steps := []Step{
		{"terminate instance", func(ctx context.Context) error {
			var errs []error
			if err := p.Hosts.RecoverInstance(ctx, host); err != nil {
				errs = append(errs, err)
			}
			var err error
			if found, err = p.Hosts.Find(ctx, runtag.Selector{RunID: p.RunID}); err != nil {
				errs = append(errs, err)
			}
			for _, id := range union(host.InstanceID, found.Instances) {
				if err := p.Hosts.Terminate(ctx, id); err != nil {
					errs = append(errs, err)
					continue
				}
				terminated = append(terminated, id)
			}
			return errors.Join(errs...)
		}},
		{"wait until terminated", func(ctx context.Context) error {
			return p.Hosts.WaitTerminated(ctx, terminated)
		}},
		{"delete security group", func(ctx context.Context) error {
			var errs []error
			for _, id := range union(host.SecurityGroupID, found.SecurityGroups) {
				errs = append(errs, p.Hosts.DeleteSecurityGroup(ctx, id))
			}
			return errors.Join(errs...)
		}},
		{"delete key pair", func(ctx context.Context) error {
			// The name is the run's, so even a key pair whose import answer was lost goes.
			name := runtag.Run{ID: p.RunID}.ResourceName()
			var errs []error
			for _, n := range union(name, found.KeyPairs) {
				errs = append(errs, p.Hosts.DeleteKeyPair(ctx, n))
			}
			return errors.Join(errs...)
		}},
		{"delete detached volumes", func(ctx context.Context) error {
			var errs []error
			for _, v := range found.Volumes {
				if v.State == "available" {
					errs = append(errs, p.Hosts.DeleteVolume(ctx, v.ID))
				}
			}
			return errors.Join(errs...)
		}},
	}
	if p.Repository != nil {
		steps = append(steps, Step{"ecr retention or ephemeral repository", func(ctx context.Context) error {
			tags, _, exists, err := p.Repository.Tags(ctx)
			switch {
			case err != nil:
				return err
			case !exists:
				return nil
			case tags[runtag.KeyRunID] == p.RunID && tags[runtag.KeyEphemeral] == "true":
				logf("teardown: deleting ephemeral repository %s", p.Repository.Name())
				return p.Repository.DeleteRepository(ctx)
			case p.Retention == nil:
				return nil
			}
			res, err := p.Repository.Retain(ctx, *p.Retention)
			logf("teardown: retention in %s: %s", p.Repository.Name(), res)
			return err
		}})
	}
	return steps
}

// union is known (when set) plus the ids of found, without repeats.
func union(known string, found []ec2.Resource) []string {
	var ids []string
	if known != "" {
		ids = append(ids, known)
	}
	for _, r := range found {
		if !slices.Contains(ids, r.ID) {
			ids = append(ids, r.ID)
		}
	}
	return ids
}
