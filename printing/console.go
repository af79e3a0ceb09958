package printing

import (
	_ "embed"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/printing.html
var pageTemplate string

// jobRow is a job as the console page lists it.
type jobRow struct {
	Job
	PrinterName string
	StatusLabel string
}

// Page is the console's 打印机 page: every printer with its live status
// (在线 / 缺纸 / 纸仓盖打开 / 离线, when last checked), queue depth and a test
// print button; the recent jobs with reprint, cancel and confirm buttons. The
// page refreshes its live part every 5 seconds (templates/live.js, served by
// Routes). Reading needs printing.read, every button printing.write.
func (s *Service) Page(a *auth.Service) console.Page {
	return console.Page{
		Name: "printing", Title: "打印机", Perm: "printing.read", Template: pageTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			printers, err := s.Printers(ctx)
			if err != nil {
				return nil, err
			}
			q := r.URL.Query()
			f := JobFilter{PrinterID: strings.TrimSpace(q.Get("printer")), Status: strings.TrimSpace(q.Get("status")), Limit: 100}
			if StatusLabels[f.Status] == "" {
				f.Status = ""
			}
			jobs, err := s.Jobs(ctx, f)
			if err != nil {
				return nil, err
			}
			names := map[string]string{}
			for _, p := range printers {
				names[p.ID] = p.Name
			}
			rows := make([]jobRow, len(jobs))
			for i, j := range jobs {
				rows[i] = jobRow{Job: j, PrinterName: names[j.PrinterID], StatusLabel: StatusLabels[j.Status]}
			}
			unknown := 0
			for _, p := range printers {
				unknown += p.Unknown
			}
			actor, _ := ihos.ActorFrom(ctx)
			var statuses []map[string]string
			for _, st := range []string{StatusQueued, StatusPrinting, StatusUnknown, StatusPrinted, StatusFailed, StatusCancelled} {
				statuses = append(statuses, map[string]string{"Value": st, "Label": StatusLabels[st]})
			}
			return map[string]any{"Printers": printers, "Jobs": rows, "Filter": f, "Statuses": statuses, "Unknown": unknown,
				"Transports": TransportLabels, "CanWrite": auth.Can(actor.Role, "printing.write"),
				"CanConfigure": auth.Can(actor.Role, "printing.write")}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, "printing.write", ""); err != nil {
				return "", err
			}
			id := r.PostFormValue("id")
			switch action {
			case "test":
				_, err := s.TestPrint(ctx, id, ActorSource(ctx))
				return "test", err
			case "reprint":
				_, err := s.Reprint(ctx, id, ActorSource(ctx))
				return "reprinted", err
			case "cancel":
				return "cancelled", s.Cancel(ctx, id)
			case "printed":
				return "confirmed", s.Confirm(ctx, id, true)
			case "again":
				return "again", s.Confirm(ctx, id, false)
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{"test": "测试页已加入打印队列", "reprinted": "已加入打印队列（重印）", "cancelled": "打印任务已取消",
			"confirmed": "已确认打印完成", "again": "将重新打印该任务"},
	}
}
