package spec

import (
	"errors"
	"strings"

	"github.com/cortexfn/cortex/runtime/modelfetch"
)

// Model reference schemes: predictor.model (and predictor.models[].path)
// may name a model that is not a file of the function directory, which the
// function's runtime fetches when it starts instead of the packager
// embedding it.
var modelSchemes = []string{"oci://", "https://", "s3://"}

// IsModelReference reports whether a model path is a reference to fetch
// at start (oci://, https://, s3://) rather than a path in the function
// directory.
func IsModelReference(p string) bool {
	for _, s := range modelSchemes {
		if strings.HasPrefix(p, s) {
			return true
		}
	}
	return false
}

// ModelReferences returns the models the predictor names by reference,
// predictor.model first, then predictor.models in order.
func (p *Predictor) ModelReferences() []string {
	var refs []string
	if IsModelReference(p.Model) {
		refs = append(refs, p.Model)
	}
	for _, m := range p.Models {
		if IsModelReference(m.Path) {
			refs = append(refs, m.Path)
		}
	}
	return refs
}

// modelRef checks a model field that may be a reference, and the digest
// field beside it: the reference's syntax, the digest's format, and that
// an https:// model has its digest. A reference names no file of the
// function directory, so none is looked for.
func (v *validator) modelRef(field, ref, digestField, digest string) {
	if !IsModelReference(ref) {
		switch {
		case strings.HasPrefix(ref, "http://"):
			v.add(field, "%q is plain http, which cortex does not fetch models over: use https:// with %s, or oci:// or s3://", ref, digestField)
		case digest != "" && ref != "":
			v.add(digestField, "is only for a model named by reference (https:// or s3://); %s is a path in the function directory, which is shipped as it is: remove %s", field, digestField)
		case digest != "":
			v.add(digestField, "is set without %s: name the model it is the digest of", field)
		}
		return
	}
	_, err := modelfetch.ParseRef(ref, digest)
	var re *modelfetch.RefError
	if !errors.As(err, &re) {
		return
	}
	if re.Field == "sha256" {
		if errors.Is(err, modelfetch.ErrDigestRequired) {
			v.add(digestField, "is required for %s %s: %s", field, ref, strings.TrimPrefix(re.Msg, "an https:// model needs its SHA-256: "))
			return
		}
		v.add(digestField, "%s", re.Msg)
		return
	}
	v.add(field, "%q %s", ref, re.Msg)
}
