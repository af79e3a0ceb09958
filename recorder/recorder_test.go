package recorder

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/recorder/recordersim"
)

var day1 = time.Date(2026, 11, 26, 9, 30, 12, 0, ihos.Shanghai)

type rig struct {
	t     *testing.T
	db    *sqldb.DB
	s     *Service
	admin context.Context
	clock time.Time
}

func newRig(t *testing.T) *rig {
	t.Helper()
	return newRigDB(t, sqldbtest.SQLite(t))
}

func newRigDB(t *testing.T, db *sqldb.DB) *rig {
	t.Helper()
	r := &rig{t: t, db: db, clock: day1.Add(30 * 24 * time.Hour)}
	r.s = &Service{DB: db, Dir: filepath.Join(t.TempDir(), "recordings"), Checkpoint: 32 << 10, Now: func() time.Time { return r.clock }}
	r.admin = ihos.WithActor(context.Background(), ihos.Actor{UserID: "u1", Username: "admin", Role: auth.RoleHospitalAdmin})
	return r
}

func (r *rig) exec(q string, args ...any) {
	r.t.Helper()
	err := r.db.Tx(context.Background(), func(tx *sql.Tx) error { _, err := tx.Exec(q, args...); return err })
	if err != nil {
		r.t.Fatalf("%s: %v", q, err)
	}
}

// nurse adds a staff member and registers device to her.
func (r *rig) nurse(id, jobNo, name, device string) {
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO staff (id, institution_id, department_id, job_no, name, kind, created_at, updated_at) VALUES (?, 'i1', 'd1', ?, ?, 'nurse', ?, ?)`, id, jobNo, name, now, now)
	if device != "" {
		r.exec(`INSERT INTO recorder_devices (id, serial, name, staff_id, created_at, updated_at) VALUES (?, ?, '', ?, ?, ?)`, ihos.NewID(), device, id, now, now)
	}
}

func (r *rig) generate(opt recordersim.Options) (string, []recordersim.File) {
	r.t.Helper()
	dir := filepath.Join(r.t.TempDir(), "stick")
	if opt.MinSize == 0 {
		opt.MinSize, opt.MaxSize = 40<<10, 160<<10
	}
	files, err := recordersim.Generate(dir, opt)
	if err != nil {
		r.t.Fatal(err)
	}
	return dir, files
}

func (r *rig) importDir(dir string) Import {
	r.t.Helper()
	imp, err := r.s.ImportFolder(r.admin, dir, SourceUSB)
	if err != nil {
		r.t.Fatalf("import %s: %v", dir, err)
	}
	return imp
}

func (r *rig) count(q string, args ...any) int {
	r.t.Helper()
	var n int
	if err := r.db.QueryRow(q, args...).Scan(&n); err != nil {
		r.t.Fatal(err)
	}
	return n
}

func fileSM3(t *testing.T, path string) string {
	t.Helper()
	sum, _, err := hashFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func storeFiles(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			fi, _ := d.Info()
			out[p] = fi.ModTime()
		}
		return nil
	})
	return out
}

func TestImportDedupeAndAttach(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testImportDedupeAndAttach(t, newRigDB(t, db)) })
}

func testImportDedupeAndAttach(t *testing.T, r *rig) {
	r.nurse("n1", "N0012", "王护士", "DSJ-A1-0007")
	// The 3rd to 5th clips fall in a home visit.
	visits := NursingVisits{DB: r.db}
	files := func() []recordersim.File {
		_, f := r.generate(recordersim.Options{Seed: 1, Count: 20, Gap: 30 * time.Minute})
		return f
	}()
	if _, err := visits.RecordVisit(context.Background(), "ORD-1", "n1", files[2].Start.Add(-5*time.Minute), files[4].Start.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	dir, _ := r.generate(recordersim.Options{Seed: 1, Count: 20, Gap: 30 * time.Minute, GPS: true})

	imp := r.importDir(dir)
	if imp.Status != ImportDone || imp.FilesFound != 20 || imp.FilesNew != 20 || imp.FilesDuplicate != 0 || imp.BytesDone != imp.BytesTotal {
		t.Fatalf("first import %+v", imp)
	}
	list, err := r.s.List(r.admin, Filter{Limit: 100})
	if err != nil || len(list) != 20 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	withOrder := 0
	for _, rec := range list {
		src := filepath.Join(dir, "DCIM", "100RECOR", rec.SourceName)
		if rec.SM3 != fileSM3(t, src) || rec.SM3 != fileSM3(t, r.s.path(rec.StoredPath)) {
			t.Errorf("%s: stored SM3 %s does not match", rec.SourceName, rec.SM3)
		}
		if want := "2026/11/" + rec.SM3 + ".mp4"; rec.StoredPath != want {
			t.Errorf("stored path %s, want %s", rec.StoredPath, want)
		}
		if rec.NurseID != "n1" || rec.NurseName != "王护士" || rec.DeviceSerial != "DSJ-A1-0007" || rec.StaffNo != "N0012" {
			t.Errorf("attach %+v", rec)
		}
		if rec.Duration != 3*time.Minute || rec.GPS == "" || rec.Status != StatusOK {
			t.Errorf("metadata %+v", rec)
		}
		if rec.RetainUntil.Before(rec.StartedAt.AddDate(3, 0, 0).Add(-24 * time.Hour)) {
			t.Errorf("retain until %v for a clip of %v", rec.RetainUntil, rec.StartedAt)
		}
		if rec.OrderID != "" {
			withOrder++
			if rec.OrderID != "ORD-1" || rec.StartedAt.Before(files[2].Start) || rec.StartedAt.After(files[4].Start) {
				t.Errorf("order %q on the clip of %v", rec.OrderID, rec.StartedAt)
			}
		}
	}
	if withOrder != 3 {
		t.Errorf("%d clips attached to the order, want 3", withOrder)
	}
	if got, _ := r.s.List(r.admin, Filter{OrderID: "ORD-1"}); len(got) != 3 {
		t.Errorf("order filter: %d", len(got))
	}
	if got, _ := r.s.List(r.admin, Filter{Nurse: "王"}); len(got) != 20 {
		t.Errorf("nurse filter: %d", len(got))
	}
	if got, _ := r.s.List(r.admin, Filter{Day: day1}); len(got) != 20 {
		t.Errorf("day filter: %d", len(got))
	}
	if got, _ := r.s.List(r.admin, Filter{Day: day1.AddDate(0, 0, 1)}); len(got) != 0 {
		t.Errorf("other day: %d", len(got))
	}
	if n := r.count(`SELECT COUNT(*) FROM recording_copies`); n != 0 {
		t.Errorf("%d journal rows left", n)
	}
	if entries, _ := os.ReadDir(filepath.Join(r.s.Dir, partDir)); len(entries) != 0 {
		t.Errorf(".part files left: %v", entries)
	}
	entries, _, _ := audit.List(r.admin, r.db, audit.Filter{Resource: "recording_imports"})
	if len(entries) != 1 || !strings.Contains(entries[0].Summary, "新增 20") || entries[0].ActorName != "admin" {
		t.Errorf("audit %+v", entries)
	}

	// The same folder again: all duplicates, nothing copied.
	before := storeFiles(t, r.s.Dir)
	imp = r.importDir(dir)
	if imp.Status != ImportDone || imp.FilesNew != 0 || imp.FilesDuplicate != 20 || imp.FilesChanged != 0 {
		t.Fatalf("second import %+v", imp)
	}
	if after := storeFiles(t, r.s.Dir); len(after) != len(before) {
		t.Errorf("store had %d files, now %d", len(before), len(after))
	} else {
		for p, m := range before {
			if !after[p].Equal(m) {
				t.Errorf("%s rewritten", p)
			}
		}
	}
	if n := r.count(`SELECT COUNT(*) FROM recordings`); n != 20 {
		t.Errorf("%d recordings", n)
	}

	// A second folder overlapping the first: one clip copied over under its
	// own name, one under another name, and five new clips of another device.
	dir2, _ := r.generate(recordersim.Options{Seed: 2, Count: 5, Device: "DSJ-A1-0009", StaffNo: "N0099", Start: day1.AddDate(0, 0, 1)})
	clips := filepath.Join(dir2, "DCIM", "100RECOR")
	copyFile(t, filepath.Join(dir, "DCIM", "100RECOR", list[0].SourceName), filepath.Join(clips, list[0].SourceName))
	copyFile(t, filepath.Join(dir, "DCIM", "100RECOR", list[1].SourceName), filepath.Join(clips, "20261127_120000_DSJ-A1-0009_0099.MP4"))
	imp = r.importDir(dir2)
	if imp.FilesFound != 7 || imp.FilesNew != 5 || imp.FilesDuplicate != 2 || imp.Status != ImportDone {
		t.Fatalf("overlapping import %+v", imp)
	}
	if n := r.count(`SELECT COUNT(*) FROM recordings`); n != 25 {
		t.Errorf("%d recordings after the overlap", n)
	}
	// The other device is not registered and its staff number unknown: not attached.
	if got, _ := r.s.List(r.admin, Filter{Device: "DSJ-A1-0009"}); len(got) != 5 || got[0].NurseID != "" || got[0].StaffNo != "N0099" {
		t.Errorf("unregistered device: %+v", got)
	}
	// Registering the nurse later and relinking attaches them.
	r.nurse("n2", "N0099", "李护士", "")
	if n, err := r.s.Relink(r.admin); err != nil || n != 5 {
		t.Errorf("relink: %d %v", n, err)
	}
	if got, _ := r.s.List(r.admin, Filter{NurseID: "n2"}); len(got) != 5 {
		t.Errorf("after relink: %d", len(got))
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// failingReader fails after n bytes, like a stick pulled out mid-copy.
type failingReader struct {
	f    *os.File
	left int64
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errors.New("input/output error")
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.f.Read(p)
	r.left -= int64(n)
	return n, err
}
func (r *failingReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }
func (r *failingReader) Close() error                              { return r.f.Close() }

// countingReader counts the bytes read.
type countingReader struct {
	f *os.File
	n *int64
}

func (r countingReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	*r.n += int64(n)
	return n, err
}
func (r countingReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }
func (r countingReader) Close() error                              { return r.f.Close() }

func TestResumeAfterInterruption(t *testing.T) {
	r := newRig(t)
	dir, files := r.generate(recordersim.Options{Seed: 3, Count: 4, MinSize: 3 << 20, MaxSize: 3 << 20})
	victim := filepath.Join(dir, filepath.FromSlash(files[1].Path))
	size := files[1].Size
	cut := int64(2<<20 + 12345) // past a checkpoint and mid-chunk

	// The stick is pulled while the second clip is copied.
	var mu sync.Mutex
	read := map[string]*int64{}
	r.s.openSource = func(p string) (sourceFile, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		if p == victim {
			return &failingReader{f: f, left: cut}, nil
		}
		return f, nil
	}
	imp := r.importDir(dir)
	if imp.Status != ImportFailed || imp.FilesNew != 3 || imp.FilesFailed != 1 || !strings.Contains(imp.Error, "下次导入时从此处继续") {
		t.Fatalf("interrupted import %+v", imp)
	}
	var copied int64
	if err := r.db.QueryRow(`SELECT copied FROM recording_copies`).Scan(&copied); err != nil || copied != cut {
		t.Fatalf("journal copied %d (%v), want %d", copied, err, cut)
	}
	// A crash after the journal entry may leave extra bytes in the .part
	// file: they must be dropped on resume, not hashed.
	part := filepath.Join(r.s.Dir, partDir, sourceKey(clipOf(t, dir, files[1]))+".part")
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(bytes.Repeat([]byte("junk"), 1000))
	f.Close()

	// Plugged in again: the copy resumes from the journal's offset.
	r.s.openSource = func(p string) (sourceFile, error) {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		mu.Lock()
		defer mu.Unlock()
		n := new(int64)
		read[p] = n
		return countingReader{f: f, n: n}, nil
	}
	imp = r.importDir(dir)
	if imp.Status != ImportDone || imp.FilesNew != 1 || imp.FilesDuplicate != 3 {
		t.Fatalf("resumed import %+v", imp)
	}
	if got := *read[victim]; got != size-cut {
		t.Errorf("resume read %d bytes of a %d-byte file, want %d (no restart from zero)", got, size, size-cut)
	}
	var sum, stored string
	if err := r.db.QueryRow(`SELECT sm3, stored_path FROM recordings WHERE source_name = ?`, filepath.Base(victim)).Scan(&sum, &stored); err != nil {
		t.Fatal(err)
	}
	if want := fileSM3(t, victim); sum != want || fileSM3(t, r.s.path(stored)) != want {
		t.Errorf("resumed copy SM3 %s, want %s", sum, want)
	}
	if n := r.count(`SELECT COUNT(*) FROM recording_copies`); n != 0 {
		t.Errorf("%d journal rows left", n)
	}

	// Cancelling the import (the service stopping) keeps the copy for later too.
	dir2, files2 := r.generate(recordersim.Options{Seed: 4, Count: 1, MinSize: 2 << 20, MaxSize: 2 << 20, Device: "DSJ-B-1"})
	ctx, cancel := context.WithCancel(r.admin)
	r.s.openSource = func(p string) (sourceFile, error) {
		f, err := os.Open(p)
		return &cancelReader{f: f, after: 1 << 20, cancel: cancel}, err
	}
	imp, err = r.s.ImportFolder(ctx, dir2, SourceUSB)
	if err != nil || imp.Status != ImportInterrupted {
		t.Fatalf("cancelled import %+v %v", imp, err)
	}
	var n int64
	r.s.openSource = func(p string) (sourceFile, error) {
		f, err := os.Open(p)
		return countingReader{f: f, n: &n}, err
	}
	imp = r.importDir(dir2)
	if imp.FilesNew != 1 || n >= files2[0].Size || n == 0 {
		t.Errorf("after cancel: %+v, read %d of %d", imp, n, files2[0].Size)
	}
}

type cancelReader struct {
	f      *os.File
	read   int64
	after  int64
	cancel func()
}

func (r *cancelReader) Read(p []byte) (int, error) {
	n, err := r.f.Read(p)
	r.read += int64(n)
	if r.read >= r.after {
		r.cancel()
	}
	return n, err
}
func (r *cancelReader) Seek(off int64, whence int) (int64, error) { return r.f.Seek(off, whence) }
func (r *cancelReader) Close() error                              { return r.f.Close() }

func clipOf(t *testing.T, dir string, f recordersim.File) clip {
	t.Helper()
	vol, err := scanVolume(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range vol.Clips {
		if c.Rel == f.Path {
			return c
		}
	}
	t.Fatalf("%s not found", f.Path)
	return clip{}
}

func TestTamperDetection(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testTamperDetection(t, newRigDB(t, db)) })
}

func testTamperDetection(t *testing.T, r *rig) {
	dir, _ := r.generate(recordersim.Options{Seed: 5, Count: 5})
	r.importDir(dir)
	list, _ := r.s.List(r.admin, Filter{})
	if res, err := r.s.Verify(r.admin, 0); err != nil || res.Checked != 5 || res.OK != 5 {
		t.Fatalf("clean verify %+v %v", res, err)
	}
	// Someone edits one stored file and deletes another.
	p := r.s.path(list[0].StoredPath)
	os.Chmod(p, 0o644)
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte{0xff, 0xfe}, 200)
	f.Close()
	os.Remove(r.s.path(list[1].StoredPath))

	// A batch run checks the least recently checked first, so two short
	// runs cover all five.
	r.clock = r.clock.Add(24 * time.Hour)
	a, err := r.s.Verify(r.admin, 3)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.s.Verify(r.admin, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a.Checked+b.Checked != 5 || a.Tampered+b.Tampered != 1 || a.Missing+b.Missing != 1 {
		t.Fatalf("verify %+v %+v", a, b)
	}
	if rec, _ := r.s.Recording(r.admin, list[0].ID); rec.Status != StatusTampered || !rec.Alarm() {
		t.Errorf("edited file status %s", rec.Status)
	}
	if rec, _ := r.s.Recording(r.admin, list[1].ID); rec.Status != StatusMissing {
		t.Errorf("deleted file status %s", rec.Status)
	}
	alarms, _ := r.s.Alarms(r.admin)
	if alarms[StatusTampered] != 1 || alarms[StatusMissing] != 1 {
		t.Errorf("alarms %v", alarms)
	}
	if got, _ := r.s.List(r.admin, Filter{Status: "alarm"}); len(got) != 2 {
		t.Errorf("alarm filter %d", len(got))
	}
	entries, _, _ := audit.List(r.admin, r.db, audit.Filter{Resource: "recordings"})
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action+" "+e.Summary)
	}
	joined := strings.Join(actions, "\n")
	if !strings.Contains(joined, "verify_tampered 记录仪录像被篡改") || !strings.Contains(joined, "verify_missing 记录仪录像文件丢失") {
		t.Errorf("audit:\n%s", joined)
	}
	if bad, err := audit.Verify(r.admin, r.db); err != nil || bad != 0 {
		t.Errorf("audit chain broken at %d: %v", bad, err)
	}
}

func TestChangedAfterImport(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testChangedAfterImport(t, newRigDB(t, db)) })
}

func testChangedAfterImport(t *testing.T, r *rig) {
	r.nurse("n1", "N0012", "王护士", "DSJ-A1-0007")
	dir, files := r.generate(recordersim.Options{Seed: 6, Count: 3})
	r.importDir(dir)

	// The clip is edited on the recorder, keeping its size and time.
	src := filepath.Join(dir, filepath.FromSlash(files[2].Path))
	fi, _ := os.Stat(src)
	f, _ := os.OpenFile(src, os.O_WRONLY, 0)
	f.WriteAt([]byte("EDITED"), fi.Size()/2)
	f.Close()
	os.Chtimes(src, fi.ModTime(), fi.ModTime())

	imp := r.importDir(dir)
	if imp.FilesChanged != 1 || imp.FilesDuplicate != 2 || imp.FilesNew != 0 {
		t.Fatalf("re-import %+v", imp)
	}
	var orig, changed Recording
	list, _ := r.s.List(r.admin, Filter{})
	for _, rec := range list {
		if rec.SourceName == filepath.Base(src) {
			if rec.Status == StatusSuspect {
				changed = rec
			} else {
				orig = rec
			}
		}
	}
	if orig.ID == "" || changed.ID == "" || changed.OriginalID != orig.ID || orig.Status != StatusOK {
		t.Fatalf("original %+v\nchanged %+v", orig, changed)
	}
	if !strings.Contains(changed.Note, "文件在导入后被修改过") || changed.SM3 != fileSM3(t, src) || changed.NurseID != "n1" {
		t.Errorf("changed recording %+v", changed)
	}
	entries, _, _ := audit.List(r.admin, r.db, audit.Filter{Resource: "recordings", Action: "changed"})
	if len(entries) != 1 || entries[0].RecordID != changed.ID {
		t.Errorf("audit %+v", entries)
	}
	// Verify keeps it suspect (its stored copy is intact).
	r.s.Verify(r.admin, 0)
	if rec, _ := r.s.Recording(r.admin, changed.ID); rec.Status != StatusSuspect {
		t.Errorf("after verify %s", rec.Status)
	}
	// Importing yet again changes nothing.
	if imp := r.importDir(dir); imp.FilesDuplicate != 3 {
		t.Errorf("third import %+v", imp)
	}
}

func TestRetention(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testRetention(t, newRigDB(t, db)) })
}

func testRetention(t *testing.T, r *rig) {
	dir, _ := r.generate(recordersim.Options{Seed: 7, Count: 3})
	r.importDir(dir)
	list, _ := r.s.List(r.admin, Filter{})
	for _, rec := range list {
		// Based on the import (later than the clip's start here).
		if want := r.clock.AddDate(3, 0, 0); !rec.RetainUntil.Equal(want) {
			t.Errorf("retain until %v, want %v", rec.RetainUntil, want)
		}
	}
	err := r.s.Delete(r.admin, list[0].ID)
	if ihos.ErrorCode(err) != ihos.EForbidden || ihos.ErrorMessage(err) != "录像保存期未满三年，不能删除" {
		t.Fatalf("early delete: %v", err)
	}
	if n, err := r.s.Prune(r.admin, r.clock.Add(365*24*time.Hour)); err != nil || n != 0 {
		t.Errorf("early prune %d %v", n, err)
	}
	if err := r.s.SetHold(r.admin, list[1].ID, true, ""); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("hold without reason: %v", err)
	}
	if err := r.s.SetHold(r.admin, list[1].ID, true, "医疗纠纷 2029-001"); err != nil {
		t.Fatal(err)
	}
	// Three years and a day later.
	r.clock = r.clock.AddDate(3, 0, 0).Add(-time.Minute)
	if err := r.s.Delete(r.admin, list[0].ID); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Errorf("delete a minute early: %v", err)
	}
	r.clock = r.clock.Add(24 * time.Hour)
	if err := r.s.Delete(r.admin, list[1].ID); ihos.ErrorCode(err) != ihos.EForbidden || !strings.Contains(ihos.ErrorMessage(err), "法律保全") {
		t.Errorf("delete on hold: %v", err)
	}
	if err := r.s.Delete(r.admin, list[0].ID); err != nil {
		t.Fatalf("delete after retention: %v", err)
	}
	if _, err := os.Stat(r.s.path(list[0].StoredPath)); !os.IsNotExist(err) {
		t.Errorf("file still there: %v", err)
	}
	n, err := r.s.Prune(r.admin, r.clock)
	if err != nil || n != 1 {
		t.Fatalf("prune %d %v", n, err)
	}
	if rec, _ := r.s.Recording(r.admin, list[1].ID); rec.Status != StatusOK || !rec.Hold {
		t.Errorf("held recording %+v", rec)
	}
	if rec, _ := r.s.Recording(r.admin, list[2].ID); rec.Status != StatusDeleted {
		t.Errorf("pruned recording %s", rec.Status)
	}
	entries, _, _ := audit.List(r.admin, r.db, audit.Filter{Resource: "recordings", Action: "delete"})
	if len(entries) != 2 {
		t.Errorf("delete audit %d", len(entries))
	}
	// Verify skips deleted recordings (their files are gone on purpose).
	if res, _ := r.s.Verify(r.admin, 0); res.Missing != 0 || res.Checked != 1 {
		t.Errorf("verify after prune %+v", res)
	}
}

func TestGeneratorAndProbe(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	opt := recordersim.Options{Seed: 9, Count: 3, MinSize: 1000, MaxSize: 5000, GPS: true}
	fa, err := recordersim.Generate(a, opt)
	if err != nil {
		t.Fatal(err)
	}
	fb, _ := recordersim.Generate(b, opt)
	for i := range fa {
		x, _ := os.ReadFile(filepath.Join(a, fa[i].Path))
		y, _ := os.ReadFile(filepath.Join(b, fb[i].Path))
		if !bytes.Equal(x, y) || int64(len(x)) != fa[i].Size {
			t.Errorf("clip %d differs between runs or has the wrong size", i)
		}
		if !strings.HasPrefix(fa[i].Path, "DCIM/100RECOR/20261126_") || !clipName.MatchString(filepath.Base(fa[i].Path)) {
			t.Errorf("name %s", fa[i].Path)
		}
		created, dur, ok := probeMP4(filepath.Join(a, fa[i].Path))
		if !ok || !created.Equal(fa[i].Start) || dur != fa[i].Duration {
			t.Errorf("probe: %v %v %v, want %v %v", created, dur, ok, fa[i].Start, fa[i].Duration)
		}
	}
	if !IsRecorder(a) || IsRecorder(t.TempDir()) {
		t.Error("IsRecorder")
	}
	// Without sidecars the start comes from the name and the length from the MP4.
	os.Remove(filepath.Join(a, recordersim.DeviceInfoFile))
	for _, f := range fa {
		os.Remove(filepath.Join(a, f.Sidecar))
	}
	vol, err := scanVolume(a)
	if err != nil || len(vol.Clips) != 3 {
		t.Fatalf("scan %v %v", vol, err)
	}
	if c := vol.Clips[1]; !c.Start.Equal(fa[1].Start) || c.Duration != fa[1].Duration || c.Device != "DSJ-A1-0007" || c.StaffNo != "" {
		t.Errorf("clip without sidecar %+v", c)
	}
}

func TestWatch(t *testing.T) {
	r := newRig(t)
	media := t.TempDir()
	stick := filepath.Join(media, "nurse", "DSJ")
	if _, err := recordersim.Generate(stick, recordersim.Options{Seed: 10, Count: 2, MinSize: 1000, MaxSize: 2000}); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(media, "nurse", "OTHER", "docs"), 0o755)
	if got := FindRecorders([]string{media}); len(got) != 1 || got[0] != stick {
		t.Fatalf("FindRecorders %v", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.s.Watch(ctx, []string{media}, 20*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()
	waitImports := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for r.count(`SELECT COUNT(*) FROM recording_imports WHERE status <> 'running'`) < n {
			if time.Now().After(deadline) {
				t.Fatalf("waited for %d imports", n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitImports(1)
	time.Sleep(150 * time.Millisecond) // several polls: the same stick is not imported again
	if n := r.count(`SELECT COUNT(*) FROM recording_imports`); n != 1 {
		t.Errorf("%d imports of one insertion", n)
	}
	if n := r.count(`SELECT COUNT(*) FROM recordings`); n != 2 {
		t.Errorf("%d recordings", n)
	}
	// Pulled out and plugged in again: imported again (all duplicates).
	moved := filepath.Join(t.TempDir(), "away")
	if err := os.Rename(stick, moved); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	os.Rename(moved, stick)
	waitImports(2)
	imps, _ := r.s.Imports(r.admin, 5)
	if imps[0].FilesDuplicate != 2 || imps[0].Source != SourceUSB || imps[0].StartedBy != "system" {
		t.Errorf("second insertion %+v", imps[0])
	}
}

func TestRecoverImports(t *testing.T) {
	r := newRig(t)
	now := ihos.FormatTime(time.Now())
	r.exec(`INSERT INTO recording_imports (id, source, status, started_at, updated_at) VALUES ('i1', 'usb', 'running', ?, ?)`, now, now)
	if err := r.s.RecoverImports(context.Background()); err != nil {
		t.Fatal(err)
	}
	if imp, _ := r.s.ImportByID(r.admin, "i1"); imp.Status != ImportInterrupted {
		t.Errorf("status %s", imp.Status)
	}
}

func TestPruneLeftovers(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testPruneLeftovers(t, newRigDB(t, db)) })
}

func testPruneLeftovers(t *testing.T, r *rig) {
	dir, files := r.generate(recordersim.Options{Seed: 15, Count: 1, MinSize: 1 << 20, MaxSize: 1 << 20})
	r.s.openSource = func(p string) (sourceFile, error) {
		f, err := os.Open(p)
		return &failingReader{f: f, left: 100 << 10}, err
	}
	r.importDir(dir)
	part := filepath.Join(r.s.Dir, partDir, sourceKey(clipOf(t, dir, files[0]))+".part")
	if _, err := os.Stat(part); err != nil {
		t.Fatal(err)
	}
	if _, err := r.s.CreateUpload(r.admin, "b-abandoned", "DSJ/x.MP4", 10); err != nil {
		t.Fatal(err)
	}
	// Recent leftovers stay.
	if err := r.s.PruneLeftovers(r.admin, r.clock.Add(24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r.count(`SELECT COUNT(*) FROM recording_copies`) != 1 || r.count(`SELECT COUNT(*) FROM recording_uploads`) != 1 {
		t.Fatal("recent leftovers removed")
	}
	if err := r.s.PruneLeftovers(r.admin, r.clock.Add(31*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r.count(`SELECT COUNT(*) FROM recording_copies`) != 0 || r.count(`SELECT COUNT(*) FROM recording_uploads`) != 0 {
		t.Error("stale rows left")
	}
	for _, p := range []string{part, filepath.Join(r.s.Dir, uploadDir, "b-abandoned")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left: %v", p, err)
		}
	}
}
