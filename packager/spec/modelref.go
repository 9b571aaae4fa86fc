package spec

import "strings"

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
