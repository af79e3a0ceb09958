package recorder

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/audit"
	"ihos/internal/auth"
	"ihos/internal/console"
	"ihos/internal/sqldb"
	"ihos/internal/sqldb/sqldbtest"
	"ihos/internal/web"
	"ihos/recorder/recordersim"
)

// server serves the API with every request acting as a hospital admin, or
// as role when the X-Test-Role header says so.
func (r *rig) server() *httptest.Server {
	mux := http.NewServeMux()
	a := auth.New(r.db)
	r.s.Routes(mux, func(req *http.Request, perm string) (context.Context, error) {
		role := auth.RoleHospitalAdmin
		if h := req.Header.Get("X-Test-Role"); h != "" {
			role = h
		}
		ctx := ihos.WithActor(req.Context(), ihos.Actor{UserID: "u1", Username: "admin", Role: role})
		return ctx, a.Authorize(ctx, perm, "")
	})
	srv := httptest.NewServer(web.Middleware(mux))
	r.t.Cleanup(srv.Close)
	return srv
}

func do(t *testing.T, method, url string, body io.Reader, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestPlaybackRange(t *testing.T) {
	r := newRig(t)
	dir, _ := r.generate(recordersim.Options{Seed: 11, Count: 2})
	r.importDir(dir)
	list, _ := r.s.List(r.admin, Filter{})
	rec := list[0]
	want, _ := os.ReadFile(r.s.path(rec.StoredPath))
	srv := r.server()
	url := srv.URL + "/api/recorder/recordings/" + rec.ID + "/video"

	resp, body := do(t, "GET", url, nil, map[string]string{"Range": "bytes=0-"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want) || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("first range: %d %s %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
	}
	resp, body = do(t, "GET", url, nil, map[string]string{"Range": "bytes=1000-1999"})
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, want[1000:2000]) ||
		resp.Header.Get("Content-Range") != "bytes 1000-1999/"+strconv.Itoa(len(want)) {
		t.Fatalf("range: %d %q %d bytes", resp.StatusCode, resp.Header.Get("Content-Range"), len(body))
	}
	resp, body = do(t, "GET", url, nil, nil)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, want) {
		t.Fatalf("whole: %d", resp.StatusCode)
	}
	// One audit entry per playback start, not per range.
	entries, _, _ := audit.List(r.admin, r.db, audit.Filter{Resource: "recordings", Action: "view"})
	if len(entries) != 2 || entries[0].RecordID != rec.ID || !strings.Contains(entries[0].Summary, "播放记录仪录像") {
		t.Errorf("view audit %+v", entries)
	}
	// Without recorder.read: refused.
	resp, _ = do(t, "GET", url, nil, map[string]string{"X-Test-Role": "nonexistent"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("no permission: %d", resp.StatusCode)
	}
	// Listing and deleting through the API.
	resp, body = do(t, "GET", srv.URL+"/api/recorder/recordings?day=2026-11-26", nil, nil)
	var lr struct{ Recordings []Recording }
	if json.Unmarshal(body, &lr); resp.StatusCode != 200 || len(lr.Recordings) != 2 {
		t.Errorf("list: %d %s", resp.StatusCode, body)
	}
	resp, body = do(t, "DELETE", srv.URL+"/api/recorder/recordings/"+rec.ID, nil, nil)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "录像保存期未满三年，不能删除") {
		t.Errorf("delete: %d %s", resp.StatusCode, body)
	}
}

// brokenPut announces a chunk of declared bytes, sends only data and drops
// the connection, as a browser losing its network does.
func brokenPut(t *testing.T, srvURL, path string, declared int, data []byte) {
	t.Helper()
	u, _ := url.Parse(srvURL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", path, u.Host, declared)
	conn.Write(data)
	time.Sleep(50 * time.Millisecond) // the server has read what was sent
	conn.Close()
}

func TestUploadResume(t *testing.T) {
	sqldbtest.Each(t, func(t *testing.T, db *sqldb.DB) { testUploadResume(t, newRigDB(t, db)) })
}

func testUploadResume(t *testing.T, r *rig) {
	r.nurse("n1", "N0012", "王护士", "DSJ-A1-0007")
	src, files := r.generate(recordersim.Options{Seed: 12, Count: 3, MinSize: 300 << 10, MaxSize: 300 << 10})
	srv := r.server()
	api := srv.URL + "/api/recorder"
	batch := "b-0123456789"

	// What the browser sends: the chosen folder's files with their paths.
	var paths []string
	filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(src, p)
			paths = append(paths, "DSJ/"+filepath.ToSlash(rel))
		}
		return nil
	})
	if len(paths) != 7 { // RECORDER.JSON + 3 clips + 3 sidecars
		t.Fatalf("paths %v", paths)
	}
	create := func(p string, size int) Upload {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"batch": batch, "path": p, "size": size})
		resp, body := do(t, "POST", api+"/uploads", bytes.NewReader(b), nil)
		var u Upload
		if err := json.Unmarshal(body, &u); err != nil || resp.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", p, resp.StatusCode, body)
		}
		return u
	}
	put := func(id string, offset int, chunk io.Reader) (*http.Response, []byte) {
		return do(t, "PUT", api+"/uploads/"+id+"?offset="+strconv.Itoa(offset), chunk, nil)
	}
	importBatch := func() (*http.Response, []byte) {
		return do(t, "POST", api+"/batches/"+batch+"/import", nil, nil)
	}
	for i, p := range paths {
		data, _ := os.ReadFile(filepath.Join(src, filepath.FromSlash(strings.TrimPrefix(p, "DSJ/"))))
		u := create(p, len(data))
		if !strings.HasSuffix(p, ".MP4") {
			if resp, body := put(u.ID, 0, bytes.NewReader(data)); resp.StatusCode != 200 {
				t.Fatalf("put %s: %d %s", p, resp.StatusCode, body)
			}
		} else {
			half := len(data) / 2
			// The first half arrives, then the connection drops 1000 bytes into the second.
			put(u.ID, 0, bytes.NewReader(data[:half]))
			brokenPut(t, srv.URL, "/api/recorder/uploads/"+u.ID+"?offset="+strconv.Itoa(half), len(data)-half, data[half:half+1000])
			// The bytes that arrived before the drop are kept.
			for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if got, _ := r.s.UploadByID(r.admin, u.ID); got.Offset == int64(half+1000) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the bytes before the dropped connection were not kept")
				}
			}
			if i == 1 {
				// Before the import, an unfinished file blocks it.
				if resp, body := importBatch(); resp.StatusCode != http.StatusConflict || !strings.Contains(string(body), "没有上传完") {
					t.Errorf("import with an unfinished file: %d %s", resp.StatusCode, body)
				}
			}
			// A page reload: POST again finds the same upload and its offset.
			again := create(p, len(data))
			if again.ID != u.ID || again.Offset != int64(half+1000) {
				t.Fatalf("resumed upload %+v, want id %s and offset %d", again, u.ID, half+1000)
			}
			// A chunk at a stale offset is refused with the right offset.
			resp, body := put(u.ID, half, bytes.NewReader(data[half:]))
			if resp.StatusCode != http.StatusConflict || resp.Header.Get("Upload-Offset") != strconv.FormatInt(again.Offset, 10) {
				t.Errorf("stale offset: %d %q %s", resp.StatusCode, resp.Header.Get("Upload-Offset"), body)
			}
			resp, body = do(t, "GET", api+"/uploads/"+u.ID, nil, nil)
			var got Upload
			json.Unmarshal(body, &got)
			if got.Offset != again.Offset || got.Status != UploadReceiving {
				t.Errorf("GET upload %+v", got)
			}
			if resp, body := put(u.ID, int(got.Offset), bytes.NewReader(data[got.Offset:])); resp.StatusCode != 200 {
				t.Fatalf("rest: %d %s", resp.StatusCode, body)
			}
		}
		if resp, body := do(t, "POST", api+"/uploads/"+u.ID+"/finish", nil, nil); resp.StatusCode != 200 {
			t.Fatalf("finish %s: %d %s", p, resp.StatusCode, body)
		}
	}
	resp, body := importBatch()
	var imp Import
	json.Unmarshal(body, &imp)
	if resp.StatusCode != 200 || imp.FilesNew != 3 || imp.Source != SourceUpload || imp.DeviceSerials != "DSJ-A1-0007" {
		t.Fatalf("import: %d %s", resp.StatusCode, body)
	}
	list, _ := r.s.List(r.admin, Filter{})
	for _, rec := range list {
		if rec.NurseID != "n1" || rec.ImportSource != SourceUpload {
			t.Errorf("uploaded recording %+v", rec)
		}
	}
	for i, f := range files {
		if want := fileSM3(t, filepath.Join(src, filepath.FromSlash(f.Path))); list[len(list)-1-i].SM3 != want {
			t.Errorf("clip %d SM3 differs after upload", i)
		}
	}
	if _, err := os.Stat(filepath.Join(r.s.Dir, uploadDir, batch)); !os.IsNotExist(err) {
		t.Errorf("upload folder left behind: %v", err)
	}

	// Bad input.
	for _, c := range []map[string]any{
		{"batch": "short", "path": "a.MP4", "size": 1},
		{"batch": batch, "path": "../etc/passwd.mp4", "size": 1},
		{"batch": batch, "path": "DSJ/run.exe", "size": 1},
		{"batch": batch, "path": "/abs.mp4", "size": 1},
	} {
		b, _ := json.Marshal(c)
		if resp, body := do(t, "POST", api+"/uploads", bytes.NewReader(b), nil); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: %d %s", c, resp.StatusCode, body)
		}
	}
}

func TestConsolePage(t *testing.T) {
	r := newRig(t)
	dir, _ := r.generate(recordersim.Options{Seed: 13, Count: 3})
	r.importDir(dir)
	list, _ := r.s.List(r.admin, Filter{})
	a := auth.New(r.db)
	p := r.s.Page(a)
	staff := &admin.Resource{Name: "staff", Table: "staff", Perm: "masterdata", Display: "name",
		Fields: []admin.Field{{Name: "name", Label: "姓名", Type: admin.Text}}}
	store := admin.NewStore(r.db, nil, a, append(Resources(), staff)...)
	c := console.New(store, a, "test")
	c.AddPage(p) // panics on a template error

	// Tamper with one file so the alarm shows.
	os.Chmod(r.s.path(list[0].StoredPath), 0o644)
	os.WriteFile(r.s.path(list[0].StoredPath), []byte("x"), 0o644)
	post := func(action string, form url.Values) (string, error) {
		req, _ := http.NewRequestWithContext(r.admin, "POST", "/console/x/recorder/"+action, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		flash, err := p.Post(req, action)
		return p.Flashes[flash], err
	}
	if msg, err := post("verify", nil); err != nil || msg != "完整性校验已完成" {
		t.Fatalf("verify: %q %v", msg, err)
	}
	if _, err := post("delete", url.Values{"id": {list[1].ID}}); ihos.ErrorMessage(err) != "录像保存期未满三年，不能删除" {
		t.Errorf("delete: %v", err)
	}
	if _, err := post("hold", url.Values{"id": {list[1].ID}, "reason": {"投诉调查"}}); err != nil {
		t.Errorf("hold: %v", err)
	}
	r.s.WatchRoots = []string{t.TempDir()}
	if msg, _ := post("scan", nil); !strings.Contains(msg, "没有发现") {
		t.Errorf("scan flash %q", msg)
	}

	req := httptest.NewRequestWithContext(r.admin, "GET", "/console/x/recorder?play="+list[1].ID, nil)
	data, err := p.Data(req)
	if err != nil {
		t.Fatal(err)
	}
	m := data.(map[string]any)
	if m["Tampered"] != 1 || len(m["Recordings"].([]Recording)) != 3 || m["Play"].(*Recording).ID != list[1].ID || m["CanWrite"] != true {
		t.Errorf("data %+v", m)
	}
	// Render through the console's layout as staff would see it.
	srv, cookie, _ := r.consoleServer(c)
	resp, body := do(t, "GET", srv.URL+"/console/x/recorder?play="+list[1].ID, nil, map[string]string{"Cookie": cookie})
	if resp.StatusCode != 200 {
		t.Fatalf("page: %d %s", resp.StatusCode, body)
	}
	html := string(body)
	for _, want := range []string{"recorder-alarm", "1 个录像文件被篡改", "/api/recorder/recordings/" + list[1].ID + "/video", "法律保全：投诉调查",
		"rec-folder", "webkitdirectory", "/recorder/static/recorder.js", "已被篡改"} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// A read-only role sees no write buttons and cannot post.
	auditor := ihos.WithActor(context.Background(), ihos.Actor{UserID: "u2", Role: auth.RoleAuditor})
	req, _ = http.NewRequestWithContext(auditor, "POST", "/console/x/recorder/verify", nil)
	if _, err := p.Post(req, "verify"); ihos.ErrorCode(err) != ihos.EForbidden {
		t.Errorf("auditor verify: %v", err)
	}
}

// consoleServer serves the console pages and the recorder API behind the
// real session middleware, with a logged-in hospital admin; it returns the
// session cookie and CSRF token.
func (r *rig) consoleServer(c *console.Console) (*httptest.Server, string, string) {
	r.t.Helper()
	ctx := context.Background()
	a := c.Auth
	if _, err := a.CreateUser(ctx, auth.User{Username: "recadmin", DisplayName: "录像管理员", Role: auth.RoleHospitalAdmin}, "Recorder-Pass-2026"); err != nil {
		r.t.Fatal(err)
	}
	sess, err := a.Login(ctx, "recadmin", "Recorder-Pass-2026", "127.0.0.1", "test")
	if err != nil {
		r.t.Fatal(err)
	}
	mux := http.NewServeMux()
	c.Routes(mux)
	r.s.Routes(mux, func(req *http.Request, perm string) (context.Context, error) {
		return req.Context(), a.Authorize(req.Context(), perm, "")
	})
	srv := httptest.NewServer(web.Middleware(a.Middleware(mux)))
	r.t.Cleanup(srv.Close)
	return srv, auth.CookieName + "=" + sess.Token, sess.CSRF
}
