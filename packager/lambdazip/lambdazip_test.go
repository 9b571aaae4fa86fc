package lambdazip_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zip"
	"sigs.k8s.io/yaml"

	"github.com/cortexfn/cortex/packager/artifact"
	"github.com/cortexfn/cortex/packager/lambdazip"
	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

func TestTemplateGolden(t *testing.T) {
	tests := []struct {
		name, file string
		edit       func(*spec.Spec)
	}{
		{"defaults", "template-defaults.yaml", func(*spec.Spec) {}},
		{"public arm64", "template-public-arm64.yaml", func(s *spec.Spec) {
			s.Targets.Lambda = spec.Lambda{Arch: spec.ArchARM64, Memory: 2048, URLAuth: spec.URLAuthNone}
			s.Limits.Timeout = 2 * time.Minute
		}},
		{"secrets", "template-secrets.yaml", func(s *spec.Spec) {
			s.Wasm.SecretEnv = []spec.SecretEnv{{Name: "API_TOKEN", Secret: "creds", Key: "token"}, {Name: "APITOKEN", Secret: "creds", Key: "other"}}
		}},
		{"async", "template-async.yaml", func(s *spec.Spec) {
			one := 1
			s.Targets.Lambda.Async = &spec.LambdaAsync{MaxRetries: &one, MaxEventAge: 90 * time.Minute,
				OnSuccess: "arn:aws:events:eu-west-1:123456789012:event-bus/predictions",
				OnFailure: "arn:aws:sqs:eu-west-1:123456789012:failed-predictions"}
		}},
		{"async defaults", "template-async-defaults.yaml", func(s *spec.Spec) {
			s.Targets.Lambda.Async = &spec.LambdaAsync{OnFailure: "arn:aws:s3:::failed-events"}
		}},
		{"auth", "template-auth.yaml", func(s *spec.Spec) {
			s.Wasm.SecretEnv = []spec.SecretEnv{{Name: "API_KEY", Secret: "creds", Key: "key"}}
			s.Auth = spec.Auth{TokenEnv: "DEMO_TOKEN", Secret: "demo-token", Key: "token"}
			s.Targets.Lambda.URLAuth = spec.URLAuthNone
		}},
		{"webhook secret", "template-webhook.yaml", func(s *spec.Spec) {
			s.Async.WebhookSecretEnv, s.Async.WebhookSecret, s.Async.WebhookKey = "WEBHOOK_SECRET", "hooks", "secret"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &spec.Spec{Name: "iris", Predictor: spec.Predictor{Type: spec.TypeONNX, Model: "model/iris.onnx"}}
			tt.edit(s)
			s.SetDefaults()
			b, err := lambdazip.Template(s, "lambda.zip")
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.file, b)

			var tmpl struct {
				AWSTemplateFormatVersion string
				Description              string
				Outputs                  map[string]any
				Parameters               map[string]struct {
					Type                  string
					NoEcho                bool
					Default               *string
					Description           string
					MinLength             int
					AllowedPattern        string
					ConstraintDescription string
				}
				Transform string
				Resources map[string]struct {
					Type       string
					Properties map[string]any
				}
			}
			if err := yaml.UnmarshalStrict(b, &tmpl); err != nil {
				t.Fatal(err)
			}
			fn := tmpl.Resources["Function"]
			if tmpl.Transform != "AWS::Serverless-2016-10-31" || fn.Type != "AWS::Serverless::Function" || fn.Properties["Runtime"] != lambdazip.Runtime || fn.Properties["AutoPublishAlias"] != lambdazip.Alias ||
				fn.Properties["FunctionUrlConfig"].(map[string]any)["AuthType"] != s.Targets.Lambda.URLAuth {
				t.Errorf("template %+v", tmpl)
			}
			// Every secret is a NoEcho parameter the environment refers
			// to; no value is in the template.
			vars := fn.Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
			if len(tmpl.Parameters) != len(s.Secrets()) {
				t.Errorf("parameters %v, want one per secret %v", tmpl.Parameters, s.Secrets())
			}
			for _, e := range s.Secrets() {
				ref, _ := vars[e.Name].(map[string]any)["Ref"].(string)
				if p, ok := tmpl.Parameters[ref]; !ok || !p.NoEcho || p.Type != "String" {
					t.Errorf("%s refers to parameter %q: %+v", e.Name, ref, p)
				}
				// The token's parameter refuses what the function would:
				// CloudFormation matches AllowedPattern against the whole
				// value, as Go's regexp does with the anchors it has.
				if p := tmpl.Parameters[ref]; e.Token {
					re, err := regexp.Compile(p.AllowedPattern)
					if err != nil || p.MinLength != runtime.MinTokenLength || re.MatchString("has spaces in it, 16+") || !re.MatchString("0123456789abcdef0123") {
						t.Errorf("the token's parameter %+v (%v), want the runtime's rules", p, err)
					}
				} else if p.MinLength != 0 || p.AllowedPattern != "" {
					t.Errorf("a stage's secret %s has the token's constraints: %+v", e.Name, p)
				}
				// Only the webhook secret may be left out: the function
				// runs without webhooks.
				if p := tmpl.Parameters[ref]; (p.Default != nil && *p.Default == "") != e.Webhook {
					t.Errorf("%s's parameter has default %v; want an empty default only for the webhook secret", e.Name, p.Default)
				}
			}
		})
	}
}

func TestWriteIsReproducible(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	cache := filepath.Join(dir, "cache")
	if err := os.WriteFile(bin, bytes.Repeat([]byte("\x7fELF binary"), 200000), 0o700); err != nil {
		t.Fatal(err)
	}
	files := []artifact.File{
		{Path: "model/m.onnx", Data: []byte("weights")},
		{Path: "cortex.json", Data: []byte(`{"name":"x"}`)},
		{Path: "bootstrap", Src: bin, Mode: 0o755},
	}
	var zips [][]byte
	for i := range 2 {
		p := filepath.Join(dir, "f"+string(rune('0'+i))+".zip")
		// A different file mtime must not matter.
		os.Chtimes(bin, time.Now(), time.Now().Add(time.Duration(i)*time.Hour))
		// The second zip takes the large file from the cache the first filled.
		info, err := lambdazip.Write(p, files, lambdazip.Options{Modified: time.Unix(0, 0), CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if int64(len(b)) != info.Size {
			t.Errorf("Info.Size %d, file %d", info.Size, len(b))
		}
		zips = append(zips, b)
	}
	if !bytes.Equal(zips[0], zips[1]) {
		t.Fatal("two zips of the same files differ")
	}
	if _, err := lambdazip.Write(filepath.Join(dir, "nocache.zip"), files, lambdazip.Options{Modified: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "nocache.zip")); !bytes.Equal(b, zips[0]) {
		t.Fatal("the zip written without a cache differs from the one written with it")
	}
	zr, err := zip.NewReader(bytes.NewReader(zips[0]), int64(len(zips[0])))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
		if f.Name == "bootstrap" && f.Mode().Perm() != 0o755 {
			t.Errorf("bootstrap mode %v, want 0755", f.Mode())
		}
		if f.Method != zip.Deflate {
			t.Errorf("%s: method %d, want Deflate", f.Name, f.Method)
		}
		if len(f.Extra) != 0 {
			t.Errorf("%s has extra fields %x", f.Name, f.Extra)
		}
	}
	if got, want := names, []string{"bootstrap", "cortex.json", "model/m.onnx"}; !equal(got, want) {
		t.Errorf("entries %v, want %v", got, want)
	}
	if _, err := exec.LookPath("unzip"); err == nil {
		if out, err := exec.Command("unzip", "-t", filepath.Join(dir, "f0.zip")).CombinedOutput(); err != nil {
			t.Errorf("unzip -t: %v\n%s", err, out)
		}
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestWriteRefusesTooLarge uses a sparse file, so no disk is spent.
func TestWriteRefusesTooLarge(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.onnx")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(lambdazip.MaxUnzipped + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out := filepath.Join(dir, "f.zip")
	_, err = lambdazip.Write(out, []artifact.File{{Path: "bootstrap", Data: []byte("x"), Mode: 0o755}, {Path: "model/big.onnx", Src: big}}, lambdazip.Options{})
	var tl *lambdazip.TooLargeError
	if !errors.As(err, &tl) || !tl.Unzipped || !errors.Is(err, lambdazip.ErrTooLarge) {
		t.Fatalf("got %v, want an unzipped *TooLargeError", err)
	}
	if !bytes.Contains([]byte(err.Error()), []byte("container image")) {
		t.Errorf("%q does not suggest the container image", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a zip was left behind: %v", err)
	}
}

func TestGLIBCNeeded(t *testing.T) {
	exe, err := os.Executable() // this test binary: cgo or static, either way an ELF file
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lambdazip.GLIBCNeeded(exe); err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		if _, err := os.Stat(lib); err != nil {
			continue
		}
		if _, err := lambdazip.GLIBCNeeded(lib); err != nil {
			t.Errorf("%s: %v", lib, err)
		}
	}
	if _, err := lambdazip.GLIBCNeeded("lambdazip_test.go"); err == nil {
		t.Error("a Go source file was read as ELF")
	}
}

// TestCacheTrimmed: the deflated files' cache forgets what is not used. A
// zip that takes a file from the cache marks its entry used; TrimCache
// (the packager's, once a package is written) removes the entries unused
// for five days.
func TestCacheTrimmed(t *testing.T) {
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")
	large := func(name string, b byte) artifact.File {
		t.Helper()
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, bytes.Repeat([]byte{b}, 2<<20), 0o644); err != nil { // over the cache's 1 MiB floor
			t.Fatal(err)
		}
		return artifact.File{Path: name, Src: path}
	}
	write := func(files ...artifact.File) {
		t.Helper()
		if _, err := lambdazip.Write(filepath.Join(dir, "f.zip"), files, lambdazip.Options{Modified: time.Unix(0, 0), CacheDir: cache}); err != nil {
			t.Fatal(err)
		}
	}
	entries := func() []string {
		t.Helper()
		m, err := filepath.Glob(filepath.Join(cache, "zip", "*", "*.deflate"))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	old, used := large("old", 'o'), large("used", 'u')
	write(old, used)
	if n := len(entries()); n != 2 {
		t.Fatalf("%d cache entries, want 2", n)
	}
	// Both last used six days ago; the last trim long ago.
	week := time.Now().Add(-6 * 24 * time.Hour)
	files, _ := filepath.Glob(filepath.Join(cache, "zip", "*", "*"))
	for _, f := range files {
		if err := os.Chtimes(f, week, week); err != nil {
			t.Fatal(err)
		}
	}
	write(used) // a hit: used again
	for _, f := range files {
		if filepath.Base(f) == "trim.txt" {
			os.Remove(f)
		}
	}
	write(used, large("new", 'n'))
	lambdazip.TrimCache(cache)
	got := entries()
	if len(got) != 2 {
		t.Fatalf("cache entries after the trim: %v, want the used one and the new one", got)
	}
	for _, f := range got {
		b, err := os.ReadFile(strings.TrimSuffix(f, ".deflate") + ".json")
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(sha256Hex(bytes.Repeat([]byte{'o'}, 2<<20)))) {
			t.Errorf("the entry unused for six days is still there: %s", f)
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
