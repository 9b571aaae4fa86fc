package spec_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// TestAuthCORSProblems: auth and cors are read, and each mistake in them
// is reported at its path and line with the fix.
func TestAuthCORSProblems(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./predictor}\n"
	const auth = "auth: {token_env: DEMO_TOKEN, secret: demo-token, key: token}\n"
	tests := []struct {
		name string
		yaml string
		want []string // "line: path: message substring", one per problem
	}{
		{"auth", base + auth, nil},
		{"auth and a public Lambda URL", base + auth + "targets: {lambda: {url_auth: NONE}}\n", nil},
		{"auth without a Lambda section", base + auth + "targets: {knative: {namespace: ml}}\n", nil},
		{"auth and an IAM Lambda URL", base + auth + "targets: {lambda: {arch: arm64}}\n", []string{
			`3: auth: cannot be used with targets.lambda.url_auth AWS_IAM`}},
		{"auth empty", base + "auth: {}\n", []string{`3: auth: is empty; set token_env, secret and key`}},
		{"auth incomplete", base + "auth: {token_env: DEMO_TOKEN}\n", []string{
			`3: auth.secret: is required: the Kubernetes Secret`, `3: auth.key: is required`}},
		{"auth without a variable", base + "auth: {secret: s, key: k}\n", []string{`3: auth.token_env: is required`}},
		{"auth bad names", base + "auth:\n  token_env: 1TOKEN\n  secret: Demo_Token\n  key: a/b\n", []string{
			`4: auth.token_env: "1TOKEN" is not a variable name`,
			`5: auth.secret: "Demo_Token" is not a Kubernetes Secret name`,
			`6: auth.key: "a/b" is not a key of a Kubernetes Secret`}},
		{"auth reserved variable", base + "auth: {token_env: CORTEX_TOKEN, secret: s, key: k}\n", []string{
			`3: auth.token_env: "CORTEX_TOKEN" is a variable the platform or the function's runtime uses`}},
		{"auth variable a stage's secret", base + auth + "pre: s.wasm\nwasm:\n  secret_env: [{name: DEMO_TOKEN, secret: s, key: k}]\n", []string{
			`3: auth.token_env: "DEMO_TOKEN" is also wasm.secret_env[0]: the stages would see the function's token`}},
		{"auth variable in wasm.env", base + auth + "pre: s.wasm\nwasm: {env: {DEMO_TOKEN: x}}\n", []string{
			`3: auth.token_env: "DEMO_TOKEN" is also in wasm.env`}},
		{"auth unknown key", base + "auth: {token: abc}\n", []string{`3: auth.token: unknown key; known keys here: token_env, secret, key`}},
		{"auth holding a token", base + "auth: {token_env: DEMO_TOKEN, secret: s, key: k, value: abc}\n", []string{`3: auth.value: unknown key`}},

		{"cors", base + "cors:\n  allow_origins: [\"https://demo.example.com\", \"http://localhost:3000\", \"https://*.example.org\"]\n  allow_headers: [X-Api-Client]\n  max_age: 10m\n", nil},
		{"cors any origin with auth", base + auth + "cors: {allow_origins: [\"*\"]}\n", nil},
		{"cors one per line", base + "cors:\n  allow_origins:\n    - https://a.example.com\n    - https://b.example.com\n", nil},
		{"cors a single origin", base + "cors: {allow_origins: https://demo.example.com}\n", []string{
			`3: cors.allow_origins: must be a list of strings, like [a, b], not the string "https://demo.example.com"`}},
		{"cors bad origins", base + "cors:\n  allow_origins:\n    - https://demo.example.com/\n    - demo.example.com\n    - null\n    - \"null\"\n    - https://a.example.com/app\n    - ftp://files.example.com\n    - https://*.*.example.com\n    - {origin: x}\n", []string{
			`5: cors.allow_origins[0]: "https://demo.example.com/" ends with '/'`,
			`6: cors.allow_origins[1]: "demo.example.com" is not an origin; write scheme://host[:port]`,
			`7: cors.allow_origins[2]: must be a string, not null`,
			`8: cors.allow_origins[3]: "null" is the origin of sandboxed frames`,
			`9: cors.allow_origins[4]: "https://a.example.com/app" is not an origin: it has more than scheme://host[:port]`,
			`10: cors.allow_origins[5]: "ftp://files.example.com" is not an origin`,
			`11: cors.allow_origins[6]: "https://*.*.example.com" has more than one '*'`,
			`12: cors.allow_origins[7]: must be a string, not a mapping`,
		}},
		{"cors bad headers", base + "cors: {allow_origins: [\"*\"], allow_headers: [\"*\", \"X Bad\"]}\n", []string{
			`3: cors.allow_headers[0]: "*" is not allowed: name each header`,
			`3: cors.allow_headers[1]: "X Bad" is not an HTTP header name`}},
		{"cors max_age", base + "cors: {allow_origins: [\"*\"], max_age: 1500ms}\n", []string{`3: cors.max_age: 1.5s is not whole seconds`}},
		{"cors max_age too long", base + "cors: {allow_origins: [\"*\"], max_age: 48h}\n", []string{`3: cors.max_age: 48h0m0s is out of range; use 1s to 24h`}},
		{"cors without origins", base + "cors: {allow_headers: [X-A]}\n", []string{`3: cors.allow_headers: has no effect without cors.allow_origins`}},
		{"cors empty", base + "cors: {}\n", []string{`3: cors: is set without allow_origins`}},

		{"lambda pages", base + "targets: {lambda: {pages: true}}\n", nil},
		{"lambda pages not a bool", base + "targets: {lambda: {pages: sometimes}}\n", []string{`3: targets.lambda.pages: must be true or false`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := problems(t, tt.yaml)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(got), len(tt.want), strings.Join(got, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(got[i], want) {
					t.Errorf("problem %d:\n got %s\nwant it to contain %s", i, got[i], want)
				}
			}
		})
	}
}

// TestAuthToken: the token is a secret: the runtime's config
// (cortex.json) names its variable and where it comes from, never its
// value, whatever the environment holds; SecretValues reads it with the
// stages' secrets, and refuses a missing token or one the function would
// refuse, without printing it.
func TestAuthToken(t *testing.T) {
	const yaml = "name: fn\npredictor: {type: go, path: ./p}\npre: s.wasm\nwasm:\n  secret_env: [{name: API_KEY, secret: api, key: key}]\n" +
		"auth: {token_env: DEMO_TOKEN, secret: demo-token, key: token}\n" +
		"cors: {allow_origins: [\"https://demo.example.com\"], allow_headers: [X-Client], max_age: 90s}\n" +
		"targets: {lambda: {url_auth: NONE, pages: true}}\n"
	const token = "0123456789abcdef-in-the-environment"
	t.Setenv("DEMO_TOKEN", token)
	s, err := spec.Parse([]byte(yaml), "fn/cortex.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.RuntimeConfig()
	want := runtime.AuthConfig{TokenEnv: "DEMO_TOKEN", Secret: "demo-token", Key: "token"}
	if cfg.Auth != want {
		t.Errorf("runtime config's auth = %+v, want %+v", cfg.Auth, want)
	}
	wantCORS := runtime.CORSConfig{AllowOrigins: []string{"https://demo.example.com"}, AllowHeaders: []string{"X-Client"}, MaxAge: runtime.Duration(90e9)}
	if !reflect.DeepEqual(cfg.CORS, wantCORS) || !cfg.LambdaPages {
		t.Errorf("runtime config's cors = %+v, lambda pages %v; want %+v and true", cfg.CORS, cfg.LambdaPages, wantCORS)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), token) || !strings.Contains(string(b), `"auth":{"token_env":"DEMO_TOKEN","secret":"demo-token","key":"token"}`) {
		t.Errorf("cortex.json = %s, want auth's names alone", b)
	}

	names := func(ss []spec.Secret) (out []string) {
		for _, s := range ss {
			out = append(out, s.Path+"="+s.Name)
		}
		return out
	}
	if got, want := names(s.Secrets()), []string{"wasm.secret_env[0].name=API_KEY", "auth.token_env=DEMO_TOKEN"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Secrets() = %q, want %q", got, want)
	}

	env := map[string]string{"API_KEY": "k", "DEMO_TOKEN": token}
	lookup := func(name string) (string, bool) { v, ok := env[name]; return v, ok }
	got, err := s.SecretValues(lookup)
	if err != nil || !reflect.DeepEqual(got, env) {
		t.Errorf("SecretValues = %v, %v; want %v", got, err, env)
	}
	for _, tc := range []struct {
		name, value, want string
	}{
		{"missing", "", `fn/cortex.yaml:6: auth.token_env: $DEMO_TOKEN is not set: outside Kubernetes the function's bearer token (auth) comes from the variable of the same name in this command's environment (on Knative, from key "token" of Secret "demo-token"); export DEMO_TOKEN`},
		{"short", "short-token", `fn/cortex.yaml:6: auth.token_env: $DEMO_TOKEN is 11 characters; a bearer token has at least 16`},
		{"spaces", "a token with spaces in it", `fn/cortex.yaml:6: auth.token_env: $DEMO_TOKEN is not a bearer token a client can send`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.value == "" {
				delete(env, "DEMO_TOKEN")
			} else {
				env["DEMO_TOKEN"] = tc.value
			}
			_, err := s.SecretValues(lookup)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("SecretValues: %v, want %q", err, tc.want)
			}
			if tc.value != "" && strings.Contains(err.Error(), tc.value) {
				t.Errorf("the error holds the token: %v", err)
			}
		})
	}
}

// TestWebhookSecret: async's webhook secret is carried as auth's token is
// (Secrets, so a Knative secretKeyRef, Lambda's deploy and cortex serve
// all set it), but may be missing: SecretValues leaves it out instead of
// failing, since the function runs without webhooks. Its Secret and key
// are required with it, and mean nothing without it.
func TestWebhookSecret(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./p}\n"
	const async = "async: {webhook_secret_env: WEBHOOK_SECRET, webhook_secret: hooks, webhook_key: secret}\n"
	s, err := spec.Parse([]byte(base+async), "fn/cortex.yaml")
	if err != nil {
		t.Fatal(err)
	}
	secrets := s.Secrets()
	if len(secrets) != 1 || secrets[0].Name != "WEBHOOK_SECRET" || secrets[0].Secret != "hooks" || secrets[0].Key != "secret" || !secrets[0].Webhook || secrets[0].Token {
		t.Fatalf("Secrets() = %+v, want the webhook secret from hooks/secret", secrets)
	}
	if got, err := s.SecretValues(func(string) (string, bool) { return "", false }); err != nil || len(got) != 0 {
		t.Errorf("SecretValues without the variable = %v, %v; want nothing and no error", got, err)
	}
	if got, err := s.SecretValues(func(string) (string, bool) { return "whsec_abc", true }); err != nil || got["WEBHOOK_SECRET"] != "whsec_abc" {
		t.Errorf("SecretValues with the variable = %v, %v", got, err)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"no secret or key", base + "async: {webhook_secret_env: WEBHOOK_SECRET}\n",
			`3: async.webhook_secret: is required: the Kubernetes Secret that holds the webhook secret on Knative, such as webhook-secret (kubectl create secret generic webhook-secret --from-literal=secret=...)
3: async.webhook_key: is required: the webhook secret's key in the Secret, such as secret`},
		{"bad names", base + "async: {webhook_secret_env: WEBHOOK_SECRET, webhook_secret: Hooks_1, webhook_key: a/b}\n",
			`3: async.webhook_secret: "Hooks_1" is not a Kubernetes Secret name
3: async.webhook_key: "a/b" is not a key of a Kubernetes Secret`},
		{"secret without a variable", base + "async: {webhook_secret: hooks, webhook_key: secret}\n",
			`3: async.webhook_secret_env: is required with async.webhook_secret and async.webhook_key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := problems(t, tc.yaml)
			want := strings.Split(tc.want, "\n")
			if len(got) != len(want) {
				t.Fatalf("problems:\n%s\nwant:\n%s", strings.Join(got, "\n"), tc.want)
			}
			for i := range want {
				if !strings.Contains(got[i], want[i]) {
					t.Errorf("problem %d:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
		})
	}
}
