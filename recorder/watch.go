package recorder

import (
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// DefaultRoots are where removable disks are mounted: the desktop automounters'
// /media/<user>/<label> and /run/media/<user>/<label> and hand mounts under
// /mnt on Linux, and the drive letters D: to Z: on Windows (a recorder shows
// up as a removable drive; C: is never one).
func DefaultRoots() []string {
	if runtime.GOOS == "windows" {
		var roots []string
		for c := 'D'; c <= 'Z'; c++ {
			roots = append(roots, string(c)+`:\`)
		}
		return roots
	}
	return []string{"/media", "/run/media", "/mnt"}
}

func (s *Service) roots() []string {
	if len(s.WatchRoots) > 0 {
		return s.WatchRoots
	}
	return DefaultRoots()
}

// FindRecorders returns the recorder volumes under roots: a root that is one
// itself, or a folder one or two levels below it (/media/<user>/<label>).
func FindRecorders(roots []string) []string {
	var out []string
	for _, root := range roots {
		if IsRecorder(root) {
			out = append(out, root)
			continue
		}
		level1, err := os.ReadDir(root)
		if err != nil {
			continue
		}
		for _, e := range level1 {
			if !e.IsDir() {
				continue
			}
			p := filepath.Join(root, e.Name())
			if IsRecorder(p) {
				out = append(out, p)
				continue
			}
			level2, err := os.ReadDir(p)
			if err != nil {
				continue
			}
			for _, e2 := range level2 {
				if q := filepath.Join(p, e2.Name()); e2.IsDir() && IsRecorder(q) {
					out = append(out, q)
				}
			}
		}
	}
	return out
}

// fingerprint names a volume's content: its devices and its clips' paths,
// sizes and times. A stick re-inserted with new clips has a new fingerprint.
func fingerprint(vol *volume) string {
	h := sm3.New()
	for _, d := range vol.Devices {
		h.Write([]byte(d + "\x00"))
	}
	for _, c := range vol.Clips {
		h.Write([]byte(c.Rel + "\x00" + strconv.FormatInt(c.Size, 10) + "\x00" + strconv.FormatInt(c.ModTime.UnixNano(), 10) + "\x00"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Watch polls roots (nil: the service's WatchRoots or DefaultRoots) every
// interval (default 5 s) for plugged-in recorders and imports each once per
// insertion: a volume is imported again only when it was removed and plugged
// in again or its clips changed. An import cut short by pulling the stick
// resumes when it is plugged in again. Watch returns when ctx ends.
func (s *Service) Watch(ctx context.Context, roots []string, every time.Duration) {
	if len(roots) == 0 {
		roots = s.roots()
	}
	if every <= 0 {
		every = 5 * time.Second
	}
	if err := s.RecoverImports(ctx); err != nil {
		slog.WarnContext(ctx, "recorder: recover imports", "err", err)
	}
	seen := map[string]string{} // volume → fingerprint of its last import
	for {
		present := map[string]bool{}
		for _, dir := range FindRecorders(roots) {
			present[dir] = true
			vol, err := scanVolume(dir)
			if err != nil || len(vol.Clips) == 0 {
				continue
			}
			fp := fingerprint(vol)
			if seen[dir] == fp {
				continue
			}
			imp, err := s.ImportFolder(ctx, dir, SourceUSB)
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				slog.WarnContext(ctx, "recorder: import", "dir", dir, "err", err)
			} else {
				slog.InfoContext(ctx, "recorder: imported", "dir", dir, "new", imp.FilesNew, "duplicate", imp.FilesDuplicate,
					"changed", imp.FilesChanged, "failed", imp.FilesFailed)
			}
			seen[dir] = fp
		}
		for dir := range seen {
			if !present[dir] {
				delete(seen, dir) // unplugged: import it again when it comes back
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

// ScanNow imports every recorder plugged in now (the console's button),
// whether or not Watch imported it already.
func (s *Service) ScanNow(ctx context.Context) ([]Import, error) {
	var out []Import
	for _, dir := range FindRecorders(s.roots()) {
		imp, err := s.ImportFolder(ctx, dir, SourceUSB)
		if err != nil {
			return out, err
		}
		out = append(out, imp)
	}
	return out, nil
}
