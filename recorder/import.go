package recorder

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Import statuses.
const (
	ImportRunning     = "running"
	ImportDone        = "done"
	ImportFailed      = "failed"      // finished, some files could not be imported
	ImportInterrupted = "interrupted" // stopped (service stopped, stick pulled); the next import resumes
)

// Import is one import run and its progress.
type Import struct {
	ID             string    `json:"id"`
	Source         string    `json:"source"`
	Location       string    `json:"location"`
	DeviceSerials  string    `json:"device_serials"`
	Status         string    `json:"status"`
	FilesFound     int       `json:"files_found"`
	FilesNew       int       `json:"files_new"`
	FilesDuplicate int       `json:"files_duplicate"`
	FilesChanged   int       `json:"files_changed"`
	FilesFailed    int       `json:"files_failed"`
	BytesTotal     int64     `json:"bytes_total"`
	BytesDone      int64     `json:"bytes_done"`
	CurrentFile    string    `json:"current_file"`
	Error          string    `json:"error"`
	StartedBy      string    `json:"started_by"`
	StartedAt      time.Time `json:"started_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	FinishedAt     time.Time `json:"finished_at"`

	// BytesRead counts bytes read from the source in this run (not stored):
	// a resumed copy reads only the rest of its file, a duplicate only hashes.
	BytesRead int64 `json:"bytes_read"`
}

// Percent is the progress in percent.
func (i Import) Percent() int {
	if i.BytesTotal <= 0 {
		if i.Status == ImportRunning {
			return 0
		}
		return 100
	}
	return int(i.BytesDone * 100 / i.BytesTotal)
}

// ImportLabels names the import statuses for staff.
var ImportLabels = map[string]string{ImportRunning: "正在导入", ImportDone: "已完成", ImportFailed: "部分失败", ImportInterrupted: "已中断"}

// ImportFolder imports the recorder clips found under root (a mounted
// recorder or an uploaded folder). source is SourceUSB or SourceUpload. It
// returns the finished run; an error is returned only when nothing could be
// started (no such folder, no clips). Files that fail are counted and named
// in Import.Error; importing the folder again retries them, resuming copies.
func (s *Service) ImportFolder(ctx context.Context, root, source string) (Import, error) {
	if source != SourceUSB && source != SourceUpload {
		return Import{}, ihos.Errorf(ihos.EInvalid, "未知的导入来源 %q", source)
	}
	s.importMu.Lock()
	defer s.importMu.Unlock()
	vol, err := scanVolume(root)
	if err != nil {
		return Import{}, err
	}
	if len(vol.Clips) == 0 {
		return Import{}, ihos.Errorf(ihos.EInvalid, "%s 中没有找到记录仪录像文件", root)
	}
	run := &importRun{s: s, imp: Import{ID: ihos.NewID(), Source: source, Location: ihos.Truncate(root, 1000),
		DeviceSerials: ihos.Truncate(strings.Join(vol.Devices, ","), 500), Status: ImportRunning,
		FilesFound: len(vol.Clips), StartedBy: actorName(ctx), StartedAt: s.now()}}
	for _, c := range vol.Clips {
		run.imp.BytesTotal += c.Size
	}
	if err := run.insert(ctx); err != nil {
		return Import{}, err
	}
	var failures []string
	for _, c := range vol.Clips {
		if ctx.Err() != nil {
			break
		}
		run.setCurrent(c.Rel)
		outcome, err := s.importClip(ctx, run, c)
		switch {
		case err != nil:
			run.imp.FilesFailed++
			failures = append(failures, ihos.ErrorMessage(err))
			if ihos.ErrorCode(err) == ihos.EInternal && ctx.Err() == nil {
				slog.ErrorContext(ctx, "recorder: import failed", "file", c.Path, "err", err)
			}
		case outcome == outcomeNew:
			run.imp.FilesNew++
		case outcome == outcomeDuplicate:
			run.imp.FilesDuplicate++
		case outcome == outcomeChanged:
			run.imp.FilesChanged++
		}
		run.fileDone(c)
	}
	run.imp.Status = ImportDone
	switch {
	case ctx.Err() != nil:
		run.imp.Status = ImportInterrupted
		failures = append([]string{"导入被中断，再次导入时从中断处继续"}, failures...)
	case run.imp.FilesFailed > 0:
		run.imp.Status = ImportFailed
	}
	run.imp.Error = ihos.Truncate(strings.Join(failures, "；"), 500)
	run.imp.CurrentFile = ""
	run.imp.FinishedAt = s.now()
	if err := run.finish(context.WithoutCancel(ctx)); err != nil {
		return run.imp, err
	}
	return run.imp, nil
}

type outcome int

const (
	outcomeNew outcome = iota
	outcomeDuplicate
	outcomeChanged
)

// importClip imports one clip: a file imported before under its name is only
// hashed (a duplicate, or changed since); a new one is copied and stored.
func (s *Service) importClip(ctx context.Context, run *importRun, c clip) (outcome, error) {
	prev, err := s.sameName(ctx, c)
	if err != nil {
		return 0, err
	}
	if prev != nil {
		sum, err := s.hashSource(ctx, c, run.read)
		if err != nil {
			return 0, err
		}
		if id, err := s.idBySM3(ctx, sum); err != nil || id != "" {
			return outcomeDuplicate, err
		}
		// Different content under a name imported before: the file on the
		// recorder was changed after its import. Keep both.
		cp, err := s.copyClip(ctx, c, nil)
		if err != nil {
			return 0, err
		}
		if cp.SM3 != sum {
			s.dropCopy(ctx, sourceKey(c), cp.Part)
			return 0, ihos.Errorf(ihos.EConflict, "%s 在导入过程中被改动，已放弃本次导入", c.Rel)
		}
		note := fmt.Sprintf("记录仪上的同名文件与 %s 导入的版本（SM3 %s…）内容不一致：文件在导入后被修改过，以首次导入的版本为准，本版本仅供核查",
			prev.ImportedAt.In(ihos.Shanghai).Format("2006-01-02 15:04"), prev.SM3[:16])
		if err := s.store(ctx, run, c, cp, StatusSuspect, note, prev.ID); err != nil {
			return 0, err
		}
		return outcomeChanged, nil
	}
	cp, err := s.copyClip(ctx, c, run.read)
	if err != nil {
		return 0, err
	}
	if id, err := s.idBySM3(ctx, cp.SM3); err != nil || id != "" {
		// The same content came from another folder already.
		s.dropCopy(ctx, sourceKey(c), cp.Part)
		return outcomeDuplicate, err
	}
	if err := s.store(ctx, run, c, cp, StatusOK, "", ""); err != nil {
		return 0, err
	}
	return outcomeNew, nil
}

// sameName returns the first recording imported from the same device under
// the same file name and start, or nil.
func (s *Service) sameName(ctx context.Context, c clip) (*Recording, error) {
	r, err := scanRecording(s.DB.QueryRowContext(ctx, `SELECT `+recordingColumns+recordingFrom+`
		WHERE r.device_serial = ? AND r.source_name = ? AND r.started_at = ? ORDER BY r.imported_at, r.id LIMIT 1`,
		c.Device, c.Name, ihos.FormatTime(c.Start)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &r, nil
}

func (s *Service) idBySM3(ctx context.Context, sum string) (string, error) {
	var id string
	err := s.DB.QueryRowContext(ctx, `SELECT id FROM recordings WHERE sm3 = ?`, sum).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// store moves a verified copy into the content store and commits its row,
// attached to the nurse and order, with the journal entry removed.
func (s *Service) store(ctx context.Context, run *importRun, c clip, cp copied, status, note, originalID string) error {
	nurse, err := s.nurseOf(ctx, c.Device, c.StaffNo)
	if err != nil {
		return err
	}
	var order string
	if nurse != "" {
		id, ok, err := s.orders().OrderAt(ctx, nurse, c.Start)
		if err != nil {
			slog.WarnContext(ctx, "recorder: find order", "nurse", nurse, "err", err) // Relink can attach it later
		} else if ok {
			order = id
		}
	}
	local := c.Start.In(ihos.Shanghai)
	stored := fmt.Sprintf("%04d/%02d/%s.%s", local.Year(), int(local.Month()), cp.SM3, c.Ext)
	final := s.path(stored)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return err
	}
	// A file of the same content may be there from a crash before its commit;
	// it is replaced (read-only files cannot be replaced on Windows).
	if _, err := os.Stat(final); err == nil {
		os.Chmod(final, 0o644)
	}
	if err := os.Rename(cp.Part, final); err != nil {
		return err
	}
	os.Chmod(final, 0o444) // guards against accidental writes; Verify catches deliberate ones
	syncDir(filepath.Dir(final))
	now := s.now()
	retain := s.retainUntil(c.Start, now)
	id := ihos.NewID()
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO recordings (id, sm3, size, ext, device_serial, staff_no, nurse_id, order_id, started_at, duration_ms, gps,
			source_name, source_path, stored_path, import_id, import_source, imported_by, imported_at, retain_until, status, note, original_id, checked_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, cp.SM3, c.Size, c.Ext, c.Device, ihos.Truncate(c.StaffNo, 32), nurse, order, ihos.FormatTime(c.Start), c.Duration.Milliseconds(), c.GPS,
			ihos.Truncate(c.Name, 255), ihos.Truncate(c.Path, 1000), stored, run.imp.ID, run.imp.Source, ihos.Truncate(run.imp.StartedBy, 64),
			ihos.FormatTime(now), ihos.FormatTime(retain), status, ihos.Truncate(note, 500), originalID, ihos.FormatTime(now))
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM recording_copies WHERE source_key = ?`, sourceKey(c)); err != nil {
			return err
		}
		if status == StatusSuspect {
			return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "changed", Resource: "recordings", RecordID: id,
				Summary: "记录仪录像导入后被修改：" + c.Device + " " + c.Name + "（原录像 " + originalID + "）"})
		}
		return nil
	})
	if err != nil {
		if sqldb.IsUniqueViolation(err) { // stored already: the file moved in has the same content
			return nil
		}
		return err
	}
	return nil
}

// nurseOf finds the nurse of a clip: the recorder's registration first, then
// the staff number the recorder wrote.
func (s *Service) nurseOf(ctx context.Context, device, staffNo string) (string, error) {
	var id string
	if device != "" {
		err := s.DB.QueryRowContext(ctx, `SELECT staff_id FROM recorder_devices WHERE serial = ? AND enabled = 1 AND deleted_at IS NULL AND staff_id <> '' ORDER BY updated_at DESC LIMIT 1`, device).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	if staffNo != "" {
		err := s.DB.QueryRowContext(ctx, `SELECT id FROM staff WHERE job_no = ? AND deleted_at IS NULL ORDER BY updated_at DESC LIMIT 1`, staffNo).Scan(&id)
		if err == nil {
			return id, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return "", err
		}
	}
	return "", nil
}

// Relink attaches recordings that have no nurse or no order yet (the recorder
// was registered, or the visit recorded, after the import). It returns how
// many changed.
func (s *Service) Relink(ctx context.Context) (int, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT id, device_serial, staff_no, nurse_id, started_at FROM recordings
		WHERE (nurse_id = '' OR order_id = '') AND status <> 'deleted' ORDER BY started_at LIMIT 1000`)
	if err != nil {
		return 0, err
	}
	type row struct{ id, device, staffNo, nurse, started string }
	var todo []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.device, &r.staffNo, &r.nurse, &r.started); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range todo {
		nurse := r.nurse
		if nurse == "" {
			if nurse, err = s.nurseOf(ctx, r.device, r.staffNo); err != nil {
				return n, err
			}
		}
		if nurse == "" {
			continue
		}
		at, _ := ihos.ParseTime(r.started)
		order, _, err := s.orders().OrderAt(ctx, nurse, at)
		if err != nil {
			return n, err
		}
		if nurse == r.nurse && order == "" {
			continue
		}
		err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE recordings SET nurse_id = ?, order_id = ? WHERE id = ?`, nurse, order, r.id); err != nil {
				return err
			}
			return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "link", Resource: "recordings", RecordID: r.id,
				Summary: "关联记录仪录像：护士 " + nurse + "，订单 " + order})
		})
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// importRun keeps a run's progress row up to date.
type importRun struct {
	s        *Service
	mu       sync.Mutex
	imp      Import
	fileRead int64 // bytes of the current file read so far
	saved    time.Time
}

func (r *importRun) insert(ctx context.Context) error {
	i := &r.imp
	now := ihos.FormatTime(i.StartedAt)
	return r.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO recording_imports (id, source, location, device_serials, status, files_found, bytes_total, started_by, started_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, i.ID, i.Source, i.Location, i.DeviceSerials, i.Status, i.FilesFound, i.BytesTotal, ihos.Truncate(i.StartedBy, 64), now, now)
		return err
	})
}

func (r *importRun) setCurrent(rel string) {
	r.mu.Lock()
	r.imp.CurrentFile = ihos.Truncate(rel, 255)
	r.fileRead = 0
	r.mu.Unlock()
}

// read counts bytes read from the source and saves the progress at most
// twice a second.
func (r *importRun) read(n int64) {
	r.mu.Lock()
	r.fileRead += n
	r.imp.BytesRead += n
	r.imp.BytesDone += n
	save := time.Since(r.saved) > 500*time.Millisecond
	r.mu.Unlock()
	if save {
		r.save(context.Background())
	}
}

// fileDone counts a whole file as done whatever was read (a resumed copy
// reads only its rest) and saves the progress.
func (r *importRun) fileDone(c clip) {
	r.mu.Lock()
	r.imp.BytesDone += c.Size - r.fileRead
	r.fileRead = 0
	r.mu.Unlock()
	r.save(context.Background())
}

func (r *importRun) save(ctx context.Context) {
	r.mu.Lock()
	i := r.imp
	r.saved = time.Now()
	r.mu.Unlock()
	err := r.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE recording_imports SET files_new = ?, files_duplicate = ?, files_changed = ?, files_failed = ?,
			bytes_done = ?, current_file = ?, updated_at = ? WHERE id = ?`,
			i.FilesNew, i.FilesDuplicate, i.FilesChanged, i.FilesFailed, i.BytesDone, i.CurrentFile, ihos.FormatTime(r.s.now()), i.ID)
		return err
	})
	if err != nil {
		slog.Warn("recorder: save import progress", "err", err)
	}
}

func (r *importRun) finish(ctx context.Context) error {
	i := r.imp
	return r.s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE recording_imports SET status = ?, files_new = ?, files_duplicate = ?, files_changed = ?, files_failed = ?,
			bytes_done = ?, current_file = '', error = ?, updated_at = ?, finished_at = ? WHERE id = ?`,
			i.Status, i.FilesNew, i.FilesDuplicate, i.FilesChanged, i.FilesFailed, i.BytesDone, i.Error,
			ihos.FormatTime(i.FinishedAt), ihos.FormatTime(i.FinishedAt), i.ID)
		if err != nil {
			return err
		}
		src := "U 盘"
		if i.Source == SourceUpload {
			src = "控制台上传"
		}
		return audit.Append(ctx, r.s.DB, tx, audit.Entry{Action: "import", Resource: "recording_imports", RecordID: i.ID,
			Summary: fmt.Sprintf("导入记录仪录像（%s %s）：发现 %d，新增 %d，重复 %d，被改动 %d，失败 %d",
				src, i.DeviceSerials, i.FilesFound, i.FilesNew, i.FilesDuplicate, i.FilesChanged, i.FilesFailed)})
	})
}

// Imports returns the latest import runs, newest first.
func (s *Service) Imports(ctx context.Context, limit int) ([]Import, error) {
	if limit <= 0 || limit > 200 {
		limit = 20
	}
	rows, err := s.DB.QueryContext(ctx, `SELECT `+importColumns+` FROM recording_imports ORDER BY started_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Import
	for rows.Next() {
		i, err := scanImport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, rows.Err()
}

// ImportByID returns one import run.
func (s *Service) ImportByID(ctx context.Context, id string) (Import, error) {
	i, err := scanImport(s.DB.QueryRowContext(ctx, `SELECT `+importColumns+` FROM recording_imports WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return i, ihos.Errorf(ihos.ENotFound, "导入记录不存在")
	}
	return i, err
}

const importColumns = `id, source, location, device_serials, status, files_found, files_new, files_duplicate, files_changed, files_failed,
	bytes_total, bytes_done, current_file, error, started_by, started_at, updated_at, finished_at`

func scanImport(row interface{ Scan(...any) error }) (Import, error) {
	var i Import
	var started, updated string
	var finished sql.NullString
	err := row.Scan(&i.ID, &i.Source, &i.Location, &i.DeviceSerials, &i.Status, &i.FilesFound, &i.FilesNew, &i.FilesDuplicate, &i.FilesChanged,
		&i.FilesFailed, &i.BytesTotal, &i.BytesDone, &i.CurrentFile, &i.Error, &i.StartedBy, &started, &updated, &finished)
	if err != nil {
		return i, err
	}
	i.StartedAt, _ = ihos.ParseTime(started)
	i.UpdatedAt, _ = ihos.ParseTime(updated)
	if finished.Valid {
		i.FinishedAt, _ = ihos.ParseTime(finished.String)
	}
	return i, nil
}

// RecoverImports marks runs left running by a stopped service interrupted;
// call it once at start. Their copies resume on the next import.
func (s *Service) RecoverImports(ctx context.Context) error {
	now := ihos.FormatTime(s.now())
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE recording_imports SET status = 'interrupted', error = '服务停止时导入尚未完成，再次导入时从中断处继续', updated_at = ?, finished_at = ? WHERE status = 'running'`, now, now)
		return err
	})
}

func actorName(ctx context.Context) string {
	if a, ok := ihos.ActorFrom(ctx); ok && a.Username != "" {
		return a.Username
	}
	return ihos.System.Username
}

// syncDir makes a rename durable (a no-op where directories cannot be synced).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// Label names the run's status for staff.
func (i Import) Label() string { return ImportLabels[i.Status] }

// BytesText is the progress in bytes for people.
func (i Import) BytesText() string { return sizeText(i.BytesDone) + " / " + sizeText(i.BytesTotal) }
