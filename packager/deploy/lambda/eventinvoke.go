package lambda

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/cortexfn/cortex/packager/spec"
)

// eventInvokeConfig is the event-invoke configuration a deploy means,
// every value stated (Lambda's defaults where cortex.yaml says nothing),
// so that it compares with what Lambda reports.
type eventInvokeConfig struct {
	retries, age         int32
	onSuccess, onFailure string
}

func (c eventInvokeConfig) String() string {
	s := fmt.Sprintf("max retries %d, max event age %ds", c.retries, c.age)
	if c.onSuccess != "" {
		s += ", on success " + c.onSuccess
	}
	if c.onFailure != "" {
		s += ", on failure " + c.onFailure
	}
	return s
}

// wantEventInvoke checks a and turns it into the configuration to put.
// Lambda would refuse what it refuses too, but only after the function
// and its version are written: a deploy should stop before it starts.
func wantEventInvoke(a *spec.LambdaAsync) (eventInvokeConfig, error) {
	c := eventInvokeConfig{retries: spec.LambdaMaxRetries, age: int32(spec.LambdaMaxEventAge / time.Second),
		onSuccess: a.OnSuccess, onFailure: a.OnFailure}
	var errs []error
	if a.MaxRetries != nil {
		if r := *a.MaxRetries; r < 0 || r > spec.LambdaMaxRetries {
			errs = append(errs, fmt.Errorf("targets.lambda.async.max_retries %d is out of range: Lambda retries an asynchronous invoke 0 to 2 times", r))
		}
		c.retries = int32(*a.MaxRetries)
	}
	if age := a.MaxEventAge; age != 0 {
		if age < spec.LambdaMinEventAge || age > spec.LambdaMaxEventAge || age%time.Second != 0 {
			errs = append(errs, fmt.Errorf("targets.lambda.async.max_event_age %s is out of range: Lambda keeps an event 60s to 6h, in whole seconds", age))
		}
		c.age = int32(age / time.Second)
	}
	if a.OnSuccess != "" {
		if _, err := spec.DestinationType(a.OnSuccess, false); err != nil {
			errs = append(errs, fmt.Errorf("targets.lambda.async.on_success: %w", err))
		}
	}
	if a.OnFailure != "" {
		if _, err := spec.DestinationType(a.OnFailure, true); err != nil {
			errs = append(errs, fmt.Errorf("targets.lambda.async.on_failure: %w", err))
		}
	}
	return c, errors.Join(errs...)
}

// haveEventInvoke is the configuration Lambda reports, with its defaults
// where it leaves a value out.
func haveEventInvoke(out *lambda.GetFunctionEventInvokeConfigOutput) eventInvokeConfig {
	c := eventInvokeConfig{retries: spec.LambdaMaxRetries, age: int32(spec.LambdaMaxEventAge / time.Second)}
	if out.MaximumRetryAttempts != nil {
		c.retries = *out.MaximumRetryAttempts
	}
	if out.MaximumEventAgeInSeconds != nil {
		c.age = *out.MaximumEventAgeInSeconds
	}
	if d := out.DestinationConfig; d != nil {
		if d.OnSuccess != nil {
			c.onSuccess = aws.ToString(d.OnSuccess.Destination)
		}
		if d.OnFailure != nil {
			c.onFailure = aws.ToString(d.OnFailure.Destination)
		}
	}
	return c
}

// eventInvoke makes the alias's event-invoke configuration what
// fn.Async says: GetFunctionEventInvokeConfig:live (when the alias was
// there before, so may have one), then PutFunctionEventInvokeConfig:live
// when it differs, or DeleteFunctionEventInvokeConfig:live when
// cortex.yaml has none. It is on the alias, not on a version: it stays
// across deploys and rollbacks, as the URL does, and applies to
// asynchronous invokes of NAME:live.
func (d *deployer) eventInvoke(ctx context.Context, fn Function, aliasExisted bool) error {
	var cur *lambda.GetFunctionEventInvokeConfigOutput
	if aliasExisted {
		err := d.read("GetFunctionEventInvokeConfig", qualified(fn.Name, Alias), func() (err error) {
			cur, err = d.api.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(fn.Name), Qualifier: aws.String(Alias)})
			return err
		})
		if isNotFound(err) {
			cur, err = nil, nil
		}
		if err != nil {
			return err
		}
	}
	if fn.Async == nil {
		if cur == nil {
			return nil
		}
		d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
		return d.write("DeleteFunctionEventInvokeConfig", qualified(fn.Name, Alias)+" (targets.lambda.async is no longer in cortex.yaml: Lambda's defaults apply)", func() error {
			_, err := d.api.DeleteFunctionEventInvokeConfig(ctx, &lambda.DeleteFunctionEventInvokeConfigInput{FunctionName: aws.String(fn.Name), Qualifier: aws.String(Alias)})
			if isNotFound(err) {
				return nil
			}
			return err
		})
	}
	want, _ := wantEventInvoke(fn.Async) // checked before the first write
	if cur != nil && haveEventInvoke(cur) == want {
		return nil
	}
	in := &lambda.PutFunctionEventInvokeConfigInput{
		FunctionName:             aws.String(fn.Name),
		Qualifier:                aws.String(Alias),
		MaximumRetryAttempts:     aws.Int32(want.retries),
		MaximumEventAgeInSeconds: aws.Int32(want.age),
	}
	if want.onSuccess != "" || want.onFailure != "" {
		in.DestinationConfig = &types.DestinationConfig{}
		if want.onSuccess != "" {
			in.DestinationConfig.OnSuccess = &types.OnSuccess{Destination: aws.String(want.onSuccess)}
		}
		if want.onFailure != "" {
			in.DestinationConfig.OnFailure = &types.OnFailure{Destination: aws.String(want.onFailure)}
		}
	}
	detail := want.String()
	if cur != nil {
		detail = haveEventInvoke(cur).String() + " -> " + detail
	}
	d.res.Action = orUpdate(d.res.Action, d.o.DryRun)
	return d.write("PutFunctionEventInvokeConfig", qualified(fn.Name, Alias)+" ("+detail+")", func() error {
		_, err := d.api.PutFunctionEventInvokeConfig(ctx, in)
		var bad *types.InvalidParameterValueException
		if errors.As(err, &bad) {
			return fmt.Errorf("%w (a destination must exist, in the function's region, and the function's execution role must be allowed to send to it)", err)
		}
		return err
	})
}
