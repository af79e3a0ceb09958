package his

import (
	_ "embed"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/his.html
var pageTemplate string

// EventLabels names the outbound events for staff.
var EventLabels = map[string]string{
	ihos.HISRegisterVisit: "挂号登记 ADT^A04", ihos.HISPharmacyOrder: "处方 OMP^O09", ihos.HISLabOrder: "检验申请 OML^O21",
	ihos.HISExamOrder: "检查申请 OMG^O19", ihos.HISEMR: "病历 MDM^T02", ihos.HISFees: "费用 DFT^P03",
}

// Page is the console's HIS 接口 page: the queue's health and alarm, the
// messages waiting or refused (re-send, cancel), the message log, and a
// catalogue refresh. mode says which adapter runs, for the heading.
func (s *Service) Page(a *auth.Service, mode string) console.Page {
	return console.Page{
		Name: "his", Title: "HIS 接口", Perm: "his.read", Template: pageTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			st, err := s.Queue.Status(ctx)
			if err != nil {
				return nil, err
			}
			outbox, err := s.Queue.List(ctx, "", 100)
			if err != nil {
				return nil, err
			}
			q := r.URL.Query()
			lq := LogQuery{Text: strings.TrimSpace(q.Get("q")), Type: strings.TrimSpace(q.Get("type")), Lane: strings.TrimSpace(q.Get("patient")), Limit: 50}
			log, err := SearchLog(ctx, s.DB, lq)
			if err != nil {
				return nil, err
			}
			for i := range log { // HL7 separates segments with CR, which a page does not show as a line break
				log[i].Request = strings.ReplaceAll(log[i].Request, "\r", "\n")
				log[i].Response = strings.ReplaceAll(log[i].Response, "\r", "\n")
			}
			actor, _ := ihos.ActorFrom(ctx)
			return map[string]any{"Status": st, "Outbox": outbox, "Log": log, "Query": lq, "Mode": mode,
				"Events": EventLabels, "CanWrite": auth.Can(actor.Role, "his.write")}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, "his.write", ""); err != nil {
				return "", err
			}
			switch action {
			case "refresh":
				if _, err := s.RefreshCatalog(ctx); err != nil {
					return "", err
				}
				return "refreshed", nil
			case "resend":
				return "resent", s.Queue.Resend(ctx, r.PostFormValue("id"))
			case "cancel":
				return "cancelled", s.Queue.Cancel(ctx, r.PostFormValue("id"))
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{"refreshed": "HIS 目录已刷新", "resent": "已重新加入发送队列", "cancelled": "消息已取消"},
	}
}
