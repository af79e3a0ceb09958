// Package h5 serves the patients' mobile pages at /h5/ on the cloud: the
// pages the WeChat mini-program shows in its web-view, and that a phone's
// browser opens directly. They cover issue 8's patient journey: SMS login,
// real-name verification and family members, finding a doctor, booking and
// paying a follow-up visit, waiting with a live queue position, talking with
// the doctor (text, images, voice), the visit's EMR, prescriptions (paid
// here), exam and lab orders, rating the doctor, the message center and the
// personal center (visits, orders with e-invoices, 诊间支付).
//
// The page is one server-rendered shell (html/template) and one small plain
// script that calls the cloud's JSON APIs with the patient's cookie session
// (and its CSRF token on writes, as package accounts requires); there is no
// front-end build step and nothing is loaded from outside the cloud (no CDN,
// no web fonts), which the Content-Security-Policy enforces. A screen whose
// API answers 404/405 because that part of the platform is not deployed
// shows a friendly empty state instead of failing.
//
// Which hospital the pages act for: ?hospital= on the first visit (the
// mini-program of a hospital opens /h5/?hospital=<id>), kept by the page;
// without it the cloud's only (or first) enabled hospital. A patient's own
// account belongs to one hospital, which then wins.
package h5

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strings"

	"ihos/internal/web"
)

//go:embed templates/index.html
var indexHTML string

//go:embed static
var staticFS embed.FS

var indexPage = template.Must(template.New("h5").Parse(indexHTML))

// assetVersion changes whenever a static file does, so a phone never runs a
// stale script against a newer API (the files are cached for a day).
var assetVersion = func() string {
	h := sha256.New()
	fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := staticFS.ReadFile(path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// Hospitals is the cloud's register of hospitals (cloud.Hospitals): the
// page's default hospital is one of its enabled ones.
type Hospitals interface {
	IDs() []string
	Known(id string) bool
}

// csp keeps everything on the cloud's own origin: the script, the styles,
// the images and voice clips of a visit (and the blob: previews of a photo
// or recording before it is sent).
const csp = "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; style-src 'self'; script-src 'self'; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'self'; form-action 'self'"

// Routes registers the pages:
//
//	GET /h5            → /h5/
//	GET /h5/           the page (the screens are the fragment: #/doctor/<id>, #/visit/<id>, …)
//	GET /h5/static/…   h5.js, h5.css
func Routes(mux *http.ServeMux, hospitals Hospitals) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/h5/static/", http.FileServerFS(static))
	mux.Handle("GET /h5/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /h5", http.RedirectHandler("/h5/", http.StatusFound))
	mux.Handle("GET /h5/{$}", web.HandlerFunc(func(w http.ResponseWriter, r *http.Request) error {
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		var known []string
		if hospitals != nil {
			known = hospitals.IDs()
			slices.Sort(known)
		}
		return indexPage.Execute(w, map[string]string{"Hospital": defaultHospital(hospitals, r.URL.Query().Get("hospital")),
			"Known": strings.Join(known, ","), "V": assetVersion})
	}))
}

// defaultHospital is the hospital the page starts with: the one asked for
// if the cloud serves it, else the only (or the first) enabled one.
func defaultHospital(h Hospitals, asked string) string {
	if h == nil {
		return asked
	}
	if asked != "" && h.Known(asked) {
		return asked
	}
	ids := h.IDs()
	if len(ids) == 0 {
		return ""
	}
	slices.Sort(ids)
	return ids[0]
}
