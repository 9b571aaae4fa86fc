//go:build !nodeploy

package main

// The tests of the commands that reach deployed functions (predict by
// name, which looks beyond cortex serve; get, delete and rollback, through
// the AWS SDK): a CLI built with -tags nodeploy has none of that, and make
// test runs these without -race (see the Makefile's test-deploy).

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestPredictLambdaName resolves a Lambda function URL by name and signs
// the request when the URL's auth type is AWS_IAM. AWS cannot run here: a
// local server answers the one Lambda API call predict makes
// (GetFunctionUrlConfig), and the function URL is a local server that
// records how it was called (packager/deploy/lambda checks the signature
// itself).
func TestPredictLambdaName(t *testing.T) {
	var gotAuth, gotBody string
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotAuth, gotBody = r.Header.Get("Authorization"), r.URL.Path+" "+string(b)
		io.WriteString(w, `{"ok":true}`)
	}))
	defer fn.Close()
	authType := ""
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/2021-10-31/functions/iris/url" || r.URL.Query().Get("Qualifier") != "live" {
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"Type":"User","Message":"Function not found"}`)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"FunctionUrl": fn.URL + "/", "AuthType": authType,
			"FunctionArn": "arn:aws:lambda:eu-west-1:123456789012:function:iris"})
	}))
	defer api.Close()
	fakeAWS(t, api.URL)
	for _, tc := range []struct{ auth, wantPrefix string }{
		{"AWS_IAM", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"},
		{"NONE", ""},
	} {
		authType, gotAuth = tc.auth, "unset"
		out, errOut, err := run(t, "", "predict", "iris", "--target", "lambda", "-d", `{"a":1}`)
		if err != nil || out != "{\"ok\":true}\n" {
			t.Fatalf("%s: %v, stdout %q, stderr %q", tc.auth, err, out, errOut)
		}
		if gotBody != `/predict {"a":1}` {
			t.Errorf("%s: the function got %q", tc.auth, gotBody)
		}
		if !strings.HasPrefix(gotAuth, tc.wantPrefix) || (tc.wantPrefix == "") != (gotAuth == "") ||
			(tc.wantPrefix != "" && !strings.Contains(gotAuth, "/eu-west-1/lambda/aws4_request")) {
			t.Errorf("%s: Authorization %q", tc.auth, gotAuth)
		}
	}
	if _, _, err := run(t, "", "predict", "nope", "--target", "lambda"); err == nil || !strings.Contains(err.Error(), "no function URL") {
		t.Errorf("unknown function: %v", err)
	}
}

// lambdaAPI starts a local server that answers the Lambda API calls of
// get, delete and rollback for one function cortex deployed, iris, with
// published versions 1 and 2 and the alias live at 2, and points the AWS
// SDK at it (see fakeAWS). took returns the calls made since it was last
// called, a qualified one as op:qualifier. AWS cannot run here:
// packager/deploy/lambda tests the calls against a fuller fake.
func lambdaAPI(t *testing.T) (took func() []string) {
	t.Helper()
	var (
		mu    sync.Mutex
		calls []string
		alias = "2"
	)
	const arn = "arn:aws:lambda:eu-west-1:123456789012:function:iris"
	config := map[string]any{"FunctionName": "iris", "FunctionArn": arn, "Runtime": "provided.al2023",
		"Environment": map[string]any{"Variables": map[string]string{"CORTEX_CONFIG": "/var/task/cortex.json"}},
		"MemorySize":  1024, "Timeout": 35, "Architectures": []string{"arm64"}, "CodeSha256": "abc=",
		"LastModified": "2026-01-01T00:00:00.000+0000"}
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op := map[string]string{
			"GET /2015-03-31/functions":                   "ListFunctions",
			"GET /2015-03-31/functions/iris":              "GetFunction",
			"GET /2015-03-31/functions/iris/aliases/live": "GetAlias",
			"PUT /2015-03-31/functions/iris/aliases/live": "UpdateAlias",
			"GET /2015-03-31/functions/iris/versions":     "ListVersionsByFunction",
			"GET /2021-10-31/functions/iris/url":          "GetFunctionUrlConfig",
			"DELETE /2021-10-31/functions/iris/url":       "DeleteFunctionUrlConfig",
			"DELETE /2015-03-31/functions/iris":           "DeleteFunction",
		}[r.Method+" "+r.URL.Path]
		if q := r.URL.Query().Get("Qualifier"); q != "" {
			op += ":" + q
		}
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, op)
		w.Header().Set("Content-Type", "application/json")
		aliasJSON := func() map[string]string {
			return map[string]string{"Name": "live", "AliasArn": arn + ":live", "FunctionVersion": alias, "RevisionId": "r" + alias}
		}
		switch op {
		case "ListFunctions":
			json.NewEncoder(w).Encode(map[string]any{"Functions": []any{config}})
		case "GetFunction":
			active := map[string]any{"State": "Active", "LastUpdateStatus": "Successful"}
			for k, v := range config {
				active[k] = v
			}
			json.NewEncoder(w).Encode(map[string]any{"Configuration": active, "Tags": map[string]string{"cortex.function": "iris"}})
		case "GetAlias":
			json.NewEncoder(w).Encode(aliasJSON())
		case "UpdateAlias":
			alias = body["FunctionVersion"]
			json.NewEncoder(w).Encode(aliasJSON())
		case "ListVersionsByFunction":
			json.NewEncoder(w).Encode(map[string]any{"Versions": []map[string]string{{"Version": "$LATEST"}, {"Version": "1"}, {"Version": "2"}}})
		case "GetFunctionUrlConfig:live":
			json.NewEncoder(w).Encode(map[string]string{"FunctionUrl": "https://iris.lambda-url.eu-west-1.on.aws/", "AuthType": "AWS_IAM", "FunctionArn": arn + ":live"})
		case "DeleteFunctionUrlConfig:live", "DeleteFunction":
			w.WriteHeader(http.StatusNoContent)
		default:
			w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"Type":"User","Message":"Function not found"}`)
		}
	}))
	t.Cleanup(api.Close)
	fakeAWS(t, api.URL)
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		c := calls
		calls = nil
		return c
	}
}

// TestGetDeleteLambda runs get and delete with --target lambda against
// lambdaAPI: AWS cannot run here.
func TestGetDeleteLambda(t *testing.T) {
	took := lambdaAPI(t)
	out, errOut, err := run(t, "", "get", "--target", "lambda", "-o", "json")
	if err != nil {
		t.Fatalf("get: %v\n%s", err, errOut)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("get -o json is not JSON: %v\n%s", err, out)
	}
	if len(list) != 1 || list[0]["name"] != "iris" || list[0]["url_auth"] != "AWS_IAM" || list[0]["state"] != "Active" || list[0]["version"] != "2" {
		t.Errorf("get -o json: %s", out)
	}
	took()

	out, _, err = run(t, "", "get", "iris", "--target", "lambda")
	if err != nil || !strings.HasPrefix(out, "NAME") || !strings.Contains(out, "iris.lambda-url") || !strings.Contains(out, "1024 MB") {
		t.Errorf("get iris: %v\n%s", err, out)
	}
	if c := strings.Join(took(), " "); c != "GetFunction GetAlias GetFunctionUrlConfig:live" {
		t.Errorf("get iris calls: %s", c)
	}

	if _, _, err := run(t, "n\n", "delete", "iris", "--target", "lambda"); err == nil || err.Error() != "not deleted" {
		t.Errorf("delete answered no: %v", err)
	}
	if c := took(); len(c) != 0 {
		t.Errorf("delete answered no made calls: %v", c)
	}

	out, _, err = run(t, "", "delete", "iris", "--target", "lambda", "--dry-run")
	if err != nil || !strings.Contains(out, "would call DeleteFunction iris") {
		t.Errorf("delete --dry-run: %v\n%s", err, out)
	}
	if c := strings.Join(took(), " "); c != "GetFunction GetFunctionUrlConfig:live" {
		t.Errorf("delete --dry-run calls: %s", c)
	}

	if _, errOut, err := run(t, "", "delete", "iris", "--target", "lambda", "--yes"); err != nil {
		t.Fatalf("delete: %v\n%s", err, errOut)
	}
	if c := strings.Join(took(), " "); c != "GetFunction GetFunctionUrlConfig:live DeleteFunctionUrlConfig:live DeleteFunction" {
		t.Errorf("delete calls: %s", c)
	}
}

// TestRollbackLambda runs rollback with --target lambda against lambdaAPI:
// AWS cannot run here.
func TestRollbackLambda(t *testing.T) {
	took := lambdaAPI(t)
	out, errOut, err := run(t, "", "rollback", "iris", "--target", "lambda", "--dry-run")
	if err != nil || !strings.Contains(out, "would call UpdateAlias iris:live (version 2 -> 1)") ||
		!strings.Contains(errOut, "dry run: the alias live of iris would serve version 1 (now 2)") {
		t.Errorf("rollback --dry-run: %v\nstdout %s\nstderr %s", err, out, errOut)
	}
	if c := strings.Join(took(), " "); c != "GetAlias ListVersionsByFunction GetFunctionUrlConfig:live" {
		t.Errorf("rollback --dry-run calls: %s", c)
	}

	out, errOut, err = run(t, "", "rollback", "iris", "--target", "lambda")
	if err != nil || out != "https://iris.lambda-url.eu-west-1.on.aws/\n" || !strings.Contains(errOut, "iris: the alias live serves version 1 (was 2)") {
		t.Errorf("rollback: %v\nstdout %q\nstderr %s", err, out, errOut)
	}
	if c := strings.Join(took(), " "); c != "GetAlias ListVersionsByFunction UpdateAlias GetFunctionUrlConfig:live" {
		t.Errorf("rollback calls: %s", c)
	}

	if _, _, err := run(t, "", "rollback", "iris", "--target", "lambda"); err == nil || !strings.Contains(err.Error(), "nothing to roll back to") {
		t.Errorf("rollback from the first version: %v", err)
	}

	out, _, err = run(t, "", "rollback", "iris", "2", "--target", "lambda", "-o", "json")
	var res map[string]any
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res["version"] != "2" || res["from"] != "1" || res["action"] != "updated" {
		t.Errorf("rollback iris 2 -o json: %v\n%s", err, out)
	}

	if _, _, err := run(t, "", "rollback", "iris", "9", "--target", "lambda"); err == nil || !strings.Contains(err.Error(), "its versions: 1, 2") {
		t.Errorf("rollback to an unknown version: %v", err)
	}
	if _, _, err := run(t, "", "rollback", "iris", "--target", "lambda", "--timeout", "1s"); err == nil || !strings.Contains(err.Error(), "--timeout is for Knative") {
		t.Errorf("rollback --timeout: %v", err)
	}
}

// fakeAWS points the AWS SDK's Lambda client at endpoint, in eu-west-1,
// with static credentials and no shared config or credentials file.
func fakeAWS(t *testing.T, endpoint string) {
	t.Helper()
	empty := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{"AWS_ENDPOINT_URL_LAMBDA": endpoint, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY": "secret", "AWS_REGION": "eu-west-1", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": empty, "AWS_SHARED_CREDENTIALS_FILE": empty} {
		t.Setenv(k, v)
	}
}

// TestPredictServeLayout: cortex predict NAME finds the function under
// cortex serve's /NAME/ when serve lists it, and -o json prints the whole
// answer.
func TestPredictServeLayout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/status":
			io.WriteString(w, `{"functions":[{"name":"greeter","state":"idle"}]}`)
		case "/greeter/predict":
			b, _ := io.ReadAll(r.Body)
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"got":`+string(b)+`}`)
		default:
			http.Error(w, `{"error":"not found"}`, http.StatusNotFound)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")

	out, errOut, err := run(t, "", "predict", "greeter", "--serve-addr", addr, "-d", `{"name":"Ada"}`)
	if err != nil || strings.TrimSpace(out) != `{"got":{"name":"Ada"}}` || !strings.Contains(errOut, "cortex serve at "+addr) {
		t.Errorf("predict greeter: %q %q %v", out, errOut, err)
	}
	out, _, err = run(t, "", "predict", "greeter", "--serve-addr", addr, "-d", `{"name":"Ada"}`, "-o", "json")
	var res PredictResult
	var body bytes.Buffer
	if err != nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != 200 || json.Compact(&body, res.Body) != nil || body.String() != `{"got":{"name":"Ada"}}` {
		t.Errorf("predict -o json: %q %v", out, err)
	}
	out, _, err = run(t, "", "predict", "--url", srv.URL, "--path", "/nope", "-o", "json")
	if err == nil || json.Unmarshal([]byte(out), &res) != nil || res.Status != 404 {
		t.Errorf("predict -o json of a 404: %q %v, want the answer on stdout and a failure", out, err)
	}
	// A function serve does not list is looked up where it is deployed.
	_, _, err = run(t, "", "predict", "other", "--serve-addr", addr, "--kubeconfig", filepath.Join(t.TempDir(), "none"))
	if err == nil || !strings.Contains(err.Error(), "kubeconfig") {
		t.Errorf("predict other: %v, want the Knative lookup's error", err)
	}
}
