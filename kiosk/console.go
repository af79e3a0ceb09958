package kiosk

import (
	"context"
	_ "embed"
	"net/http"

	"ihos"
	"ihos/internal/admin"
	"ihos/internal/auth"
	"ihos/internal/console"
)

//go:embed templates/console.html
var consoleTemplate string

// Resources declares the kiosks for the generic resource layer: staff add a
// kiosk, name its place and its printer and set its idle time there; the
// pairing state and the last contact are kept outside the declared fields
// and shown on the 自助机 page.
func Resources() []*admin.Resource {
	return []*admin.Resource{{
		Name: "kiosks", Title: "自助机登记", Noun: "自助机", Table: "kiosks",
		Perm: "kiosk", Display: "name", Sort: "name",
		Fields: []admin.Field{
			{Name: "name", Label: "名称", Type: admin.Text, Required: true, Max: 100, Unique: true, Search: true, List: true, Sort: true,
				Help: "如 门诊大厅 1 号机"},
			{Name: "location", Label: "位置", Type: admin.Text, Max: 200, Search: true, List: true},
			{Name: "printer_id", Label: "凭条打印机", Type: admin.Ref, Ref: "printers", List: true,
				Help: "自助机旁的凭条打印机；不选则本机不能打印"},
			{Name: "idle_seconds", Label: "无操作返回首页（秒）", Type: admin.Int, Min: 15, Max: 600, List: true,
				Help: "患者离开后多久回到首页并结束会话，默认 60 秒"},
		},
		Validate: func(_ context.Context, rec, _ admin.Record) map[string]string {
			if rec["idle_seconds"] == nil || rec["idle_seconds"] == int64(0) {
				rec["idle_seconds"] = int64(60)
			}
			return nil
		},
	}}
}

// kioskRow is one kiosk on the console page.
type kioskRow struct {
	Kiosk
	Online bool
	Code   string // the pairing code this user generated, while valid
}

// Page is the console's 自助机 page: every kiosk with its pairing state and
// whether it is online, a one-time pairing code to pair a device, and
// enabling or disabling a kiosk from afar.
func (s *Service) Page(a *auth.Service) console.Page {
	return console.Page{
		Name: "kiosk", Title: "自助机", Perm: "kiosk.read", Template: consoleTemplate,
		Data: func(r *http.Request) (any, error) {
			ctx := r.Context()
			ks, err := s.Kiosks(ctx)
			if err != nil {
				return nil, err
			}
			actor, _ := ihos.ActorFrom(ctx)
			codes := s.pendingCodes(actor.UserID)
			now := s.now()
			rows := make([]kioskRow, 0, len(ks))
			for _, k := range ks {
				rows = append(rows, kioskRow{Kiosk: k, Online: k.Enabled && k.Online(now), Code: codes[k.ID]})
			}
			return map[string]any{"Kiosks": rows, "CanWrite": auth.Can(actor.Role, "kiosk.write"),
				"CodeMinutes": int(CodeTTL.Minutes())}, nil
		},
		Post: func(r *http.Request, action string) (string, error) {
			ctx := r.Context()
			if err := a.Authorize(ctx, "kiosk.write", ""); err != nil {
				return "", err
			}
			id := r.PostFormValue("id")
			switch action {
			case "code":
				_, err := s.NewPairingCode(ctx, id)
				return "code", err
			case "enable":
				return "enabled", s.SetEnabled(ctx, id, true)
			case "disable":
				return "disabled", s.SetEnabled(ctx, id, false)
			case "unpair":
				return "unpaired", s.Unpair(ctx, id)
			}
			return "", ihos.Errorf(ihos.ENotFound, "未知操作")
		},
		Flashes: map[string]string{
			"code":     "配对码已生成，请在 10 分钟内在自助机上输入（只显示给您本人）",
			"enabled":  "自助机已启用",
			"disabled": "自助机已停用，正在使用的患者会话已结束",
			"unpaired": "已解除设备配对",
		},
	}
}
