package recorder

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/audit"
	"ihos/internal/web"
)

//go:embed static
var staticFS embed.FS

// Authorizer checks that the request may use perm and returns the context to
// continue with (the appliance passes node.AuthorizeCLIOr).
type Authorizer = web.Authorizer

// Permissions.
const (
	PermRead  = "recorder.read"
	PermWrite = "recorder.write"
)

// ContentType returns the MIME type of a clip extension.
func ContentType(ext string) string {
	switch strings.ToLower(ext) {
	case "mp4":
		return "video/mp4"
	case "mov":
		return "video/quicktime"
	case "avi":
		return "video/x-msvideo"
	case "ts":
		return "video/mp2t"
	case "mkv":
		return "video/x-matroska"
	}
	return "application/octet-stream"
}

// Routes registers the recorder API under /api/recorder ("recorder.read" to
// look and play, "recorder.write" to import, upload, hold and delete) and the
// console page's script at /recorder/static/.
func (s *Service) Routes(mux *http.ServeMux, authorize Authorizer) {
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /recorder/static/", http.StripPrefix("/recorder/static/", http.FileServerFS(static)))
	handle := web.Guard(mux, authorize)
	handle("GET /api/recorder/recordings", PermRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		f, err := ParseFilter(r)
		if err != nil {
			return err
		}
		list, err := s.List(ctx, f)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"recordings": list})
		return nil
	})
	handle("GET /api/recorder/recordings/{id}", PermRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		rec, err := s.Recording(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, rec)
		return nil
	})
	handle("GET /api/recorder/recordings/{id}/video", PermRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		return s.serveVideo(ctx, w, r, r.PathValue("id"))
	})
	handle("POST /api/recorder/recordings/{id}/hold", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Hold   bool   `json:"hold"`
			Reason string `json:"reason"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		if err := s.SetHold(ctx, r.PathValue("id"), req.Hold, strings.TrimSpace(req.Reason)); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]bool{"hold": req.Hold})
		return nil
	})
	handle("DELETE /api/recorder/recordings/{id}", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		if err := s.Delete(ctx, r.PathValue("id")); err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]string{"status": StatusDeleted})
		return nil
	})
	handle("GET /api/recorder/imports", PermRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		list, err := s.Imports(ctx, 20)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"imports": withPercent(list)})
		return nil
	})
	handle("GET /api/recorder/imports/{id}", PermRead, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		i, err := s.ImportByID(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, withPercent([]Import{i})[0])
		return nil
	})
	handle("POST /api/recorder/scan", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		list, err := s.ScanNow(ctx)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, map[string]any{"imports": withPercent(list)})
		return nil
	})
	handle("POST /api/recorder/verify", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		res, err := s.Verify(ctx, 500)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, res)
		return nil
	})
	handle("POST /api/recorder/uploads", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		var req struct {
			Batch string `json:"batch"`
			Path  string `json:"path"`
			Size  int64  `json:"size"`
		}
		if err := web.DecodeJSON(r, &req); err != nil {
			return err
		}
		u, err := s.CreateUpload(ctx, req.Batch, req.Path, req.Size)
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusCreated, u)
		return nil
	})
	handle("GET /api/recorder/uploads/{id}", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		u, err := s.UploadByID(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, u)
		return nil
	})
	handle("PUT /api/recorder/uploads/{id}", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		offset, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
		if err != nil || offset < 0 {
			return ihos.Invalid(map[string]string{"offset": "请给出本块的起始位置 offset"})
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxChunk+1)
		u, err := s.WriteUpload(ctx, r.PathValue("id"), offset, r.Body)
		if err != nil {
			var e *ihos.Error
			if errors.As(err, &e) && e.Code == ihos.EConflict {
				w.Header().Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
			}
			return err
		}
		w.Header().Set("Upload-Offset", strconv.FormatInt(u.Offset, 10))
		web.WriteJSON(w, http.StatusOK, u)
		return nil
	})
	handle("POST /api/recorder/uploads/{id}/finish", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		u, err := s.FinishUpload(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, u)
		return nil
	})
	handle("POST /api/recorder/batches/{batch}/import", PermWrite, func(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
		imp, err := s.ImportBatch(ctx, r.PathValue("batch"))
		if err != nil {
			return err
		}
		web.WriteJSON(w, http.StatusOK, withPercent([]Import{imp})[0])
		return nil
	})
}

// importView is an Import with its percentage, for the page's script.
type importView struct {
	Import
	Percent int    `json:"percent"`
	Label   string `json:"label"`
}

func withPercent(list []Import) []importView {
	out := make([]importView, len(list))
	for i, imp := range list {
		out[i] = importView{Import: imp, Percent: imp.Percent(), Label: ImportLabels[imp.Status]}
	}
	return out
}

// ParseFilter reads the list filters of a request: nurse (name or staff
// number), nurse_id, order, device, day (yyyy-mm-dd) and status.
func ParseFilter(r *http.Request) (Filter, error) {
	q := r.URL.Query()
	f := Filter{NurseID: q.Get("nurse_id"), Nurse: strings.TrimSpace(q.Get("nurse")), OrderID: strings.TrimSpace(q.Get("order")),
		Device: strings.TrimSpace(q.Get("device")), Status: q.Get("status")}
	if d := strings.TrimSpace(q.Get("day")); d != "" {
		t, err := time.ParseInLocation("2006-01-02", d, ihos.Shanghai)
		if err != nil {
			return f, ihos.Invalid(map[string]string{"day": "日期格式应为 2026-11-26"})
		}
		f.Day = t
	}
	if _, ok := StatusLabels[f.Status]; !ok && f.Status != "" && f.Status != "alarm" {
		return f, ihos.Invalid(map[string]string{"status": "未知的状态"})
	}
	return f, nil
}

// serveVideo plays a stored clip with Range support (seeking in the player).
// The view is audited once per playback: on the request that starts at the
// beginning, not on every range the player asks for while seeking.
func (s *Service) serveVideo(ctx context.Context, w http.ResponseWriter, r *http.Request, id string) error {
	rec, err := s.Recording(ctx, id)
	if err != nil {
		return err
	}
	if rec.Status == StatusDeleted {
		return ihos.Errorf(ihos.ENotFound, "录像已过保存期并删除")
	}
	f, err := os.Open(s.path(rec.StoredPath))
	if errors.Is(err, os.ErrNotExist) {
		return ihos.Errorf(ihos.ENotFound, "录像文件丢失，请联系信息科")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	rng := r.Header.Get("Range")
	if rng == "" || strings.HasPrefix(rng, "bytes=0-") {
		err := audit.Record(ctx, s.DB, audit.Entry{Action: "view", Resource: "recordings", RecordID: rec.ID,
			Summary: "播放记录仪录像：" + rec.SourceName + "（护士 " + rec.NurseName + "，订单 " + rec.OrderID + "）"})
		if err != nil {
			return err
		}
	}
	w.Header().Set("Content-Type", ContentType(rec.Ext))
	w.Header().Set("Content-Disposition", mime.FormatMediaType("inline", map[string]string{"filename": rec.SourceName}))
	w.Header().Set("Cache-Control", "private, no-store")
	w.Header().Set("ETag", `"`+rec.SM3+`"`)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", rec.ImportedAt, f)
	return nil
}
