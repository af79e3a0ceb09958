// Package doctorapp is the doctors' and pharmacists' app on the cloud (issue
// 8): a progressive web app at /doctor/ that a tablet or a phone installs
// from the browser. It is one page, server-rendered with html/template, and
// small plain JavaScript calling the cloud's JSON APIs (staffauth, visits,
// prescriptions, emr, workbench, notices) with the staff session cookie and
// its CSRF token. There is no build step and nothing comes from a CDN: a
// hospital network may have no internet beyond the cloud.
//
// The service worker caches the app's shell (the page, its script, style,
// icon and manifest) so the app opens at once and says "offline" clearly
// when the network is gone; it never caches an API answer, which would leave
// patient data on the device.
//
// The role decides the home screen: a doctor's worklist, a pharmacist's
// review queue. The few reads the existing APIs do not offer the app serve
// here, under /doctor/api/, each behind the staff session:
//
//	GET /doctor/api/catalog?kind=drug|exam|lab&q=&limit=  the doctor's hospital's current HIS catalogue
//	GET /doctor/api/reviewed                               the prescriptions the pharmacist reviewed, newest first
//	GET /doctor/api/rx/{id}/context                        the patient and the doctor of a prescription
package doctorapp

import (
	"context"
	"database/sql"
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/web"
	"ihos/prescriptions"
	"ihos/staffauth"
)

//go:embed templates/app.html
var appHTML string

//go:embed static
var staticFS embed.FS

var appPage = template.Must(template.New("app").Parse(appHTML))

// App serves the doctor and pharmacist app.
type App struct {
	DB            *sqldb.DB
	Staff         *staffauth.Service
	Prescriptions *prescriptions.Service
}

// New returns the app over the cloud's database, staff sessions and
// prescription service.
func New(db *sqldb.DB, staff *staffauth.Service, rx *prescriptions.Service) *App {
	return &App{DB: db, Staff: staff, Prescriptions: rx}
}

// Routes registers the app:
//
//	GET /doctor/                      the app (one page; the script routes by #hash)
//	GET /doctor/static/…              app.js, app.css, icon.svg
//	GET /doctor/manifest.webmanifest  the web app manifest
//	GET /doctor/sw.js                 the service worker (scope /doctor/)
//
// and the reads under /doctor/api/ listed in the package comment.
func (a *App) Routes(mux *http.ServeMux) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/doctor/static/", http.FileServerFS(static))
	mux.Handle("GET /doctor/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Revalidate every time: the service worker keeps the offline copy.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
	mux.Handle("GET /doctor", http.RedirectHandler("/doctor/", http.StatusFound))
	mux.Handle("GET /doctor/{$}", web.HandlerFunc(a.page))
	mux.Handle("GET /doctor/manifest.webmanifest", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serveFile(w, "static/manifest.webmanifest", "application/manifest+json")
	}))
	mux.Handle("GET /doctor/sw.js", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Service-Worker-Allowed", "/doctor/")
		serveFile(w, "static/sw.js", "text/javascript; charset=utf-8")
	}))
	a.Staff.Handle(mux, "GET /doctor/api/catalog", a.catalog)
	a.Staff.Handle(mux, "GET /doctor/api/reviewed", a.reviewed)
	a.Staff.Handle(mux, "GET /doctor/api/rx/{id}/context", a.rxContext)
}

func serveFile(w http.ResponseWriter, name, contentType string) {
	b, err := staticFS.ReadFile(name)
	if err != nil {
		http.NotFound(w, nil)
		return
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(b)
}

func (a *App) page(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	// The page holds no patient data: everything personal arrives through
	// the APIs after login.
	return appPage.Execute(w, map[string]string{"Version": ihos.Version})
}

// forbiddenOnline are the catalogue flags the prescription service refuses
// online (narcotic and psychotropic drugs): the search marks them so the
// doctor sees why before trying.
var forbiddenOnline = []string{ihos.FlagNarcotic, ihos.FlagPsychotropic1, ihos.FlagPsychotropic2}

// CatalogItem is one line of the HIS catalogue as the doctor picks it.
type CatalogItem struct {
	Kind     string `json:"kind"` // drug, exam, lab
	Code     string `json:"code"`
	Name     string `json:"name"`
	Spec     string `json:"spec"`
	Unit     string `json:"unit"`
	PriceFen int64  `json:"price_fen"`
	Price    string `json:"price"` // yuan
	Category string `json:"category,omitempty"`
	Specimen string `json:"specimen,omitempty"`
	Flags    string `json:"flags,omitempty"`
	// Restricted is set for drugs that may not be prescribed online, with
	// the reason shown next to them.
	Restricted string `json:"restricted,omitempty"`
}

var catalogKinds = map[string]string{"drug": ihos.CatalogDrug, "exam": ihos.CatalogExam, "lab": ihos.CatalogLab}

// catalog searches the doctor's hospital's current HIS catalogue (the
// replicated his_catalog) by code or name: active lines only, as the
// prescription and order services accept.
func (a *App) catalog(ctx context.Context, st staffauth.Staff, w http.ResponseWriter, r *http.Request) error {
	if st.Kind != ihos.StaffDoctor {
		return ihos.Errorf(ihos.EForbidden, "只有医生可以检索药品和检查检验目录")
	}
	q := r.URL.Query()
	kind, ok := catalogKinds[q.Get("kind")]
	if !ok {
		return ihos.Invalid(map[string]string{"kind": "目录类型应为 drug、exam 或 lab"})
	}
	limit := 20
	if n, err := strconv.Atoi(q.Get("limit")); err == nil && n > 0 && n <= 100 {
		limit = n
	}
	text := strings.TrimSpace(q.Get("q"))
	if len([]rune(text)) > 50 {
		return ihos.Invalid(map[string]string{"q": "检索词过长"})
	}
	// "!" escapes LIKE's wildcards the same way in SQLite and MySQL (a
	// backslash would need quoting differently in each).
	like := "%" + strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(text) + "%"
	rows, err := a.DB.QueryContext(ctx, `SELECT code, name, spec, unit, price_fen, flags, category, specimen FROM his_catalog
		WHERE hospital_id = ? AND kind = ? AND enabled = 1 AND deleted_at IS NULL
		AND (code LIKE ? ESCAPE '!' OR name LIKE ? ESCAPE '!')
		ORDER BY CASE WHEN code = ? THEN 0 ELSE 1 END, name, code LIMIT `+strconv.Itoa(limit),
		st.HospitalID, kind, like, like, text)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	out := []CatalogItem{}
	for rows.Next() {
		it := CatalogItem{Kind: q.Get("kind")}
		if err := rows.Scan(&it.Code, &it.Name, &it.Spec, &it.Unit, &it.PriceFen, &it.Flags, &it.Category, &it.Specimen); err != nil {
			return ihos.Internal(err)
		}
		it.Price = ihos.FormatYuan(it.PriceFen)
		for _, f := range strings.Split(it.Flags, ",") {
			if slices.Contains(forbiddenOnline, strings.TrimSpace(f)) {
				it.Restricted = "麻醉药品、精神药品不能在互联网医院开具"
			}
		}
		out = append(out, it)
	}
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// reviewed lists the prescriptions the pharmacist reviewed (approved or
// rejected), newest first: their own review history.
func (a *App) reviewed(ctx context.Context, st staffauth.Staff, w http.ResponseWriter, r *http.Request) error {
	if st.Kind != ihos.StaffPharmacist {
		return ihos.Errorf(ihos.EForbidden, "只有药师有审方记录")
	}
	rows, err := a.DB.QueryContext(ctx, `SELECT id FROM prescriptions WHERE reviewer_id = ? AND hospital_id = ? AND reviewed_at IS NOT NULL
		ORDER BY reviewed_at DESC LIMIT 100`, st.ID, st.HospitalID)
	if err != nil {
		return ihos.Internal(err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return ihos.Internal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	out := []*prescriptions.Prescription{}
	for _, id := range ids {
		p, err := a.Prescriptions.Get(ctx, id)
		if err != nil {
			return err
		}
		out = append(out, p)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}

// Person is the patient or the doctor of a prescription as the reviewing
// pharmacist sees them.
type Person struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Gender     string `json:"gender,omitempty"`
	Age        int    `json:"age,omitempty"`
	Title      string `json:"title,omitempty"`
	Department string `json:"department,omitempty"`
}

// rxContext answers who a prescription is for and who wrote it: the
// pharmacist of its hospital, or the doctor who wrote it.
func (a *App) rxContext(ctx context.Context, st staffauth.Staff, w http.ResponseWriter, r *http.Request) error {
	p, err := a.Prescriptions.Get(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if (st.Kind == ihos.StaffPharmacist && p.HospitalID != st.HospitalID) || (st.Kind == ihos.StaffDoctor && p.DoctorID != st.ID) {
		return ihos.Errorf(ihos.ENotFound, "处方不存在")
	}
	patient := Person{ID: p.PatientID}
	var birthYear int
	err = a.DB.QueryRowContext(ctx, `SELECT name, gender, birth_year FROM patients WHERE id = ?`, p.PatientID).Scan(&patient.Name, &patient.Gender, &birthYear)
	if err != nil && err != sql.ErrNoRows {
		return ihos.Internal(err)
	}
	if birthYear > 0 {
		patient.Age = time.Now().In(ihos.Shanghai).Year() - birthYear
	}
	doctor := Person{ID: p.DoctorID}
	err = a.DB.QueryRowContext(ctx, `SELECT s.name, s.title, COALESCE(d.name, '') FROM staff s LEFT JOIN departments d ON d.id = s.department_id WHERE s.id = ?`,
		p.DoctorID).Scan(&doctor.Name, &doctor.Title, &doctor.Department)
	if err != nil && err != sql.ErrNoRows {
		return ihos.Internal(err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"patient": patient, "doctor": doctor})
	return nil
}
