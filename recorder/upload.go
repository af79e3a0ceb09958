package recorder

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/sqldb"
)

// Console uploads: the browser sends each file of the chosen folder in
// chunks; a chunk is appended only at the offset the server holds, so a
// failed or repeated request never corrupts the file and an upload resumes
// after a network error or a page reload from GET's offset. When every file
// of the batch is complete, ImportBatch imports the folder like a stick.

// Upload statuses.
const (
	UploadReceiving = "uploading"
	UploadComplete  = "complete"
	UploadImported  = "imported"
)

// MaxChunk is the largest chunk one PUT may carry.
const MaxChunk = 16 << 20

// maxUploadSize bounds one file (a recorder clip is at most a few GB).
const maxUploadSize = 64 << 30

const uploadDir = ".uploads"

// Upload is one file being uploaded.
type Upload struct {
	ID       string `json:"id"`
	Batch    string `json:"batch"`
	Path     string `json:"path"`
	Size     int64  `json:"size"`
	Offset   int64  `json:"offset"` // bytes received
	Status   string `json:"status"`
	Imported bool   `json:"imported"`
}

var batchID = regexp.MustCompile(`^[A-Za-z0-9_-]{8,64}$`)

// uploadExts are the files a folder upload may carry: clips, their
// sidecars and the device file.
var uploadExts = map[string]bool{".mp4": true, ".mov": true, ".avi": true, ".ts": true, ".mkv": true, ".json": true}

// cleanUploadPath checks a browser-supplied relative path.
func cleanUploadPath(p string) (string, bool) {
	if p == "" || len(p) > 500 || strings.ContainsAny(p, "\\:\x00") || strings.HasPrefix(p, "/") {
		return "", false
	}
	c := path.Clean(p)
	if c != p || c == "." || strings.HasPrefix(c, "../") || c == ".." {
		return "", false
	}
	for _, part := range strings.Split(c, "/") {
		if strings.HasPrefix(part, ".") {
			return "", false
		}
	}
	if !uploadExts[strings.ToLower(path.Ext(c))] {
		return "", false
	}
	return c, true
}

func (s *Service) uploadFile(u Upload) string {
	return filepath.Join(s.Dir, uploadDir, u.Batch, filepath.FromSlash(u.Path))
}

// CreateUpload starts (or, for the same batch and path, resumes) the upload
// of one file and returns it with the offset to continue from.
func (s *Service) CreateUpload(ctx context.Context, batch, p string, size int64) (Upload, error) {
	fields := map[string]string{}
	if !batchID.MatchString(batch) {
		fields["batch"] = "批次编号应为 8 到 64 位字母、数字、下划线或连字符"
	}
	clean, ok := cleanUploadPath(p)
	if !ok {
		fields["path"] = "文件路径无效，或不是记录仪录像文件（MP4、MOV、AVI、TS、MKV 及其 JSON 说明文件）"
	}
	if size < 0 || size > maxUploadSize {
		fields["size"] = "文件大小无效"
	}
	if len(fields) > 0 {
		return Upload{}, ihos.Invalid(fields)
	}
	if u, err := s.uploadBy(ctx, `batch = ? AND path = ?`, batch, clean); err == nil {
		if u.Size != size {
			return Upload{}, ihos.Errorf(ihos.EConflict, "%s 已以另一大小开始上传，请换一个批次重新上传", clean)
		}
		return u, nil
	} else if ihos.ErrorCode(err) != ihos.ENotFound {
		return Upload{}, err
	}
	u := Upload{ID: ihos.NewID(), Batch: batch, Path: clean, Size: size, Status: UploadReceiving}
	if size == 0 {
		u.Status = UploadComplete
	}
	if err := os.MkdirAll(filepath.Dir(s.uploadFile(u)), 0o755); err != nil {
		return Upload{}, err
	}
	if err := os.WriteFile(s.uploadFile(u), nil, 0o644); err != nil {
		return Upload{}, err
	}
	now := ihos.FormatTime(s.now())
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO recording_uploads (id, batch, path, size, received, status, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?)`,
			u.ID, u.Batch, u.Path, u.Size, u.Status, ihos.Truncate(actorName(ctx), 64), now, now)
		return err
	})
	if sqldb.IsUniqueViolation(err) { // a parallel request created it
		return s.uploadBy(ctx, `batch = ? AND path = ?`, batch, clean)
	}
	return u, err
}

// UploadByID returns an upload and its offset.
func (s *Service) UploadByID(ctx context.Context, id string) (Upload, error) {
	return s.uploadBy(ctx, `id = ?`, id)
}

func (s *Service) uploadBy(ctx context.Context, where string, args ...any) (Upload, error) {
	var u Upload
	err := s.DB.QueryRowContext(ctx, `SELECT id, batch, path, size, received, status FROM recording_uploads WHERE `+where, args...).
		Scan(&u.ID, &u.Batch, &u.Path, &u.Size, &u.Offset, &u.Status)
	if errors.Is(err, sql.ErrNoRows) {
		return u, ihos.Errorf(ihos.ENotFound, "上传记录不存在")
	}
	u.Imported = u.Status == UploadImported
	return u, err
}

// WriteUpload appends a chunk read from r at offset, which must be the
// upload's current offset (else EConflict, and the client asks GET for the
// offset). Bytes that arrived before a broken connection are kept.
func (s *Service) WriteUpload(ctx context.Context, id string, offset int64, r io.Reader) (Upload, error) {
	s.uploadMu.Lock()
	defer s.uploadMu.Unlock()
	u, err := s.UploadByID(ctx, id)
	if err != nil {
		return u, err
	}
	if u.Status != UploadReceiving {
		return u, ihos.Errorf(ihos.EConflict, "%s 已上传完毕", u.Path)
	}
	if offset != u.Offset {
		return u, ihos.Errorf(ihos.EConflict, "上传位置不一致：服务器已收到 %d 字节，请从该位置继续", u.Offset)
	}
	f, err := os.OpenFile(s.uploadFile(u), os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return u, err
	}
	defer f.Close()
	// Anything past the recorded offset is from a request that failed
	// before it was recorded.
	if err := f.Truncate(u.Offset); err != nil {
		return u, err
	}
	if _, err := f.Seek(u.Offset, io.SeekStart); err != nil {
		return u, err
	}
	limit := min(int64(MaxChunk), u.Size-u.Offset)
	n, cerr := io.Copy(f, io.LimitReader(r, limit))
	if cerr == nil {
		// The chunk must end where the limit did: more would overrun the file.
		var one [1]byte
		if m, _ := r.Read(one[:]); m > 0 {
			return u, ihos.Errorf(ihos.EInvalid, "数据块过大：每块最多 %d MB，且不能超过文件大小", MaxChunk>>20)
		}
	}
	if err := f.Sync(); err != nil {
		return u, err
	}
	u.Offset += n
	if u.Offset == u.Size {
		u.Status = UploadComplete
	}
	// Recorded even when the client went away: that is the point.
	ctx = context.WithoutCancel(ctx)
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE recording_uploads SET received = ?, status = ?, updated_at = ? WHERE id = ?`,
			u.Offset, u.Status, ihos.FormatTime(s.now()), u.ID)
		return err
	})
	if err != nil {
		return u, err
	}
	if cerr != nil {
		return u, ihos.Errorf(ihos.EUnavailable, "上传中断（已收到 %d 字节），请从该位置继续", u.Offset)
	}
	return u, nil
}

// FinishUpload checks that every byte of the file arrived.
func (s *Service) FinishUpload(ctx context.Context, id string) (Upload, error) {
	u, err := s.UploadByID(ctx, id)
	if err != nil {
		return u, err
	}
	if u.Offset != u.Size {
		return u, ihos.Errorf(ihos.EConflict, "%s 尚未上传完（%d/%d 字节）", u.Path, u.Offset, u.Size)
	}
	if fi, err := os.Stat(s.uploadFile(u)); err != nil || fi.Size() != u.Size {
		return u, ihos.Errorf(ihos.EConflict, "%s 的上传文件不完整，请重新上传", u.Path)
	}
	return u, nil
}

// ImportBatch imports an uploaded folder once all its files are complete,
// then removes the uploaded copies (kept when some files failed, so a retry
// does not need the upload again).
func (s *Service) ImportBatch(ctx context.Context, batch string) (Import, error) {
	if !batchID.MatchString(batch) {
		return Import{}, ihos.Errorf(ihos.EInvalid, "批次编号无效")
	}
	var total, pending int
	err := s.DB.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'uploading' THEN 1 ELSE 0 END), 0) FROM recording_uploads WHERE batch = ?`, batch).Scan(&total, &pending)
	if err != nil {
		return Import{}, err
	}
	if total == 0 {
		return Import{}, ihos.Errorf(ihos.ENotFound, "该批次没有上传的文件")
	}
	if pending > 0 {
		return Import{}, ihos.Errorf(ihos.EConflict, "还有 %d 个文件没有上传完", pending)
	}
	dir := filepath.Join(s.Dir, uploadDir, batch)
	root := dir
	// A chosen folder arrives as <folder>/…: import from inside it, so its
	// RECORDER.JSON is at the root as on the stick.
	if entries, err := os.ReadDir(dir); err == nil && len(entries) == 1 && entries[0].IsDir() {
		root = filepath.Join(dir, entries[0].Name())
	}
	imp, err := s.ImportFolder(ctx, root, SourceUpload)
	if err != nil {
		return imp, err
	}
	if imp.Status == ImportDone {
		err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `UPDATE recording_uploads SET status = 'imported', updated_at = ? WHERE batch = ?`, ihos.FormatTime(s.now()), batch); err != nil {
				return err
			}
			return audit.Append(ctx, s.DB, tx, audit.Entry{Action: "upload", Resource: "recording_imports", RecordID: imp.ID,
				Summary: "控制台上传记录仪录像文件夹，批次 " + batch})
		})
		if err != nil {
			return imp, err
		}
		os.RemoveAll(dir)
	}
	return imp, nil
}
