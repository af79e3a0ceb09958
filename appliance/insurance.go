package appliance

import (
	"context"

	"ihos"
	"ihos/insurance"
)

// InsuranceConfig is the hospital's line to the national medical insurance
// platform (国家医保信息平台), through the insurance front-end machine. The
// institution codes are issued by the insurance bureau when the hospital is
// connected; the defaults are the demo hospital's, which the insurance
// simulator accepts.
type InsuranceConfig struct {
	URL       string `json:"url" env:"IHOS_INSURANCE_URL"`                  // the platform (or front-end) address; empty: not connected
	Code      string `json:"fixmedins_code" env:"IHOS_INSURANCE_FIXMEDINS"` // 定点医药机构编号, 12 characters
	Name      string `json:"fixmedins_name" env:"IHOS_INSURANCE_NAME"`      // 定点医药机构名称
	Area      string `json:"mdtrtarea_admvs" env:"IHOS_INSURANCE_AREA"`     // 就医地医保区划, 6 digits
	DevNo     string `json:"dev_no" env:"IHOS_INSURANCE_DEV_NO"`
	SignNo    string `json:"sign_no" env:"IHOS_INSURANCE_SIGN_NO"`
	PaasID    string `json:"paas_id" env:"IHOS_INSURANCE_PAAS_ID"`
	PaasToken string `json:"paas_token" env:"IHOS_INSURANCE_PAAS_TOKEN"`
}

// Demo institution codes (the simulator checks formats, not values).
const (
	demoFixmedinsCode = "H11010500001"
	demoArea          = "110105"
)

// newInsurance returns the platform client, or nil when no address is set.
func newInsurance(cfg InsuranceConfig, hospitalName string) *insurance.Client {
	if cfg.URL == "" {
		return nil
	}
	inst := insurance.Institution{Code: cfg.Code, Name: cfg.Name, MdtrtareaAdmvs: cfg.Area,
		DevNo: cfg.DevNo, SignNo: cfg.SignNo, PaasID: cfg.PaasID, PaasToken: cfg.PaasToken}
	if inst.Code == "" {
		inst.Code = demoFixmedinsCode
	}
	if inst.Name == "" {
		inst.Name = hospitalName
	}
	if inst.MdtrtareaAdmvs == "" {
		inst.MdtrtareaAdmvs = demoArea
	}
	return &insurance.Client{BaseURL: cfg.URL, Fixmedins: inst,
		Operator: insurance.Operator{Type: insurance.OpterKiosk, ID: "kiosk", Name: "自助机"}}
}

// vouchers resolves the e-voucher QR a patient shows at the kiosk (展码)
// into an ID number through code 1101.
type vouchers struct{ c *insurance.Client }

func (v vouchers) Resolve(ctx context.Context, qr string) (string, string, error) {
	if v.c == nil {
		return "", "", ihos.Errorf(ihos.EUnavailable, "医保电子凭证暂不可用，请使用身份证号或就诊号")
	}
	return v.c.ResolveVoucher(ctx, qr)
}
