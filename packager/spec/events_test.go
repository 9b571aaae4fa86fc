package spec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
)

// TestEventProblems: targets.lambda.async and targets.knative.trigger are
// read, and each mistake is reported at its path and line with the fix.
func TestEventProblems(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./predictor}\n"
	tests := []struct {
		name string
		yaml string
		want []string // "line: path: message substring", one per problem
	}{
		{"lambda async", base + "targets:\n  lambda:\n    async:\n      max_retries: 0\n      max_event_age: 1h\n" +
			"      on_success: arn:aws:sqs:eu-west-1:123456789012:done\n      on_failure: arn:aws:s3:::failed-events\n", nil},
		{"lambda async destinations", base + "targets: {lambda: {async: {on_success: \"arn:aws:events:eu-west-1:123456789012:event-bus/default\", on_failure: \"arn:aws-cn:lambda:cn-north-1:123456789012:function:dlq:live\"}}}\n", nil},
		{"lambda async bounds", base + "targets: {lambda: {async: {max_retries: 3, max_event_age: 30s}}}\n", []string{
			`3: targets.lambda.async.max_retries: 3 is out of range; Lambda retries an asynchronous invoke 0 to 2 times`,
			`3: targets.lambda.async.max_event_age: 30s is out of range; Lambda keeps an event 60s to 6h`}},
		{"lambda async fractional age", base + "targets: {lambda: {async: {max_event_age: 90500ms}}}\n", []string{
			`3: targets.lambda.async.max_event_age: 1m30.5s is not whole seconds`}},
		{"lambda async bad arns", base + "targets:\n  lambda:\n    async:\n      on_success: arn:aws:s3:::bucket\n      on_failure: my-queue\n", []string{
			`6: targets.lambda.async.on_success: "arn:aws:s3:::bucket" is an S3 bucket, which Lambda takes as an on_failure destination only`,
			`7: targets.lambda.async.on_failure: "my-queue" is not an ARN`}},
		{"lambda async other service", base + "targets: {lambda: {async: {on_failure: \"arn:aws:dynamodb:eu-west-1:123456789012:table/t\"}}}\n", []string{
			`is not the ARN of an SQS queue, SNS topic, Lambda function (function:NAME) or EventBridge event bus (event-bus/NAME) or S3 bucket`}},
		{"lambda async unknown key", base + "targets: {lambda: {async: {retries: 1}}}\n", []string{`3: targets.lambda.async.retries: unknown key`}},

		{"trigger", base + "targets:\n  knative:\n    trigger:\n      broker: reviews\n      filter: {type: com.example.review, source: /shop, tenant1: acme}\n", nil},
		{"trigger empty", base + "targets: {knative: {trigger: {}}}\n", nil},
		{"trigger bad broker", base + "targets: {knative: {trigger: {broker: My_Broker}}}\n", []string{
			`3: targets.knative.trigger.broker: "My_Broker" is not a Broker name`}},
		{"trigger bad filter", base + "targets:\n  knative:\n    trigger:\n      filter:\n        Type: x\n        1st: y\n        source: \"\"\n", []string{
			`7: targets.knative.trigger.filter[Type]: "Type" is not a CloudEvent attribute name`,
			`8: targets.knative.trigger.filter[1st]: "1st" is not a CloudEvent attribute name`,
			`targets.knative.trigger.filter[source]: is empty; leave source out`}},
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

// TestEventDefaults: a section that is there gets its defaults (Lambda's
// own for the event-invoke configuration); one that is not stays nil.
func TestEventDefaults(t *testing.T) {
	const base = "name: fn\npredictor: {type: go, path: ./predictor}\n"
	s, err := spec.Parse([]byte(base), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	if s.Targets.Lambda.Async != nil || s.Targets.Knative.Trigger != nil {
		t.Errorf("without the sections: async %+v, trigger %+v; want both nil", s.Targets.Lambda.Async, s.Targets.Knative.Trigger)
	}
	s, err = spec.Parse([]byte(base+"targets: {lambda: {async: {}}, knative: {trigger: {filter: {type: t}}}}\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	s.SetDefaults()
	a := s.Targets.Lambda.Async
	if a == nil || a.MaxRetries == nil || *a.MaxRetries != 2 || a.MaxEventAge != 6*time.Hour {
		t.Errorf("async = %+v, want 2 retries and 6h", a)
	}
	if tr := s.Targets.Knative.Trigger; tr == nil || tr.Broker != "default" || tr.Filter["type"] != "t" {
		t.Errorf("trigger = %+v, want broker default and the filter", tr)
	}
}

func TestDestinationType(t *testing.T) {
	for arn, want := range map[string]string{
		"arn:aws:sqs:eu-west-1:123456789012:q":                    "SQS",
		"arn:aws:sns:eu-west-1:123456789012:t":                    "SNS",
		"arn:aws:lambda:eu-west-1:123456789012:function:f":        "Lambda",
		"arn:aws:events:eu-west-1:123456789012:event-bus/default": "EventBridge",
		"arn:aws:s3:::bucket":                                     "S3",
	} {
		if got, err := spec.DestinationType(arn, true); got != want || err != nil {
			t.Errorf("DestinationType(%q) = %q, %v; want %q", arn, got, err, want)
		}
	}
}
