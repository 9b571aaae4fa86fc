package lambda_test

// AWS itself cannot run here (no account, no network), so these tests run
// the deployer, through the real AWS SDK client and its HTTP, signing,
// retry and error decoding, against fakeLambda: a local server that
// implements the part of the Lambda REST API the deployer calls, with
// Lambda's paths, status codes, error headers and asynchronous states
// (Pending -> Active after a create, InProgress -> Successful after an
// update), published versions, aliases, and the Qualifier that puts a
// function URL and resource-policy statements on an alias. The log names a
// call on a qualifier op:qualifier (GetFunctionUrlConfig:live).

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/cortexfn/cortex/packager/deploy/lambda"
)

// fakeLambda is the Lambda REST API subset, for one account and region.
type fakeLambda struct {
	mu    sync.Mutex
	calls []string
	funcs map[string]*fakeFunc
	// fail, keyed by operation, answers the next n calls with an error.
	fail map[string]*fakeError
	// bodies keeps the last request body per operation.
	bodies map[string]map[string]any
	// pageSize is how many functions a ListFunctions page holds (Lambda:
	// up to 50).
	pageSize int
	// hideTags makes GetFunction answer a TagsError, as Lambda does to a
	// caller not allowed lambda:ListTags.
	hideTags bool
}

type fakeError struct {
	n      int
	status int
	code   string
	msg    string
}

type fakeFunc struct {
	// config is $LATEST.
	config map[string]any
	// urls and policies are keyed by qualifier: "" is the function
	// itself, else an alias.
	urls     map[string]map[string]any
	policies map[string][]map[string]any
	tags     map[string]any
	// versions are the published versions, oldest first: each a copy of
	// config as it was, with its Version.
	versions []map[string]any
	aliases  map[string]map[string]any
	// changed: $LATEST changed since the last PublishVersion.
	changed bool
	// pending counts the reads before an asynchronous change completes.
	pending int
	// revisions numbers alias revision ids.
	revisions int
}

func newFunc(config, tags map[string]any) *fakeFunc {
	config["Version"] = "$LATEST"
	return &fakeFunc{config: config, tags: tags, changed: true,
		urls: map[string]map[string]any{}, policies: map[string][]map[string]any{}, aliases: map[string]map[string]any{}}
}

// version is the published version or alias q of the function, or nil.
func (fn *fakeFunc) version(q string) map[string]any {
	if a := fn.aliases[q]; a != nil {
		q = a["FunctionVersion"].(string)
	}
	for _, v := range fn.versions {
		if v["Version"] == q {
			return v
		}
	}
	return nil
}

func newFake() *fakeLambda {
	return &fakeLambda{funcs: map[string]*fakeFunc{}, fail: map[string]*fakeError{}, bodies: map[string]map[string]any{}, pageSize: 50}
}

// add puts an Active function there as someone else would make it: with
// the given runtime, environment and tags (nil: none).
func (f *fakeLambda) add(name, runtime string, env, tags map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.funcs[name] = newFunc(map[string]any{
		"FunctionName": name, "FunctionArn": "arn:aws:lambda:" + region + ":" + account + ":function:" + name,
		"Runtime": runtime, "Handler": "bootstrap", "MemorySize": 128, "Timeout": 3, "Architectures": []string{"x86_64"},
		"Environment": map[string]any{"Variables": env}, "CodeSha256": sha([]byte(name)),
		"LastModified": "2026-01-02T03:04:05.000+0000", "State": "Active", "LastUpdateStatus": "Successful",
	}, tags)
}

func (f *fakeLambda) log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeLambda) reset() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

func (f *fakeLambda) failNext(op string, n, status int, code, msg string) {
	f.mu.Lock()
	f.fail[op] = &fakeError{n: n, status: status, code: code, msg: msg}
	f.mu.Unlock()
}

func writeErr(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Amzn-ErrorType", code)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Type": "User", "message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

const (
	region  = "eu-west-1"
	account = "123456789012"
)

// routes are the operations the fake answers, by method and path.
var routes = map[string]string{
	"POST 2015-03-31/functions":                "CreateFunction",
	"GET 2015-03-31/functions":                 "ListFunctions",
	"GET 2015-03-31/functions/*":               "GetFunction",
	"DELETE 2015-03-31/functions/*":            "DeleteFunction",
	"GET 2015-03-31/functions/*/configuration": "GetFunctionConfiguration",
	"PUT 2015-03-31/functions/*/configuration": "UpdateFunctionConfiguration",
	"PUT 2015-03-31/functions/*/code":          "UpdateFunctionCode",
	"GET 2021-10-31/functions/*/url":           "GetFunctionUrlConfig",
	"POST 2021-10-31/functions/*/url":          "CreateFunctionUrlConfig",
	"PUT 2021-10-31/functions/*/url":           "UpdateFunctionUrlConfig",
	"DELETE 2021-10-31/functions/*/url":        "DeleteFunctionUrlConfig",
	"GET 2015-03-31/functions/*/policy":        "GetPolicy",
	"POST 2015-03-31/functions/*/policy":       "AddPermission",
	"DELETE 2015-03-31/functions/*/policy/*":   "RemovePermission",
	"POST 2015-03-31/functions/*/versions":     "PublishVersion",
	"GET 2015-03-31/functions/*/versions":      "ListVersionsByFunction",
	"POST 2015-03-31/functions/*/aliases":      "CreateAlias",
	"GET 2015-03-31/functions/*/aliases/*":     "GetAlias",
	"PUT 2015-03-31/functions/*/aliases/*":     "UpdateAlias",
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 ") {
		writeErr(w, 403, "MissingAuthenticationTokenException", "request not signed")
		return
	}
	var body map[string]any
	if b, _ := io.ReadAll(r.Body); len(b) > 0 {
		if err := json.Unmarshal(b, &body); err != nil {
			writeErr(w, 400, "InvalidRequestContentException", err.Error())
			return
		}
	}
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	q := r.URL.Query().Get("Qualifier")
	name := ""
	route := slices.Clone(parts) // the path with * for the function and the alias or statement
	if len(parts) >= 3 {
		name, route[2] = parts[2], "*"
	}
	if len(parts) == 5 {
		route[4] = "*"
	}
	op := routes[r.Method+" "+strings.Join(route, "/")]
	if op == "CreateFunction" {
		name, _ = body["FunctionName"].(string)
	}
	if op == "" {
		writeErr(w, 404, "UnknownOperationException", r.Method+" "+r.URL.Path)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if q != "" {
		f.calls = append(f.calls, op+":"+q)
	} else {
		f.calls = append(f.calls, op)
	}
	f.bodies[op] = body
	if e := f.fail[op]; e != nil && e.n > 0 {
		e.n--
		if e.status == 429 {
			w.Header().Set("Retry-After", "0")
		}
		writeErr(w, e.status, e.code, e.msg)
		return
	}
	if op == "ListFunctions" {
		f.listFunctions(w, r)
		return
	}
	fn := f.funcs[name]
	if fn == nil && op != "CreateFunction" {
		writeErr(w, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:"+region+":"+account+":function:"+name)
		return
	}
	arn := "arn:aws:lambda:" + region + ":" + account + ":function:" + name
	if q != "" && op != "GetFunction" {
		if fn.aliases[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "Function not found: "+arn+":"+q)
			return
		}
		arn += ":" + q
	}
	switch op {
	case "CreateFunction":
		if fn != nil {
			writeErr(w, 409, "ResourceConflictException", "Function already exist: "+name)
			return
		}
		code := body["Code"].(map[string]any)
		zip, _ := base64.StdEncoding.DecodeString(code["ZipFile"].(string))
		fn = newFunc(map[string]any{
			"FunctionName": name, "FunctionArn": arn, "Runtime": body["Runtime"], "Handler": body["Handler"],
			"Role": body["Role"], "MemorySize": body["MemorySize"], "Timeout": body["Timeout"],
			"Architectures": body["Architectures"], "Environment": map[string]any{"Variables": body["Environment"].(map[string]any)["Variables"]},
			"CodeSha256": sha(zip), "State": "Pending", "LastUpdateStatus": "InProgress",
			"LastModified": "2026-01-01T00:00:00.000+0000",
		}, body["Tags"].(map[string]any))
		fn.pending = 1
		f.funcs[name] = fn
		writeJSON(w, 201, fn.config)
	case "GetFunction":
		config := fn.config
		if q != "" && q != "$LATEST" {
			if config = fn.version(q); config == nil {
				writeErr(w, 404, "ResourceNotFoundException", "Function not found: "+arn+":"+q)
				return
			}
		}
		out := map[string]any{"Configuration": config, "Code": map[string]any{"RepositoryType": "S3"}}
		switch {
		case f.hideTags:
			out["TagsError"] = map[string]any{"ErrorCode": "AccessDeniedException", "Message": "not authorized to perform: lambda:ListTags"}
		case fn.tags != nil:
			out["Tags"] = fn.tags
		}
		writeJSON(w, 200, out)
	case "DeleteFunction":
		delete(f.funcs, name)
		w.WriteHeader(204)
	case "DeleteFunctionUrlConfig":
		if fn.urls[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		delete(fn.urls, q)
		w.WriteHeader(204)
	case "GetFunctionConfiguration":
		if fn.pending > 0 {
			fn.pending--
		} else {
			fn.config["State"], fn.config["LastUpdateStatus"] = "Active", "Successful"
		}
		writeJSON(w, 200, fn.config)
	case "UpdateFunctionConfiguration", "UpdateFunctionCode":
		if fn.config["LastUpdateStatus"] == "InProgress" {
			writeErr(w, 409, "ResourceConflictException", "The operation cannot be performed at this time. An update is in progress for resource: "+arn)
			return
		}
		for k, v := range body {
			switch k {
			case "ZipFile":
				zip, _ := base64.StdEncoding.DecodeString(v.(string))
				fn.config["CodeSha256"] = sha(zip)
			default:
				fn.config[k] = v
			}
		}
		fn.config["LastUpdateStatus"], fn.pending, fn.changed = "InProgress", 1, true
		writeJSON(w, 200, fn.config)
	case "PublishVersion":
		f.publish(w, fn, body, arn)
	case "ListVersionsByFunction":
		f.listVersions(w, r, fn)
	case "CreateAlias", "GetAlias", "UpdateAlias":
		f.alias(w, op, fn, parts, body, arn)
	case "GetFunctionUrlConfig":
		if fn.urls[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		writeJSON(w, 200, fn.urls[q])
	case "CreateFunctionUrlConfig":
		if fn.urls[q] != nil {
			writeErr(w, 409, "ResourceConflictException", "Failed to create function url config for [functionArn = "+arn+"]. Error message:  FunctionUrlConfig exists for this Lambda function")
			return
		}
		id := name + "abc"
		if q != "" {
			id = name + q
		}
		fn.urls[q] = map[string]any{"FunctionUrl": "https://" + id + ".lambda-url." + region + ".on.aws/", "FunctionArn": arn,
			"AuthType": body["AuthType"], "CreationTime": "2026-01-01T00:00:00.000Z", "LastModifiedTime": "2026-01-01T00:00:00.000Z"}
		writeJSON(w, 201, fn.urls[q])
	case "UpdateFunctionUrlConfig":
		if fn.urls[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		fn.urls[q]["AuthType"] = body["AuthType"]
		writeJSON(w, 200, fn.urls[q])
	case "GetPolicy":
		if len(fn.policies[q]) == 0 {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		p, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": fn.policies[q]})
		writeJSON(w, 200, map[string]any{"Policy": string(p), "RevisionId": "r1"})
	case "AddPermission":
		for _, s := range fn.policies[q] {
			if s["Sid"] == body["StatementId"] {
				writeErr(w, 409, "ResourceConflictException", "The statement id ("+s["Sid"].(string)+") provided already exists.")
				return
			}
		}
		s := map[string]any{"Sid": body["StatementId"], "Effect": "Allow", "Principal": "*", "Action": body["Action"], "Resource": arn}
		fn.policies[q] = append(fn.policies[q], s)
		b, _ := json.Marshal(s)
		writeJSON(w, 201, map[string]any{"Statement": string(b)})
	case "RemovePermission":
		sid := parts[4]
		for i, s := range fn.policies[q] {
			if s["Sid"] == sid {
				fn.policies[q] = slices.Delete(fn.policies[q], i, i+1)
				w.WriteHeader(204)
				return
			}
		}
		writeErr(w, 404, "ResourceNotFoundException", "Statement "+sid+" is not found in resource policy.")
	}
}

// publish answers PublishVersion as Lambda does: refused while an update
// is in progress or when $LATEST's code is not the expected CodeSha256;
// the newest version again when $LATEST has not changed since it was
// published; else a new version, numbered from 1.
func (f *fakeLambda) publish(w http.ResponseWriter, fn *fakeFunc, body map[string]any, arn string) {
	if fn.config["LastUpdateStatus"] == "InProgress" {
		writeErr(w, 409, "ResourceConflictException", "The operation cannot be performed at this time. An update is in progress for resource: "+arn)
		return
	}
	if want, ok := body["CodeSha256"]; ok && want != fn.config["CodeSha256"] {
		writeErr(w, 412, "PreconditionFailedException", "CodeSHA256 ("+want.(string)+") is different from current CodeSHA256 in $LATEST ("+fn.config["CodeSha256"].(string)+"). Please try again with the CodeSHA256 in $LATEST.")
		return
	}
	if !fn.changed && len(fn.versions) > 0 {
		writeJSON(w, 201, fn.versions[len(fn.versions)-1])
		return
	}
	v := maps.Clone(fn.config)
	n := strconv.Itoa(len(fn.versions) + 1)
	v["Version"], v["FunctionArn"], v["Description"] = n, arn+":"+n, body["Description"]
	fn.versions = append(fn.versions, v)
	fn.changed = false
	writeJSON(w, 201, v)
}

// listVersions answers one page of ListVersionsByFunction: $LATEST, then
// the published versions, pageSize (or MaxItems) at a time.
func (f *fakeLambda) listVersions(w http.ResponseWriter, r *http.Request, fn *fakeFunc) {
	all := append([]map[string]any{fn.config}, fn.versions...)
	start, size := 0, f.pageSize
	if m := r.URL.Query().Get("Marker"); m != "" {
		var err error
		if start, err = strconv.Atoi(m); err != nil || start >= len(all) {
			writeErr(w, 400, "InvalidParameterValueException", "bad marker "+m)
			return
		}
	}
	if m, err := strconv.Atoi(r.URL.Query().Get("MaxItems")); err == nil && m < size {
		size = m
	}
	end := min(start+size, len(all))
	out := map[string]any{"Versions": all[start:end]}
	if end < len(all) {
		out["NextMarker"] = strconv.Itoa(end)
	}
	writeJSON(w, 200, out)
}

// alias answers CreateAlias, GetAlias and UpdateAlias; UpdateAlias checks
// the RevisionId it is given, as Lambda does.
func (f *fakeLambda) alias(w http.ResponseWriter, op string, fn *fakeFunc, parts []string, body map[string]any, arn string) {
	name, _ := body["Name"].(string)
	if len(parts) == 5 {
		name = parts[4]
	}
	a := fn.aliases[name]
	switch {
	case op == "CreateAlias" && a != nil:
		writeErr(w, 409, "ResourceConflictException", "Alias already exists: "+arn+":"+name)
		return
	case op != "CreateAlias" && a == nil:
		writeErr(w, 404, "ResourceNotFoundException", "Cannot find alias arn: "+arn+":"+name)
		return
	case op == "GetAlias":
		writeJSON(w, 200, a)
		return
	case op == "UpdateAlias" && body["RevisionId"] != nil && body["RevisionId"] != a["RevisionId"]:
		writeErr(w, 412, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id.")
		return
	}
	v, _ := body["FunctionVersion"].(string)
	if fn.version(v) == nil {
		writeErr(w, 404, "ResourceNotFoundException", "Function not found: "+arn+":"+v)
		return
	}
	status := 200
	if a == nil {
		a, status = map[string]any{"AliasArn": arn + ":" + name, "Name": name}, 201
		fn.aliases[name] = a
	}
	fn.revisions++
	a["FunctionVersion"], a["RevisionId"] = v, fmt.Sprintf("rev-%d", fn.revisions)
	if d, ok := body["Description"]; ok {
		a["Description"] = d
	}
	writeJSON(w, status, a)
}

// listFunctions answers one page of ListFunctions, by name, with the
// subset of each configuration Lambda lists: no state.
func (f *fakeLambda) listFunctions(w http.ResponseWriter, r *http.Request) {
	names := slices.Sorted(maps.Keys(f.funcs))
	start := 0
	if m := r.URL.Query().Get("Marker"); m != "" {
		start = slices.Index(names, m)
		if start < 0 {
			writeErr(w, 400, "InvalidParameterValueException", "bad marker "+m)
			return
		}
	}
	end := min(start+f.pageSize, len(names))
	page := []map[string]any{}
	for _, n := range names[start:end] {
		c := maps.Clone(f.funcs[n].config)
		for _, k := range []string{"State", "StateReason", "StateReasonCode", "LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode"} {
			delete(c, k)
		}
		page = append(page, c)
	}
	out := map[string]any{"Functions": page}
	if end < len(names) {
		out["NextMarker"] = names[end]
	}
	writeJSON(w, 200, out)
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

// client is the real SDK client pointed at the fake, with static
// credentials and no back-off between retries (the retry count and the
// throttle handling are the SDK's own).
func client(t *testing.T, f *fakeLambda) *awslambda.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	cfg := aws.Config{
		Region:      region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			})
		},
	}
	return awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
}

func zipFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lambda.zip")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func function(zip, auth string) lambda.Function {
	return lambda.Function{Name: "iris", Zip: zip, Arch: "arm64", Memory: 1024, Timeout: 35,
		Env: map[string]string{"CORTEX_CONFIG": "/var/task/cortex.json"}, URLAuth: auth}
}

var fast = lambda.Options{Role: "arn:aws:iam::123456789012:role/cortex", PollInterval: time.Millisecond, Timeout: 10 * time.Second}

func check(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %v\nwant %v", what, got, want)
	}
}

func TestDeployPublicCreateThenIdempotent(t *testing.T) {
	f := newFake()
	api := client(t, f)
	ctx := context.Background()
	zip := zipFile(t, "zip v1")

	res, err := lambda.Deploy(ctx, api, function(zip, "NONE"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "first deploy calls", f.log(), []string{
		"GetFunction", "CreateFunction", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"PublishVersion", "CreateAlias",
		"CreateFunctionUrlConfig:live", "AddPermission:live", "AddPermission:live",
	})
	check(t, "action", res.Action, "created")
	check(t, "version", res.Version, "1")
	check(t, "url", res.URL, irisURL)
	check(t, "publish expects the zip's code", f.bodies["PublishVersion"]["CodeSha256"], sha([]byte("zip v1")))
	check(t, "publish says who", f.bodies["PublishVersion"]["Description"], "cortex deploy of iris, code sha256 "+sha([]byte("zip v1")))
	check(t, "alias", f.funcs["iris"].aliases["live"]["FunctionVersion"], "1")
	check(t, "no URL on the function itself", f.funcs["iris"].urls[""], map[string]any(nil))
	check(t, "arn", res.ARN, "arn:aws:lambda:"+region+":"+account+":function:iris")

	cfg := f.funcs["iris"].config
	check(t, "runtime", cfg["Runtime"], "provided.al2023")
	check(t, "handler", cfg["Handler"], "bootstrap")
	check(t, "architectures", cfg["Architectures"], []any{"arm64"})
	check(t, "memory", cfg["MemorySize"], 1024.0)
	check(t, "timeout", cfg["Timeout"], 35.0)
	check(t, "role", cfg["Role"], fast.Role)
	check(t, "env", cfg["Environment"], map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json"}})
	check(t, "url auth", f.funcs["iris"].urls["live"]["AuthType"], "NONE")
	var actions []any
	for _, s := range f.funcs["iris"].policies["live"] {
		actions = append(actions, s["Action"])
	}
	check(t, "permissions", actions, []any{"lambda:InvokeFunctionUrl", "lambda:InvokeFunction"})
	check(t, "InvokeFunction only via the URL", f.bodies["AddPermission"]["InvokedViaFunctionUrl"], true)

	// The same zip and spec again: reads only.
	f.reset()
	res, err = lambda.Deploy(ctx, api, function(zip, "NONE"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "second deploy calls", f.log(), []string{"GetFunction", "GetAlias", "GetFunction:1", "GetFunctionUrlConfig:live", "GetPolicy:live"})
	check(t, "second action", res.Action, "unchanged")
	check(t, "second version", res.Version, "1")
	check(t, "second url", res.URL, irisURL)
	check(t, "versions", len(f.funcs["iris"].versions), 1)
}

func TestDeployUpdate(t *testing.T) {
	f := newFake()
	api := client(t, f)
	ctx := context.Background()
	if _, err := lambda.Deploy(ctx, api, function(zipFile(t, "zip v1"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	// Someone adds an environment variable; the update keeps it.
	f.funcs["iris"].config["Environment"] = map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json", "LOG_LEVEL": "debug"}}
	f.reset()
	fn := function(zipFile(t, "zip v2"), "AWS_IAM")
	fn.Memory = 2048
	res, err := lambda.Deploy(ctx, api, fn, fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "update calls", f.log(), []string{
		"GetFunction",
		"UpdateFunctionConfiguration", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"UpdateFunctionCode", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"GetAlias", "PublishVersion", "UpdateAlias",
		"GetFunctionUrlConfig:live", "GetPolicy:live",
	})
	check(t, "action", res.Action, "updated")
	check(t, "version", res.Version, "2")
	check(t, "alias", f.funcs["iris"].aliases["live"]["FunctionVersion"], "2")
	check(t, "version 2's memory", f.funcs["iris"].versions[1]["MemorySize"], 2048.0)
	check(t, "version 1 keeps its code", f.funcs["iris"].versions[0]["CodeSha256"], sha([]byte("zip v1")))
	check(t, "the alias update says which revision it changes", f.bodies["UpdateAlias"]["RevisionId"], "rev-1")
	cfg := f.funcs["iris"].config
	check(t, "memory", cfg["MemorySize"], 2048.0)
	check(t, "code", cfg["CodeSha256"], sha([]byte("zip v2")))
	check(t, "env keeps others' variables", cfg["Environment"], map[string]any{"Variables": map[string]any{"CORTEX_CONFIG": "/var/task/cortex.json", "LOG_LEVEL": "debug"}})
	check(t, "the update body names only the changed fields", keys(f.bodies["UpdateFunctionConfiguration"]), []string{"MemorySize"})
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDeployPublicThenPrivate(t *testing.T) {
	f := newFake()
	api := client(t, f)
	ctx := context.Background()
	zip := zipFile(t, "zip v1")
	if _, err := lambda.Deploy(ctx, api, function(zip, "NONE"), fast); err != nil {
		t.Fatal(err)
	}
	f.reset()
	res, err := lambda.Deploy(ctx, api, function(zip, "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.log(), []string{"GetFunction", "GetAlias", "GetFunction:1",
		"GetFunctionUrlConfig:live", "UpdateFunctionUrlConfig:live", "GetPolicy:live", "RemovePermission:live", "RemovePermission:live"})
	check(t, "auth", f.funcs["iris"].urls["live"]["AuthType"], "AWS_IAM")
	check(t, "policy", len(f.funcs["iris"].policies["live"]), 0)
	check(t, "action", res.Action, "updated")
	check(t, "no new version for a URL change", res.Version, "1")
}

func TestDeployThrottlingIsRetried(t *testing.T) {
	f := newFake()
	f.failNext("CreateFunction", 2, 429, "TooManyRequestsException", "Rate exceeded")
	f.failNext("GetFunctionConfiguration", 1, 429, "TooManyRequestsException", "Rate exceeded")
	res, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "calls", f.log(), []string{
		"GetFunction", "CreateFunction", "CreateFunction", "CreateFunction",
		"GetFunctionConfiguration", "GetFunctionConfiguration", "GetFunctionConfiguration",
		"PublishVersion", "CreateAlias", "CreateFunctionUrlConfig:live",
	})
	check(t, "action", res.Action, "created")
}

func TestDeployAccessDenied(t *testing.T) {
	f := newFake()
	msg := "User: arn:aws:iam::123456789012:user/bob is not authorized to perform: lambda:CreateFunction on resource: arn:aws:lambda:eu-west-1:123456789012:function:iris because no identity-based policy allows the lambda:CreateFunction action"
	f.failNext("CreateFunction", 1, 403, "AccessDeniedException", msg)
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	var ae *lambda.AccessError
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T), want an *AccessError", err, err)
	}
	check(t, "op", ae.Op, "CreateFunction")
	check(t, "code", ae.Code, "AccessDeniedException")
	for _, want := range []string{"AWS refused CreateFunction", msg, "IAM policy must allow lambda:CreateFunction"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	check(t, "not retried, nothing after it", f.log(), []string{"GetFunction", "CreateFunction"})
}

func TestDeployBadCredentials(t *testing.T) {
	f := newFake()
	f.failNext("GetFunction", 1, 403, "UnrecognizedClientException", "The security token included in the request is invalid.")
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), fast)
	var ae *lambda.AccessError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "check your AWS credentials") {
		t.Fatalf("error %v, want an *AccessError about credentials", err)
	}
}

func TestDeployDryRun(t *testing.T) {
	f := newFake()
	o := fast
	o.DryRun = true
	res, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "NONE"), o)
	if err != nil {
		t.Fatal(err)
	}
	check(t, "server saw reads only", f.log(), []string{"GetFunction"})
	var plan []string
	for _, c := range res.Calls {
		plan = append(plan, fmt.Sprintf("%s planned=%v", c.Op, c.Planned))
	}
	check(t, "plan", plan, []string{
		"GetFunction planned=false", "CreateFunction planned=true", "PublishVersion planned=true", "CreateAlias planned=true",
		"CreateFunctionUrlConfig planned=true", "AddPermission planned=true", "AddPermission planned=true",
	})
	check(t, "action", res.Action, "create")
}

func TestDeployNeedsRoleToCreate(t *testing.T) {
	f := newFake()
	o := fast
	o.Role = ""
	_, err := lambda.Deploy(context.Background(), client(t, f), function(zipFile(t, "zip"), "AWS_IAM"), o)
	if !errors.Is(err, lambda.ErrNoRole) {
		t.Fatalf("error %v, want ErrNoRole", err)
	}
}

func TestDeployFailedUpdate(t *testing.T) {
	f := newFake()
	api := client(t, f)
	ctx := context.Background()
	if _, err := lambda.Deploy(ctx, api, function(zipFile(t, "v1"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	f.funcs["iris"].config["State"] = "Failed"
	f.funcs["iris"].config["StateReasonCode"] = "InvalidRuntime"
	f.funcs["iris"].config["StateReason"] = "The runtime parameter of provided.al2 is no longer supported"
	f.funcs["iris"].pending = 1 << 30
	_, err := lambda.Deploy(ctx, api, function(zipFile(t, "v2"), "AWS_IAM"), fast)
	if err == nil || !strings.Contains(err.Error(), "InvalidRuntime: The runtime parameter") {
		t.Fatalf("error %v, want the state reason", err)
	}
}

func TestURL(t *testing.T) {
	f := newFake()
	api := client(t, f)
	if _, err := lambda.URL(context.Background(), api, "iris"); err == nil {
		t.Fatal("URL of a missing function: no error")
	}
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip"), "AWS_IAM"), fast); err != nil {
		t.Fatal(err)
	}
	u, err := lambda.URL(context.Background(), api, "iris")
	check(t, "endpoint", u, lambda.Endpoint{URL: irisURL, IAM: true})
	check(t, "err", err, nil)
	if _, err := lambda.Deploy(context.Background(), api, function(zipFile(t, "zip"), "NONE"), fast); err != nil {
		t.Fatal(err)
	}
	u, err = lambda.URL(context.Background(), api, "iris")
	check(t, "public endpoint", u, lambda.Endpoint{URL: irisURL, IAM: false})
	check(t, "err", err, nil)
}
