package awslab

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/deploydrill/deploydrill/infra/runtag"
)

// Leftovers lists what the runs left: instances not terminated, volumes, security groups (but
// the default VPC's own), key pairs, ephemeral repositories (persistent ones hold the inventory
// of verified images and stay), the tool's load balancers, listeners and target groups, and lab
// instances or load balancer data planes still running or whose namespace remains.
// It first waits (up to a minute) for instances terminated just now to finish shutting down.
func (l *Lab) Leftovers() []string {
	var left []string
	deadline := time.After(time.Minute)
	for _, in := range l.Instances() {
		if !in.isTerminating() {
			continue
		}
		select {
		case <-in.down:
		case <-deadline:
			return []string{"lab " + in.Name + " of instance " + in.ID + " still shutting down after a minute"}
		}
	}
	for _, x := range l.Double.Instances() {
		if x.State != "terminated" {
			left = append(left, "instance "+x.ID+" ("+x.State+")")
		}
	}
	for _, g := range l.Double.SecurityGroups() {
		if g.Name != "default" {
			left = append(left, "security group "+g.ID+" ("+g.Name+")")
		}
	}
	for _, k := range l.Double.KeyPairs() {
		left = append(left, "key pair "+k.Name)
	}
	for _, item := range l.Double.Leftovers(runtag.KeyCreatedBy, runtag.CreatedBy) {
		switch {
		case strings.HasPrefix(item, "volume "):
			left = append(left, item)
		case strings.HasPrefix(item, "repository "):
			repo, _ := l.Double.Repository(strings.TrimPrefix(item, "repository "))
			if repo.Tags[runtag.KeyEphemeral] == "true" {
				left = append(left, "ephemeral "+item)
			}
		}
	}
	left = append(left, l.Double.ELBv2Leftovers(runtag.KeyCreatedBy, runtag.CreatedBy)...)
	// A closed one's namespace path is checked only while no newer lab holds its name (see
	// leftNamespace): its index went back to the process's pool, which every Lab shares.
	for _, b := range l.Balancers() {
		path := b.Lab.NetnsPath()
		if !b.Closed() {
			left = append(left, "load balancer data plane "+b.Lab.Name()+" of "+b.Name+" still running")
			if _, err := os.Stat(path); err == nil {
				left = append(left, "network namespace "+path)
			}
		} else if leftNamespace(&balancerIndexes.Mutex, balancerIndexes.used, b.index, b.Lab.Name(), path) {
			left = append(left, "network namespace "+path+" (its data plane "+b.Lab.Name()+" was closed)")
		}
	}
	for _, in := range l.Instances() {
		if !in.Closed() {
			left = append(left, "lab "+in.Name+" of instance "+in.ID+" still running")
			if _, err := os.Stat(in.netns); err == nil {
				left = append(left, "network namespace "+in.netns)
			}
		} else if leftNamespace(&indexes.Mutex, indexes.used, in.index, in.Name, in.netns) {
			left = append(left, "network namespace "+in.netns+" (its lab "+in.Name+" was closed)")
		}
	}
	return left
}

// AssertNothingLeft fails the test for every leftover (see Leftovers).
func (l *Lab) AssertNothingLeft(t testing.TB) {
	t.Helper()
	for _, item := range l.Leftovers() {
		t.Errorf("left behind: %s", item)
	}
}
