package config_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"ihos/internal/config"
)

// The simulators of `make run` write the credentials file at the same time:
// every writer's keys survive.
func TestMergeJSONConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.json")
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := config.MergeJSON(path, map[string]any{fmt.Sprintf("sim%02d", i): map[string]string{"url": "http://x"}}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil || len(all) != 40 {
		t.Fatalf("%d keys (%v): %s", len(all), err, b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode().Perm())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), "*.tmp"))
	if _, err := os.Stat(path + ".lock"); err == nil || len(left) > 0 {
		t.Errorf("left behind: lock %v, temp files %v", err, left)
	}
}

// A lock file left by a writer that died is taken over once stale.
func TestMergeJSONStaleLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.json")
	if err := os.WriteFile(path+".lock", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path+".lock", old, old)
	if err := config.MergeJSON(path, map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
}
