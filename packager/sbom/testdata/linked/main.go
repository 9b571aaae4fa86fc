// Command linked is a Go binary with modules in its build info (a test
// binary has none), for the SBOM tests.
package main

import (
	"fmt"

	"github.com/google/uuid"
	"github.com/package-url/packageurl-go"
)

func main() { fmt.Println(uuid.NameSpaceURL, packageurl.TypeGolang) }
