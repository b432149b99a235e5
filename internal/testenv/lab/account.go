package lab

import (
	"cmp"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// account is the SSH user inside the lab.
type account struct {
	name     string
	uid, gid int // gid of the user's own group
	dockerID int // gid of the group that owns the lab's docker socket (-1 for root)
}

// writeAccountFiles writes copies of the host's /etc/passwd, /etc/group and /etc/shadow with the
// user added (if the host lacks it) and made a member of "docker", into dir. The lab's mount
// namespace bind-mounts them over /etc, so the host's files never change.
func writeAccountFiles(dir, user, home string) (account, error) {
	passwd, err := readLines("/etc/passwd")
	if err != nil {
		return account{}, err
	}
	group, err := readLines("/etc/group")
	if err != nil {
		return account{}, err
	}
	shadow, err := readLines("/etc/shadow")
	if err != nil {
		return account{}, err
	}
	acct := account{name: user, dockerID: -1}
	if user == "root" {
		return acct, writeFiles(dir, passwd, group, shadow)
	}

	uids, gids := usedIDs(passwd, 2), usedIDs(group, 2)
	if fields := findEntry(passwd, user); fields != nil {
		acct.uid, _ = strconv.Atoi(fields[2])
		acct.gid, _ = strconv.Atoi(fields[3])
		passwd = replaceEntry(passwd, user, func(f []string) []string { f[5] = home; return f })
	} else {
		acct.uid = freeID(uids, 1000)
		acct.gid = freeID(gids, acct.uid)
		gids = append(gids, acct.gid)
		shell := "/bin/bash"
		if _, err := os.Stat(shell); err != nil {
			shell = "/bin/sh"
		}
		passwd = append(passwd, fmt.Sprintf("%s:x:%d:%d:lab user:%s:%s", user, acct.uid, acct.gid, home, shell))
		group = append(group, fmt.Sprintf("%s:x:%d:", user, acct.gid))
		// "*": no password, but not locked ("!"), which sshd without PAM would refuse.
		shadow = append(shadow, user+":*:19000:0:99999:7:::")
	}
	if fields := findEntry(group, "docker"); fields != nil {
		acct.dockerID, _ = strconv.Atoi(fields[2])
		group = replaceEntry(group, "docker", func(f []string) []string {
			members := strings.Split(f[3], ",")
			if !slices.Contains(members, user) {
				f[3] = strings.TrimPrefix(f[3]+","+user, ",")
			}
			return f
		})
	} else {
		acct.dockerID = freeID(gids, 900)
		group = append(group, fmt.Sprintf("docker:x:%d:%s", acct.dockerID, user))
	}
	return acct, writeFiles(dir, passwd, group, shadow)
}

func writeFiles(dir string, passwd, group, shadow []string) error {
	for name, lines := range map[string][]string{"passwd": passwd, "group": group, "shadow": shadow} {
		mode := os.FileMode(0o644)
		if name == "shadow" {
			mode = 0o640
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(strings.Join(lines, "\n")+"\n"), mode); err != nil {
			return err
		}
	}
	return nil
}

func readLines(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(strings.Split(string(data), "\n"), func(l string) bool { return strings.TrimSpace(l) == "" }), nil
}

func findEntry(lines []string, name string) []string {
	for _, l := range lines {
		if f := strings.Split(l, ":"); f[0] == name {
			return f
		}
	}
	return nil
}

func replaceEntry(lines []string, name string, edit func([]string) []string) []string {
	for i, l := range lines {
		if f := strings.Split(l, ":"); f[0] == name {
			lines[i] = strings.Join(edit(f), ":")
		}
	}
	return lines
}

func usedIDs(lines []string, field int) []int {
	var ids []int
	for _, l := range lines {
		if f := strings.Split(l, ":"); len(f) > field {
			if id, err := strconv.Atoi(f[field]); err == nil {
				ids = append(ids, id)
			}
		}
	}
	return ids
}

func freeID(used []int, from int) int {
	for id := from; ; id++ {
		if !slices.Contains(used, id) {
			return id
		}
	}
}

// writeSudoers writes the lab's /etc/sudoers into dir: root's rule and, with grant, cloud-init's
// rule for the AMI's default user. There is none when the host has no sudo (nothing to bind it
// over, and no sudo to run); a grant then fails, saying what to install.
func writeSudoers(dir, user string, grant bool) error {
	_, errBin := exec.LookPath("sudo")
	_, errConf := os.Stat("/etc/sudoers")
	if err := cmp.Or(errBin, errConf); err != nil {
		if grant {
			return fmt.Errorf("the lab user's sudo needs sudo on the host (apt-get install -y sudo): %w", err)
		}
		return nil
	}
	rules := "Defaults env_reset\n" +
		"Defaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n" +
		"root ALL=(ALL:ALL) ALL\n"
	if grant && user != "root" {
		rules += user + " ALL=(ALL) NOPASSWD:ALL\n"
	}
	// sudo refuses a sudoers file that is not root's or that others may write.
	return os.WriteFile(filepath.Join(dir, "sudoers"), []byte(rules), 0o440)
}
