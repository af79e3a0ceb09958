// Package recordersim writes what a body-worn recorder (工作记录仪 / 执法记录仪)
// shows when plugged in as USB mass storage, so the import can be tested and
// demonstrated without a device.
//
// # Layout
//
// Real recorders (GA/T 947 style 执法记录仪 and their nursing variants) keep
// their clips in a DCIM sub-folder, name each clip by start time and device
// id, and write a small metadata file beside it. The simulator writes:
//
//	<dir>/RECORDER.JSON                                   device information
//	<dir>/DCIM/100RECOR/20261126_093012_DSJ-A1-0007_0001.MP4
//	<dir>/DCIM/100RECOR/20261126_093012_DSJ-A1-0007_0001.JSON
//	…
//
// The clip name is <yyyymmdd>_<hhmmss>_<device id>_<4-digit sequence>.MP4,
// with the start in the device's local time (Asia/Shanghai). RECORDER.JSON is
// {"serial","model","vendor","user"}: the device id and the staff number
// (工号) of the nurse it is issued to. The per-clip sidecar (same base name,
// .JSON) holds the fields a 执法记录仪 records, adapted to nursing:
//
//	{"device":"DSJ-A1-0007","user":"N0012","start":"2026-11-26T09:30:12+08:00",
//	 "duration_ms":180000,"file":"20261126_093012_DSJ-A1-0007_0001.MP4",
//	 "size":1048576,"gps":{"lat":31.2304,"lon":121.4737}}
//
// gps is present only when Options.GPS is set.
//
// # Video files
//
// Each clip is a structurally valid ISO BMFF (MP4) file: an ftyp box (isom),
// a moov box holding an mvhd (version 0) whose creation time is the clip's
// start and whose duration is the clip's length at timescale 1000, and an
// mdat box of pseudo-random payload. It has no tracks, so players show its
// length but no picture; it exists to be copied, hashed and served, which is
// what the import does with real clips. Everything is deterministic given
// Options.Seed.
package recordersim

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
)

// Options describes the recorder and the clips to write.
type Options struct {
	Seed     uint64        // the same seed writes the same bytes
	Device   string        // device id, default "DSJ-A1-0007"
	Model    string        // default "DSJ-A1"
	StaffNo  string        // the nurse's staff number (工号), default "N0012"
	Start    time.Time     // start of the first clip, default 2026-11-26 09:30:12 Asia/Shanghai
	Count    int           // number of clips, default 20
	MinSize  int64         // payload bytes of the smallest clip, default 1 MiB
	MaxSize  int64         // payload bytes of the largest clip, default 8 MiB
	Length   time.Duration // length of each clip, default 3 minutes
	Gap      time.Duration // pause between clips, default 2 minutes
	FirstSeq int           // sequence number of the first clip, default 1
	Folder   string        // the DCIM sub-folder, default "100RECOR"
	GPS      bool          // write a start position into the sidecars
}

// File is one clip written.
type File struct {
	Path     string // relative to dir, slash separated
	Sidecar  string // relative path of its metadata file
	Device   string
	StaffNo  string
	Start    time.Time
	Duration time.Duration
	Size     int64 // of the whole MP4 file
	Lat, Lon float64
}

// Sidecar is the per-clip metadata file.
type Sidecar struct {
	Device     string `json:"device"`
	User       string `json:"user"`
	Start      string `json:"start"` // RFC 3339 with the device's offset
	DurationMS int64  `json:"duration_ms"`
	File       string `json:"file"`
	Size       int64  `json:"size"`
	GPS        *GPS   `json:"gps,omitempty"`
}

// GPS is a position in WGS 84 degrees.
type GPS struct {
	Lat float64 `json:"lat"`
	Lon float64 `json:"lon"`
}

// DeviceInfo is RECORDER.JSON at the root of the volume.
type DeviceInfo struct {
	Serial string `json:"serial"`
	Model  string `json:"model"`
	Vendor string `json:"vendor"`
	User   string `json:"user"`
}

// DeviceInfoFile is the name of the device information file.
const DeviceInfoFile = "RECORDER.JSON"

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		return time.FixedZone("CST", 8*3600)
	}
	return loc
}()

func (o *Options) defaults() {
	if o.Device == "" {
		o.Device = "DSJ-A1-0007"
	}
	if o.Model == "" {
		o.Model = "DSJ-A1"
	}
	if o.StaffNo == "" {
		o.StaffNo = "N0012"
	}
	if o.Start.IsZero() {
		o.Start = time.Date(2026, 11, 26, 9, 30, 12, 0, shanghai)
	}
	if o.Count <= 0 {
		o.Count = 20
	}
	if o.MinSize <= 0 {
		o.MinSize = 1 << 20
	}
	if o.MaxSize < o.MinSize {
		o.MaxSize = max(o.MinSize, 8<<20)
	}
	if o.Length <= 0 {
		o.Length = 3 * time.Minute
	}
	if o.Gap <= 0 {
		o.Gap = 2 * time.Minute
	}
	if o.FirstSeq <= 0 {
		o.FirstSeq = 1
	}
	if o.Folder == "" {
		o.Folder = "100RECOR"
	}
}

// Generate writes the device file and opt.Count clips with sidecars under
// dir (created if needed) and returns the clips in order.
func Generate(dir string, opt Options) ([]File, error) {
	opt.defaults()
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5245434f52444552)) // "RECORDER"
	clips := filepath.Join(dir, "DCIM", opt.Folder)
	if err := os.MkdirAll(clips, 0o755); err != nil {
		return nil, err
	}
	info, _ := json.MarshalIndent(DeviceInfo{Serial: opt.Device, Model: opt.Model, Vendor: "ihos recordersim", User: opt.StaffNo}, "", "  ")
	if err := os.WriteFile(filepath.Join(dir, DeviceInfoFile), info, 0o644); err != nil {
		return nil, err
	}
	var out []File
	start := opt.Start.In(shanghai).Truncate(time.Second)
	for i := 0; i < opt.Count; i++ {
		payload := opt.MinSize
		if opt.MaxSize > opt.MinSize {
			payload += rng.Int64N(opt.MaxSize - opt.MinSize + 1)
		}
		base := fmt.Sprintf("%s_%s_%04d", start.Format("20060102_150405"), opt.Device, opt.FirstSeq+i)
		name := base + ".MP4"
		f := File{
			Path: "DCIM/" + opt.Folder + "/" + name, Sidecar: "DCIM/" + opt.Folder + "/" + base + ".JSON",
			Device: opt.Device, StaffNo: opt.StaffNo, Start: start, Duration: opt.Length,
		}
		size, err := writeMP4(filepath.Join(clips, name), start, opt.Length, payload, rng)
		if err != nil {
			return nil, err
		}
		f.Size = size
		sc := Sidecar{Device: opt.Device, User: opt.StaffNo, Start: start.Format(time.RFC3339), DurationMS: opt.Length.Milliseconds(), File: name, Size: size}
		if opt.GPS {
			f.Lat = 31.2 + float64(rng.IntN(10000))/100000
			f.Lon = 121.4 + float64(rng.IntN(10000))/100000
			sc.GPS = &GPS{Lat: f.Lat, Lon: f.Lon}
		}
		b, _ := json.MarshalIndent(sc, "", "  ")
		if err := os.WriteFile(filepath.Join(clips, base+".JSON"), b, 0o644); err != nil {
			return nil, err
		}
		// The recorder's file time is the end of the clip, as on a real device.
		end := start.Add(opt.Length)
		os.Chtimes(filepath.Join(clips, name), end, end)
		out = append(out, f)
		start = end.Add(opt.Gap)
	}
	return out, nil
}

// mp4Epoch is the ISO BMFF time origin.
var mp4Epoch = time.Date(1904, 1, 1, 0, 0, 0, 0, time.UTC)

// MP4Header returns the ftyp and moov boxes of a clip that starts at start,
// lasts length and carries payload bytes of media data, followed by the mdat
// box header; the payload follows it.
func MP4Header(start time.Time, length time.Duration, payload int64) []byte {
	var b []byte
	box := func(typ string, body []byte) []byte {
		out := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
		return append(append(out, typ...), body...)
	}
	// ftyp: major brand isom, minor version 0x200, compatible brands.
	b = append(b, box("ftyp", []byte("isom\x00\x00\x02\x00isomiso2mp41"))...)
	// mvhd version 0: 100-byte body.
	mvhd := make([]byte, 100)
	secs := uint32(start.Sub(mp4Epoch) / time.Second)
	binary.BigEndian.PutUint32(mvhd[4:], secs)  // creation_time
	binary.BigEndian.PutUint32(mvhd[8:], secs)  // modification_time
	binary.BigEndian.PutUint32(mvhd[12:], 1000) // timescale: milliseconds
	binary.BigEndian.PutUint32(mvhd[16:], uint32(length.Milliseconds()))
	binary.BigEndian.PutUint32(mvhd[20:], 0x00010000) // rate 1.0
	binary.BigEndian.PutUint16(mvhd[24:], 0x0100)     // volume 1.0
	for i, v := range []uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000} {
		binary.BigEndian.PutUint32(mvhd[36+4*i:], v) // unity matrix
	}
	binary.BigEndian.PutUint32(mvhd[96:], 1) // next_track_ID
	b = append(b, box("moov", box("mvhd", mvhd))...)
	b = binary.BigEndian.AppendUint32(b, uint32(8+payload))
	return append(b, "mdat"...)
}

func writeMP4(path string, start time.Time, length time.Duration, payload int64, rng *rand.Rand) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	hdr := MP4Header(start, length, payload)
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		return 0, err
	}
	buf := make([]byte, 64<<10)
	for left := payload; left > 0; {
		n := int64(len(buf))
		if left < n {
			n = left
		}
		for i := int64(0); i < n; i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], rng.Uint64())
		}
		if _, err := f.Write(buf[:n]); err != nil {
			f.Close()
			return 0, err
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		return 0, err
	}
	return int64(len(hdr)) + payload, nil
}
