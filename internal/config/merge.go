package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// MergeJSON sets the top-level keys of add in the JSON object file at path,
// keeping every other key (several programs write the demo credentials file:
// the appliance its logins, the HIS simulator its addresses). The file is
// created with mode 0600 and replaced atomically.
//
// The simulators of `make run` start at the same time and write the same
// file: each read-modify-write holds a lock file beside it, so one writer
// never loses another's keys.
func MergeJSON(path string, add map[string]any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	unlock, err := lockFile(path + ".lock")
	if err != nil {
		return err
	}
	defer unlock()
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
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// staleLock is how old a lock file may get before it counts as left behind
// by a writer that died holding it (a merge takes milliseconds).
const staleLock = 10 * time.Second

// lockFile takes the lock file at path, created exclusively (which works the
// same on Linux and Windows), waiting up to 15 s for another holder.
func lockFile(path string) (unlock func(), err error) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			f.Close()
			return func() { os.Remove(path) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, err
		}
		if st, serr := os.Stat(path); serr == nil && time.Since(st.ModTime()) > staleLock {
			os.Remove(path)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%s: another program is still writing the file", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
