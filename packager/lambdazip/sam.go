package lambdazip

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cortexfn/cortex/packager/spec"
	"github.com/cortexfn/cortex/runtime"
)

// ConfigPath is where the runtime config lands in a Lambda function
// (/var/task is the unpacked zip); the template points $CORTEX_CONFIG at it.
const ConfigPath = "/var/task/cortex.json"

// ImageConfigPath is where the runtime config is in a Lambda container
// image: the image's /app (packager.AppDir), beside the binary.
const ImageConfigPath = "/app/cortex.json"

// Alias is the alias that serves a function: each deploy publishes a
// version and points the alias at it, and the function URL belongs to the
// alias, so a rollback is pointing the alias at an earlier version.
const Alias = "live"

// maxTimeout is Lambda's longest invocation.
const maxTimeout = 15 * time.Minute

// Timeout is the Lambda function timeout for s: limits.timeout plus a
// margin, so the function's own deadline answers (with a 504) before
// Lambda kills the invocation. At most 900 seconds.
func Timeout(s *spec.Spec) int {
	d := s.Limits.Timeout + 5*time.Second
	if d > maxTimeout {
		d = maxTimeout
	}
	return int(math.Ceil(d.Seconds()))
}

// lambdaEnvInvokeMode is adapters/lambda.EnvInvokeMode, which tells the
// function its URL's invoke mode (its events cannot): the packager does not
// import the carriers.
const lambdaEnvInvokeMode = "CORTEX_LAMBDA_INVOKE_MODE"

// Template returns an AWS SAM template (template.yaml) that declares the
// function from the zip at codeURI (relative to the template) and its
// function URL on the alias Alias (AutoPublishAlias: each sam deploy
// publishes a version and points the alias at it, as cortex deploy
// does): runtime provided.al2023, targets.lambda's architecture,
// memory, URL auth type (AWS_IAM unless the spec says NONE) and invoke
// mode (in the URL's config and the function's environment), and the
// timeout from limits.timeout. `sam deploy --guided` deploys it. Each
// wasm.secret_env variable, and auth's token variable, is a NoEcho
// parameter (its name without the underscores, as CloudFormation wants),
// which sam deploy asks for: no value is written into the template.
// targets.lambda.async becomes the function's EventInvokeConfig, which
// SAM puts on the alias as cortex deploy does, each destination with the
// Type its ARN names (SAM then gives the function's role permission to
// send there).
func Template(s *spec.Spec, codeURI string) ([]byte, error) {
	return writeTemplate(s, strconv.Quote(codeURI), "")
}

// TemplateImage is Template for a container-image function
// (PackageType Image): the image is the template parameter ImageUri,
// which defaults to imageURI (REPO@sha256:..., in Amazon ECR) when it is
// known, and which sam deploy asks for otherwise. There is no Runtime,
// Handler or CodeUri, and no Metadata: SAM's Metadata (Dockerfile,
// DockerContext) would make sam build build the image with Docker, and
// cortex package has built it; sam build skips an image function without
// Metadata, and sam deploy deploys the ImageUri as it is.
func TemplateImage(s *spec.Spec, imageURI string) ([]byte, error) {
	return writeTemplate(s, "", strconv.Quote(imageURI))
}

// writeTemplate writes the template of a zip at codeURI or, when it is empty,
// of the image imageURI (both quoted for YAML).
func writeTemplate(s *spec.Spec, codeURI, imageURI string) ([]byte, error) {
	type secret struct {
		Name, Param, Description string
		Token, Optional          bool
	}
	var secrets []secret
	seen := map[string]bool{}
	for i, e := range s.Secrets() {
		base := strings.ReplaceAll(e.Name, "_", "")
		param := base
		for n := i; seen[param]; n++ { // A_B and AB
			param = base + fmt.Sprint(n)
		}
		seen[param] = true
		what := "The value of the stage's secret " + e.Name + " (wasm.secret_env)"
		switch {
		case e.Token:
			what = "The bearer token callers must send (auth.token_env " + e.Name + "), such as the output of openssl rand -hex 32"
		case e.Webhook:
			what = "The secret webhooks are signed with (async.webhook_secret_env " + e.Name + "), whsec_ and base64 of at least 16 random bytes; empty for no webhooks"
		}
		secrets = append(secrets, secret{e.Name, param, what, e.Token, e.Webhook})
	}
	config := ConfigPath
	if codeURI == "" {
		config = ImageConfigPath
	}
	async, err := eventInvoke(s.Targets.Lambda.Async)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err = samTemplate.Execute(&b, map[string]any{
		"Async":   async,
		"Name":    s.Name,
		"CodeURI": codeURI,
		"Image":   imageURI,
		"Runtime": Runtime,
		"Arch":    s.Targets.Lambda.Arch,
		"Memory":  s.Targets.Lambda.Memory,
		"Timeout": Timeout(s),
		"Config":  config,
		"Auth":    s.Targets.Lambda.URLAuth,
		"Invoke":  cmp.Or(s.Targets.Lambda.InvokeMode, spec.DefaultInvokeMode),
		"EnvMode": lambdaEnvInvokeMode,
		"Alias":   Alias,
		"Secrets": secrets,
		// What the runtime takes as a token (runtime.CheckToken), so that
		// sam deploy refuses one the function would not start with.
		"TokenMin":     runtime.MinTokenLength,
		"TokenPattern": runtime.TokenPattern,
	})
	if err != nil {
		return nil, fmt.Errorf("writing the SAM template: %w", err)
	}
	return b.Bytes(), nil
}

// samEventInvoke is targets.lambda.async as the template writes it.
type samEventInvoke struct {
	Retries, Age int
	// Destinations are OnSuccess and OnFailure, those set.
	Destinations []samDestination
}

type samDestination struct {
	On, Type, ARN string
}

// eventInvoke is the EventInvokeConfig of a, or nil for none.
func eventInvoke(a *spec.LambdaAsync) (*samEventInvoke, error) {
	if a == nil {
		return nil, nil
	}
	c := &samEventInvoke{Retries: spec.LambdaMaxRetries, Age: int(spec.LambdaMaxEventAge / time.Second)}
	if a.MaxRetries != nil {
		c.Retries = *a.MaxRetries
	}
	if a.MaxEventAge != 0 {
		c.Age = int(a.MaxEventAge / time.Second)
	}
	for _, d := range []struct {
		on, arn string
	}{{"OnSuccess", a.OnSuccess}, {"OnFailure", a.OnFailure}} {
		if d.arn == "" {
			continue
		}
		typ, err := spec.DestinationType(d.arn, d.on == "OnFailure")
		if err != nil {
			return nil, fmt.Errorf("writing the SAM template: targets.lambda.async: %w", err)
		}
		c.Destinations = append(c.Destinations, samDestination{d.on, typ, strconv.Quote(d.arn)})
	}
	return c, nil
}

var samTemplate = template.Must(template.New("sam").Parse(`# AWS SAM template for the Cortex function {{.Name}}, written by cortex package.
# Deploy with: sam deploy --guided --template-file template.yaml
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: Cortex function {{.Name}}
{{- if or .Secrets .Image}}
Parameters:
{{- if .Image}}
  ImageUri:
    Type: String
{{- if ne .Image "\"\""}}
    Default: {{.Image}}
{{- end}}
    Description: The function's container image in Amazon ECR, by digest (REPO@sha256:...), in the function's region. cortex deploy --target lambda pushes dist/lambda-image there; or skopeo copy oci:dist/lambda-image:TAG docker://REPO:TAG
{{- end}}
{{- range .Secrets}}
  {{.Param}}:
    Type: String
    NoEcho: true
{{- if .Optional}}
    Default: ''
{{- end}}
    Description: {{.Description}}
{{- if .Token}}
    MinLength: {{$.TokenMin}}
    AllowedPattern: '{{$.TokenPattern}}'
    ConstraintDescription: at least {{$.TokenMin}} of the characters A-Z a-z 0-9 -._~+/ (then '=' padding), as the function requires
{{- end}}
{{- end}}
{{- end}}
Resources:
  Function:
    Type: AWS::Serverless::Function
    Properties:
{{- if .Image}}
      PackageType: Image
      ImageUri:
        Ref: ImageUri
{{- else}}
      CodeUri: {{.CodeURI}}
      Handler: bootstrap
      Runtime: {{.Runtime}}
{{- end}}
      Architectures:
        - {{.Arch}}
      MemorySize: {{.Memory}}
      Timeout: {{.Timeout}}
      AutoPublishAlias: {{.Alias}}
      Environment:
        Variables:
          CORTEX_CONFIG: {{.Config}}
          {{.EnvMode}}: {{.Invoke}}
{{- range .Secrets}}
          {{.Name}}:
            Ref: {{.Param}}
{{- end}}
      FunctionUrlConfig:
        AuthType: {{.Auth}}
        InvokeMode: {{.Invoke}}
{{- with .Async}}
      EventInvokeConfig:
        MaximumRetryAttempts: {{.Retries}}
        MaximumEventAgeInSeconds: {{.Age}}
{{- if .Destinations}}
        DestinationConfig:
{{- range .Destinations}}
          {{.On}}:
            Type: {{.Type}}
            Destination: {{.ARN}}
{{- end}}
{{- end}}
{{- end}}
      Tags:
        cortex.function: {{.Name}}
Outputs:
  FunctionArn:
    Description: The function's ARN
    Value:
      Fn::GetAtt: [Function, Arn]
  FunctionUrl:
    Description: The function URL of the alias {{.Alias}} (auth {{.Auth}})
    Value:
      Fn::GetAtt: [FunctionUrl, FunctionUrl]
`))
