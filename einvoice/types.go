package einvoice

import (
	"encoding/json"
	"time"
)

// Outpatient is the request of invoiceEBillOutpatient (门诊) and, with the
// same fields, invEBillRegistration (挂号). Field names are the platform's;
// money is in fen (Amount), sent as yuan.
type Outpatient struct {
	// BusNo is the business serial number (业务流水号) and the idempotency
	// key: the platform issues one bill per busNo, and sending the same
	// busNo again returns that bill. Use the payment's own ID, stored
	// before the first call, and send it on every attempt.
	BusNo       string `json:"busNo"`
	BusType     string `json:"busType"`     // 业务标识, e.g. "02" 门诊 (from the platform's code list)
	Payer       string `json:"payer"`       // 患者姓名 (交款人)
	BusDateTime string `json:"busDateTime"` // yyyyMMddHHmmssSSS (FormatTime); empty means now
	PlaceCode   string `json:"placeCode"`   // 开票点编码
	Payee       string `json:"payee"`       // 收费员
	Author      string `json:"author"`      // 票据编制人
	TotalAmt    Amount `json:"totalAmt"`    // 开票总金额
	Remark      string `json:"remark,omitempty"`

	Tel       string `json:"tel,omitempty"`
	Email     string `json:"email,omitempty"`
	PayerType string `json:"payerType,omitempty"` // 交款人类型: "1" 个人, "2" 单位
	IDCardNo  string `json:"idCardNo,omitempty"`
	CardType  string `json:"cardType,omitempty"` // 卡类型 (就诊卡、社保卡 …, platform codes)
	CardNo    string `json:"cardNo,omitempty"`

	Sex              string `json:"sex,omitempty"`
	Age              string `json:"age,omitempty"`
	PatientNo        string `json:"patientNo,omitempty"`        // 患者 HIS 登记号
	CaseNumber       string `json:"caseNumber,omitempty"`       // 病历号
	ConsultationDate string `json:"consultationDate,omitempty"` // 就诊日期 yyyy-MM-dd

	MedCareTypeCode    string `json:"medCareTypeCode,omitempty"`    // 医保类型编码
	MedicalInsuranceID string `json:"medicalInsuranceID,omitempty"` // 医保结算号 (setl_id)
	AccountPay         Amount `json:"accountPay"`                   // 个人账户支付
	FundPay            Amount `json:"fundPay"`                      // 医保统筹基金支付
	OtherFundPay       Amount `json:"otherfundPay"`                 // 其他医保支付
	OwnPay             Amount `json:"ownPay"`                       // 自费金额
	SelfCashPay        Amount `json:"selfCashPay"`                  // 个人现金支付

	// PayChannelDetail is how the total was paid; the values must add up to
	// TotalAmt.
	PayChannelDetail []PayChannel `json:"payChannelDetail"`
	// ChargeDetail is the bill's charge categories (西药费, 检查费 …),
	// adding up to TotalAmt when given.
	ChargeDetail []Charge `json:"chargeDetail"`
	// ListDetail is the item list (清单): drugs, examinations …
	ListDetail []ListItem `json:"listDetail,omitempty"`
}

// Registration is the request of invEBillRegistration: the outpatient
// fields.
type Registration = Outpatient

// PayChannel is one way the bill was paid.
type PayChannel struct {
	// PayChannelCode is the platform's code: e.g. "01" 现金, "02" 银行卡,
	// "03" 微信/支付宝 (网上支付), "11" 医保个人账户, "12" 医保统筹 — codes
	// differ by province and must come from configuration.
	PayChannelCode  string `json:"payChannelCode"`
	PayChannelValue Amount `json:"payChannelValue"`
}

// Charge is one charge category (收费项目) of the bill.
type Charge struct {
	SortNo     int         `json:"sortNo,omitempty"`
	ChargeCode string      `json:"chargeCode"` // 收费项目代码 (the platform's)
	ChargeName string      `json:"chargeName"`
	Unit       string      `json:"unit,omitempty"`
	Std        Amount      `json:"std"`    // 收费标准 (unit price)
	Number     json.Number `json:"number"` // 数量
	Amt        Amount      `json:"amt"`    // 金额
	SelfAmt    Amount      `json:"selfAmt"`
	Remark     string      `json:"remark,omitempty"`
}

// ListItem is one line of the item list.
type ListItem struct {
	ListDetailNo  string      `json:"listDetailNo,omitempty"`
	ChargeCode    string      `json:"chargeCode"` // the Charge it belongs to
	ChargeName    string      `json:"chargeName,omitempty"`
	Code          string      `json:"code"` // 药品/项目编码
	Name          string      `json:"name"`
	Specification string      `json:"specification,omitempty"`
	Unit          string      `json:"unit,omitempty"`
	Std           Amount      `json:"std"`
	Number        json.Number `json:"number"`
	Amt           Amount      `json:"amt"`
	SelfAmt       Amount      `json:"selfAmt"`
	Remark        string      `json:"remark,omitempty"`
}

// IssueAnswer is the message of a successful issue (and of getEBillByBusNo).
// The written-off fields are an extension of the simulator's query answer:
// the real getEBillByBusNo answer is not documented in REFERENCE.md.
type IssueAnswer struct {
	BillBatchCode string `json:"billBatchCode"`
	BillNo        string `json:"billNo"`
	Random        string `json:"random"`
	CreateTime    string `json:"createTime"`
	BillQRCode    string `json:"billQRCode"`
	PictureURL    string `json:"pictureUrl"`
	PictureNetURL string `json:"pictureNetUrl"`

	BusNo    string `json:"busNo,omitempty"`
	TotalAmt Amount `json:"totalAmt,omitempty"`
	// State is "1" normal or "2" written off (query answers only).
	State                 string `json:"state,omitempty"`
	EScarletBillBatchCode string `json:"eScarletBillBatchCode,omitempty"`
	EScarletBillNo        string `json:"eScarletBillNo,omitempty"`
	EScarletRandom        string `json:"eScarletRandom,omitempty"`
	EScarletCreateTime    string `json:"eScarletCreateTime,omitempty"`
}

// Bill states as IssueAnswer.State carries them.
const (
	StateNormal     = "1"
	StateWrittenOff = "2"
)

// Bill is an issued e-invoice.
type Bill struct {
	BusNo     string
	BatchCode string    // 票据代码 (billBatchCode)
	No        string    // 票据号码 (billNo)
	Random    string    // 校验码
	CreatedAt time.Time // 开票时间; zero when the platform sent none or an unreadable one
	// QRCode is the text to encode in the QR code shown or printed for the
	// patient. The platform's billQRCode is base64 of a PNG picture of the
	// QR code, not its text; the text would need a QR decoder, so QRCode is
	// PictureNetURL (the bill's public H5 page, which the QR code opens
	// too), or PictureURL when there is none. When billQRCode is text
	// rather than a picture, that text is used.
	QRCode string
	// QRImage is the PNG the platform sent in billQRCode, nil when it sent
	// none or text.
	QRImage       []byte
	PictureURL    string // 电子票据 H5 页面 (the platform's internal address)
	PictureNetURL string // 电子票据外网 H5 页面
	TotalAmt      Amount // from query answers that carry it; 0 otherwise

	// WrittenOff is set by Query when the bill has been written off.
	WrittenOff *Scarlet
}

// WriteOffReq is the request of writeOffEBill (冲红).
type WriteOffReq struct {
	BillBatchCode string `json:"billBatchCode"`
	BillNo        string `json:"billNo"`
	Reason        string `json:"reason"`      // 冲红原因, e.g. 患者退费
	Operator      string `json:"operator"`    // 经办人
	BusDateTime   string `json:"busDateTime"` // yyyyMMddHHmmssSSS; empty means now
	PlaceCode     string `json:"placeCode"`
}

// WriteOffAnswer is the message of a successful write-off.
type WriteOffAnswer struct {
	EScarletBillBatchCode string `json:"eScarletBillBatchCode"`
	EScarletBillNo        string `json:"eScarletBillNo"`
	EScarletRandom        string `json:"eScarletRandom"`
	CreateTime            string `json:"createTime"`
	BillQRCode            string `json:"billQRCode"`
	PictureURL            string `json:"pictureUrl"`
	PictureNetURL         string `json:"pictureNetUrl"`
}

// Scarlet is the red bill (电子红票) a write-off issues.
type Scarlet struct {
	BatchCode     string // eScarletBillBatchCode
	No            string // eScarletBillNo
	Random        string // eScarletRandom
	CreatedAt     time.Time
	QRCode        string // as Bill.QRCode
	QRImage       []byte
	PictureURL    string
	PictureNetURL string
}

// QueryReq is the request of getEBillByBusNo.
type QueryReq struct {
	BusNo string `json:"busNo"`
}
