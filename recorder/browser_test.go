package recorder

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/browsertest"
	"ihos/internal/console"
	"ihos/recorder/recordersim"
)

// TestBrowserUploadAndPlay uploads a recorder's files from the console page
// with its script (chunks of 4 MB, so the 5 MB clips take two), then opens the
// player.
func TestBrowserUploadAndPlay(t *testing.T) {
	b := browsertest.New(t)
	r := newRig(t)
	r.nurse("n1", "N0012", "王护士", "DSJ-A1-0007")
	src, files := r.generate(recordersim.Options{Seed: 14, Count: 3, MinSize: 5 << 20, MaxSize: 5 << 20})
	a := auth.New(r.db)
	staff := &admin.Resource{Name: "staff", Table: "staff", Perm: "masterdata", Display: "name",
		Fields: []admin.Field{{Name: "name", Label: "姓名", Type: admin.Text}}}
	c := console.New(admin.NewStore(r.db, nil, a, append(Resources(), staff)...), a, "互联网医院 · 院内管理控制台")
	c.AddPage(r.s.Page(a))
	srv, _, _ := r.consoleServer(c)

	text := func(sel string) string {
		t.Helper()
		return strings.TrimSpace(browsertest.Get(b, chromedp.Text(chromedp.CSS(sel))))
	}
	b.Run(chromedp.Navigate(srv.URL+"/console/login"),
		chromedp.SendKeys(chromedp.ID("username"), "recadmin"), chromedp.SendKeys(chromedp.ID("password"), "Recorder-Pass-2026"))
	browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.ID("login"))))
	b.Run(chromedp.Navigate(srv.URL + "/console/x/recorder"))
	if got := text("main.content h1"); got != "工作记录仪录像" {
		t.Fatalf("heading %q", got)
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, filepath.Join(src, filepath.FromSlash(f.Path)), filepath.Join(src, filepath.FromSlash(f.Sidecar)))
	}
	b.Run(chromedp.SetUploadFiles(chromedp.ID("rec-folder"), []string{src}))
	t.Logf("files: %s", browsertest.Get(b, chromedp.Evaluate[string](`Array.prototype.map.call(document.getElementById('rec-folder').files, function (f) { return f.name + ':' + f.size + ':' + f.webkitRelativePath; }).join(' ')`)))
	b.Run(chromedp.Click(chromedp.ID("rec-upload-start")))
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(text("#rec-upload-status"), "导入完成") {
		if time.Now().After(deadline) || strings.Contains(text("#rec-upload-status"), "失败") || strings.Contains(text("#rec-upload-status"), "没有") {
			b.Screenshot("upload-stuck")
			t.Fatalf("upload status %q", text("#rec-upload-status"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := text("#rec-upload-status"); !strings.Contains(got, "新增 3") {
		t.Errorf("status %q", got)
	}
	b.Screenshot("uploaded")
	b.Run(chromedp.Navigate(srv.URL + "/console/x/recorder"))
	if got := text("#recordings"); strings.Count(got, "王护士") != 3 || !strings.Contains(got, "3:00") {
		t.Errorf("recordings table %q", got)
	}
	browsertest.Get(b, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS("#recordings a"))))
	b.Run(chromedp.WaitVisible(chromedp.ID("rec-video")))
	// The player loaded the clip's header through a range request.
	var dur float64
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		dur = browsertest.Get(b, chromedp.Evaluate[float64](`document.getElementById('rec-video').duration || 0`))
		state := browsertest.Get(b, chromedp.Evaluate[int](`document.getElementById('rec-video').readyState + (document.getElementById('rec-video').error ? 100 : 0)`))
		if dur > 0 || state >= 100 || time.Now().After(deadline) {
			t.Logf("video duration %.1f s, readyState/error %d", dur, state)
			break
		}
	}
	b.Screenshot("player")
	if errs := b.ConsoleErrors(); len(errs) > 0 {
		t.Errorf("JS errors: %q", errs)
	}
	// The player asked for the clip (a range request from byte 0): audited.
	if n := r.count(`SELECT COUNT(*) FROM audit_log WHERE action = 'view' AND resource = 'recordings'`); n < 1 {
		t.Errorf("%d view audit entries", n)
	}
	list, _ := r.s.List(r.admin, Filter{})
	if len(list) != 3 || list[0].ImportSource != SourceUpload || list[0].NurseID != "n1" {
		t.Errorf("recordings %+v", list)
	}
}
