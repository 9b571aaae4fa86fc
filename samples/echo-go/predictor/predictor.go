// Package predictor is the echo-go sample: a greeting that shows every part
// of the Go contract a Cortex function can use.
//
// A type go function names a package (predictor.path in cortex.yaml) that
// exports
//
//	func New() functions.Predictor
//
// The generated main calls New once and serves what it returns, so New
// should be cheap: load models in Init, which the runtime calls before the
// function reports ready.
//
// Request:  POST /predict {"name": "Ada"}      (?shout=true for capitals)
// Response: 200 {"message": "Hello, Ada!", "name": "Ada", "length": 3, "vowel_ratio": 0.6667}
//
// Its input and output schemas come from Input's and Output's Go types and
// tags (functions.Typed): the function's page builds its form from them,
// and a body that fails the input schema is a 422 listing every failing
// field.
//
// Errors, each a functions.Error with its own status:
//
//	400 the body is not JSON, or ?shout is not true/false
//	422 the body fails the input schema (no name, an empty one, a misspelt
//	    field), or name is longer than max_name_length
//	418 name is "teapot" (a documented custom status: the predictor chooses it)
package predictor

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/cortexfn/cortex/functions"
)

// Input is the request body.
type Input struct {
	// Name's upper bound is predictor.config.max_name_length, which the
	// schema cannot know: greet checks it.
	Name string `json:"name" jsonschema:"description=Who to greet.,minLength=1,example=Ada"`
}

// Output is the response body.
type Output struct {
	Message    string  `json:"message" jsonschema:"description=The greeting."`
	Name       string  `json:"name" jsonschema:"description=The name greeted, trimmed."`
	Length     int     `json:"length" jsonschema:"description=The name's length in characters."`
	VowelRatio float64 `json:"vowel_ratio" jsonschema:"description=The share of the name's letters that are vowels.,minimum=0,maximum=1"`
}

// Echo greets by name. Its zero value is not ready; New and Init set it up.
type Echo struct {
	// Predictor is the typed function: it decodes the body into Input and
	// encodes Output as JSON.
	functions.Predictor
	greeting      string
	maxNameLength int
}

// New returns the predictor. It is what the generated main calls.
func New() functions.Predictor {
	e := &Echo{greeting: "Hello", maxNameLength: 64}
	e.Predictor = functions.Typed(e.greet)
	return e
}

// Init reads predictor.config from cortex.yaml: greeting (string) and
// max_name_length (number). An invalid value stops the function from
// starting, with this error in its log.
func (e *Echo) Init(_ context.Context, cfg functions.Config) error {
	if v, ok := cfg.Values["greeting"]; ok {
		s, ok := v.(string)
		if !ok || s == "" {
			return fmt.Errorf("predictor.config.greeting must be a non-empty string, got %v", v)
		}
		e.greeting = s
	}
	if v, ok := cfg.Values["max_name_length"]; ok {
		// Values arrive through JSON, so numbers are float64.
		f, ok := v.(float64)
		if !ok || f < 1 || f != float64(int(f)) {
			return fmt.Errorf("predictor.config.max_name_length must be a whole number of at least 1, got %v", v)
		}
		e.maxNameLength = int(f)
	}
	return nil
}

func (e *Echo) greet(ctx context.Context, in Input) (Output, error) {
	// The query is beside the body: Typed keeps the whole request in reach.
	shout := false
	if req, ok := functions.RequestFromContext(ctx); ok {
		if v := req.Query.Get("shout"); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return Output{}, functions.Errorf(http.StatusBadRequest, "query parameter shout must be true or false, not %q", v)
			}
			shout = b
		}
	}
	name := strings.TrimSpace(in.Name)
	n := utf8.RuneCountInString(name)
	switch {
	case name == "":
		return Output{}, functions.Errorf(http.StatusUnprocessableEntity, "name is required")
	case n > e.maxNameLength:
		return Output{}, functions.Errorf(http.StatusUnprocessableEntity, "name must be at most %d characters, got %d", e.maxNameLength, n)
	case strings.EqualFold(name, "teapot"):
		return Output{}, functions.Errorf(http.StatusTeapot, "I'm a teapot: I cannot greet myself")
	}
	msg := fmt.Sprintf("%s, %s!", e.greeting, name)
	if shout {
		msg = strings.ToUpper(msg)
	}
	return Output{Message: msg, Name: name, Length: n, VowelRatio: vowelRatio(name)}, nil
}

func vowelRatio(s string) float64 {
	vowels, letters := 0, 0
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' {
			letters++
			if strings.ContainsRune("aeiou", r) {
				vowels++
			}
		}
	}
	if letters == 0 {
		return 0
	}
	return float64(vowels) / float64(letters)
}

var (
	_ functions.Predictor   = (*Echo)(nil)
	_ functions.Initializer = (*Echo)(nil)
)
