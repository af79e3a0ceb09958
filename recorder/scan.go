package recorder

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/recorder/recordersim"
)

// clipName matches a recorder's clip name: start date and time (device local
// time), device id, sequence number.
var clipName = regexp.MustCompile(`(?i)^(\d{8})_(\d{6})_([A-Z0-9][A-Z0-9-]{0,62})_(\d{1,6})\.(mp4|mov|avi|ts|mkv)$`)

// videoExts are the clip extensions accepted in a DCIM folder even when the
// name does not follow the pattern (the start then comes from the sidecar,
// the MP4 header or the file time).
var videoExts = map[string]bool{".mp4": true, ".mov": true, ".avi": true, ".ts": true, ".mkv": true}

// maxDepth bounds how deep a volume is searched for clips: recorders keep
// them one or two folders down.
const maxDepth = 4

// clip is one video file found in a source folder, with what is known of it.
type clip struct {
	Path     string // file system path
	Rel      string // relative to the volume root, slash separated
	Name     string
	Ext      string // lower case, without the dot
	Size     int64
	ModTime  time.Time
	Device   string
	StaffNo  string
	Start    time.Time
	Duration time.Duration
	GPS      string
}

// volume is a recorder's storage: a folder with clips.
type volume struct {
	Root    string
	Devices []string // device ids seen
	Clips   []clip
}

// IsRecorder reports whether dir looks like a recorder's storage: it holds
// RECORDER.JSON, or clips named like a recorder's under DCIM.
func IsRecorder(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, recordersim.DeviceInfoFile)); err == nil {
		return true
	}
	entries, err := os.ReadDir(filepath.Join(dir, "DCIM"))
	if err != nil {
		entries, err = os.ReadDir(filepath.Join(dir, "dcim"))
		if err != nil {
			return false
		}
		dir = filepath.Join(dir, "dcim")
	} else {
		dir = filepath.Join(dir, "DCIM")
	}
	for _, e := range entries {
		if !e.IsDir() {
			if clipName.MatchString(e.Name()) {
				return true
			}
			continue
		}
		sub, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		for _, f := range sub {
			if !f.IsDir() && clipName.MatchString(f.Name()) {
				return true
			}
		}
	}
	return false
}

// scanVolume lists the clips under root with their metadata, oldest first.
func scanVolume(root string) (*volume, error) {
	st, err := os.Stat(root)
	if err != nil || !st.IsDir() {
		return nil, ihos.Errorf(ihos.ENotFound, "找不到记录仪文件夹 %s", root)
	}
	v := &volume{Root: root}
	var info recordersim.DeviceInfo
	if b, err := os.ReadFile(filepath.Join(root, recordersim.DeviceInfoFile)); err == nil {
		json.Unmarshal(b, &info)
	}
	devices := map[string]bool{}
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == root {
				return err
			}
			return nil // an unreadable sub-folder does not stop the rest
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if rel != "." && (strings.Count(rel, "/") >= maxDepth || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		name := d.Name()
		m := clipName.FindStringSubmatch(name)
		ext := strings.ToLower(filepath.Ext(name))
		inDCIM := strings.Contains("/"+strings.ToUpper(rel), "/DCIM/")
		if m == nil && !(inDCIM && videoExts[ext]) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		c := clip{Path: p, Rel: rel, Name: name, Ext: strings.TrimPrefix(ext, "."), Size: fi.Size(), ModTime: fi.ModTime().UTC(),
			Device: info.Serial, StaffNo: info.User}
		if m != nil {
			c.Device = strings.ToUpper(m[3])
			if t, err := time.ParseInLocation("20060102150405", m[1]+m[2], ihos.Shanghai); err == nil {
				c.Start = t.UTC()
			}
		}
		readSidecar(&c)
		if c.Start.IsZero() || c.Duration == 0 {
			if created, dur, ok := probeMP4(p); ok {
				if c.Start.IsZero() {
					c.Start = created
				}
				if c.Duration == 0 {
					c.Duration = dur
				}
			}
		}
		if c.Start.IsZero() {
			c.Start = c.ModTime.Add(-c.Duration)
		}
		if c.Device != "" {
			devices[c.Device] = true
		}
		v.Clips = append(v.Clips, c)
		return nil
	})
	if err != nil {
		return nil, ihos.Errorf(ihos.EUnavailable, "读取记录仪文件夹 %s 失败：%v", root, err)
	}
	sort.Slice(v.Clips, func(i, j int) bool {
		if !v.Clips[i].Start.Equal(v.Clips[j].Start) {
			return v.Clips[i].Start.Before(v.Clips[j].Start)
		}
		return v.Clips[i].Rel < v.Clips[j].Rel
	})
	for d := range devices {
		v.Devices = append(v.Devices, d)
	}
	sort.Strings(v.Devices)
	return v, nil
}

// readSidecar fills what the clip's JSON sidecar says, when there is one.
func readSidecar(c *clip) {
	base := strings.TrimSuffix(c.Path, filepath.Ext(c.Path))
	var b []byte
	var err error
	for _, ext := range []string{".JSON", ".json"} {
		if b, err = os.ReadFile(base + ext); err == nil {
			break
		}
	}
	if err != nil || len(b) > 1<<20 {
		return
	}
	var sc recordersim.Sidecar
	if json.Unmarshal(b, &sc) != nil {
		return
	}
	if sc.Device != "" {
		c.Device = strings.ToUpper(sc.Device)
	}
	if sc.User != "" {
		c.StaffNo = sc.User
	}
	if t, err := time.Parse(time.RFC3339, sc.Start); err == nil {
		c.Start = t.UTC()
	}
	if sc.DurationMS > 0 {
		c.Duration = time.Duration(sc.DurationMS) * time.Millisecond
	}
	if sc.GPS != nil {
		c.GPS = strconv.FormatFloat(sc.GPS.Lat, 'f', 6, 64) + "," + strconv.FormatFloat(sc.GPS.Lon, 'f', 6, 64)
	}
}

var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

// probeMP4 reads the creation time and duration from an MP4's mvhd box,
// walking the top-level boxes (moov may come after mdat).
func probeMP4(path string) (created time.Time, dur time.Duration, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return
	}
	var off int64
	hdr := make([]byte, 16)
	for i := 0; i < 64 && off+8 <= fi.Size(); i++ {
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return
		}
		size := int64(binary.BigEndian.Uint32(hdr))
		typ := string(hdr[4:8])
		head := int64(8)
		switch size {
		case 1: // 64-bit largesize
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				return
			}
			size, head = int64(binary.BigEndian.Uint64(hdr[8:])), 16
		case 0: // to the end of the file
			size = fi.Size() - off
		}
		if size < head {
			return
		}
		if typ == "moov" {
			return findMVHD(io.NewSectionReader(f, off+head, size-head))
		}
		off += size
	}
	return
}

func findMVHD(r *io.SectionReader) (time.Time, time.Duration, bool) {
	var off int64
	hdr := make([]byte, 8)
	for off+8 <= r.Size() {
		if _, err := r.ReadAt(hdr, off); err != nil {
			return time.Time{}, 0, false
		}
		size := int64(binary.BigEndian.Uint32(hdr))
		if size < 8 {
			return time.Time{}, 0, false
		}
		if string(hdr[4:8]) == "mvhd" {
			body := make([]byte, min(size-8, 112))
			if _, err := r.ReadAt(body, off+8); err != nil || len(body) < 20 {
				return time.Time{}, 0, false
			}
			var created, timescale, duration uint64
			if body[0] == 1 {
				if len(body) < 32 {
					return time.Time{}, 0, false
				}
				created = binary.BigEndian.Uint64(body[4:])
				timescale = uint64(binary.BigEndian.Uint32(body[20:]))
				duration = binary.BigEndian.Uint64(body[24:])
			} else {
				created = uint64(binary.BigEndian.Uint32(body[4:]))
				timescale = uint64(binary.BigEndian.Uint32(body[12:]))
				duration = uint64(binary.BigEndian.Uint32(body[16:]))
			}
			var t time.Time
			if created > 0 {
				t = mp4Epoch.Add(time.Duration(created) * time.Second)
			}
			var d time.Duration
			if timescale > 0 {
				d = time.Duration(duration * 1000 / timescale * uint64(time.Millisecond))
			}
			return t, d, true
		}
		off += size
	}
	return time.Time{}, 0, false
}
