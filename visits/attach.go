package visits

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"ihos"
)

// Attachments: the images and voice clips of messages. The bytes are stored
// once per content under Dir, named by their SM3 hash (so a file can be
// checked against its record, and the same photo sent twice takes no more
// room); the record ties an upload to its visit and uploader. The type is
// decided from the content, never from the client's word.

// Attachment is an uploaded image or voice clip.
type Attachment struct {
	ID          string    `json:"id"`
	VisitID     string    `json:"visit_id"`
	Kind        string    `json:"kind"` // image, voice
	ContentType string    `json:"content_type"`
	Size        int64     `json:"size"`
	SM3         string    `json:"sm3"`
	CreatedAt   time.Time `json:"created_at"`
}

// DefaultMaxAttachment is the upload limit when Service.MaxAttachment is 0.
const DefaultMaxAttachment = 10 << 20

// allowedTypes maps the content types accepted to the message kind.
var allowedTypes = map[string]string{
	"image/jpeg": KindImage, "image/png": KindImage, "image/gif": KindImage, "image/webp": KindImage,
	"audio/mpeg": KindVoice, "audio/amr": KindVoice, "audio/aac": KindVoice, "audio/mp4": KindVoice,
	"audio/wave": KindVoice, "application/ogg": KindVoice, "audio/webm": KindVoice,
}

// sniff decides the content type from the first bytes: the standard sniffer,
// plus the voice formats phones record in that it does not know.
func sniff(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("#!AMR")):
		return "audio/amr"
	case len(b) >= 2 && b[0] == 0xFF && b[1]&0xF6 == 0xF0: // AAC ADTS
		return "audio/aac"
	case len(b) >= 12 && string(b[4:8]) == "ftyp" && (string(b[8:11]) == "M4A" || string(b[8:12]) == "mp42" || string(b[8:12]) == "isom"):
		return "audio/mp4"
	}
	ct := http.DetectContentType(b)
	if i := bytes.IndexByte([]byte(ct), ';'); i >= 0 {
		ct = ct[:i]
	}
	if ct == "video/webm" {
		// What Chrome's and Android WebView's MediaRecorder record voice in
		// (Opus in WebM); the sniffer names every WebM video. It is served
		// as audio, so a video track in it would not play.
		return "audio/webm"
	}
	return ct
}

// Upload stores an image or voice clip that by sends in visit visitID; the
// message that shows it is posted next with its id (Post). The same rules as
// for posting apply: the visit's own parties, not after it ended.
func (s *Service) Upload(ctx context.Context, by Party, visitID string, r io.Reader) (*Attachment, error) {
	v, err := s.load(ctx, visitID)
	if err != nil {
		return nil, err
	}
	if err := mayPost(by, v); err != nil {
		return nil, err
	}
	limit := s.MaxAttachment
	if limit <= 0 {
		limit = DefaultMaxAttachment
	}
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, ihos.Errorf(ihos.EInvalid, "上传中断，请重试")
	}
	if int64(len(data)) > limit {
		return nil, ihos.Invalid(map[string]string{"file": fmt.Sprintf("文件不能超过 %d MB", limit>>20)})
	}
	if len(data) == 0 {
		return nil, ihos.Invalid(map[string]string{"file": "文件是空的"})
	}
	ct := sniff(data)
	kind, ok := allowedTypes[ct]
	if !ok {
		return nil, ihos.Invalid(map[string]string{"file": "只能上传图片（JPEG、PNG、GIF、WebP）或语音（MP3、AMR、AAC、M4A、WAV、OGG）"})
	}
	sum := sm3.Sum(data)
	a := &Attachment{ID: ihos.NewID(), VisitID: v.ID, Kind: kind, ContentType: ct, Size: int64(len(data)),
		SM3: hex.EncodeToString(sum[:]), CreatedAt: s.now()}
	if err := s.store(a.SM3, data); err != nil {
		return nil, ihos.Internal(err)
	}
	err = s.DB.Tx(ctx, func(tx *sql.Tx) error {
		_, err := s.DB.TxExec(ctx, tx, `INSERT INTO visit_attachments (id, hospital_id, visit_id, uploader_role, uploader_id, kind, content_type, size, sm3, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, a.ID, v.HospitalID, v.ID, by.Role, ihos.Truncate(by.ID, 64), a.Kind, a.ContentType, a.Size, a.SM3,
			ihos.FormatTime(a.CreatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// path is where content with SM3 hash sum lives.
func (s *Service) path(sum string) string { return filepath.Join(s.Dir, sum[:2], sum) }

// store writes data under its hash unless it is there already: through a
// temporary file and a rename, so a reader never sees half a file.
func (s *Service) store(sum string, data []byte) error {
	if s.Dir == "" {
		return errors.New("visits: no attachment directory")
	}
	p := s.path(sum)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".upload-*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

var errNoAttachment = ihos.Errorf(ihos.ENotFound, "附件不存在")

// OpenAttachment returns attachment id and its content, for the visit's
// parties only. The caller closes the file.
func (s *Service) OpenAttachment(ctx context.Context, by Party, id string) (*Attachment, *os.File, error) {
	var a Attachment
	var created string
	err := s.DB.QueryRowContext(ctx, `SELECT id, visit_id, kind, content_type, size, sm3, created_at FROM visit_attachments WHERE id = ?`, id).
		Scan(&a.ID, &a.VisitID, &a.Kind, &a.ContentType, &a.Size, &a.SM3, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, errNoAttachment
	}
	if err != nil {
		return nil, nil, err
	}
	a.CreatedAt = parseTime(created)
	v, err := s.load(ctx, a.VisitID)
	if err != nil {
		return nil, nil, err
	}
	if err := party(by, v); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(s.path(a.SM3))
	if err != nil {
		return nil, nil, ihos.Internal(err)
	}
	return &a, f, nil
}

// ServeAttachment writes attachment id to w for by.
func (s *Service) ServeAttachment(w http.ResponseWriter, r *http.Request, by Party, id string) error {
	a, f, err := s.OpenAttachment(r.Context(), by, id)
	if err != nil {
		return err
	}
	defer f.Close()
	w.Header().Set("Content-Type", a.ContentType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "private, max-age=86400")
	w.Header().Set("ETag", `"`+a.SM3+`"`)
	http.ServeContent(w, r, "", a.CreatedAt, f)
	return nil
}
