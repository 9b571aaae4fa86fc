package sbom

import (
	"bytes"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"io"
	"path"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"

	"github.com/cortexfn/cortex"
	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/dpkg"
	"github.com/cortexfn/cortex/packager/onnxruntime"
)

// MediaType is the media type of a CycloneDX JSON document, and the
// artifactType of the image's SBOM referrer.
const MediaType = "application/vnd.cyclonedx+json"

// SpecVersion is the CycloneDX version written.
const SpecVersion = cdx.SpecVersion1_6

// cortexModule is the SDK's module: a function binary built from the
// embedded SDK records it as "(devel)", which is cortex.Version.
const cortexModule = "github.com/cortexfn/cortex"

// Kind says what an Output is.
type Kind string

// The outputs that ship a function.
const (
	Image Kind = "image"
	Zip   Kind = "zip"
)

// Output is one output that ships the function, and what it holds besides
// the artifact's files.
type Output struct {
	Kind Kind
	// Name is the image's repository ("ghcr.io/acme/iris") or the zip's
	// file name ("lambda.zip").
	Name string
	// Digest is the image manifest's or the zip's "sha256:HEX".
	Digest string
	// Root is the directory the function's files are under ("/app" in
	// the image, "" at the zip's root). Binary is the executable's name
	// there ("bootstrap" in the zip); empty means the artifact's.
	Root, Binary string
	// Base is the reference of the base image an image is built on, when
	// it is not the built-in base (whose files are in Packages and Files).
	Base string
	// Packages are the Debian packages whose files were copied in from
	// the build machine.
	Packages []dpkg.Package
	// Files are the copied files no package accounts for, as
	// "PATH@sha256:HEX" (packager/oci's BaseInfo.Files).
	Files []string
	// Copied are files copied from the build machine that nobody has
	// looked up yet (the zip's C++ runtime): BOM asks dpkg for their
	// packages, and lists the files no package owns by their Path and
	// SHA-256.
	Copied []artifact.File
}

// Function is what every output of one function ships, read once by Read.
type Function struct {
	name    string
	arch    string
	created time.Time
	binary  file
	build   *debug.BuildInfo
	runtime []file
	models  []file
	stages  []file
	// hashed are the paths of the files Read read to hash them.
	hashed []string
}

// file is a shipped file: its path under the function's root, and its
// SHA-256 in hex.
type file struct{ path, sha256 string }

// Read reads the artifact's binary's Go build info and the SHA-256 of
// every file it ships. Each file is streamed once (a model costs about a
// second a GB); every SBOM of the artifact is then made from what was
// read.
func Read(a *artifact.Artifact) (*Function, error) { return ReadKnown(a, nil) }

// Known returns the SHA-256 (hex) of f when it is known without reading
// f, and false otherwise: packager/oci's FileDigest, which a model layer
// recorded as it read the model, keyed by what the file system says of
// the file.
type Known func(f artifact.File) (sha256 string, ok bool)

// ReadKnown is Read taking the SHA-256 of the runtime, model and stage
// files from known where it has them: an unchanged multi-GB model is not
// read again for the SBOM. The binary is always read (its build info is
// in it, and it changes with every code change).
func ReadKnown(a *artifact.Artifact, known Known) (*Function, error) {
	f := &Function{name: a.Spec.Name, arch: a.Arch, created: a.Created}
	var err error
	if f.build, err = readBuildInfo(a.Binary); err != nil {
		return nil, fmt.Errorf("reading the Go build info of %s: %w", a.Binary.Name(), err)
	}
	if f.binary, err = digest(a.Binary); err != nil {
		return nil, err
	}
	f.hashed = append(f.hashed, a.Binary.Path)
	for _, g := range []struct {
		from []artifact.File
		to   *[]file
	}{{a.Runtime, &f.runtime}, {a.Models, &f.models}, {a.Stages, &f.stages}} {
		for _, af := range g.from {
			if known != nil {
				if sum, ok := known(af); ok {
					*g.to = append(*g.to, file{path: af.Path, sha256: sum})
					continue
				}
			}
			d, err := digest(af)
			if err != nil {
				return nil, err
			}
			f.hashed = append(f.hashed, af.Path)
			*g.to = append(*g.to, d)
		}
	}
	return f, nil
}

// Hashed lists the files (their paths in the artifact) Read read to hash
// them: every file but those Known knew.
func (f *Function) Hashed() []string { return slices.Clone(f.hashed) }

func readBuildInfo(f artifact.File) (*debug.BuildInfo, error) {
	if f.Opened != nil {
		return buildinfo.Read(f.Opened)
	}
	return buildinfo.ReadFile(f.Src)
}

func digest(f artifact.File) (file, error) {
	r, err := f.Open()
	if err != nil {
		return file{}, err
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return file{}, fmt.Errorf("reading %s: %w", f.Name(), err)
	}
	return file{path: f.Path, sha256: hex.EncodeToString(h.Sum(nil))}, nil
}

// JSON returns the SBOM of the output o as CycloneDX JSON.
func (f *Function) JSON(o Output) ([]byte, error) {
	bom, err := f.BOM(o)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := cdx.NewBOMEncoder(&b, cdx.BOMFileFormatJSON).SetPretty(true).SetEscapeHTML(false).EncodeVersion(bom, SpecVersion); err != nil {
		return nil, fmt.Errorf("encoding the SBOM: %w", err)
	}
	return b.Bytes(), nil
}

// BOM returns the SBOM of the output o.
func (f *Function) BOM(o Output) (*cdx.BOM, error) {
	if o.Binary == "" {
		o.Binary = f.name
	}
	subject, err := f.subject(o)
	if err != nil {
		return nil, err
	}
	var comps []cdx.Component
	var top []string // what the output holds directly
	add := func(c cdx.Component) {
		comps = append(comps, c)
		top = append(top, c.BOMRef)
	}

	bin := f.binaryComponent(o)
	add(bin)
	modules := f.moduleComponents()
	comps = append(comps, modules...)
	for _, rt := range f.runtime {
		add(onnxRuntimeComponent(o, rt))
	}
	for _, m := range f.models {
		add(fileComponent(cdx.ComponentTypeMachineLearningModel, "model:"+m.path, inRoot(o, m.path), m.sha256))
	}
	for _, s := range f.stages {
		c := fileComponent(cdx.ComponentTypeFile, "stage:"+s.path, inRoot(o, s.path), s.sha256)
		c.Description = "WebAssembly stage"
		add(c)
	}
	if len(o.Copied) > 0 {
		pkgs, files, err := lookup(o.Copied)
		if err != nil {
			return nil, err
		}
		o.Packages = append(slices.Clone(o.Packages), pkgs...)
		o.Files = append(slices.Clone(o.Files), files...)
	}
	debs, err := debComponents(o.Packages)
	if err != nil {
		return nil, err
	}
	for _, c := range debs {
		add(c)
	}
	for _, entry := range o.Files {
		p, sum, ok := strings.Cut(entry, "@sha256:")
		if !ok {
			return nil, fmt.Errorf("file %q is not PATH@sha256:HEX", entry)
		}
		add(fileComponent(cdx.ComponentTypeFile, "file:"+p, p, sum))
	}
	if o.Base != "" {
		add(cdx.Component{
			BOMRef: "base:" + o.Base, Type: cdx.ComponentTypeContainer, Name: o.Base,
			Description: "the base image: its own contents are not listed here; scan it for those",
		})
	}

	deps := []cdx.Dependency{{Ref: subject.BOMRef, Dependencies: &top}}
	var linked []string
	for _, m := range modules {
		linked = append(linked, m.BOMRef)
	}
	deps = append(deps, cdx.Dependency{Ref: bin.BOMRef, Dependencies: &linked})

	bom := cdx.NewBOM()
	bom.SerialNumber = uuid.NewSHA1(uuid.NameSpaceURL, []byte(subject.BOMRef)).URN()
	bom.Metadata = &cdx.Metadata{
		Timestamp: f.created.UTC().Format(time.RFC3339),
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "cortex", Version: cortex.Version,
		}}},
		Component: &subject,
	}
	bom.Components = &comps
	bom.Dependencies = &deps
	return bom, nil
}

// subject is the component the SBOM describes: the output itself.
func (f *Function) subject(o Output) (cdx.Component, error) {
	alg, hexSum, ok := strings.Cut(o.Digest, ":")
	if !ok || alg != "sha256" || len(hexSum) != 64 {
		return cdx.Component{}, fmt.Errorf("digest %q of %s is not sha256:HEX", o.Digest, o.Name)
	}
	switch o.Kind {
	case Image:
		repo, name := "", o.Name
		if i := strings.LastIndex(o.Name, "/"); i >= 0 {
			repo, name = o.Name, o.Name[i+1:]
		}
		var q packageurl.Qualifiers
		if repo != "" {
			q = packageurl.QualifiersFromMap(map[string]string{"repository_url": repo, "arch": f.arch})
		}
		purl := packageurl.NewPackageURL(packageurl.TypeOCI, "", name, o.Digest, q, "").ToString()
		return cdx.Component{
			BOMRef: purl, Type: cdx.ComponentTypeContainer, Name: o.Name, Version: o.Digest, PackageURL: purl,
			Description: "OCI image of the Cortex function " + f.name,
		}, nil
	case Zip:
		return cdx.Component{
			BOMRef: o.Name + "@" + o.Digest, Type: cdx.ComponentTypeFile, Name: o.Name,
			Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hexSum}},
			Description: "AWS Lambda deployment package of the Cortex function " + f.name,
		}, nil
	}
	return cdx.Component{}, fmt.Errorf("output kind %q: use %q or %q", o.Kind, Image, Zip)
}

// inRoot is where the file at p (relative to the function's root) is in
// the output.
func inRoot(o Output, p string) string {
	if o.Root == "" {
		return p
	}
	return path.Join(o.Root, p)
}

func property(name, value string) cdx.Property { return cdx.Property{Name: name, Value: value} }

// pathProperty says where a component's file is in the output.
const pathProperty = "cortex:path"

func fileComponent(typ cdx.ComponentType, ref, p, sum string) cdx.Component {
	return cdx.Component{
		BOMRef: ref, Type: typ, Name: path.Base(p),
		Hashes:     &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: sum}},
		Properties: &[]cdx.Property{property(pathProperty, p)},
	}
}

// buildEnv are the build settings recorded on the binary, under the
// cdx:gomod:build:env taxonomy names.
var buildEnv = map[string]string{
	"GOOS": "GOOS", "GOARCH": "GOARCH", "CGO_ENABLED": "CGO_ENABLED", "-tags": "GOFLAGS",
}

func (f *Function) binaryComponent(o Output) cdx.Component {
	props := []cdx.Property{property(pathProperty, inRoot(o, o.Binary))}
	for _, s := range f.build.Settings {
		if env, ok := buildEnv[s.Key]; ok {
			v := s.Value
			if s.Key == "-tags" {
				v = "-tags=" + v
			}
			props = append(props, property("cdx:gomod:build:env:"+env, v))
		}
	}
	slices.SortFunc(props, func(a, b cdx.Property) int { return strings.Compare(a.Name, b.Name) })
	return cdx.Component{
		BOMRef: "binary:" + o.Binary, Type: cdx.ComponentTypeApplication, Name: o.Binary,
		Description: "the function executable (Go, " + f.build.Path + ")",
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.binary.sha256}},
		Properties:  &props,
	}
}

// moduleComponents lists the Go standard library, the main module and
// every module the binary was linked from.
func (f *Function) moduleComponents() []cdx.Component {
	bi := f.build
	goVersion := strings.TrimPrefix(bi.GoVersion, "go")
	std := packageurl.NewPackageURL(packageurl.TypeGolang, "", "stdlib", goVersion, nil, "").ToString()
	comps := []cdx.Component{{
		BOMRef: std, Type: cdx.ComponentTypeLibrary, Name: "stdlib", Version: bi.GoVersion, PackageURL: std,
		Description: "the Go standard library and runtime",
	}}
	comps = append(comps, moduleComponent(&bi.Main))
	for _, d := range bi.Deps {
		comps = append(comps, moduleComponent(d))
	}
	return comps
}

func moduleComponent(m *debug.Module) cdx.Component {
	p, version := m.Path, m.Version
	var props []cdx.Property
	if r := m.Replace; r != nil {
		if r.Version != "" {
			p, version = r.Path, r.Version
			props = append(props, property("cortex:go:replaces", m.Path+"@"+m.Version))
		} else {
			// A directory: its path is the build machine's, and says
			// nothing about the code; the required version stays.
			props = append(props, property("cortex:go:replaced-by", "a local directory"))
		}
	}
	if p == cortexModule && (version == "" || version == "(devel)") {
		version = cortex.Version // the SDK embedded in this CLI
	}
	if version == "(devel)" {
		version = ""
	}
	ns, name := "", p
	if i := strings.LastIndex(p, "/"); i >= 0 {
		ns, name = p[:i], p[i+1:]
	}
	purl := packageurl.NewPackageURL(packageurl.TypeGolang, ns, name, version, nil, "").ToString()
	c := cdx.Component{BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p, Version: version, PackageURL: purl}
	if len(props) > 0 {
		c.Properties = &props
	}
	return c
}

func onnxRuntimeComponent(o Output, f file) cdx.Component {
	purl := packageurl.NewPackageURL(packageurl.TypeNPM, "", "onnxruntime-node", onnxruntime.Version, nil, "").ToString()
	return cdx.Component{
		BOMRef: purl + "#" + f.path, Type: cdx.ComponentTypeLibrary, Name: "onnxruntime",
		Version: onnxruntime.Version, PackageURL: purl,
		Description: "ONNX Runtime, " + onnxruntime.LibraryName + " from the npm package onnxruntime-node",
		Hashes:      &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: f.sha256}},
		Properties:  &[]cdx.Property{property(pathProperty, inRoot(o, f.path))},
	}
}

// lookup names the Debian packages of files copied from this machine, and
// lists the files no package owns as PATH@sha256:HEX.
func lookup(copied []artifact.File) (pkgs []dpkg.Package, files []string, err error) {
	srcs := make([]string, len(copied))
	for i, f := range copied {
		srcs[i] = f.Src
	}
	pkgs, unowned, ok := dpkg.Lookup(srcs)
	for _, f := range copied {
		if ok && !slices.Contains(unowned, f.Src) {
			continue
		}
		d, err := digest(f)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, d.path+"@sha256:"+d.sha256)
	}
	return pkgs, files, nil
}

// debComponents lists Debian packages as pkg:deb purls of this machine's
// distribution, which dpkg named them on. (They carry no arch qualifier:
// dpkg's record has none, and some, ca-certificates, are "all".)
func debComponents(pkgs []dpkg.Package) ([]cdx.Component, error) {
	if len(pkgs) == 0 {
		return nil, nil
	}
	id, version := dpkg.Distro()
	if id == "" {
		id = "debian"
	}
	q := map[string]string{}
	if version != "" {
		q["distro"] = id + "-" + version
	}
	var comps []cdx.Component
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Name == "" || p.Version == "" {
			return nil, fmt.Errorf("debian package %q has no name or version", p)
		}
		purl := packageurl.NewPackageURL(packageurl.TypeDebian, id, p.Name, p.Version, packageurl.QualifiersFromMap(q), "").ToString()
		if seen[purl] {
			continue
		}
		seen[purl] = true
		comps = append(comps, cdx.Component{
			BOMRef: purl, Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: purl,
			Description: "Debian package of files copied from the build machine",
		})
	}
	return comps, nil
}
