package cloud

import (
	"net/http"

	"ihos"
	"ihos/internal/sqldb"
	"ihos/internal/web"
)

// catalog serves what patients browse before they log in: a hospital's
// departments open for internet consultations (its doctors: cloud/booking.go),
// from the replica of the hospital's master data. Nothing personal is served: no phone, no ID
// number, no licence number.
type catalog struct{ db *sqldb.DB }

func (c catalog) routes(mux *http.ServeMux) {
	mux.Handle("GET /api/public/departments", web.HandlerFunc(c.departments))
}

// PublicDepartment is a department as patients see it.
type PublicDepartment struct {
	ID          string `json:"id"`
	Hospital    string `json:"hospital"`
	Institution string `json:"institution"`
	Code        string `json:"code"`
	Name        string `json:"name"`
	Category    string `json:"category"`
	Location    string `json:"location"`
	Intro       string `json:"intro"`
}

// PublicDoctor is a doctor as patients see them. The list, GET
// /api/public/doctors, is served by package booking (cloud/booking.go),
// whose booking.Doctor carries these fields and more.
type PublicDoctor struct {
	ID           string `json:"id"`
	Hospital     string `json:"hospital"`
	DepartmentID string `json:"department_id"`
	Department   string `json:"department"`
	Name         string `json:"name"`
	Gender       string `json:"gender"`
	Title        string `json:"title"`
	Specialty    string `json:"specialty"`
	Intro        string `json:"intro"`
}

func hospitalParam(r *http.Request) (string, error) {
	h := r.URL.Query().Get("hospital")
	if h == "" {
		return "", ihos.Invalid(map[string]string{"hospital": "请指定医院"})
	}
	return h, nil
}

func (c catalog) departments(w http.ResponseWriter, r *http.Request) error {
	h, err := hospitalParam(r)
	if err != nil {
		return err
	}
	rows, err := c.db.QueryContext(r.Context(), `SELECT d.id, d.hospital_id, COALESCE(i.name, ''), d.code, d.name, d.category, d.location, COALESCE(d.intro, '')
		FROM departments d LEFT JOIN institutions i ON i.id = d.institution_id
		WHERE d.hospital_id = ? AND d.online = 1 AND d.enabled = 1 AND d.deleted_at IS NULL
		ORDER BY d.sort_order, d.code`, h)
	if err != nil {
		return ihos.Internal(err)
	}
	defer rows.Close()
	out := []PublicDepartment{}
	for rows.Next() {
		var d PublicDepartment
		if err := rows.Scan(&d.ID, &d.Hospital, &d.Institution, &d.Code, &d.Name, &d.Category, &d.Location, &d.Intro); err != nil {
			return ihos.Internal(err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return ihos.Internal(err)
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"items": out})
	return nil
}
