package tickets

import (
	"net/http"
	"strconv"
	"strings"

	"ihos"
	"ihos/internal/auth"
	"ihos/internal/console"
)

// funcHelp lists the template functions for the editor's help box.
var funcHelp = []struct{ Syntax, Help string }{
	{"{{yuan .Total}}", "金额（分）显示为元：27060 → 270.60；人民币符号请写全角 ￥"},
	{"{{date .PaidAt}} {{time .PaidAt}} {{datetime .PaidAt}}", "日期 2025-06-12、时间 09:30、日期时间 2025-06-12 09:30（北京时间）"},
	{`{{mask .PatientName 1 0}}`, "脱敏：保留前 1 个、后 0 个字，其余为 *"},
	{"{{flag .Flag}}", "检验结果标志：H → ↑，L → ↓"},
	{"{{if .Note}}…{{end}}", "字段有内容时才打印"},
	{"{{range .Items}}…{{.Name}}…{{end}}", "逐条打印列表，列表内直接写元素的字段"},
	{`{{printf "%03d" .PaperMM}}`, "按格式打印"},
}

type kindLink struct {
	Kind, Title string
	Active      bool
}

// Page is the console's 票据模板 page: pick a kind, edit its template with a
// live preview of the sample ticket, save or go back to the default.
// Viewing needs printing.read, saving printing.write.
func (s *Store) Page(a *auth.Service) console.Page {
	b, err := consoleFS.ReadFile("templates/console/page.html")
	if err != nil {
		panic(err) // embedded: cannot happen
	}
	flashes := map[string]string{}
	for _, k := range Kinds {
		flashes["saved_"+k] = "“" + Title(k) + "”模板已保存"
		flashes["reset_"+k] = "“" + Title(k) + "”已恢复默认模板"
	}
	return console.Page{
		Name: "tickets", Title: "票据模板", Perm: permRead, Template: string(b),
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			q := r.URL.Query()
			kind := q.Get("kind")
			if msg := q.Get("msg"); kind == "" && msg != "" {
				// After a save the console redirects with only the flash key,
				// which names the kind.
				_, kind, _ = strings.Cut(msg, "_")
			}
			if Title(kind) == "" {
				kind = Kinds[0]
			}
			paper, _ := strconv.Atoi(q.Get("paper"))
			if paper != 58 && paper != 106 {
				paper = 80
			}
			tpl, err := s.Template(ctx, kind)
			if err != nil {
				return nil, err
			}
			hist, err := s.History(ctx, kind, 10)
			if err != nil {
				return nil, err
			}
			var kinds []kindLink
			for _, k := range Kinds {
				kinds = append(kinds, kindLink{Kind: k, Title: Title(k), Active: k == kind})
			}
			actor, _ := ihos.ActorFrom(ctx)
			return map[string]any{
				"Kind": kind, "Kinds": kinds, "Template": tpl, "History": hist, "Paper": paper, "Papers": Papers,
				"Fields": Fields(kind), "Directives": Directives, "Funcs": funcHelp, "MaxSource": MaxSource,
				"CanWrite": auth.Can(actor.Role, permWrite),
			}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, permWrite, ""); err != nil {
				return "", err
			}
			kind := r.PostFormValue("kind")
			switch action {
			case "save":
				if _, err := s.Save(ctx, kind, r.PostFormValue("source")); err != nil {
					return "", err
				}
				return "saved_" + kind, nil
			case "reset":
				if err := s.Reset(ctx, kind); err != nil {
					return "", err
				}
				return "reset_" + kind, nil
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: flashes,
	}
}
