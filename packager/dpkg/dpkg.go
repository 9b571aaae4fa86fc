// Package dpkg names the Debian packages, with their versions, that own
// files on the build machine, by asking its package manager
// (dpkg-query). The outputs copy some files from the build machine (the
// built-in base's C libraries, the Lambda zip's C++ runtime); what they
// record about those files, in the image history and in the SBOM, comes
// from here.
//
// It owns those queries and the reading of /etc/os-release; it runs
// dpkg-query and must not import the rest of the packager, so that both
// packager/oci and packager/sbom may use it.
package dpkg

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
)

// Package is a Debian binary package at a version.
type Package struct {
	Name    string
	Version string
}

// String is how packager/oci records a package: "libc6=2.36-9+deb12u14".
func (p Package) String() string { return p.Name + "=" + p.Version }

// Parse reads what String writes.
func Parse(s string) (Package, error) {
	name, version, ok := strings.Cut(s, "=")
	if !ok || name == "" || version == "" {
		return Package{}, fmt.Errorf("dpkg: %q is not NAME=VERSION", s)
	}
	return Package{Name: name, Version: version}, nil
}

// Owners asks dpkg which packages own files (absolute paths on this
// machine), in one dpkg-query call (about 100 ms). It returns the owners'
// names as dpkg gives them ("libc6:amd64"), sorted, and the files no
// package owns; ok is false when there is no dpkg-query to ask.
func Owners(files []string) (names, unowned []string, ok bool) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, nil, false
	}
	// usrmerge: dpkg may know /lib/x where the file is /usr/lib/x.
	var args []string
	for _, f := range files {
		args = append(args, f)
		if rest, ok := strings.CutPrefix(f, "/usr"); ok {
			args = append(args, rest)
		}
	}
	// dpkg-query -S exits 1 when some path is unknown; its output for the
	// others still counts.
	out, _ := exec.Command("dpkg-query", append([]string{"-S"}, args...)...).Output()
	set := map[string]bool{}
	owned := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		pkgs, path, ok := strings.Cut(line, ": ")
		if !ok || strings.HasPrefix(line, "diversion ") {
			continue
		}
		owned[path] = true
		for _, p := range strings.Split(pkgs, ", ") {
			set[p] = true
		}
	}
	for _, f := range files {
		rest, _ := strings.CutPrefix(f, "/usr")
		if !owned[f] && !owned[rest] {
			unowned = append(unowned, f)
		}
	}
	return slices.Sorted(maps.Keys(set)), unowned, true
}

// Versions returns the installed version of each package named, sorted by
// name, in one dpkg-query call; a package dpkg does not know is left out.
func Versions(names []string) []Package {
	if len(names) == 0 {
		return nil
	}
	out, err := exec.Command("dpkg-query", append([]string{"-W", "-f", "${binary:Package}=${Version}\n"}, names...)...).Output()
	if err != nil && len(out) == 0 {
		return nil
	}
	var pkgs []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p, err := Parse(line)
		if err != nil {
			continue
		}
		p.Name, _, _ = strings.Cut(p.Name, ":") // libc6:amd64
		if !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	slices.SortFunc(pkgs, func(a, b Package) int { return strings.Compare(a.String(), b.String()) })
	return pkgs
}

// Lookup is Owners, then Versions of the owners.
func Lookup(files []string) (pkgs []Package, unowned []string, ok bool) {
	names, unowned, ok := Owners(files)
	return Versions(names), unowned, ok
}

// Distro names this machine's distribution as /etc/os-release does: ID
// ("debian", "ubuntu") and VERSION_ID ("12"); empty when it cannot say.
func Distro() (id, version string) {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", ""
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"'`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	return id, version
}

// Files lists the paths of the files the installed package name holds,
// as dpkg recorded them (dpkg-query -L). A package that is not installed
// is an error.
func Files(name string) ([]string, error) {
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		return nil, fmt.Errorf("dpkg: no dpkg-query on this machine to list the files of %s", name)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("dpkg-query", "-L", name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg: %s is not installed (%s)", name, strings.TrimSpace(stderr.String()))
	}
	var files []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "/") {
			files = append(files, line)
		}
	}
	return files, nil
}
