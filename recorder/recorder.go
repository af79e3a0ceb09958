// Package recorder keeps the footage of the body-worn recorders (工作记录仪)
// that home-nursing staff wear, as the internet-nursing rules ask: a recorder
// plugged into the appliance (USB mass storage) or a folder uploaded from the
// console is imported, each clip hashed with SM3, stored once by content,
// attached to the nurse (through the recorder's registration) and to the
// home-nursing order whose visit covers the clip's start, kept at least three
// years, and played back in the console.
//
// # Import
//
// A source folder is recognised by its layout (see package recordersim for
// the format): clips named <yyyymmdd>_<hhmmss>_<device>_<seq>.<ext> in a DCIM
// sub-folder, optional per-clip JSON sidecars and a RECORDER.JSON at the root.
// Each clip is copied in chunks to a .part file while it is hashed; every
// Checkpoint bytes the .part file is synced and the offset and the SM3 state
// (gmsm's digest is an encoding.BinaryMarshaler) are written to the
// recording_copies journal, so a copy interrupted by a crash or by the stick
// being pulled resumes from that offset on the next import. A finished copy is
// verified (size, and SM3 of the .part file re-read from disk against the SM3
// of the bytes read from the source; the source's size and time are checked
// unchanged) before it is moved to <Dir>/<yyyy>/<mm>/<sm3>.<ext> and its row
// committed.
//
// Files already imported are recognised by device and file name: they are
// hashed without being copied. The same hash is a duplicate; another hash
// means the file on the recorder was changed after its import, and the new
// content is kept too, marked suspect with a note, beside the original.
//
// # Integrity and retention
//
// Verify re-hashes stored files, the least recently checked first (so a run
// cut short resumes where it stopped), and marks a file whose SM3 changed
// tampered and a vanished one missing, with an audit entry each; the console
// shows an alarm. Recordings are kept until retain_until, at least three
// years after the later of the clip's start and its import; Delete refuses
// before, and Prune removes only files past that date and not on legal hold.
//
// # Running it
//
// The appliance makes one Service with Dir = <data dir>/recordings, registers
// Resources() with the admin store, Routes with its authorizer and Page with
// the console, and runs Run (Watch over WatchRoots plus RunDaily) for the
// service's lifetime.
package recorder

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"ihos"
	"ihos/internal/sqldb"
)

// Statuses of a recording.
const (
	StatusOK       = "ok"       // stored and its SM3 matched at the last check
	StatusSuspect  = "suspect"  // the recorder's file differs from what was imported earlier under the same name
	StatusTampered = "tampered" // the stored file's SM3 no longer matches
	StatusMissing  = "missing"  // the stored file is gone
	StatusDeleted  = "deleted"  // removed after its retention ended
)

// Import sources.
const (
	SourceUSB    = "usb"
	SourceUpload = "upload"
)

// MinRetentionYears is the shortest time footage is kept: chat and
// audio/video records of internet diagnosis and nursing are kept at least
// three years. Calendar years, not 3×365 days, which would fall a day short
// across a leap day.
const MinRetentionYears = 3

// Service imports, stores, checks and serves recordings.
type Service struct {
	DB *sqldb.DB
	// Dir is the recordings store, <data dir>/recordings on the appliance.
	Dir string
	// Orders finds the home-nursing order of a nurse at a time; nil means
	// NursingVisits over DB.
	Orders Orders
	// RetentionYears is how many years footage is kept; values under
	// MinRetentionYears are raised to it.
	RetentionYears int
	// AutoPrune lets RunDaily delete footage past its retention (not on
	// hold). Off by default: keeping footage longer never breaks a rule.
	AutoPrune bool
	// Checkpoint is how many bytes are copied between two journal entries
	// (default 8 MiB): the most a crash costs in re-copying.
	Checkpoint int64
	// WatchRoots are where Watch and the console's scan look for recorders;
	// nil means DefaultRoots().
	WatchRoots []string

	// Now is the clock (tests set it).
	Now func() time.Time

	// openSource opens a source file; tests replace it to interrupt copies.
	openSource func(path string) (sourceFile, error)

	importMu sync.Mutex // one import at a time: the journal and the progress row assume it
	uploadMu sync.Mutex // one chunk write at a time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// retainUntil is when footage of a clip that started at start and was
// imported at imported may be deleted: RetentionYears calendar years (in
// Beijing time) after the later of the two, so a recorder whose clock is far
// behind cannot shorten it.
func (s *Service) retainUntil(start, imported time.Time) time.Time {
	base := start
	if imported.After(base) {
		base = imported
	}
	years := max(s.RetentionYears, MinRetentionYears)
	return base.In(ihos.Shanghai).AddDate(years, 0, 0).UTC()
}

func (s *Service) checkpoint() int64 {
	if s.Checkpoint <= 0 {
		return 8 << 20
	}
	return s.Checkpoint
}

func (s *Service) orders() Orders {
	if s.Orders != nil {
		return s.Orders
	}
	return NursingVisits{DB: s.DB}
}

// path returns the file system path of a stored path.
func (s *Service) path(stored string) string {
	return filepath.Join(s.Dir, filepath.FromSlash(stored))
}

// Recording is one stored clip.
type Recording struct {
	ID           string        `json:"id"`
	SM3          string        `json:"sm3"`
	Size         int64         `json:"size"`
	Ext          string        `json:"ext"`
	DeviceSerial string        `json:"device_serial"`
	StaffNo      string        `json:"staff_no"`
	NurseID      string        `json:"nurse_id"`
	NurseName    string        `json:"nurse_name"`
	OrderID      string        `json:"order_id"`
	StartedAt    time.Time     `json:"started_at"`
	Duration     time.Duration `json:"-"`
	DurationMS   int64         `json:"duration_ms"`
	GPS          string        `json:"gps"`
	SourceName   string        `json:"source_name"`
	SourcePath   string        `json:"source_path"`
	StoredPath   string        `json:"stored_path"`
	ImportID     string        `json:"import_id"`
	ImportSource string        `json:"import_source"`
	ImportedBy   string        `json:"imported_by"`
	ImportedAt   time.Time     `json:"imported_at"`
	RetainUntil  time.Time     `json:"retain_until"`
	Hold         bool          `json:"hold"`
	HoldReason   string        `json:"hold_reason"`
	Status       string        `json:"status"`
	Note         string        `json:"note"`
	OriginalID   string        `json:"original_id"`
	CheckedAt    time.Time     `json:"checked_at"`
}

const recordingColumns = `r.id, r.sm3, r.size, r.ext, r.device_serial, r.staff_no, r.nurse_id, COALESCE(st.name, ''), r.order_id,
	r.started_at, r.duration_ms, r.gps, r.source_name, r.source_path, r.stored_path, r.import_id, r.import_source, r.imported_by,
	r.imported_at, r.retain_until, r.legal_hold, r.hold_reason, r.status, r.note, r.original_id, r.checked_at`

const recordingFrom = ` FROM recordings r LEFT JOIN staff st ON st.id = r.nurse_id`

func scanRecording(row interface{ Scan(...any) error }) (Recording, error) {
	var r Recording
	var started, imported, retain, checked string
	var durMS int64
	var hold int
	err := row.Scan(&r.ID, &r.SM3, &r.Size, &r.Ext, &r.DeviceSerial, &r.StaffNo, &r.NurseID, &r.NurseName, &r.OrderID,
		&started, &durMS, &r.GPS, &r.SourceName, &r.SourcePath, &r.StoredPath, &r.ImportID, &r.ImportSource, &r.ImportedBy,
		&imported, &retain, &hold, &r.HoldReason, &r.Status, &r.Note, &r.OriginalID, &checked)
	if err != nil {
		return r, err
	}
	r.StartedAt, _ = ihos.ParseTime(started)
	r.ImportedAt, _ = ihos.ParseTime(imported)
	r.RetainUntil, _ = ihos.ParseTime(retain)
	r.CheckedAt, _ = ihos.ParseTime(checked)
	r.Duration, r.DurationMS = time.Duration(durMS)*time.Millisecond, durMS
	r.Hold = hold != 0
	return r, nil
}

// Recording returns one recording.
func (s *Service) Recording(ctx context.Context, id string) (Recording, error) {
	r, err := scanRecording(s.DB.QueryRowContext(ctx, `SELECT `+recordingColumns+recordingFrom+` WHERE r.id = ?`, id))
	if err == sql.ErrNoRows {
		return r, ihos.Errorf(ihos.ENotFound, "录像不存在")
	}
	return r, err
}

// Filter selects recordings for List.
type Filter struct {
	NurseID string
	Nurse   string // part of the nurse's name or staff number
	OrderID string
	Device  string
	Day     time.Time // a day in Asia/Shanghai; zero: any
	Status  string    // "alarm" means suspect, tampered or missing
	Limit   int
}

// List returns recordings newest first.
func (s *Service) List(ctx context.Context, f Filter) ([]Recording, error) {
	q := `SELECT ` + recordingColumns + recordingFrom + ` WHERE 1 = 1`
	var args []any
	if f.NurseID != "" {
		q += ` AND r.nurse_id = ?`
		args = append(args, f.NurseID)
	}
	if f.Nurse != "" {
		q += ` AND (st.name LIKE ?` + sqldb.Escape + ` OR st.job_no = ? OR r.staff_no = ?)`
		args = append(args, sqldb.Contains(f.Nurse), f.Nurse, f.Nurse)
	}
	if f.OrderID != "" {
		q += ` AND r.order_id = ?`
		args = append(args, f.OrderID)
	}
	if f.Device != "" {
		q += ` AND r.device_serial = ?`
		args = append(args, f.Device)
	}
	if !f.Day.IsZero() {
		d := f.Day.In(ihos.Shanghai)
		from := time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, ihos.Shanghai)
		q += ` AND r.started_at >= ? AND r.started_at < ?`
		args = append(args, ihos.FormatTime(from), ihos.FormatTime(from.AddDate(0, 0, 1)))
	}
	switch f.Status {
	case "":
	case "alarm":
		q += ` AND r.status IN ('suspect', 'tampered', 'missing')`
	default:
		q += ` AND r.status = ?`
		args = append(args, f.Status)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 200
	}
	q += ` ORDER BY r.started_at DESC, r.id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := s.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Recording
	for rows.Next() {
		r, err := scanRecording(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Alarms counts recordings whose integrity needs attention, by status.
func (s *Service) Alarms(ctx context.Context) (map[string]int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT status, COUNT(*) FROM recordings WHERE status IN ('suspect', 'tampered', 'missing') GROUP BY status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// StatusLabels names the statuses for staff.
var StatusLabels = map[string]string{
	StatusOK: "正常", StatusSuspect: "疑似被改动", StatusTampered: "已被篡改", StatusMissing: "文件丢失", StatusDeleted: "已过期删除",
}

// StatusLabel names the recording's status for staff.
func (r Recording) StatusLabel() string { return StatusLabels[r.Status] }

// Alarm reports whether the recording's integrity needs attention.
func (r Recording) Alarm() bool {
	return r.Status == StatusSuspect || r.Status == StatusTampered || r.Status == StatusMissing
}

// SizeText is the size for people, e.g. "12.3 MB".
func (r Recording) SizeText() string { return sizeText(r.Size) }

// DurationText is the length for people, e.g. "3:05".
func (r Recording) DurationText() string {
	d := r.Duration.Round(time.Second)
	if d >= time.Hour {
		return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
	}
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

// Playable reports whether the stored file can be played.
func (r Recording) Playable() bool { return r.Status != StatusDeleted && r.Status != StatusMissing }

func sizeText(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
