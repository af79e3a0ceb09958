package insurance

import (
	"context"
	"net/url"
	"strings"

	"ihos"
)

// Transaction codes.
const (
	InfnoPersonInfo = "1101" // 人员信息获取
)

// Medical certificate types (mdtrt_cert_type), as REFERENCE.md lists them for
// 1101.
const (
	CertECToken = "01" // 医保电子凭证: mdtrt_cert_no is the ecToken
	CertIDCard  = "02" // 居民身份证: mdtrt_cert_no is the ID number
	CertSSCard  = "03" // 社会保障卡: mdtrt_cert_no is the card number, card_sn the card's chip id
)

// PsnCertResidentID is psn_cert_type "01", the resident identity card.
// REFERENCE.md names the field but not its code list; "01" is the code
// public integrations send with an ID number.
const PsnCertResidentID = "01"

// Insurance types (insutype) the kiosk meets most.
const (
	InsutypeEmployee = "310" // 职工基本医疗保险
	InsutypeResident = "390" // 城乡居民基本医疗保险
)

// PersonQuery is the input of 1101 (人员信息获取), field names as in
// REFERENCE.md. Which fields a query needs depends on MdtrtCertType:
//
//   - CertECToken: MdtrtCertNo = the ecToken from the e-voucher;
//   - CertIDCard: MdtrtCertNo = the ID number; PersonInfo fills Certno and
//     PsnCertType from it when they are empty;
//   - CertSSCard: MdtrtCertNo = the social security card number, CardSN the
//     card identifier read from the chip (public integrations mark it
//     required for "03"; REFERENCE.md only lists it).
type PersonQuery struct {
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	CardSN        string `json:"card_sn"`
	Begntime      string `json:"begntime"` // optional: the insurance state at this time ("yyyy-MM-dd HH:mm:ss")
	PsnCertType   string `json:"psn_cert_type"`
	Certno        string `json:"certno"`
	PsnName       string `json:"psn_name"`
}

// personInput is how 1101's input travels: the query under the node "data".
// REFERENCE.md lists the fields but not the node; public 1101 integrations
// all wrap them in {"data": {...}}.
type personInput struct {
	Data PersonQuery `json:"data"`
}

// Person is the output of 1101.
type Person struct {
	BaseInfo BaseInfo   `json:"baseinfo"`
	InsuInfo []InsuInfo `json:"insuinfo"`
	IdetInfo []IdetInfo `json:"idetinfo"`
}

// BaseInfo is 1101's baseinfo. REFERENCE.md lists psn_no, gend, naty, brdy
// and age; psn_cert_type, certno and psn_name are there in every public
// 1101 output too, and the kiosk needs them to know who it is talking to.
type BaseInfo struct {
	PsnNo       string `json:"psn_no"` // the platform's person number: every later transaction names the person by it
	PsnCertType string `json:"psn_cert_type"`
	Certno      string `json:"certno"`
	PsnName     string `json:"psn_name"`
	Gend        string `json:"gend"` // "1" male, "2" female (GB/T 2261.1; not in REFERENCE.md)
	Naty        string `json:"naty"` // ethnic group code, "01" 汉族
	Brdy        string `json:"brdy"` // birth date "yyyy-MM-dd"
	Age         Number `json:"age"`
}

// InsuInfo is one insurance of the person (insuinfo[]). REFERENCE.md lists
// balc, insutype, psn_type, psn_insu_stas, cvlserv_flag, insuplc_admdvs and
// emp_name; psn_insu_date and paus_insu_date are from public 1101 outputs.
type InsuInfo struct {
	Balc          Yuan   `json:"balc"`          // personal account balance
	Insutype      string `json:"insutype"`      // InsutypeEmployee, InsutypeResident …
	PsnType       string `json:"psn_type"`      // person category (code list not in REFERENCE.md)
	PsnInsuStas   string `json:"psn_insu_stas"` // "1" insured normally; other values: suspended or ended
	PsnInsuDate   string `json:"psn_insu_date"`
	PausInsuDate  string `json:"paus_insu_date"`
	CvlservFlag   string `json:"cvlserv_flag"`   // civil servant subsidy, "0"/"1"
	InsuplcAdmdvs string `json:"insuplc_admdvs"` // the insured's area: the envelope's insuplc_admdvs from now on
	EmpName       string `json:"emp_name"`
}

// IdetInfo is one special identity of the person (idetinfo[]). REFERENCE.md
// names the list only; the fields are those of public 1101 outputs.
type IdetInfo struct {
	PsnIdetType string `json:"psn_idet_type"`
	PsnTypeLv   string `json:"psn_type_lv"`
	Memo        string `json:"memo"`
	Begntime    string `json:"begntime"`
	Endtime     string `json:"endtime"`
}

// InsuStasNormal is psn_insu_stas for an insurance in force.
const InsuStasNormal = "1"

// ActiveInsurance returns the person's first insurance in force
// (psn_insu_stas "1"), the one a visit is registered and settled under.
func (p Person) ActiveInsurance() (InsuInfo, bool) {
	for _, in := range p.InsuInfo {
		if in.PsnInsuStas == InsuStasNormal {
			return in, true
		}
	}
	return InsuInfo{}, false
}

// PersonInfo identifies a person (1101) by e-voucher token, ID card or
// social security card. A person the platform does not know, an expired
// token or a refused card come back as EInvalid with the platform's reason.
func (c *Client) PersonInfo(ctx context.Context, q PersonQuery) (Person, error) {
	q.MdtrtCertNo = strings.TrimSpace(q.MdtrtCertNo)
	q.Certno = strings.TrimSpace(q.Certno)
	q.PsnName = strings.TrimSpace(q.PsnName)
	switch q.MdtrtCertType {
	case CertECToken:
		if q.MdtrtCertNo == "" {
			return Person{}, ihos.Errorf(ihos.EInvalid, "请出示医保电子凭证")
		}
	case CertIDCard:
		q.MdtrtCertNo = strings.ToUpper(q.MdtrtCertNo)
		if !ihos.ValidIDNumber(q.MdtrtCertNo) {
			return Person{}, ihos.Errorf(ihos.EInvalid, "身份证号码不正确，请核对")
		}
		if q.Certno == "" {
			q.Certno = q.MdtrtCertNo
		}
		if q.PsnCertType == "" {
			q.PsnCertType = PsnCertResidentID
		}
	case CertSSCard:
		if q.MdtrtCertNo == "" {
			return Person{}, ihos.Errorf(ihos.EInvalid, "未读到社会保障卡卡号，请重新插卡")
		}
		if strings.TrimSpace(q.CardSN) == "" {
			return Person{}, ihos.Errorf(ihos.EInvalid, "未读到社会保障卡识别码，请重新插卡")
		}
	default:
		return Person{}, ihos.Errorf(ihos.EInvalid, "就诊凭证类型不正确：%s", ihos.Truncate(q.MdtrtCertType, 8))
	}
	var p Person
	if _, err := c.Call(ctx, InfnoPersonInfo, personInput{Data: q}, &p); err != nil {
		return Person{}, err
	}
	if p.BaseInfo.PsnNo == "" {
		return Person{}, ihos.Errorf(ihos.EUnavailable, "医保平台返回的人员信息不完整，请稍后重试")
	}
	return p, nil
}

// ParseVoucherQR returns the ecToken a scanned e-voucher QR code carries.
//
// REFERENCE.md does not document the QR's content: it says a certified
// e-voucher terminal decodes the code (ec.query) and returns idNo, userName
// and an ecToken of 40 characters, which 1101 then takes with type "01". This
// appliance assumes the scanner hands over that ecToken: either the bare
// token, or a key=value / URL form with an "ecToken" parameter (as some
// terminal SDKs print it). The simulator's QR content is the bare token.
func ParseVoucherQR(qr string) (string, error) {
	s := strings.TrimSpace(qr)
	if i := strings.Index(s, "ecToken="); i >= 0 {
		rest := s[i:]
		if j := strings.IndexAny(rest, "&;, \t\r\n"); j >= 0 {
			rest = rest[:j]
		}
		v, err := url.QueryUnescape(strings.TrimPrefix(rest, "ecToken="))
		if err != nil {
			return "", ihos.Errorf(ihos.EInvalid, "无法识别的医保电子凭证二维码")
		}
		s = v
	}
	if len(s) < 16 || len(s) > 128 || strings.ContainsAny(s, " \t\r\n\"'<>") {
		return "", ihos.Errorf(ihos.EInvalid, "无法识别的医保电子凭证二维码，请在医保APP中刷新后重新出示")
	}
	return s, nil
}

// ResolveVoucher identifies the patient showing an e-voucher QR code at the
// kiosk (展码): it reads the ecToken (ParseVoucherQR) and asks 1101 who it
// belongs to. It returns the certificate number (the ID number for
// psn_cert_type "01") and the name; callers that need psn_no or the
// insurance list call PersonInfo with CertECToken instead.
func (c *Client) ResolveVoucher(ctx context.Context, qr string) (idNumber, name string, err error) {
	token, err := ParseVoucherQR(qr)
	if err != nil {
		return "", "", err
	}
	p, err := c.PersonInfo(ctx, PersonQuery{MdtrtCertType: CertECToken, MdtrtCertNo: token})
	if err != nil {
		return "", "", err
	}
	return p.BaseInfo.Certno, p.BaseInfo.PsnName, nil
}
