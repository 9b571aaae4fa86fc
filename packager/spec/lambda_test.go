package spec_test

import (
	"strings"
	"testing"
)

// TestLambdaPackageProblems: targets.lambda.package takes zip or image,
// and targets.lambda.registry a repository without a scheme.
func TestLambdaPackageProblems(t *testing.T) {
	base := "name: fn\npredictor: {type: go, path: ./predictor}\n"
	for _, tt := range []struct {
		lambda, path, want string
	}{
		{"{package: image, registry: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/cortex}", "targets.lambda", ""},
		{"{package: zip}", "targets.lambda", ""},
		{"{package: container}", "targets.lambda.package", `"container" is not a Lambda package type; use zip or image`},
		{"{registry: \"https://ecr.example/cortex\"}", "targets.lambda.registry", "has a scheme"},
		{"{registry: \"cortex/\"}", "targets.lambda.registry", "is not a repository"},
	} {
		got := problemsUnder(t, base+"targets: {lambda: "+tt.lambda+"}\n", tt.path)
		switch {
		case tt.want == "" && len(got) > 0:
			t.Errorf("%s: %v, want no problem", tt.lambda, got)
		case tt.want != "" && (len(got) != 1 || !strings.Contains(got[0], tt.want)):
			t.Errorf("%s: %v, want one problem saying %q", tt.lambda, got, tt.want)
		}
	}
}
