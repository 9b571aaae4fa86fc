// Package lambdatest is a fake of the part of the AWS Lambda REST API that
// packager/deploy/lambda calls, for tests: AWS itself cannot run here (no
// account, no network). Tests run the real AWS SDK client, with its HTTP,
// signing, retry and error decoding, against it. It has Lambda's paths,
// status codes, error headers and asynchronous states (Pending -> Active
// after a create, InProgress -> Successful after an update), published
// versions, aliases, and the Qualifier that puts a function URL and
// resource-policy statements on an alias. Its log names a call on a
// qualifier op:qualifier (GetFunctionUrlConfig:live).
package lambdatest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Fake is the Lambda REST API subset, for one account and region
// (Account, Region). It is an http.Handler: serve it with httptest and
// point the SDK's client at it. Its fields are for tests to read and
// set between calls, never during one.
type Fake struct {
	mu    sync.Mutex
	calls []string
	Funcs map[string]*Func
	// fail, keyed by operation, answers the next n calls with an error.
	fail map[string]*fakeError
	// Bodies keeps the last request body per operation.
	Bodies map[string]map[string]any
	// PageSize is how many functions a ListFunctions page holds (Lambda:
	// up to 50).
	PageSize int
	// HideTags makes GetFunction answer a TagsError, as Lambda does to a
	// caller not allowed lambda:ListTags.
	HideTags bool
	// PullImage, when set, is asked for the image of each CreateFunction
	// and UpdateFunctionCode of a container-image function, as Lambda
	// pulls it from Amazon ECR then: its error is Lambda's
	// InvalidParameterValueException for an image it cannot use. Tests
	// point it at the registry the image was pushed to.
	PullImage func(imageURI string) error
}

type fakeError struct {
	n      int
	status int
	code   string
	msg    string
}

// Func is one function the fake holds.
type Func struct {
	// Config is $LATEST.
	Config map[string]any
	// URLs and Policies are keyed by qualifier: "" is the function
	// itself, else an alias.
	URLs     map[string]map[string]any
	Policies map[string][]map[string]any
	Tags     map[string]any
	// Versions are the published versions, oldest first: each a copy of
	// config as it was, with its Version.
	Versions []map[string]any
	Aliases  map[string]map[string]any
	// EventInvoke holds the event-invoke configurations (asynchronous
	// invoke: retries, event age, destinations), keyed by qualifier.
	EventInvoke map[string]map[string]any
	// Images are a container-image function's image URIs, by version
	// ("$LATEST", "1", ...), as GetFunction reports them in Code.
	Images map[string]string
	// Changed: $LATEST changed since the last PublishVersion.
	Changed bool
	// Pending counts the reads before an asynchronous change completes.
	Pending int
	// revisions numbers alias revision ids.
	revisions int
}

func newFunc(config, tags map[string]any) *Func {
	config["Version"] = "$LATEST"
	return &Func{Config: config, Tags: tags, Changed: true,
		URLs: map[string]map[string]any{}, Policies: map[string][]map[string]any{}, Aliases: map[string]map[string]any{},
		EventInvoke: map[string]map[string]any{}, Images: map[string]string{}}
}

// version is the published version or alias q of the function, or nil.
func (fn *Func) version(q string) map[string]any {
	if a := fn.Aliases[q]; a != nil {
		q = a["FunctionVersion"].(string)
	}
	for _, v := range fn.Versions {
		if v["Version"] == q {
			return v
		}
	}
	return nil
}

// New returns a Fake that holds no functions.
func New() *Fake {
	return &Fake{Funcs: map[string]*Func{}, fail: map[string]*fakeError{}, Bodies: map[string]map[string]any{}, PageSize: 50}
}

// Add puts an Active function there as someone else would make it: with
// the given runtime, environment and tags (nil: none).
func (f *Fake) Add(name, runtime string, env, tags map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Funcs[name] = newFunc(map[string]any{
		"FunctionName": name, "FunctionArn": "arn:aws:lambda:" + Region + ":" + Account + ":function:" + name,
		"Runtime": runtime, "Handler": "bootstrap", "MemorySize": 128, "Timeout": 3, "Architectures": []string{"x86_64"},
		"Environment": map[string]any{"Variables": env}, "CodeSha256": SHA([]byte(name)),
		"LastModified": "2026-01-02T03:04:05.000+0000", "State": "Active", "LastUpdateStatus": "Successful",
	}, tags)
}

// Log returns the calls made since the last Reset, in order.
func (f *Fake) Log() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// Reset empties the log.
func (f *Fake) Reset() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

// FailNext answers the next n calls of op with status and the error code
// and message Lambda would send (429 comes with Retry-After: 0).
func (f *Fake) FailNext(op string, n, status int, code, msg string) {
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

// The account and region the fake is: its ARNs and URLs name them.
const (
	Region  = "eu-west-1"
	Account = "123456789012"
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

	"GET 2019-09-25/functions/*/event-invoke-config":    "GetFunctionEventInvokeConfig",
	"PUT 2019-09-25/functions/*/event-invoke-config":    "PutFunctionEventInvokeConfig",
	"DELETE 2019-09-25/functions/*/event-invoke-config": "DeleteFunctionEventInvokeConfig",
}

func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
	f.Bodies[op] = body
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
	fn := f.Funcs[name]
	if fn == nil && op != "CreateFunction" {
		writeErr(w, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:"+Region+":"+Account+":function:"+name)
		return
	}
	arn := "arn:aws:lambda:" + Region + ":" + Account + ":function:" + name
	if q != "" && op != "GetFunction" {
		if fn.Aliases[q] == nil {
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
		config := map[string]any{
			"FunctionName": name, "FunctionArn": arn, "Runtime": body["Runtime"], "Handler": body["Handler"],
			"Role": body["Role"], "MemorySize": body["MemorySize"], "Timeout": body["Timeout"],
			"Architectures": body["Architectures"], "Environment": map[string]any{"Variables": body["Environment"].(map[string]any)["Variables"]},
			"State": "Pending", "LastUpdateStatus": "InProgress", "PackageType": "Zip",
			"LastModified": "2026-01-01T00:00:00.000+0000",
		}
		image := ""
		switch body["PackageType"] {
		case "Image":
			image, _ = code["ImageUri"].(string)
			sum, msg := f.pull(image)
			if msg == "" && (body["Runtime"] != nil || body["Handler"] != nil) {
				msg = "Runtime and Handler are not supported for the Image package type."
			}
			if msg != "" {
				writeErr(w, 400, "InvalidParameterValueException", msg)
				return
			}
			delete(config, "Runtime")
			delete(config, "Handler")
			config["PackageType"], config["CodeSha256"] = "Image", sum
		default:
			zipB64, ok := code["ZipFile"].(string)
			if !ok || body["Runtime"] == nil || body["Handler"] == nil {
				writeErr(w, 400, "InvalidParameterValueException", "A Zip function needs Code.ZipFile, Runtime and Handler.")
				return
			}
			zip, _ := base64.StdEncoding.DecodeString(zipB64)
			config["CodeSha256"] = SHA(zip)
		}
		fn = newFunc(config, body["Tags"].(map[string]any))
		if image != "" {
			fn.Images["$LATEST"] = image
		}
		fn.Pending = 1
		f.Funcs[name] = fn
		writeJSON(w, 201, fn.Config)
	case "GetFunction":
		config := fn.Config
		if q != "" && q != "$LATEST" {
			if config = fn.version(q); config == nil {
				writeErr(w, 404, "ResourceNotFoundException", "Function not found: "+arn+":"+q)
				return
			}
		}
		out := map[string]any{"Configuration": config, "Code": map[string]any{"RepositoryType": "S3"}}
		if image := fn.Images[config["Version"].(string)]; image != "" {
			out["Code"] = map[string]any{"RepositoryType": "ECR", "ImageUri": image, "ResolvedImageUri": image}
		}
		switch {
		case f.HideTags:
			out["TagsError"] = map[string]any{"ErrorCode": "AccessDeniedException", "Message": "not authorized to perform: lambda:ListTags"}
		case fn.Tags != nil:
			out["Tags"] = fn.Tags
		}
		writeJSON(w, 200, out)
	case "DeleteFunction":
		delete(f.Funcs, name)
		w.WriteHeader(204)
	case "DeleteFunctionUrlConfig":
		if fn.URLs[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		delete(fn.URLs, q)
		w.WriteHeader(204)
	case "GetFunctionConfiguration":
		if fn.Pending > 0 {
			fn.Pending--
		} else {
			fn.Config["State"], fn.Config["LastUpdateStatus"] = "Active", "Successful"
		}
		writeJSON(w, 200, fn.Config)
	case "UpdateFunctionConfiguration", "UpdateFunctionCode":
		if fn.Config["LastUpdateStatus"] == "InProgress" {
			writeErr(w, 409, "ResourceConflictException", "The operation cannot be performed at this time. An update is in progress for resource: "+arn)
			return
		}
		image := fn.Config["PackageType"] == "Image"
		switch {
		case op == "UpdateFunctionCode" && image && body["ImageUri"] == nil:
			writeErr(w, 400, "InvalidParameterValueException", "Please provide ImageUri when updating a function with packageType Image.")
			return
		case op == "UpdateFunctionCode" && !image && body["ImageUri"] != nil:
			writeErr(w, 400, "InvalidParameterValueException", "Please don't provide ImageUri when updating a function with packageType Zip.")
			return
		case op == "UpdateFunctionConfiguration" && image && (body["Runtime"] != nil || body["Handler"] != nil):
			writeErr(w, 400, "InvalidParameterValueException", "Runtime and Handler are not supported for the Image package type.")
			return
		}
		for k, v := range body {
			switch k {
			case "ZipFile":
				zip, _ := base64.StdEncoding.DecodeString(v.(string))
				fn.Config["CodeSha256"] = SHA(zip)
			case "ImageUri":
				sum, msg := f.pull(v.(string))
				if msg != "" {
					writeErr(w, 400, "InvalidParameterValueException", msg)
					return
				}
				fn.Config["CodeSha256"], fn.Images["$LATEST"] = sum, v.(string)
			default:
				fn.Config[k] = v
			}
		}
		fn.Config["LastUpdateStatus"], fn.Pending, fn.Changed = "InProgress", 1, true
		writeJSON(w, 200, fn.Config)
	case "PublishVersion":
		f.publish(w, fn, body, arn)
	case "ListVersionsByFunction":
		f.listVersions(w, r, fn)
	case "CreateAlias", "GetAlias", "UpdateAlias":
		f.alias(w, op, fn, parts, body, arn)
	case "GetFunctionUrlConfig":
		if fn.URLs[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		writeJSON(w, 200, fn.URLs[q])
	case "CreateFunctionUrlConfig":
		if fn.URLs[q] != nil {
			writeErr(w, 409, "ResourceConflictException", "Failed to create function url config for [functionArn = "+arn+"]. Error message:  FunctionUrlConfig exists for this Lambda function")
			return
		}
		id := name + "abc"
		if q != "" {
			id = name + q
		}
		fn.URLs[q] = map[string]any{"FunctionUrl": "https://" + id + ".lambda-url." + Region + ".on.aws/", "FunctionArn": arn,
			"AuthType": body["AuthType"], "InvokeMode": invokeMode(body), "CreationTime": "2026-01-01T00:00:00.000Z", "LastModifiedTime": "2026-01-01T00:00:00.000Z"}
		writeJSON(w, 201, fn.URLs[q])
	case "UpdateFunctionUrlConfig":
		if fn.URLs[q] == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		fn.URLs[q]["AuthType"] = body["AuthType"]
		if body["InvokeMode"] != nil {
			fn.URLs[q]["InvokeMode"] = body["InvokeMode"]
		}
		writeJSON(w, 200, fn.URLs[q])
	case "GetFunctionEventInvokeConfig", "PutFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig":
		f.eventInvoke(w, op, fn, q, body, arn)
	case "GetPolicy":
		if len(fn.Policies[q]) == 0 {
			writeErr(w, 404, "ResourceNotFoundException", "The resource you requested does not exist.")
			return
		}
		p, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Id": "default", "Statement": fn.Policies[q]})
		writeJSON(w, 200, map[string]any{"Policy": string(p), "RevisionId": "r1"})
	case "AddPermission":
		for _, s := range fn.Policies[q] {
			if s["Sid"] == body["StatementId"] {
				writeErr(w, 409, "ResourceConflictException", "The statement id ("+s["Sid"].(string)+") provided already exists.")
				return
			}
		}
		s := map[string]any{"Sid": body["StatementId"], "Effect": "Allow", "Principal": "*", "Action": body["Action"], "Resource": arn}
		fn.Policies[q] = append(fn.Policies[q], s)
		b, _ := json.Marshal(s)
		writeJSON(w, 201, map[string]any{"Statement": string(b)})
	case "RemovePermission":
		sid := parts[4]
		for i, s := range fn.Policies[q] {
			if s["Sid"] == sid {
				fn.Policies[q] = slices.Delete(fn.Policies[q], i, i+1)
				w.WriteHeader(204)
				return
			}
		}
		writeErr(w, 404, "ResourceNotFoundException", "Statement "+sid+" is not found in resource policy.")
	}
}

// eventInvoke answers the event-invoke configuration calls as Lambda
// does: Put replaces the whole configuration (a value left out is
// Lambda's default again) after checking its bounds and that each
// destination is an ARN; Get and Delete of none are 404.
func (f *Fake) eventInvoke(w http.ResponseWriter, op string, fn *Func, q string, body map[string]any, arn string) {
	cur := fn.EventInvoke[q]
	switch op {
	case "GetFunctionEventInvokeConfig", "DeleteFunctionEventInvokeConfig":
		if cur == nil {
			writeErr(w, 404, "ResourceNotFoundException", "The function "+arn+" doesn't have an EventInvokeConfig")
			return
		}
		if op == "GetFunctionEventInvokeConfig" {
			writeJSON(w, 200, cur)
			return
		}
		delete(fn.EventInvoke, q)
		w.WriteHeader(204)
		return
	}
	if r, ok := body["MaximumRetryAttempts"].(float64); ok && (r < 0 || r > 2) {
		writeErr(w, 400, "InvalidParameterValueException", "1 validation error detected: Value at 'maximumRetryAttempts' failed to satisfy constraint: Member must have value less than or equal to 2")
		return
	}
	if a, ok := body["MaximumEventAgeInSeconds"].(float64); ok && (a < 60 || a > 21600) {
		writeErr(w, 400, "InvalidParameterValueException", "1 validation error detected: Value at 'maximumEventAgeInSeconds' failed to satisfy constraint: Member must have value between 60 and 21600")
		return
	}
	c := map[string]any{"FunctionArn": arn, "LastModified": 1767225600}
	for _, k := range []string{"MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"} {
		if v, ok := body[k]; ok {
			c[k] = v
		}
	}
	if dc, ok := body["DestinationConfig"].(map[string]any); ok {
		for _, k := range []string{"OnSuccess", "OnFailure"} {
			d, _ := dc[k].(map[string]any)
			if dest, _ := d["Destination"].(string); d != nil && !strings.HasPrefix(dest, "arn:") {
				writeErr(w, 400, "InvalidParameterValueException", "The destination ARN "+dest+" is invalid.")
				return
			}
		}
	}
	fn.EventInvoke[q] = c
	writeJSON(w, 200, c)
}

// publish answers PublishVersion as Lambda does: refused while an update
// is in progress or when $LATEST's code is not the expected CodeSha256;
// the newest version again when $LATEST has not changed since it was
// published; else a new version, numbered from 1.
func (f *Fake) publish(w http.ResponseWriter, fn *Func, body map[string]any, arn string) {
	if fn.Config["LastUpdateStatus"] == "InProgress" {
		writeErr(w, 409, "ResourceConflictException", "The operation cannot be performed at this time. An update is in progress for resource: "+arn)
		return
	}
	if want, ok := body["CodeSha256"]; ok && want != fn.Config["CodeSha256"] {
		writeErr(w, 412, "PreconditionFailedException", "CodeSHA256 ("+want.(string)+") is different from current CodeSHA256 in $LATEST ("+fn.Config["CodeSha256"].(string)+"). Please try again with the CodeSHA256 in $LATEST.")
		return
	}
	if !fn.Changed && len(fn.Versions) > 0 {
		writeJSON(w, 201, fn.Versions[len(fn.Versions)-1])
		return
	}
	v := maps.Clone(fn.Config)
	n := strconv.Itoa(len(fn.Versions) + 1)
	if image := fn.Images["$LATEST"]; image != "" {
		fn.Images[n] = image
	}
	v["Version"], v["FunctionArn"], v["Description"] = n, arn+":"+n, body["Description"]
	fn.Versions = append(fn.Versions, v)
	fn.Changed = false
	writeJSON(w, 201, v)
}

// listVersions answers one page of ListVersionsByFunction: $LATEST, then
// the published versions, pageSize (or MaxItems) at a time.
func (f *Fake) listVersions(w http.ResponseWriter, r *http.Request, fn *Func) {
	all := append([]map[string]any{fn.Config}, fn.Versions...)
	start, size := 0, f.PageSize
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
func (f *Fake) alias(w http.ResponseWriter, op string, fn *Func, parts []string, body map[string]any, arn string) {
	name, _ := body["Name"].(string)
	if len(parts) == 5 {
		name = parts[4]
	}
	a := fn.Aliases[name]
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
		fn.Aliases[name] = a
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
func (f *Fake) listFunctions(w http.ResponseWriter, r *http.Request) {
	names := slices.Sorted(maps.Keys(f.Funcs))
	start := 0
	if m := r.URL.Query().Get("Marker"); m != "" {
		start = slices.Index(names, m)
		if start < 0 {
			writeErr(w, 400, "InvalidParameterValueException", "bad marker "+m)
			return
		}
	}
	end := min(start+f.PageSize, len(names))
	page := []map[string]any{}
	for _, n := range names[start:end] {
		c := maps.Clone(f.Funcs[n].Config)
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

// pull checks an image URI as Lambda does when a function is created or
// updated from it: by digest or tag, and (with PullImage) pullable. It
// returns the CodeSha256 the fake reports for it (the digest's hex when
// the URI has one), or the message of Lambda's refusal.
func (f *Fake) pull(uri string) (sum, msg string) {
	if uri == "" {
		return "", "Code.ImageUri is required for the Image package type."
	}
	if f.PullImage != nil {
		if err := f.PullImage(uri); err != nil {
			return "", "Source image " + uri + " is not valid: " + err.Error()
		}
	}
	_, hex, ok := strings.Cut(uri, "@sha256:")
	if !ok {
		hex = fmt.Sprintf("%x", sha256.Sum256([]byte(uri)))
	}
	return hex, ""
}

// SHA is how Lambda reports a zip's CodeSha256: base64 of its SHA-256.
func SHA(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

var _ http.Handler = (*Fake)(nil)

// invokeMode is a URL config's InvokeMode as Lambda stores it: BUFFERED
// when the request names none.
func invokeMode(body map[string]any) any {
	if m, ok := body["InvokeMode"]; ok && m != "" {
		return m
	}
	return "BUFFERED"
}
