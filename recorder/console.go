package recorder

import (
	_ "embed"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/recorder.html
var pageTemplate string

// Page is the console's 工作记录仪录像 page: the integrity alarm, import
// progress (USB and folder upload), the recordings with filters and a player.
func (s *Service) Page(a *auth.Service) console.Page {
	return console.Page{
		Name: "recorder", Title: "工作记录仪录像", Perm: PermRead, Template: pageTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			f, err := ParseFilter(r)
			if err != nil {
				return nil, err
			}
			f.Limit = 100
			list, err := s.List(ctx, f)
			if err != nil {
				return nil, err
			}
			imports, err := s.Imports(ctx, 5)
			if err != nil {
				return nil, err
			}
			alarms, err := s.Alarms(ctx)
			if err != nil {
				return nil, err
			}
			var play *Recording
			if id := r.URL.Query().Get("play"); id != "" {
				rec, err := s.Recording(ctx, id)
				if err != nil {
					return nil, err
				}
				play = &rec
			}
			running := false
			for _, i := range imports {
				running = running || i.Status == ImportRunning
			}
			q := r.URL.Query()
			actor, _ := ihos.ActorFrom(ctx)
			return map[string]any{
				"Recordings": list, "Imports": imports, "Running": running, "Play": play,
				"Tampered": alarms[StatusTampered], "Missing": alarms[StatusMissing], "Suspect": alarms[StatusSuspect],
				"Query":    map[string]string{"nurse": q.Get("nurse"), "order": q.Get("order"), "day": q.Get("day"), "status": q.Get("status"), "device": q.Get("device")},
				"Statuses": StatusLabels, "CanWrite": auth.Can(actor.Role, PermWrite),
			}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, PermWrite, ""); err != nil {
				return "", err
			}
			id := r.PostFormValue("id")
			switch action {
			case "scan":
				list, err := s.ScanNow(ctx)
				if err != nil {
					return "", err
				}
				if len(list) == 0 {
					return "noscan", nil
				}
				return "scanned", nil
			case "verify":
				if _, err := s.Verify(ctx, 500); err != nil {
					return "", err
				}
				return "verified", nil
			case "relink":
				if _, err := s.Relink(ctx); err != nil {
					return "", err
				}
				return "relinked", nil
			case "hold":
				return "held", s.SetHold(ctx, id, true, strings.TrimSpace(r.PostFormValue("reason")))
			case "unhold":
				return "unheld", s.SetHold(ctx, id, false, "")
			case "delete":
				return "deleted", s.Delete(ctx, id)
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{
			"scanned": "已导入插入的记录仪", "noscan": "没有发现插入的记录仪（请确认记录仪已以 U 盘方式连接）",
			"verified": "完整性校验已完成", "relinked": "已重新关联护士与订单", "held": "已设为法律保全", "unheld": "已解除法律保全", "deleted": "录像已删除",
		},
	}
}
