package modelfetch

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Ref is a parsed model reference.
type Ref struct {
	// Raw is the reference as written, for messages.
	Raw string
	// Scheme is "oci", "https" or "s3".
	Scheme string
	// Rest is what follows "scheme://".
	Rest string
	// SHA256 is the expected hex SHA-256 of the referenced file, lower
	// case; empty when none was given (oci references carry their own
	// digests; s3 ones may go unverified).
	SHA256 string
}

func (r Ref) String() string { return r.Raw }

// RefError is a reference or digest that cannot be used. Field is "ref"
// when the reference is wrong, "sha256" when the digest is.
type RefError struct {
	Field string
	Ref   string
	Msg   string
	// Err is ErrDigestRequired when that is the problem, else nil.
	Err error
}

func (e *RefError) Error() string { return fmt.Sprintf("model reference %q: %s", e.Ref, e.Msg) }

func (e *RefError) Unwrap() error { return e.Err }

// ErrDigestRequired is wrapped by the RefError of an https reference
// given without its digest.
var ErrDigestRequired = errors.New("modelfetch: digest required")

var (
	hexDigest = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
	// The OCI distribution spec's grammar for repository path components,
	// tags and digests.
	ociComponent = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$`)
	ociTag       = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	ociHost      = regexp.MustCompile(`^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]+)?$`)
	s3Bucket     = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
)

// ParseRef parses a model reference and its expected digest (hex, or "").
// An https reference needs the digest: a URL's content can change under
// it, and the digest is what makes the cache safe to share. An oci
// reference takes none (pin it with @sha256: instead).
func ParseRef(raw, sha256 string) (Ref, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return Ref{}, &RefError{Field: "ref", Ref: raw, Msg: "is not a reference: use oci://REGISTRY/REPO:TAG, https://URL or s3://BUCKET/KEY"}
	}
	r := Ref{Raw: raw, Scheme: scheme, Rest: rest, SHA256: strings.ToLower(sha256)}
	if sha256 != "" && !hexDigest.MatchString(sha256) {
		return r, &RefError{Field: "sha256", Ref: raw, Msg: fmt.Sprintf("digest %q is not a SHA-256: give 64 hexadecimal digits, as sha256sum prints them", sha256)}
	}
	switch scheme {
	case "https":
		u, err := url.Parse(raw)
		switch {
		case err != nil:
			return r, &RefError{Field: "ref", Ref: raw, Msg: fmt.Sprintf("is not a URL: %v", errors.Unwrap(err))}
		case u.Host == "":
			return r, &RefError{Field: "ref", Ref: raw, Msg: "has no host: write https://HOST/PATH"}
		case u.User != nil:
			return r, &RefError{Field: "ref", Ref: raw, Msg: "holds credentials, which would ship in the function's config: use a URL that needs none (a presigned one, or s3:// with the AWS credential chain)"}
		case u.Path == "" || strings.HasSuffix(u.Path, "/"):
			return r, &RefError{Field: "ref", Ref: raw, Msg: "names no file: give the URL of the model file itself"}
		case sha256 == "":
			return r, &RefError{Field: "sha256", Ref: raw, Msg: "an https:// model needs its SHA-256: add it (sha256sum FILE prints it) so the cache can be shared and a changed file is refused", Err: ErrDigestRequired}
		}
	case "s3":
		bucket, key, _ := strings.Cut(rest, "/")
		switch {
		case !s3Bucket.MatchString(bucket):
			return r, &RefError{Field: "ref", Ref: raw, Msg: fmt.Sprintf("bucket %q is not a bucket name: write s3://BUCKET/KEY with a bucket of 3 to 63 lower-case letters, digits, '.' and '-'", bucket)}
		case key == "" || strings.HasSuffix(key, "/"):
			return r, &RefError{Field: "ref", Ref: raw, Msg: "names no object: write s3://BUCKET/KEY with the key of the model file"}
		}
	case "oci":
		if sha256 != "" {
			return r, &RefError{Field: "sha256", Ref: raw, Msg: "an oci:// model is verified by its image's digests: remove the SHA-256 and pin the image with @sha256:DIGEST in the reference instead"}
		}
		if _, err := ParseOCI(rest); err != nil {
			return r, &RefError{Field: "ref", Ref: raw, Msg: err.Error()}
		}
	default:
		return r, &RefError{Field: "ref", Ref: raw, Msg: fmt.Sprintf("scheme %q is not one cortex fetches: use oci://, https:// or s3://", scheme)}
	}
	return r, nil
}

// OCIRef is an oci:// reference split into its parts.
type OCIRef struct {
	Registry, Repository string
	// Tag or Digest ("sha256:HEX"); Tag is "latest" when neither is given.
	Tag, Digest string
}

// ParseOCI splits REGISTRY/REPO[:TAG|@sha256:HEX] (without oci://).
func ParseOCI(s string) (OCIRef, error) {
	var o OCIRef
	name := s
	if n, d, ok := strings.Cut(s, "@"); ok {
		alg, hex, _ := strings.Cut(d, ":")
		if alg != "sha256" || !hexDigest.MatchString(hex) || strings.ToLower(hex) != hex {
			return o, fmt.Errorf("digest %q is not sha256: and 64 lower-case hexadecimal digits", d)
		}
		name, o.Digest = n, d
	}
	host, repo, ok := strings.Cut(name, "/")
	if !ok || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return o, errors.New("names no registry: write oci://REGISTRY/REPO:TAG, for example oci://registry.example.com/org/iris-model:1")
	}
	if !ociHost.MatchString(host) {
		return o, fmt.Errorf("registry %q is not a host name or host:port", host)
	}
	o.Registry = host
	if o.Digest == "" {
		if i := strings.LastIndex(repo, ":"); i >= 0 {
			repo, o.Tag = repo[:i], repo[i+1:]
			if !ociTag.MatchString(o.Tag) {
				return o, fmt.Errorf("tag %q is not a tag: letters, digits, '_', '.' and '-', at most 128", o.Tag)
			}
		} else {
			o.Tag = "latest"
		}
	}
	for _, c := range strings.Split(repo, "/") {
		if !ociComponent.MatchString(c) {
			return o, fmt.Errorf("repository %q is not a repository name: lower-case letters and digits, separated by '.', '_', '-' or '/'", repo)
		}
	}
	o.Repository = repo
	return o, nil
}

// IsReference reports whether a model path is a reference to fetch
// (oci://, https://, s3://) rather than a path (the runtime's copy of
// packager/spec.IsModelReference, which this package may not import).
func IsReference(p string) bool {
	for _, s := range []string{"oci://", "https://", "s3://"} {
		if strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}
