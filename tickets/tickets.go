// Package tickets turns the data of a hospital ticket (a registration slip, a
// payment receipt, an e-invoice summary, a report summary, a prescription, a
// home-nursing order, a printer test page) into ESC/POS bytes for a thermal
// printer, through templates the hospital's staff can edit in the console.
//
// # Template language
//
// A template is Go text/template text executed with the ticket's struct as
// data ({{.PatientName}}, {{range .Items}}…{{end}}, {{if .Note}}…{{end}}),
// followed by a line-oriented layout step. Templates are edited by staff, so
// the language is deliberately small and safe:
//
//   - Only these functions exist besides text/template's builtins (and, or,
//     not, eq, ne, lt, le, gt, ge, len, index, print, printf):
//     yuan (fen → "12.50"), date ("2006-01-02"), time ("15:04"), datetime
//     ("2006-01-02 15:04"), mask (s, keepHead, keepTail), flag ("H" → "↑",
//     "L" → "↓") and tab (a column break, see below). Times are shown in
//     Asia/Shanghai.
//   - {{define}}, {{template}} and {{block}} are refused, and {{range}} only
//     walks a field or a variable (not a number), so a template cannot loop
//     without bound; the source is limited to MaxSource bytes and the output
//     to maxOutput bytes.
//   - Every value a template prints is escaped: control characters become
//     spaces and the value can never start a directive or a column, so data
//     (a patient's name, a report's conclusion) cannot add a QR code or cut
//     the paper.
//
// After execution every output line is laid out on its own:
//
//   - A line that is empty (or only spaces) is not printed; write @feed 1 for
//     an empty line. So {{if}} and {{range}} lines and empty fields leave no
//     gaps.
//   - A line may start with style words that apply to that line only:
//     @left (the default), @center, @right, @bold, @big (double width and
//     height: half as many characters fit), @tall (double height).
//   - A line may instead be (after any style words) one of:
//     @rule [c] — a full-width line of c (default '-');
//     @qr <payload> — a QR code (centred unless @left/@right), sized to fit;
//     @barcode <data> — a Code128 barcode of printable ASCII; when it is too
//     wide for the paper its text is printed instead;
//     @logo — the hospital logo, if one is configured;
//     @feed N — N empty lines (1..10);
//     @cut — feed and cut the paper (added at the end when a template has none).
//     A directive whose argument is empty (an empty field) prints nothing.
//   - @@ at the start of a line prints a literal @.
//   - {{tab}} splits a line into columns: with two columns the first is left
//     and the second right aligned on the full width; with more, every column
//     after the first gets 1/(n+1) of the width, right aligned. A first column
//     too long for its space wraps onto the next lines.
//   - Any line wider than the paper wraps. A line's width counts ASCII as one
//     column and every other character as two (12 and 24 dots): 58 mm paper
//     holds 32 ASCII / 16 Chinese characters, 80 mm 48 / 24, 106 mm 69 / 34.
//
// Errors are *ihos.Error EInvalid with a Chinese message naming the template
// line ("模板第 12 行：…").
package tickets

import (
	"time"

	"ihos"
	"ihos/drivers/escpos"
)

// Ticket kinds.
const (
	KindRegistration = "registration"
	KindReceipt      = "receipt"
	KindInvoice      = "invoice"
	KindReport       = "report"
	KindPrescription = "prescription"
	KindNursingOrder = "nursing_order"
	KindTest         = "test"
)

// Kinds lists every kind, in the order the console shows them.
var Kinds = []string{KindRegistration, KindReceipt, KindInvoice, KindReport, KindPrescription, KindNursingOrder, KindTest}

var titles = map[string]string{
	KindRegistration: "挂号凭条", KindReceipt: "缴费收据", KindInvoice: "电子票据摘要", KindReport: "检验检查报告摘要",
	KindPrescription: "处方笺", KindNursingOrder: "上门护理服务单", KindTest: "打印机测试页",
}

// Title is the Chinese name of a kind for staff ("" for an unknown kind).
func Title(kind string) string { return titles[kind] }

// Ticket is the data of one ticket; each kind has its struct (Registration,
// Receipt, Invoice, Report, Prescription, NursingOrder, TestPage)
// implementing it, as a value or a pointer.
type Ticket interface{ TicketKind() string }

// Format is the printer the ticket is rendered for.
type Format struct {
	PaperMM  int    // 58, 80 or 106
	CodePage string // "GB18030" (also when empty) or "GBK"
}

// widthDots returns the printable width of the paper.
func (f Format) widthDots() (int, error) {
	switch f.PaperMM {
	case 58:
		return escpos.Width58mm, nil
	case 80:
		return escpos.Width80mm, nil
	case 106:
		return escpos.Width106mm, nil
	}
	return 0, ihos.Errorf(ihos.EInvalid, "不支持的纸宽 %d mm（可选 58、80、106）", f.PaperMM)
}

// Papers lists the supported paper widths in millimetres.
var Papers = []int{58, 80, 106}

// Registration is an online registration slip (挂号凭条): printed at the kiosk
// for a visit booked online, or for a registration made at the kiosk.
type Registration struct {
	Hospital     string    `label:"医院名称（为空时用系统设置的医院名称）"`
	PatientName  string    `label:"患者姓名"`
	IDNumber     string    `label:"身份证号（模板看到的已脱敏）"`
	Phone        string    `label:"手机号（模板看到的已脱敏）"`
	VisitNo      string    `label:"就诊号（条码内容）"`
	Department   string    `label:"科室"`
	Doctor       string    `label:"医生姓名"`
	DoctorTitle  string    `label:"医生职称，如 主任医师"`
	VisitType    string    `label:"就诊方式：图文、语音、视频、门诊"`
	VisitDate    time.Time `label:"就诊日期（用 date 显示）"`
	TimeSlot     string    `label:"就诊时段，如 09:00-09:30"`
	QueueNo      string    `label:"就诊序号"`
	Location     string    `label:"就诊地点"`
	Fee          int64     `label:"挂号费，分（用 yuan 显示）"`
	PaidBy       string    `label:"支付方式"`
	RegisteredAt time.Time `label:"挂号时间"`
	Operator     string    `label:"操作员或自助机编号"`
}

// Receipt is a payment receipt (缴费凭条) for fees paid at the kiosk or online.
type Receipt struct {
	Hospital    string        `label:"医院名称"`
	ReceiptNo   string        `label:"收据号"`
	PatientName string        `label:"患者姓名"`
	VisitNo     string        `label:"就诊号"`
	Department  string        `label:"开单科室"`
	Items       []ReceiptItem `label:"收费项目（用 range 列出）"`
	Total       int64         `label:"合计，分"`
	FundPay     int64         `label:"医保统筹支付，分"`
	AccountPay  int64         `label:"个人账户支付，分"`
	CashPay     int64         `label:"个人现金支付，分"`
	Channel     string        `label:"支付渠道，如 微信支付、医保移动支付"`
	PaidAt      time.Time     `label:"缴费时间"`
	Cashier     string        `label:"收费员或自助机编号"`
	CheckURL    string        `label:"查询二维码内容"`
}

// ReceiptItem is one fee line of a Receipt.
type ReceiptItem struct {
	Name     string `label:"项目名称"`
	Spec     string `label:"规格"`
	Quantity string `label:"数量（HIS 的十进制文本）"`
	Unit     string `label:"单位"`
	Amount   int64  `label:"金额，分"`
}

// Invoice is the summary of a medical e-invoice (医疗收费电子票据) with the QR
// code that opens the invoice on the finance bureau's check page.
type Invoice struct {
	Hospital   string        `label:"医院名称（收款单位）"`
	BillType   string        `label:"票据种类，如 医疗门诊收费电子票据"`
	BillCode   string        `label:"票据代码"`
	BillNo     string        `label:"票据号码"`
	CheckCode  string        `label:"校验码"`
	IssuedAt   time.Time     `label:"开票日期"`
	Payer      string        `label:"交款人"`
	Total      int64         `label:"合计金额，分"`
	FundPay    int64         `label:"医保统筹支付，分"`
	AccountPay int64         `label:"个人账户支付，分"`
	CashPay    int64         `label:"个人现金支付，分"`
	Items      []InvoiceItem `label:"项目汇总（用 range 列出）"`
	Payee      string        `label:"收款人"`
	QRCode     string        `label:"票据二维码内容（查验地址）"`
}

// InvoiceItem is one charge category of an Invoice (西药费, 检查费 …).
type InvoiceItem struct {
	Name   string `label:"项目名称"`
	Amount int64  `label:"金额，分"`
}

// Report is the summary of a lab or exam report (检验/检查报告单).
type Report struct {
	Hospital    string       `label:"医院名称"`
	ReportNo    string       `label:"报告单号"`
	Kind        string       `label:"报告类别：检验 或 检查"`
	PatientName string       `label:"患者姓名"`
	Sex         string       `label:"性别"`
	Age         string       `label:"年龄，如 45岁"`
	VisitNo     string       `label:"就诊号"`
	ServiceName string       `label:"项目名称，如 血常规"`
	Specimen    string       `label:"标本，如 静脉血"`
	Department  string       `label:"申请科室"`
	ReportedAt  time.Time    `label:"报告时间"`
	Lines       []ReportLine `label:"结果（用 range 列出）"`
	Conclusion  string       `label:"结论或印象"`
	Doctor      string       `label:"报告医生"`
	Reviewer    string       `label:"审核医生"`
	ReportURL   string       `label:"查看完整报告的二维码内容"`
}

// ReportLine is one observation of a Report.
type ReportLine struct {
	Name  string `label:"项目"`
	Value string `label:"结果"`
	Units string `label:"单位"`
	Range string `label:"参考范围"`
	Flag  string `label:"H 偏高、L 偏低（用 flag 显示为 ↑↓）"`
}

// Prescription is a prescription (处方笺) as the patient takes it to the
// pharmacy: signed by the doctor and reviewed by a pharmacist.
type Prescription struct {
	Hospital    string    `label:"医院名称"`
	RxNo        string    `label:"处方号"`
	RxType      string    `label:"处方类别，如 普通处方"`
	PatientName string    `label:"患者姓名"`
	Sex         string    `label:"性别"`
	Age         string    `label:"年龄"`
	VisitNo     string    `label:"就诊号"`
	Department  string    `label:"科室"`
	Diagnosis   string    `label:"临床诊断"`
	Drugs       []RxDrug  `label:"药品（用 range 列出）"`
	Amount      int64     `label:"药费，分"`
	Doctor      string    `label:"开方医生"`
	Pharmacist  string    `label:"审核药师"`
	SignedAt    time.Time `label:"开方时间"`
	ReviewedAt  time.Time `label:"审核时间"`
	SignatureID string    `label:"电子签名编号"`
	CheckURL    string    `label:"处方查验二维码内容"`
}

// RxDrug is one drug line of a Prescription.
type RxDrug struct {
	Name      string `label:"药品名称"`
	Spec      string `label:"规格"`
	Dose      string `label:"单次剂量，如 0.5g"`
	Frequency string `label:"频次，如 每日3次"`
	Route     string `label:"用法，如 口服"`
	Days      string `label:"天数"`
	Quantity  string `label:"数量"`
	Unit      string `label:"单位"`
}

// NursingOrder is a home-nursing order (上门护理服务单).
type NursingOrder struct {
	Hospital    string              `label:"医院名称"`
	OrderNo     string              `label:"订单号"`
	PatientName string              `label:"服务对象"`
	Phone       string              `label:"联系电话（模板看到的已脱敏）"`
	Address     string              `label:"服务地址（模板看到的已脱敏）"`
	Item        string              `label:"护理项目"`
	Nurse       string              `label:"护士"`
	NurseTitle  string              `label:"护士职称，如 主管护师"`
	ScheduledAt time.Time           `label:"预约上门时间"`
	ServiceFee  int64               `label:"服务费，分"`
	TravelFee   int64               `label:"上门费，分"`
	Consumables []NursingConsumable `label:"耗材（用 range 列出）"`
	Total       int64               `label:"合计，分"`
	PaidBy      string              `label:"支付方式"`
	CheckURL    string              `label:"订单二维码内容"`
	Note        string              `label:"备注"`
}

// NursingConsumable is one consumable of a NursingOrder.
type NursingConsumable struct {
	Name     string `label:"耗材名称"`
	Quantity string `label:"数量"`
	Amount   int64  `label:"金额，分"`
}

// TestPage is the page printed to check a printer.
type TestPage struct {
	Hospital  string    `label:"医院名称"`
	Printer   string    `label:"打印机名称"`
	PaperMM   int       `label:"纸宽 mm（为空时用打印格式）"`
	CodePage  string    `label:"代码页（为空时用打印格式）"`
	PrintedAt time.Time `label:"打印时间"`
}

// TicketKind implements Ticket.
func (Registration) TicketKind() string { return KindRegistration }

// TicketKind implements Ticket.
func (Receipt) TicketKind() string { return KindReceipt }

// TicketKind implements Ticket.
func (Invoice) TicketKind() string { return KindInvoice }

// TicketKind implements Ticket.
func (Report) TicketKind() string { return KindReport }

// TicketKind implements Ticket.
func (Prescription) TicketKind() string { return KindPrescription }

// TicketKind implements Ticket.
func (NursingOrder) TicketKind() string { return KindNursingOrder }

// TicketKind implements Ticket.
func (TestPage) TicketKind() string { return KindTest }
