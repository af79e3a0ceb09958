package reconcile

import (
	"context"
	_ "embed"
	"net/http"
	"strings"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/reconcile.html
var pageTemplate string

// Authorizer checks a permission of the console's user (*auth.Service).
type Authorizer interface {
	Authorize(ctx context.Context, perm, department string) error
}

// runView is a run as the page shows it, with its mismatches.
type runView struct {
	Run
	SideLabel  string
	StmtLabel  string
	Items      []Item
	Unresolved int
}

// stmtLabels name the outcomes of the centre's totals check.
var stmtLabels = map[string]string{StmtBalanced: "医保中心总额对账（3201）：平", StmtUnbalanced: "医保中心总额对账（3201）：不平",
	StmtUnchecked: "医保中心总额对账（3201）：未核对"}

// Page is the console's 对账管理: for a day (default yesterday), each side's
// run (渠道, 医保, HIS) with both sides' counts and sums, the centre's 3201
// check, and the mismatches with their suggested actions, optionally only
// those not handled yet. It reads the runs where they are (an appliance's
// replica); 处理 (resolve, with a note) and 重新对账 (run the day again) go
// to remote, the cloud, which owns them. Writing needs payments.write.
func (r *Reconciler) Page(a Authorizer, remote Remote) console.Page {
	return console.Page{
		Name: "reconcile", Title: "对账管理", Perm: "payments.read", Template: pageTemplate,
		Data: func(req *http.Request) (any, error) {
			ctx := req.Context()
			q := req.URL.Query()
			day := strings.TrimSpace(q.Get("day"))
			if day == "" {
				day = Yesterday(r.now())
			}
			unresolved := q.Get("unresolved") == "1"
			data := map[string]any{"Day": day, "Unresolved": unresolved, "Sides": Sides}
			runs, err := r.Runs(ctx, day, "")
			if ihos.ErrorCode(err) == ihos.EInvalid {
				data["Error"] = "对账日期格式应为 2006-01-02"
				day = Yesterday(r.now())
				data["Day"] = day
				runs, err = r.Runs(ctx, day, "")
			}
			if err != nil {
				return nil, err
			}
			views := make([]runView, 0, len(runs))
			var open int
			for _, run := range runs {
				all, err := r.Items(ctx, run.ID, false)
				if err != nil {
					return nil, err
				}
				v := runView{Run: run, SideLabel: SideLabel(run.Source), StmtLabel: stmtLabels[run.StmtStatus]}
				for _, it := range all {
					if it.ResolvedAt.IsZero() {
						v.Unresolved++
					}
					if !unresolved || it.ResolvedAt.IsZero() {
						v.Items = append(v.Items, it)
					}
				}
				open += v.Unresolved
				views = append(views, v)
			}
			actor, _ := ihos.ActorFrom(ctx)
			data["Runs"], data["Open"], data["CanWrite"] = views, open, auth.Can(actor.Role, "payments.write")
			return data, nil
		},
		Post: func(req *http.Request, action string) (string, error) {
			ctx := req.Context()
			if err := a.Authorize(ctx, "payments.write", ""); err != nil {
				return "", err
			}
			switch action {
			case "run":
				day, source := strings.TrimSpace(req.PostFormValue("day")), strings.TrimSpace(req.PostFormValue("source"))
				if _, _, err := dayRange(day); err != nil {
					return "", err
				}
				return "started", remote.Run(ctx, day, source)
			case "resolve":
				note := strings.TrimSpace(req.PostFormValue("note"))
				if note == "" {
					return "", ihos.Invalid(map[string]string{"note": "请填写处理说明"})
				}
				return "resolved", remote.Resolve(ctx, req.PostFormValue("id"), note)
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{
			"started":  "已请求云端重新对账，完成后结果会同步到本页（通常一分钟内），请稍后刷新",
			"resolved": "已标记为已处理，处理结果同步到本页后显示",
		},
	}
}
