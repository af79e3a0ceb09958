package appliance

import (
	"context"
	"flag"
	"fmt"
	"io"

	"ihos"
	"ihos/internal/node"
	"ihos/sync"
)

// SyncCLI runs `ihos-appliance sync status|verify|resync ENTITY`: it asks the
// running appliance (found through the same config, data dir and address the
// service uses) over its HTTP API, authenticated by the token the service left
// in its data dir.
func SyncCLI(ctx context.Context, args []string, out io.Writer) error {
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	cli, rest, err := node.NewCLI("appliance", flag.NewFlagSet("ihos-appliance sync", flag.ContinueOnError), &cfg.Config, &cfg, args, out)
	if err != nil {
		return err
	}
	if len(rest) == 0 {
		return ihos.Errorf(ihos.EInvalid, "用法：ihos-appliance sync status|verify|resync <数据类型> [--data-dir 目录] [--http 地址] [--json]")
	}
	call := func(method, path string, body, v any) error { return cli.Call(ctx, method, path, body, v) }
	asJSON := &cli.JSON
	switch rest[0] {
	case "status":
		var st sync.Status
		if err := call("GET", "/api/sync/status", nil, &st); err != nil || *asJSON {
			return err
		}
		state := map[string]string{"connected": "已连接", "disconnected": "未连接"}[st.State]
		fmt.Fprintf(out, "同步链路：%s（医院 %s，节点 %s）\n", state, st.Hospital, st.Node)
		if !st.LastContact.IsZero() {
			fmt.Fprintf(out, "最近通信：%s\n", st.LastContact.In(ihos.Shanghai).Format("2006-01-02 15:04:05"))
		}
		fmt.Fprintf(out, "待发送：%d 条（最早 %.0f 秒前）\n接收延迟：%d 毫秒\n冲突：%d 条  被拒绝的消息：%d 条\n",
			st.Backlog, st.OldestUnsentAgeS, st.ApplyLagMs, st.Conflicts, st.Rejected)
	case "verify":
		var rep sync.Report
		if err := call("POST", "/api/sync/verify", struct{}{}, &rep); err != nil || *asJSON {
			return err
		}
		remote := map[string]sync.Digest{}
		for _, d := range rep.Remote {
			remote[d.Entity] = d
		}
		fmt.Fprintf(out, "%-18s %10s %10s  %s\n", "数据类型", "本院", "云端", "校验")
		for _, d := range rep.Local {
			same := "一致"
			if remote[d.Entity] != d {
				same = "不一致"
			}
			fmt.Fprintf(out, "%-18s %10d %10d  %s\n", d.Entity, d.Count, remote[d.Entity].Count, same)
		}
		for _, d := range rep.Differences {
			fmt.Fprintf(out, "差异 %s %s 本院版本 %d 云端版本 %d：%s\n", d.Entity, d.ID, d.Local, d.Remote, d.Comment)
		}
		if rep.InSync {
			fmt.Fprintln(out, "结果：两侧数据一致")
		} else {
			fmt.Fprintf(out, "结果：发现 %d 处差异（可用 ihos-appliance sync resync <数据类型> 重新同步）\n", len(rep.Differences))
			return ihos.Errorf(ihos.EConflict, "两侧数据不一致")
		}
	case "resync":
		if len(rest) != 2 {
			return ihos.Errorf(ihos.EInvalid, "用法：ihos-appliance sync resync <数据类型>，如 departments")
		}
		var res struct {
			Rows int `json:"rows"`
		}
		if err := call("POST", "/api/sync/resync", map[string]string{"entity": rest[1]}, &res); err != nil || *asJSON {
			return err
		}
		fmt.Fprintf(out, "已重新发送 %s 共 %d 条记录\n", rest[1], res.Rows)
	default:
		return ihos.Errorf(ihos.EInvalid, "未知的 sync 子命令 %q：可用 status、verify、resync", rest[0])
	}
	return nil
}
