package appliance

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"ihos"
	"ihos/certs"
	"ihos/insurance"
	"ihos/insurance/mobile"
	"ihos/insurance/settle"
	"ihos/sync"
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
	// Mobile is the line to the insurance mobile payment centre (医保移动支付).
	Mobile InsuranceMobileConfig `json:"mobile"`
}

// InsuranceMobileConfig is the hospital's account at the insurance mobile
// payment centre (6201/6202…), issued when the hospital is connected. The
// demo's simulator (ihos-mobilepay-sim) writes these values under
// "mobilepay" in its credentials file.
type InsuranceMobileConfig struct {
	URL       string `json:"url" env:"IHOS_INSMOBILE_URL"` // empty: no mobile insurance payments
	AppID     string `json:"app_id" env:"IHOS_INSMOBILE_APP_ID"`
	AppSecret string `json:"app_secret" env:"IHOS_INSMOBILE_APP_SECRET"` // a secret
	OrgCodg   string `json:"org_codg" env:"IHOS_INSMOBILE_ORG_CODG"`
	// OrgKeyFile is the path of the hospital's SM2 private key (PEM), which
	// signs every request; the key itself never goes into the config.
	OrgKeyFile string `json:"org_key_file" env:"IHOS_INSMOBILE_ORG_KEY_FILE"`
	// CentrePub is the centre's SM2 public key that answers and 6302
	// notifies are verified with: a PEM file's path, or the PEM itself
	// (with "\n" for line breaks, as a credentials file holds it).
	CentrePub string `json:"centre_pub" env:"IHOS_INSMOBILE_CENTRE_PUB"`
}

// newMobile returns the mobile payment centre client, nil when no address is
// set.
func newMobile(cfg InsuranceMobileConfig) (*mobile.Client, error) {
	if cfg.URL == "" {
		return nil, nil
	}
	bad := func(format string, args ...any) error {
		return ihos.Errorf(ihos.EInvalid, "医保移动支付配置（insurance.mobile）有误："+format, args...)
	}
	if len(cfg.AppID) < 16 || cfg.AppSecret == "" || cfg.OrgCodg == "" {
		return nil, bad("须填写 app_id（至少 16 位）、app_secret 和 org_codg")
	}
	b, err := os.ReadFile(cfg.OrgKeyFile)
	if err != nil {
		return nil, bad("无法读取医院私钥文件 org_key_file（%v）", err)
	}
	k, err := certs.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, bad("医院私钥文件 %s 无法解析（%v）", cfg.OrgKeyFile, err)
	}
	key, ok := k.(*sm2.PrivateKey)
	if !ok {
		return nil, bad("医院私钥文件 %s 不是 SM2 私钥", cfg.OrgKeyFile)
	}
	pubPEM := []byte(strings.ReplaceAll(cfg.CentrePub, `\n`, "\n"))
	if !strings.Contains(cfg.CentrePub, "BEGIN") {
		if pubPEM, err = os.ReadFile(cfg.CentrePub); err != nil {
			return nil, bad("无法读取医保中心公钥 centre_pub（%v）", err)
		}
	}
	blk, _ := pem.Decode(pubPEM)
	if blk == nil {
		return nil, bad("医保中心公钥 centre_pub 不是 PEM 格式")
	}
	pk, err := smx509.ParsePKIXPublicKey(blk.Bytes)
	pub, isEC := pk.(*ecdsa.PublicKey)
	if err != nil || !isEC || pub.Curve != sm2.P256() {
		return nil, bad("医保中心公钥 centre_pub 不是 SM2 公钥（%v）", err)
	}
	return &mobile.Client{BaseURL: cfg.URL, AppID: cfg.AppID, AppSecret: cfg.AppSecret, OrgCodg: cfg.OrgCodg, Key: key, CentrePub: pub,
		Logger: slog.Default()}, nil
}

// startSettle builds the insurance legs of payments (package settle) on the
// national platform client and the mobile centre's, serves them to the cloud
// over the sync RPC and takes the centre's 6302 notifies at
// settle.NotifyPath. A centre not configured refuses its legs with a clear
// "unavailable"; a mobile configuration that does not load is logged and
// leaves mobile payments off rather than the appliance down.
func (a *App) startSettle(cfg Config, mux *http.ServeMux) {
	hospital := cfg.HospitalID
	mob, err := newMobile(cfg.Insurance.Mobile)
	if err != nil {
		slog.Error("insurance mobile payment not started", "err", err)
	}
	svc := &settle.Service{DB: a.Node.DB, National: a.Insurance, Mobile: mob, Hospital: hospital,
		AfterCommit: a.Link.Kick, Link: a.Link}
	if _, ok := a.Replica.Entities.Entity(settle.Entity); ok {
		svc.Capture = func(ctx context.Context, tx *sql.Tx, refs ...sync.Ref) error {
			return a.Replica.Capture(ctx, tx, hospital, refs...)
		}
	}
	if err := svc.ServeRPC(a.Link); err != nil {
		slog.Error("insurance legs not served to the cloud", "err", fmt.Sprint(err))
	}
	svc.Routes(mux)
	a.Settle = svc
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
