package cloud

import (
	"context"
	"flag"
	"fmt"
	"io"

	"ihos"
	"ihos/internal/node"
)

// HospitalCLI runs `ihos-cloud hospital add --name 名称 [--id 编号]` and
// `ihos-cloud hospital list` against the running cloud.
func HospitalCLI(ctx context.Context, args []string, out io.Writer) error {
	cfg := Config{Config: node.Config{HTTP: DefaultHTTP}}
	fs := flag.NewFlagSet("ihos-cloud hospital", flag.ContinueOnError)
	name := fs.String("name", "", "医院名称")
	id := fs.String("id", "", "医院编号（留空自动生成）")
	cli, words, err := node.NewCLI("cloud", fs, &cfg.Config, &cfg, args, out)
	if err != nil {
		return err
	}
	usage := ihos.Errorf(ihos.EInvalid, "用法：ihos-cloud hospital add --name 医院名称 [--id 编号] | ihos-cloud hospital list [--json]")
	if len(words) != 1 {
		return usage
	}
	switch words[0] {
	case "add":
		var c Code
		if err := cli.Call(ctx, "POST", "/api/hospitals", map[string]string{"id": *id, "name": *name}, &c); err != nil || cli.JSON {
			return err
		}
		fmt.Fprintf(out, "医院：%s（编号 %s）\n登记码：%s（%s 前有效，只能使用一次）\n在医院的服务器上执行：\n  ihos-appliance enroll --cloud <云端地址> --code %s\n",
			c.Name, c.Hospital, c.Code, c.ExpiresAt.In(ihos.Shanghai).Format("2006-01-02 15:04"), c.Code)
	case "list":
		var l struct{ Items []Hospital }
		if err := cli.Call(ctx, "GET", "/api/hospitals", nil, &l); err != nil || cli.JSON {
			return err
		}
		for _, h := range l.Items {
			state := "待登记"
			if h.Enrolled {
				state = "已登记 " + h.EnrolledAt.In(ihos.Shanghai).Format("2006-01-02 15:04")
			}
			fmt.Fprintf(out, "%-12s %-30s %s\n", h.ID, h.Name, state)
		}
	default:
		return usage
	}
	return nil
}
