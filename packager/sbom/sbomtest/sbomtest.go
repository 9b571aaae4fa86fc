// Package sbomtest checks an SBOM the way a consumer of CycloneDX would:
// against the CycloneDX JSON schema of its version (with format
// assertions), then with cyclonedx-go's decoder; and checks the OCI
// referrer that attaches one to an image. The schemas are the ones
// cyclonedx-go ships in its module, found with the go command.
//
// It is for tests only; it must not be imported by anything that ships.
package sbomtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	cdx "github.com/CycloneDX/cyclonedx-go"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cortexfn/cortex/packager/sbom"
)

// schemaBase is where the CycloneDX schemas say they are; their $refs
// resolve against it.
const schemaBase = "http://cyclonedx.org/schema/"

// schemas maps the resources a bom-1.6 schema needs to their files in
// cyclonedx-go's schema directory.
var schemas = map[string]string{
	"bom-1.6.schema.json":  "bom-1.6.schema.json",
	"spdx.schema.json":     "spdx.schema.json",
	"jsf-0.82.schema.json": "jsf-0.82.schemax.json", // so named in the module
}

var (
	compileOnce sync.Once
	schema      *jsonschema.Schema
	compileErr  error
)

func compile() (*jsonschema.Schema, error) {
	compileOnce.Do(func() {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/CycloneDX/cyclonedx-go").Output()
		if err != nil {
			compileErr = fmt.Errorf("finding cyclonedx-go's schemas (go list -m): %w", err)
			return
		}
		dir := filepath.Join(strings.TrimSpace(string(out)), "schema")
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		for id, file := range schemas {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				compileErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				compileErr = fmt.Errorf("%s: %w", file, err)
				return
			}
			if err := c.AddResource(schemaBase+id, doc); err != nil {
				compileErr = err
				return
			}
		}
		schema, compileErr = c.Compile(schemaBase + "bom-1.6.schema.json")
	})
	return schema, compileErr
}

// Validate checks doc, a CycloneDX 1.6 JSON document, against the
// CycloneDX 1.6 JSON schema, and decodes it with cyclonedx-go.
func Validate(doc []byte) (*cdx.BOM, error) {
	sch, err := compile()
	if err != nil {
		return nil, err
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return nil, fmt.Errorf("the SBOM is not JSON: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		return nil, fmt.Errorf("the SBOM does not follow the CycloneDX 1.6 schema: %w", err)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(doc), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("cyclonedx-go cannot decode the SBOM: %w", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_6 {
		return nil, fmt.Errorf("the SBOM is CycloneDX %s, want 1.6", bom.SpecVersion)
	}
	return &bom, nil
}

// Component returns the component of bom named name, or nil.
func Component(bom *cdx.BOM, name string) *cdx.Component {
	if bom.Components == nil {
		return nil
	}
	for i, c := range *bom.Components {
		if c.Name == name {
			return &(*bom.Components)[i]
		}
	}
	return nil
}

// CheckReferrer checks an image's SBOM referrer: an artifact manifest of
// the SBOM's artifactType with the empty config, subject as its subject,
// and doc as its one blob.
func CheckReferrer(ref v1.Image, subject v1.Hash, doc []byte) error {
	m, err := ref.Manifest()
	if err != nil {
		return err
	}
	if m.ArtifactType != sbom.MediaType || m.Subject == nil || m.Subject.Digest != subject || len(m.Layers) != 1 || m.Layers[0].MediaType != sbom.MediaType {
		return fmt.Errorf("SBOM manifest %+v, want artifactType %s, subject %s and one SBOM blob", m, sbom.MediaType, subject)
	}
	if cfg, err := ref.RawConfigFile(); err != nil || m.Config.MediaType != "application/vnd.oci.empty.v1+json" || string(cfg) != "{}" {
		return fmt.Errorf("config %s %q (%v), want the empty descriptor", m.Config.MediaType, cfg, err)
	}
	l, err := ref.LayerByDigest(m.Layers[0].Digest)
	if err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, doc) {
		return fmt.Errorf("the referrer's blob (%d bytes) is not the SBOM (%d bytes)", len(got), len(doc))
	}
	return nil
}
