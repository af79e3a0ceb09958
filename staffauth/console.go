package staffauth

import (
	"context"
	_ "embed"
	"net/http"
	"time"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/console.html
var consoleTemplate string

// issued is an initial password waiting to be shown, once, to the console
// user who generated it.
type issued struct {
	StaffID, Name, Password string
	by                      string
	at                      time.Time
}

// consoleRow is one doctor or pharmacist on the console page.
type consoleRow struct {
	StaffID, JobNo, Name, Kind, Title, Department string
	StaffEnabled, Granted, Enabled                bool
	IssuedAt                                      time.Time
}

// Page is the console's 互联网诊疗账号 page (appliance): every doctor and
// pharmacist with their app access, granting it (the initial password is
// shown once, to whoever granted it, on the next view) and disabling it.
func (s *Service) Page(a *auth.Service) console.Page {
	return console.Page{
		Name: "staff-app", Title: "互联网诊疗账号", Perm: "staffapp.read", Template: consoleTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			rows, err := s.consoleRows(ctx)
			if err != nil {
				return nil, err
			}
			actor, _ := ihos.ActorFrom(ctx)
			return map[string]any{"Rows": rows, "Issued": s.takeIssued(actor.UserID), "CanWrite": auth.Can(actor.Role, "staffapp.write")}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, "staffapp.write", ""); err != nil {
				return "", err
			}
			id := r.PostFormValue("id")
			switch action {
			case "grant":
				pw, err := s.Grant(ctx, id)
				if err != nil {
					return "", err
				}
				var name string
				s.DB.QueryRowContext(ctx, `SELECT name FROM staff WHERE id = ?`, id).Scan(&name)
				actor, _ := ihos.ActorFrom(ctx)
				s.mu.Lock()
				s.issued = append(s.issued, issued{StaffID: id, Name: name, Password: pw, by: actor.UserID, at: s.now()})
				s.mu.Unlock()
				return "granted", nil
			case "disable":
				return "disabled", s.Disable(ctx, id)
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{
			"granted":  "已开通互联网诊疗账号，初始密码见下方（仅显示这一次）",
			"disabled": "账号已停用，云端登录将随同步失效",
		},
	}
}

// takeIssued returns, and forgets, the passwords userID generated in the
// last 10 minutes; older ones are dropped unseen.
func (s *Service) takeIssued(userID string) []issued {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out, keep []issued
	for _, p := range s.issued {
		switch {
		case now.Sub(p.at) > 10*time.Minute:
		case p.by == userID:
			out = append(out, p)
		default:
			keep = append(keep, p)
		}
	}
	s.issued = keep
	return out
}

func (s *Service) consoleRows(ctx context.Context) ([]consoleRow, error) {
	rows, err := s.DB.QueryContext(ctx, `SELECT s.id, s.job_no, s.name, s.kind, s.title, COALESCE(d.name, ''), s.enabled,
		l.id IS NOT NULL, COALESCE(l.enabled, 0), COALESCE(l.issued_at, '')
		FROM staff s LEFT JOIN departments d ON d.id = s.department_id LEFT JOIN staff_app_logins l ON l.staff_id = s.id
		WHERE s.deleted_at IS NULL AND s.kind IN (?, ?) ORDER BY s.job_no`, ihos.StaffDoctor, ihos.StaffPharmacist)
	if err != nil {
		return nil, ihos.Internal(err)
	}
	defer rows.Close()
	var out []consoleRow
	for rows.Next() {
		var c consoleRow
		var issuedAt string
		if err := rows.Scan(&c.StaffID, &c.JobNo, &c.Name, &c.Kind, &c.Title, &c.Department, &c.StaffEnabled, &c.Granted, &c.Enabled, &issuedAt); err != nil {
			return nil, ihos.Internal(err)
		}
		c.Kind = ihos.StaffKindLabels[c.Kind]
		c.IssuedAt, _ = ihos.ParseTime(issuedAt)
		out = append(out, c)
	}
	return out, rows.Err()
}
