package printing

import (
	"context"
	"strconv"

	"ihos"
	"ihos/drivers/escpos"
	"ihos/drivers/transport"
	"ihos/internal/admin"
)

// Resources declares the printers for the generic resource layer: staff add
// and edit them in the console (Perm "printing"). Workers pick changes up
// within Service.RefreshInterval; Service.Resources also wakes them at once.
func Resources() []*admin.Resource {
	return []*admin.Resource{printersResource(nil)}
}

// Resources is the package's Resources with an AfterWrite hook that tells Run
// about every change at once.
func (s *Service) Resources() []*admin.Resource {
	return []*admin.Resource{printersResource(func(context.Context, string) error { s.Notify(); return nil })}
}

func printersResource(after func(ctx context.Context, id string) error) *admin.Resource {
	var kinds []admin.Option
	for _, k := range transport.Kinds() {
		kinds = append(kinds, admin.Option{Value: k, Label: TransportLabels[k]})
	}
	var papers []admin.Option
	for _, mm := range []int{58, 80, 106} {
		papers = append(papers, admin.Option{Value: strconv.Itoa(mm), Label: strconv.Itoa(mm) + " mm"})
	}
	return &admin.Resource{
		Name: "printers", Title: "打印机设置", Noun: "打印机", Table: "printers",
		Perm: "printing", Display: "name", Sort: "name", AfterWrite: after,
		Fields: []admin.Field{
			{Name: "name", Label: "名称", Type: admin.Text, Required: true, Max: 100, Search: true, List: true, Sort: true, Unique: true,
				Help: "如“门诊一楼自助机”“挂号窗口 3”"},
			{Name: "location", Label: "位置", Type: admin.Text, Max: 100, Search: true, List: true},
			{Name: "transport", Label: "连接方式", Type: admin.Enum, Required: true, Options: kinds, Filter: true, List: true},
			{Name: "address", Label: "地址", Type: admin.Text, Required: true, Max: 255, Search: true, List: true,
				Help: "网络：192.168.1.50:9100；串口：/dev/ttyUSB0,9600 或 COM3,115200；USB 打印机设备：/dev/usb/lp0；Windows 打印队列：打印机名称；USB 直连：VID:PID，如 0416:5011"},
			{Name: "paper_mm", Label: "纸宽", Type: admin.Enum, Required: true, Options: papers, Filter: true, List: true},
			{Name: "code_page", Label: "代码页", Type: admin.Enum, Required: true, List: true,
				Options: []admin.Option{{Value: escpos.CodePageGB18030, Label: "GB18030"}, {Value: escpos.CodePageGBK, Label: "GBK"}},
				Help:    "多数国产热敏打印机只支持 GBK（GB2312）字库；生僻字需要 GB18030 字库"},
		},
		Validate: func(ctx context.Context, rec, old admin.Record) map[string]string {
			kind, _ := rec["transport"].(string)
			addr, _ := rec["address"].(string)
			if kind == "" || addr == "" {
				return nil // the required-field messages say it
			}
			if err := transport.CheckAddress(kind, addr); err != nil {
				return map[string]string{"address": ihos.ErrorMessage(err)}
			}
			return nil
		},
	}
}
