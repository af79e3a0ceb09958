package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// MergeJSON sets the top-level keys of add in the JSON object file at path,
// keeping every other key (several programs write the demo credentials file:
// the appliance its logins, the HIS simulator its addresses). The file is
// created with mode 0600 and replaced atomically.
func MergeJSON(path string, add map[string]any) error {
	all := map[string]json.RawMessage{}
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("%s is not a JSON object: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	for k, v := range add {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		all[k] = b
	}
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
