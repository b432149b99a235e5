package teardown

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/deploydrill/deploydrill/infra/ec2"
	"github.com/deploydrill/deploydrill/infra/ecr"
	"github.com/deploydrill/deploydrill/infra/runtag"
)

// Sweeper finds and removes what runs left behind.
type Sweeper struct {
	Hosts *ec2.Hosts
	// Repositories are checked for ephemeral repositories the tool created; persistent ones hold
	// the inventory of verified images and are kept.
	Repositories []*ecr.Repository
	Out          io.Writer // results: one line per resource removed (or, dry, to remove)
	Progress     io.Writer // what is happening
}

// Result of a sweep, as "kind id (state) of run r" lines.
type Result struct {
	Found, Removed, Remaining []string
}

// Sweep removes every resource this tool tagged that sel picks, in dependency order, then
// looks again: Remaining lists what is still there (with dryRun, everything found). The error
// reports failures of the listing and deletion calls.
func (s Sweeper) Sweep(ctx context.Context, sel runtag.Selector, dryRun bool) (Result, error) {
	fmt.Fprintf(s.Progress, "sweep: looking for resources of %s\n", sel)
	found, repos, err := s.find(ctx, sel)
	if err != nil {
		return Result{}, fmt.Errorf("sweep: %w", err)
	}
	before := items(found, repos)
	res := Result{Found: labels(before)}
	if dryRun {
		for _, r := range res.Found {
			fmt.Fprintf(s.Out, "would remove %s\n", r)
		}
		res.Remaining = res.Found
		return res, nil
	}
	var errs []error
	if err := s.Hosts.Remove(ctx, found); err != nil {
		errs = append(errs, err)
	}
	for _, r := range repos {
		errs = append(errs, r.DeleteRepository(ctx))
	}
	after := before // if looking again fails, assume nothing went
	if f, r, err := s.find(ctx, sel); err != nil {
		errs = append(errs, fmt.Errorf("look again: %w", err))
	} else {
		after = items(f, r)
	}
	res.Remaining = labels(after)
	for _, it := range before {
		if !slices.ContainsFunc(after, func(a item) bool { return a.key == it.key }) {
			res.Removed = append(res.Removed, it.label)
			fmt.Fprintf(s.Out, "removed %s\n", it.label)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("sweep: %w", err)
	}
	return res, nil
}

// find lists EC2 resources and the ephemeral repositories sel picks.
func (s Sweeper) find(ctx context.Context, sel runtag.Selector) (ec2.Found, []*ecr.Repository, error) {
	found, err := s.Hosts.Find(ctx, sel)
	if err != nil {
		return ec2.Found{}, nil, err
	}
	var repos []*ecr.Repository
	for _, r := range s.Repositories {
		tags, created, exists, err := r.Tags(ctx)
		if err != nil {
			return ec2.Found{}, nil, err
		}
		if !exists || !sel.Match(tags, created) {
			continue
		}
		if tags[runtag.KeyEphemeral] != "true" {
			fmt.Fprintf(s.Progress, "sweep: keeping repository %s of run %s: it holds the inventory of verified images\n", r.Name(), tags[runtag.KeyRunID])
			continue
		}
		repos = append(repos, r)
	}
	return found, repos, nil
}

// item is a resource with a key that does not change as its state does.
type item struct{ key, label string }

func items(f ec2.Found, repos []*ecr.Repository) []item {
	var out []item
	for _, r := range f.All() {
		out = append(out, item{r.Kind + " " + r.ID, r.String()})
	}
	for _, r := range repos {
		out = append(out, item{"repository " + r.Name(), "repository " + r.Name()})
	}
	return out
}

func labels(items []item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.label)
	}
	return out
}
