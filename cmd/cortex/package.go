package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/cortexfn/cortex/packager"
	"github.com/cortexfn/cortex/packager/oci"
	"github.com/cortexfn/cortex/packager/sign"
)

func packageCmd() *cobra.Command {
	var (
		opts        packager.Options
		compression string
		output      string
		outputs     string
		signKey     string
		arch        string
	)
	cmd := &cobra.Command{
		Use:   "package DIR",
		Short: "Build a function into an OCI image, a Lambda zip and a Knative Service, in DIR/dist",
		Long: "Package builds the function's binary and assembles, without a Docker daemon, an OCI image\n" +
			"layout and a docker-loadable tarball, a Lambda zip with its SAM template, and a Knative\n" +
			"Service manifest that references the image by digest. Progress goes to stderr; the summary\n" +
			"(or --output json) to stdout. --registry pushes the image with your docker credentials.\n" +
			"--outputs writes only the outputs named (oci, tarball, lambda, knative, push, sign); the image\n" +
			"is assembled only when one of them needs it. The output directory is replaced whole: outputs\n" +
			"not named this time are not kept from an earlier run.\n\n" +
			"--arch arm64 cross-builds from an amd64 machine (Debian: apt-get install gcc-aarch64-linux-gnu\n" +
			"libc6-dev-arm64-cross libc6-arm64-cross libstdc++6-arm64-cross libgcc-s1-arm64-cross; the built-in\n" +
			"arm64 base is assembled from those packages); --arch amd64,arm64 (or all) builds both and makes\n" +
			"the image an OCI image index, pushed as one reference, while the Lambda zip ships one\n" +
			"architecture (targets.lambda.arch).\n\n" +
			"With targets.lambda.package: image, or when the zip would pass Lambda's limits (250 MB\n" +
			"unzipped, 50 MB zipped) and cortex.yaml does not say, the lambda output is the container image\n" +
			"Lambda runs instead, dist/lambda-image (an OCI layout of one image for targets.lambda.arch), with\n" +
			"its SAM template; cortex deploy --target lambda pushes and deploys it (docs/lambda.md).\n\n" +
			"Every image and zip gets an SBOM (CycloneDX JSON: the Go modules, ONNX Runtime, the Debian\n" +
			"packages of the libraries copied in, the models): dist/lambda.cdx.json, dist/image.cdx.json,\n" +
			"and the image's attached to it as an OCI referrer in dist/oci and, when pushed, in the registry.\n\n" +
			"--push-model REF pushes the function's models on their own (each model's ONNX external data\n" +
			"too), under /models in KServe ModelCar's layout, and prints the oci:// reference by digest\n" +
			"(also in --output json): name it in predictor.model and the function fetches the model when\n" +
			"it starts instead of shipping it.\n\n" +
			"--sign KEY signs the pushed image and its SBOM as cosign does (a sha256-DIGEST.sig tag beside\n" +
			"them), with no network but the registry; cortex deploy --verify and cosign verify\n" +
			"--insecure-ignore-tlog check it with the public key. KEY is a PEM ECDSA P-256 private key:\n" +
			"one from cosign generate-key-pair (its password in $" + sign.PasswordEnv + "), or from\n" +
			"  openssl ecparam -name prime256v1 -genkey -noout -out cortex.key\n" +
			"  openssl ec -in cortex.key -pubout -out cortex.pub",
		Example: "  cortex package samples/iris\n" +
			"  cortex package samples/iris --registry ghcr.io/acme --output json\n" +
			"  cortex package samples/iris --outputs lambda\n" +
			"  cortex package samples/iris --arch amd64,arm64 --registry ghcr.io/acme\n" +
			"  cortex package samples/iris --registry ghcr.io/acme --sign cortex.key\n" +
			"  cortex package samples/iris --push-model ghcr.io/acme/iris-model:v1",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			switch compression {
			case "gzip":
				opts.Compression = oci.Gzip
			case "zstd":
				opts.Compression = oci.Zstd
			default:
				return fmt.Errorf("--compression %q: use gzip or zstd", compression)
			}
			if arch != "" {
				arches, err := packager.ParseArches(arch)
				if err != nil {
					return fmt.Errorf("--arch: %w", err)
				}
				opts.Arches = arches
			}
			if cmd.Flags().Changed("outputs") {
				outs, err := packager.ParseOutputs(outputs)
				if err != nil {
					return fmt.Errorf("--outputs: %w", err)
				}
				opts.Outputs = outs
			}
			if signKey != "" {
				// Read before anything is built: a wrong key or password
				// fails at once, not after the push.
				s, err := sign.LoadSigner(signKey, []byte(os.Getenv(sign.PasswordEnv)))
				if err != nil {
					return fmt.Errorf("--sign: %w", err)
				}
				opts.Sign = s
			}
			opts.Progress = cmd.ErrOrStderr()
			res, err := packager.Package(cmd.Context(), args[0], opts)
			if res != nil {
				for _, w := range res.Warnings {
					fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
				}
				if output == "json" {
					if jerr := writeJSON(cmd.OutOrStdout(), res); jerr != nil {
						return jerr
					}
				} else {
					res.WriteSummary(cmd.OutOrStdout())
				}
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Out, "out", "", "output directory (default DIR/dist)")
	f.StringVar(&opts.Base, "base", "", "base image reference or OCI layout directory (default: a minimal non-root base)")
	f.StringVar(&compression, "compression", "gzip", "layer compression: gzip or zstd (Lambda images are always gzip)")
	f.StringVar(&arch, "arch", "", "target architecture: amd64, arm64, or several (amd64,arm64, or all) for a multi-platform image (an OCI image index; the Lambda zip ships targets.lambda.arch's); default from targets.lambda.arch")
	f.StringVar(&opts.Registry, "registry", "", "repository to push the image to, e.g. ghcr.io/acme")
	f.StringVar(&opts.PushModel, "push-model", "", "also push the function's models (and their ONNX external data) as an image with them under /models (KServe ModelCar layout) to this tag, e.g. ghcr.io/acme/iris-model:v1; prints the oci:// reference by digest for predictor.model")
	f.StringVar(&opts.Tag, "image-tag", "", "image tag (default latest)")
	// --tag names a traffic tag in deploy (as in kn); here it still works.
	f.StringVar(&opts.Tag, "tag", "", "image tag (default latest)")
	f.MarkDeprecated("tag", "use --image-tag (--tag is the canary's traffic tag in cortex deploy)")
	f.BoolVar(&opts.NoCache, "no-cache", false, "rebuild the binary and recompress every layer")
	f.StringVar(&opts.ONNXRuntime, "onnxruntime", "", "libonnxruntime.so.1 to ship (default: $CORTEX_ONNXRUNTIME_LIB, else the one in the cortex cache, which cortex setup fetches)")
	f.BoolVar(&opts.AllowHardlinks, "allow-hardlinks", false, "ship files that have hard links outside the function directory")
	f.StringVar(&opts.LambdaLibs, "lambda-libs", "", "directory with libstdc++.so.6 and libgcc_s.so.1 built for Lambda's glibc 2.34")
	f.StringVar(&outputs, "outputs", "", "comma-separated outputs to write: oci, tarball, lambda, knative, push, sign (default: all; push with --registry, sign with --sign)")
	f.StringVar(&signKey, "sign", "", "sign the pushed image and its SBOM with this PEM ECDSA P-256 private key (cosign's format; an encrypted key's password in $"+sign.PasswordEnv+"); needs --registry")
	f.StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
