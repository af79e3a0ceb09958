package tickets

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"ihos"
	"ihos/drivers/escpos"
)

var update = flag.Bool("update", false, "rewrite tickets/testdata/*.bin from the current output")

// norm collapses runs of spaces, so a two-column row reads the same on
// every paper width.
func norm(s string) string { return strings.Join(strings.Fields(s), " ") }

// expected lists, per kind, lines the decoded ticket must hold (after norm)
// on every paper width, and its QR payloads and barcodes.
var expected = map[string]struct {
	lines    []string
	qr       []string
	barcodes []string
}{
	KindRegistration: {
		lines: []string{"示例市第一人民医院", "挂号凭条", "互联网医院 · 视频复诊", "第 012 号", "患者姓名：张三",
			"身份证号：110105********1234", "手机号码：138****5678", "就诊号：MZ2506120037", "就诊科室：心血管内科",
			"医生：李明（主任医师）", "就诊日期：2025-06-12", "就诊时段：09:30-10:00", "挂号费 ￥25.00", "支付方式 医保移动支付",
			"挂号时间 2025-06-11 07:30", "操作员 自助机 K01", "2. 过号请到分诊台重新签到。"},
		barcodes: []string{"MZ2506120037"},
	},
	KindReceipt: {
		lines: []string{"示例市第一人民医院", "门诊缴费凭条", "收据号：SF202506120158", "患者姓名：张三", "项目 数量 金额(元)",
			"肝功能八项 1项 64.00", "静脉采血 1次 6.00", "合计 ￥270.60", "医保统筹支付 ￥162.36", "个人账户支付 ￥50.00",
			"个人现金支付 ￥58.24", "支付渠道 医保移动支付", "缴费时间 2025-06-12 09:55", "收费员 自助机 K01",
			"扫码查询缴费明细及电子票据", "请妥善保管"},
		qr: []string{"https://ih.example.cn/r/SF202506120158"},
	},
	KindInvoice: {
		lines: []string{"示例市第一人民医院", "医疗门诊收费电子票据", "（电子票据摘要）", "票据代码：11060125", "票据号码：0003267841",
			"校验码：8a3f2c", "开票日期：2025-06-12", "交款人：张三", "西药费 155.60", "化验费 84.00", "合计 ￥270.60",
			"个人现金支付 ￥58.24", "收款单位 示例市第一人民医院", "扫描二维码查验、下载电子票据"},
		qr: []string{"https://pjcy.example.gov.cn/check?code=11060125&no=0003267841&cc=8a3f2c&amt=270.60&d=20250612"},
	},
	KindReport: {
		lines: []string{"示例市第一人民医院", "检验报告单", "姓名：张三 性别：男 年龄：45岁", "报告单号：JY2506120466",
			"检验项目：血常规（五分类）", "标本：静脉血", "报告时间：2025-06-12 11:30", "↑ 偏高 ↓ 偏低", "结论：",
			"报告医生：王芳 审核医生：赵强", "扫码查看完整报告"},
		qr: []string{"https://ih.example.cn/rp/JY2506120466"},
	},
	KindPrescription: {
		lines: []string{"示例市第一人民医院", "处方笺", "普通处方", "处方号：CF2506120089", "姓名：张三 性别：男 年龄：45岁",
			"科室：心血管内科", "临床诊断：原发性高血压；高脂血症", "Rp.", "苯磺酸氨氯地平片 5mg*28片 ×2盒",
			"药费 ￥155.60", "医师：李明 2025-06-12 09:40", "审核药师：陈静 2025-06-12 09:48", "3. 药品一经发出，不得退换。"},
		qr: []string{"https://ih.example.cn/rx/CF2506120089"},
	},
	KindNursingOrder: {
		lines: []string{"示例市第一人民医院", "上门护理服务单", "订单号：HL2506120012", "服务对象：刘桂兰", "联系电话：139****5678",
			"服务地址：示例市东城区****", "护理项目：PICC 导管维护", "护士：孙丽（主管护师）", "预约时间：2025-06-13 14:30",
			"服务费 ￥150.00", "上门费 ￥50.00", "PICC 维护包 ×1 ￥45.00", "合计 ￥257.00", "支付方式 微信支付", "请妥善保管"},
		qr: []string{"https://ih.example.cn/hl/HL2506120012"},
	},
	KindTest: {
		lines: []string{"示例市第一人民医院", "打印机测试页", "代码页：GB18030", "打印时间：2025-06-12 09:30",
			"中文：互联网医院自助服务", "居中文字", "右对齐文字", "倍宽倍高", "项目 金额", "挂号费 ￥25.00"},
		qr:       []string{"https://ih.example.cn/printer-test"},
		barcodes: []string{"TEST-0123"},
	},
}

func decode(t *testing.T, b []byte, codePage string) *escpos.Ticket {
	t.Helper()
	tk, err := escpos.Decode(b, codePage)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	return tk
}

func normLines(tk *escpos.Ticket) []string {
	out := make([]string, len(tk.Lines))
	for i, l := range tk.Lines {
		out[i] = norm(l)
	}
	return out
}

// TestGolden renders every kind's sample on every paper width: the bytes
// must equal the golden file, and the printer simulator's decoder must read
// back the Chinese text, QR payloads and barcodes.
func TestGolden(t *testing.T) {
	for _, kind := range Kinds {
		for _, mm := range Papers {
			t.Run(fmt.Sprintf("%s_%d", kind, mm), func(t *testing.T) {
				b, err := Render(Sample(kind), Format{PaperMM: mm, CodePage: "GB18030"})
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", fmt.Sprintf("%s_%d.bin", kind, mm))
				if *update {
					if err := os.WriteFile(golden, b, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test ./tickets -update to create it)", err)
				}
				if !bytes.Equal(b, want) {
					i := 0
					for i < len(b) && i < len(want) && b[i] == want[i] {
						i++
					}
					t.Errorf("bytes differ from %s at offset %d (got %d bytes, want %d)", golden, i, len(b), len(want))
				}
				tk := decode(t, b, "GB18030")
				lines := normLines(tk)
				exp := expected[kind]
				for _, l := range exp.lines {
					if !slices.Contains(lines, l) {
						t.Errorf("no line %q in\n%s", l, strings.Join(tk.Lines, "\n"))
					}
				}
				if !slices.Equal(tk.QRCodes, exp.qr) {
					t.Errorf("QR codes %q, want %q", tk.QRCodes, exp.qr)
				}
				if !slices.Equal(tk.Barcodes, exp.barcodes) {
					t.Errorf("barcodes %q, want %q", tk.Barcodes, exp.barcodes)
				}
				if tk.Cuts != 1 {
					t.Errorf("%d cuts, want 1", tk.Cuts)
				}
				cols := map[int]int{58: 32, 80: 48, 106: 69}[mm]
				for _, l := range tk.Lines {
					if w := textWidth(l); w > cols {
						t.Errorf("line %q is %d columns wide, paper holds %d", l, w, cols)
					}
				}
				if !bytes.HasPrefix(b, []byte{0x1B, '@', 0x1C, '&'}) {
					t.Errorf("ticket does not start with ESC @ FS &: % x", b[:4])
				}
			})
		}
	}
}

// TestCentredAndBold checks the styles reach the printer.
func TestCentredAndBold(t *testing.T) {
	b, err := Render(Sample(KindReceipt), Format{PaperMM: 80})
	if err != nil {
		t.Fatal(err)
	}
	tk := decode(t, b, "")
	i := slices.Index(tk.Lines, "门诊缴费凭条")
	if i < 0 || tk.Align[i] != escpos.Center || !tk.Bold[i] {
		t.Errorf("title line %d: align %v bold %v", i, tk.Align, tk.Bold)
	}
	j := slices.IndexFunc(tk.Lines, func(l string) bool { return strings.HasPrefix(l, "收据号") })
	if j < 0 || tk.Align[j] != escpos.Left || tk.Bold[j] {
		t.Errorf("field line not plain left")
	}
	// Double-size heading: GS ! 0x11 before the hospital name.
	if !bytes.Contains(b, []byte{0x1D, '!', 0x11}) {
		t.Error("no GS ! 0x11 for the @big heading")
	}
}

func TestGBK(t *testing.T) {
	for _, kind := range Kinds {
		gb, err := Render(Sample(kind), Format{PaperMM: 80, CodePage: "GB18030"})
		if err != nil {
			t.Fatal(err)
		}
		gbk, err := Render(Sample(kind), Format{PaperMM: 80, CodePage: "GBK"})
		if err != nil {
			t.Fatal(err)
		}
		a, b := decode(t, gb, "GB18030"), decode(t, gbk, "GBK")
		if kind == KindTest {
			// The test page prints its code page.
			a.Lines[slices.Index(a.Lines, "代码页：GB18030")] = "代码页：GBK"
		}
		if !slices.Equal(a.Lines, b.Lines) || !slices.Equal(a.QRCodes, b.QRCodes) {
			t.Errorf("%s: GBK text differs from GB18030", kind)
		}
	}
	// The fullwidth yuan sign is GBK A3 A4.
	b, _ := Render(Sample(KindReceipt), Format{PaperMM: 58, CodePage: "GBK"})
	if !bytes.Contains(b, []byte{0xA3, 0xA4, '2', '7', '0', '.', '6', '0'}) {
		t.Error("no ￥270.60 in GBK bytes")
	}
	if _, err := Render(Sample(KindReceipt), Format{PaperMM: 80, CodePage: "BIG5"}); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("BIG5: %v", err)
	}
	if _, err := Render(Sample(KindReceipt), Format{PaperMM: 76}); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("76 mm: %v", err)
	}
}

// TestOutsideGBK prints a name with a character GBK lacks (𠮷, U+20BB7):
// GB18030 printers print it, GBK printers get '?'.
func TestOutsideGBK(t *testing.T) {
	r := Sample(KindRegistration).(*Registration)
	r.PatientName = "吉𠮷"
	b, err := Render(r, Format{PaperMM: 80, CodePage: "GB18030"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(decode(t, b, "GB18030").Lines, "患者姓名：吉𠮷") {
		t.Error("GB18030 lost 𠮷")
	}
	b, err = Render(r, Format{PaperMM: 80, CodePage: "GBK"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(decode(t, b, "GBK").Lines, "患者姓名：吉?") {
		t.Errorf("GBK: %q", decode(t, b, "GBK").Lines)
	}
}

// TestLongItemNames: on 58 mm a long name wraps within its column and the
// amount stays on the first line, right aligned.
func TestLongItemNames(t *testing.T) {
	r := Sample(KindReceipt).(*Receipt)
	r.Items = []ReceiptItem{{Name: "注射用头孢哌酮钠舒巴坦钠（舒普深）", Spec: "1.5g*1瓶", Quantity: "12", Unit: "瓶", Amount: 123456}}
	b, err := Render(r, Format{PaperMM: 58})
	if err != nil {
		t.Fatal(err)
	}
	tk := decode(t, b, "")
	i := slices.IndexFunc(tk.Lines, func(l string) bool { return strings.HasPrefix(l, "注射用") })
	if i < 0 {
		t.Fatalf("no item line in %q", tk.Lines)
	}
	if !strings.HasSuffix(tk.Lines[i], "12瓶 1234.56") || textWidth(tk.Lines[i]) != 32 {
		t.Errorf("first line %q (%d columns)", tk.Lines[i], textWidth(tk.Lines[i]))
	}
	joined := strings.Fields(tk.Lines[i])[0] + tk.Lines[i+1] + tk.Lines[i+2]
	if joined != "注射用头孢哌酮钠舒巴坦钠（舒普深）1.5g*1瓶" && joined != "注射用头孢哌酮钠舒巴坦钠（舒普深） 1.5g*1瓶" {
		t.Errorf("wrapped name %q from %q", joined, tk.Lines[i:i+3])
	}
	for _, l := range tk.Lines {
		if textWidth(l) > 32 {
			t.Errorf("line %q wider than 58 mm paper", l)
		}
		if strings.HasPrefix(l, "，") || strings.HasPrefix(l, "。") || strings.HasPrefix(l, "）") {
			t.Errorf("line %q starts with punctuation", l)
		}
	}
}

// TestDataCannotInject: data with line breaks and directives prints as text.
func TestDataCannotInject(t *testing.T) {
	r := Sample(KindRegistration).(*Registration)
	r.PatientName = "张三\n@qr http://evil.example\n@cut"
	r.Department = "@cut"
	b, err := Render(r, Format{PaperMM: 80})
	if err != nil {
		t.Fatal(err)
	}
	tk := decode(t, b, "")
	if tk.Cuts != 1 || len(tk.QRCodes) != 0 {
		t.Errorf("data added %d cuts, QR %q", tk.Cuts, tk.QRCodes)
	}
	if !slices.Contains(tk.Lines, "患者姓名：张三 @qr http://evil.example @cut") || !slices.Contains(tk.Lines, "就诊科室：@cut") {
		t.Errorf("lines %q", tk.Lines)
	}
	if r.PatientName != "张三\n@qr http://evil.example\n@cut" {
		t.Error("Render changed the caller's ticket")
	}
}

func TestTemplateFeatures(t *testing.T) {
	src := "@center @bold 标题\n" +
		"@@注意\n" +
		"{{if .Note}}备注：{{.Note}}{{end}}\n" +
		"\n" +
		"@feed 2\n" +
		"左{{tab}}右\n" +
		"@right {{.OrderNo}}\n" +
		"@rule =\n" +
		"@big 很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长很长\n" +
		"@qr {{.Note}}\n" +
		"@barcode ABCDEFGHIJKLMNOPQRSTUVWXYZ0123\n"
	n := Sample(KindNursingOrder).(*NursingOrder)
	n.Note = ""
	b, err := RenderSource(src, n, Format{PaperMM: 58})
	if err != nil {
		t.Fatal(err)
	}
	tk := decode(t, b, "")
	want := []string{"标题", "@注意", "", "", "左" + strings.Repeat(" ", 28) + "右", "HL2506120012", strings.Repeat("=", 32)}
	if !slices.Equal(tk.Lines[:len(want)], want) {
		t.Errorf("lines %q\nwant %q", tk.Lines[:len(want)], want)
	}
	if tk.Align[5] != escpos.Right {
		t.Error("@right not right aligned")
	}
	if len(tk.QRCodes) != 0 {
		t.Error("@qr with an empty field printed a QR code")
	}
	// Too wide for a barcode on 58 mm: printed as text.
	if len(tk.Barcodes) != 0 || !slices.Contains(tk.Lines, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123") {
		t.Errorf("long barcode: %q %q", tk.Barcodes, tk.Lines)
	}
	// On 106 mm it fits.
	b, err = RenderSource(src, n, Format{PaperMM: 106})
	if err != nil {
		t.Fatal(err)
	}
	if tk := decode(t, b, ""); !slices.Equal(tk.Barcodes, []string{"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123"}) {
		t.Errorf("106 mm barcodes %q", tk.Barcodes)
	}
}

// TestTemplateErrors: a broken template is refused with a Chinese message
// naming the line.
func TestTemplateErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"第一行\n{{.PatientName}\n", "模板第 2 行"},
		{"a\nb\n{{.NoSuchField}}\n", "模板第 3 行：没有字段 NoSuchField"},
		{"{{exec \"rm\"}}\n", "模板第 1 行：未知的函数 exec"},
		{"a\n{{if .Note}}\nb\n", "模板不完整"},
		{"a\n@foo 文字\n", "模板第 2 行：未知的指令 @foo"},
		{"a\n\n@feed 99\n", "模板第 3 行：@feed 后面应为 1～10 的行数"},
		{"{{range 1000000000}}x{{end}}\n", "模板第 1 行：range 只能用于字段"},
		{"{{define \"x\"}}y{{end}}{{template \"x\"}}\n", "不能"},
		{"{{range .Consumables}}{{printf \"%0900000d\" 1}}{{end}}\n", "输出过长"},
		{"@barcode 中文{{.OrderNo}}\n", "条码只能包含"},
		{strings.Repeat("x", MaxSource+1), "模板过长"},
		{"  \n", "模板不能为空"},
	}
	for _, tc := range tests {
		err := Check(KindNursingOrder, tc.src)
		if ihos.ErrorCode(err) != ihos.EInvalid || !strings.Contains(ihos.ErrorMessage(err), tc.want) {
			t.Errorf("%.40q: %v, want a message with %q", tc.src, err, tc.want)
		}
	}
	if err := Check("nope", "x"); ihos.ErrorCode(err) != ihos.EInvalid {
		t.Errorf("unknown kind: %v", err)
	}
	for _, k := range Kinds {
		if err := Check(k, DefaultSource(k)); err != nil {
			t.Errorf("default %s: %v", k, err)
		}
	}
}

func TestFields(t *testing.T) {
	f := Fields(KindReceipt)
	i := slices.IndexFunc(f, func(h FieldHelp) bool { return h.Name == ".Items" })
	if i < 0 || f[i].Type != "列表" || len(f[i].Sub) == 0 || f[i].Sub[0].Name != ".Name" {
		t.Errorf("fields %+v", f)
	}
	for _, k := range Kinds {
		for _, h := range Fields(k) {
			if h.Label == "" {
				t.Errorf("%s %s has no label", k, h.Name)
			}
		}
	}
}

// TestOptionalLinesLeftOut: a report without a link prints no "scan" caption
// and no empty reviewer, a slip without payment or registration time no
// empty label (the kiosk prints both from HIS data that lacks them).
func TestOptionalLinesLeftOut(t *testing.T) {
	r := *Sample(KindReport).(*Report)
	r.ReportURL, r.Reviewer = "", ""
	reg := *Sample(KindRegistration).(*Registration)
	reg.PaidBy, reg.RegisteredAt = "", time.Time{}
	for _, tk := range []Ticket{r, reg} {
		b, err := Render(tk, Format{PaperMM: 80})
		if err != nil {
			t.Fatal(err)
		}
		d, err := escpos.Decode(b, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range d.Lines {
			for _, bad := range []string{"扫码查看完整报告", "审核医生", "支付方式", "挂号时间", "0001"} {
				if strings.Contains(l, bad) {
					t.Errorf("%s: line %q should be left out", tk.TicketKind(), l)
				}
			}
		}
		if len(d.QRCodes) != 0 && tk.TicketKind() == KindReport {
			t.Errorf("report without a link printed a QR code %q", d.QRCodes)
		}
	}
}
