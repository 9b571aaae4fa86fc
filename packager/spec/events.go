package spec

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"
)

// LambdaAsync is targets.lambda.async.* in cortex.yaml: the event-invoke
// configuration of the function's alias, which governs Lambda's own
// asynchronous invoke (InvocationType Event). Nil when the section is not
// there: a deploy then removes any such configuration, and Lambda's
// defaults (2 retries, events kept 6 hours, no destinations) apply.
type LambdaAsync struct {
	// MaxRetries is how many times Lambda retries a failed asynchronous
	// invoke, 0 to 2. Nil: Lambda's default, 2 (SetDefaults fills it).
	MaxRetries *int `yaml:"max_retries"`
	// MaxEventAge is how long Lambda keeps an event it has not yet
	// handed to the function, 60s to 6h in whole seconds. Zero: Lambda's
	// default, 6h (SetDefaults fills it).
	MaxEventAge time.Duration `yaml:"max_event_age"`
	// OnSuccess and OnFailure are destination ARNs (an SQS queue, an SNS
	// topic, a Lambda function or an EventBridge event bus; OnFailure also
	// an S3 bucket) that get a record of each invoke's outcome.
	OnSuccess string `yaml:"on_success"`
	OnFailure string `yaml:"on_failure"`
}

// Bounds Lambda puts on an event-invoke configuration.
const (
	LambdaMaxRetries     = 2
	LambdaMinEventAge    = 60 * time.Second
	LambdaMaxEventAge    = 6 * time.Hour
	DefaultTriggerBroker = "default"
)

// Trigger is targets.knative.trigger.* in cortex.yaml: a Knative Eventing
// Trigger that sends the broker's CloudEvents to the function's Service.
// The Service's answer, a CloudEvent, goes back to the broker (Eventing's
// reply), where other Triggers pick it up by its type. Nil when the
// section is not there: a deploy then deletes the function's Trigger.
type Trigger struct {
	// Broker names the Broker in the function's namespace. Default
	// "default".
	Broker string `yaml:"broker"`
	// Filter keeps the events whose CloudEvent attributes (type, source,
	// or an extension) equal these values; empty: every event.
	Filter map[string]string `yaml:"filter"`
}

// DestinationType is the kind of AWS resource an event-invoke destination
// ARN names, as SAM's DestinationConfig Type spells it: SQS, SNS, Lambda,
// EventBridge or S3. It returns an error saying what is wrong with an ARN
// that names none of them; onFailure allows S3, which Lambda takes for
// failures only.
func DestinationType(arn string, onFailure bool) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || parts[2] == "" || parts[5] == "" {
		return "", fmt.Errorf("%q is not an ARN (arn:aws:SERVICE:REGION:ACCOUNT:RESOURCE)", arn)
	}
	service, region, account, resource := parts[2], parts[3], parts[4], parts[5]
	regional := region != "" && account != ""
	switch {
	case service == "sqs" && regional && !strings.ContainsAny(resource, ":/"):
		return "SQS", nil
	case service == "sns" && regional && !strings.ContainsAny(resource, ":/"):
		return "SNS", nil
	case service == "lambda" && regional && strings.HasPrefix(resource, "function:") && len(resource) > len("function:"):
		return "Lambda", nil
	case service == "events" && regional && strings.HasPrefix(resource, "event-bus/") && len(resource) > len("event-bus/"):
		return "EventBridge", nil
	case service == "s3" && region == "" && account == "" && !strings.Contains(resource, "/"):
		if !onFailure {
			return "", fmt.Errorf("%q is an S3 bucket, which Lambda takes as an on_failure destination only", arn)
		}
		return "S3", nil
	}
	return "", fmt.Errorf("%q is not the ARN of an SQS queue, SNS topic, Lambda function (function:NAME) or EventBridge event bus (event-bus/NAME)%s", arn, map[bool]string{true: " or S3 bucket", false: ""}[onFailure])
}

// setEventDefaults fills the defaults of targets.knative.trigger and
// targets.lambda.async, when they are there: Lambda's own for the latter,
// so that a deploy states every value it means.
func (s *Spec) setEventDefaults() {
	if t := s.Targets.Knative.Trigger; t != nil && t.Broker == "" {
		t.Broker = DefaultTriggerBroker
	}
	if a := s.Targets.Lambda.Async; a != nil {
		if a.MaxRetries == nil {
			r := LambdaMaxRetries
			a.MaxRetries = &r
		}
		if a.MaxEventAge == 0 {
			a.MaxEventAge = LambdaMaxEventAge
		}
	}
}

// events checks targets.lambda.async and targets.knative.trigger.
func (v *validator) events() {
	if a := v.s.Targets.Lambda.Async; a != nil {
		if r := a.MaxRetries; r != nil && (*r < 0 || *r > LambdaMaxRetries) {
			v.add("targets.lambda.async.max_retries", "%d is out of range; Lambda retries an asynchronous invoke 0 to 2 times", *r)
		}
		switch age := a.MaxEventAge; {
		case age == 0:
		case age < LambdaMinEventAge || age > LambdaMaxEventAge:
			v.add("targets.lambda.async.max_event_age", "%s is out of range; Lambda keeps an event 60s to 6h", age)
		case age%time.Second != 0:
			v.add("targets.lambda.async.max_event_age", "%s is not whole seconds", age)
		}
		for _, d := range []struct {
			path, arn string
			failure   bool
		}{{"targets.lambda.async.on_success", a.OnSuccess, false}, {"targets.lambda.async.on_failure", a.OnFailure, true}} {
			if d.arn == "" {
				continue
			}
			if _, err := DestinationType(d.arn, d.failure); err != nil {
				v.add(d.path, "%s", err.Error())
			}
		}
	}
	if t := v.s.Targets.Knative.Trigger; t != nil {
		if t.Broker != "" && len(validation.IsDNS1123Subdomain(t.Broker)) > 0 {
			v.add("targets.knative.trigger.broker", "%q is not a Broker name; use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit", t.Broker)
		}
		for _, name := range slices.Sorted(maps.Keys(t.Filter)) {
			p := "targets.knative.trigger.filter[" + name + "]"
			switch {
			case !ceAttribute(name):
				v.add(p, "%q is not a CloudEvent attribute name: a lower-case letter, then lower-case letters and digits (type, source, or an extension)", name)
			case t.Filter[name] == "":
				v.add(p, "is empty; leave %s out to take any value", name)
			}
		}
	}
}

// ceAttribute reports whether name is an attribute name a Trigger's
// filter takes: a lower-case letter, then lower-case letters and digits,
// as Eventing's webhook checks (CloudEvents names are lower-case
// alphanumeric).
func ceAttribute(name string) bool {
	if name == "" || name[0] < 'a' || name[0] > 'z' {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}
