package inssim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"ihos"
	"ihos/his/hissim"
	"ihos/insurance"
)

// Insured is one person the simulated platform knows.
type Insured struct {
	HISID         string `json:"his_id"` // the HIS simulator's patient id of the same person
	PsnNo         string `json:"psn_no"`
	IDNumber      string `json:"id_number"`
	Name          string `json:"name"`
	Gend          string `json:"gend"` // "1" male, "2" female
	Brdy          string `json:"brdy"` // yyyy-MM-dd
	SSCardNo      string `json:"ss_card_no"`
	Insutype      string `json:"insutype"`
	PsnType       string `json:"psn_type"`
	PsnInsuStas   string `json:"psn_insu_stas"`
	PsnInsuDate   string `json:"psn_insu_date"`
	PausInsuDate  string `json:"paus_insu_date"`
	InsuplcAdmdvs string `json:"insuplc_admdvs"`
	EmpName       string `json:"emp_name"`
	BalcFen       int64  `json:"balc_fen"` // personal account balance
}

// Person categories (psn_type) the simulator uses. REFERENCE.md gives no code
// list for psn_type; these are the simulator's own, and the appliance must
// not depend on them.
const (
	PsnTypeEmployed = "11" // 在职
	PsnTypeRetired  = "21" // 退休
	PsnTypeResident = "51" // 城乡居民
)

// Fixed insurance of the three fixed HIS demo patients.
var fixedInsurance = map[string]struct {
	insutype, emp string
	balc          int64
}{
	"P000001": {insurance.InsutypeEmployee, "北京华康科技有限公司", 125680},
	"P000002": {insurance.InsutypeEmployee, "上海浦江物流有限公司", 348000},
	"P000003": {insurance.InsutypeResident, "", 0},
}

var employers = []string{"北京华康科技有限公司", "上海浦江物流有限公司", "广州南岭建设集团有限公司", "杭州西溪软件有限公司",
	"南京钟山机械制造有限公司", "成都锦江餐饮管理有限公司", "武汉江城汽车零部件有限公司", "市第一中学", "区人民政府办公室", "天河商贸有限公司"}

// PausedHISID is the demo person whose insurance is suspended
// (psn_insu_stas "2"): 1101 finds him, but with no insurance in force.
const PausedHISID = "P000005"

// demoInsured derives the insured persons from the HIS simulator's demo
// patients, so the same ID numbers and names are insured; the result is the
// same on every machine. P000001 张三 and P000002 李四 have 职工医保 (310)
// with a personal account, P000003 王五 城乡居民医保 (390); of the rest,
// children and one in four adults are residents (390), the others employees
// (310; retired from 60), and PausedHISID is suspended.
func demoInsured(now time.Time) []Insured {
	out := make([]Insured, 0, len(hissim.DemoPatients))
	for i, p := range hissim.DemoPatients {
		birth, err := time.Parse("20060102", p.BirthDate)
		if err != nil {
			continue
		}
		admdvs := p.IDNumber[:4] + "00"
		in := Insured{
			HISID: p.HISID, IDNumber: p.IDNumber, Name: p.Name,
			PsnNo:    admdvs + fmt.Sprintf("%014d", i+1),
			Gend:     map[string]string{"M": "1", "F": "2"}[p.Sex],
			Brdy:     birth.Format("2006-01-02"),
			SSCardNo: p.InsuranceCard, InsuplcAdmdvs: admdvs,
			PsnInsuStas: insurance.InsuStasNormal,
		}
		h := fnv.New32a()
		h.Write([]byte(p.IDNumber))
		hv := h.Sum32()
		age := ageOn(birth, now)
		if f, ok := fixedInsurance[p.HISID]; ok {
			in.Insutype, in.EmpName, in.BalcFen = f.insutype, f.emp, f.balc
		} else if age < 18 || i%4 == 0 {
			in.Insutype = insurance.InsutypeResident
		} else {
			in.Insutype = insurance.InsutypeEmployee
			in.EmpName = employers[int(hv)%len(employers)]
			in.BalcFen = int64(20000 + hv%78000*10) // 200.00 to 8,000.00 yuan
		}
		switch {
		case in.Insutype == insurance.InsutypeResident:
			in.PsnType = PsnTypeResident
		case age >= 60:
			in.PsnType = PsnTypeRetired
			in.EmpName = ""
		default:
			in.PsnType = PsnTypeEmployed
		}
		// Insured since turning 18 (or birth), not before 2000.
		since := birth.AddDate(18, 0, 0)
		if age < 18 {
			since = birth
		}
		if since.Year() < 2000 {
			since = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
		}
		in.PsnInsuDate = since.Format("2006-01-02")
		if p.HISID == PausedHISID {
			in.PsnInsuStas = "2"
			in.PausInsuDate = now.AddDate(0, -3, 0).In(ihos.Shanghai).Format("2006-01-02")
		}
		out = append(out, in)
	}
	return out
}

// ageOn is the age in whole years on day now.
func ageOn(birth, now time.Time) int {
	now = now.In(ihos.Shanghai)
	age := now.Year() - birth.Year()
	if now.Month() < birth.Month() || now.Month() == birth.Month() && now.Day() < birth.Day() {
		age--
	}
	return age
}

// person is the 1101 output for in at time now.
func (in Insured) person(now time.Time) insurance.Person {
	birth, _ := time.Parse("2006-01-02", in.Brdy)
	info := insurance.InsuInfo{
		Balc: insurance.Yuan(in.BalcFen), Insutype: in.Insutype, PsnType: in.PsnType,
		PsnInsuStas: in.PsnInsuStas, PsnInsuDate: in.PsnInsuDate, PausInsuDate: in.PausInsuDate,
		CvlservFlag: "0", InsuplcAdmdvs: in.InsuplcAdmdvs, EmpName: in.EmpName,
	}
	return insurance.Person{
		BaseInfo: insurance.BaseInfo{
			PsnNo: in.PsnNo, PsnCertType: insurance.PsnCertResidentID, Certno: in.IDNumber,
			PsnName: in.Name, Gend: in.Gend, Naty: "01", Brdy: in.Brdy,
			Age: insurance.Number(strconv.Itoa(ageOn(birth, now))),
		},
		InsuInfo: []insurance.InsuInfo{info},
		IdetInfo: []insurance.IdetInfo{},
	}
}

// ECToken is an e-voucher token the simulator issued.
type ECToken struct {
	Token     string    `json:"ec_token"`
	IDNumber  string    `json:"id_number"`
	Name      string    `json:"name"`
	ExpiresAt time.Time `json:"expires_at"`
	// QR is what a scanner reads from the e-voucher QR code: here the bare
	// token (see insurance.ParseVoucherQR for the assumption).
	QR string `json:"qr"`
}

// newToken returns a 40-character token: the insured's area (6), "ec" and
// 32 hex digits. REFERENCE.md gives the length (40) only; the layout is the
// simulator's.
func newToken(admdvs string) string {
	var b [16]byte
	rand.Read(b[:])
	return admdvs + "ec" + hex.EncodeToString(b[:])
}
