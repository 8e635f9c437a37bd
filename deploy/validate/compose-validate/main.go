// compose-validate checks compose files against the compose-spec JSON schema
// that compose-go (the library docker compose itself loads files with) embeds.
// It runs offline: the schema is compiled into the binary.
package main

import (
	"fmt"
	"os"

	"github.com/compose-spec/compose-go/v2/schema"
	"gopkg.in/yaml.v3"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: compose-validate FILE...")
		os.Exit(2)
	}
	failed := false
	for _, path := range os.Args[1:] {
		if err := validate(path); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

func validate(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var document map[string]any
	if err := yaml.Unmarshal(raw, &document); err != nil {
		return fmt.Errorf("not YAML: %w", err)
	}
	return schema.Validate(document)
}
