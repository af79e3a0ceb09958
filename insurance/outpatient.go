package insurance

import (
	"context"
	"strings"

	"ihos"
)

// Transaction codes of outpatient settlement. REFERENCE.md lists 2201, 2203,
// 2204, 2206, 2207 and 2208; 2202, 2205, 2601 and 3201 and their fields are
// from a public integration of the national platform (newtouch-cloud/openhis,
// WinServiceAPI/YiBaoInterface/Models/Input and Output), see each type.
const (
	InfnoRegister         = "2201" // 门诊挂号
	InfnoRegisterCancel   = "2202" // 门诊挂号撤销
	InfnoVisitInfo        = "2203" // 门诊就诊信息上传
	InfnoFeeUpload        = "2204" // 门诊费用明细信息上传
	InfnoFeeCancel        = "2205" // 门诊费用明细信息撤销
	InfnoPreSettle        = "2206" // 门诊预结算
	InfnoSettle           = "2207" // 门诊结算
	InfnoSettleCancel     = "2208" // 门诊结算撤销
	InfnoReversal         = "2601" // 冲正交易
	InfnoStatementTotals  = "3201" // 医药机构费用结算对总账
	FeeCancelAllUnsettled = "0000" // chrg_bchno for 2205: every unsettled detail of the visit (public 2205 field note)
	AcctUsed              = "1"    // acct_used_flag: pay from the personal account
	AcctNotUsed           = "0"
	MedTypeOutpatient     = "11" // med_type 普通门诊 (public integrations; REFERENCE.md gives no code list)
	PsnSetlwayByItem      = "01" // psn_setlway 按项目结算 (public integrations)
	DiagTypeWestern       = "1"  // diag_type 西医诊断 (public integrations)
	ValiFlagValid         = "1"  // vali_flag 有效
	RxCircFlagNo          = "0"  // rx_circ_flag: not an external prescription
	HospApprFlagApproved  = "1"  // hosp_appr_flag (public integrations)
	StatementBalanced     = "0"  // 3201 stmt_rslt when the totals agree: the simulator's assumption, see StatementResult
)

// Registration is the input of 2201 (门诊挂号), field names as REFERENCE.md
// lists them. Begntime is "yyyy-MM-dd HH:mm:ss".
type Registration struct {
	PsnNo         string `json:"psn_no"`
	Insutype      string `json:"insutype"`
	Begntime      string `json:"begntime"`
	MdtrtCertType string `json:"mdtrt_cert_type"`
	MdtrtCertNo   string `json:"mdtrt_cert_no"`
	IptOtpNo      string `json:"ipt_otp_no"` // the hospital's own outpatient number, unique in the hospital
	AtddrNo       string `json:"atddr_no"`   // doctor code
	DrName        string `json:"dr_name"`
	DeptCode      string `json:"dept_code"`
	DeptName      string `json:"dept_name"`
	Caty          string `json:"caty"` // department category code
}

// Registered is the output of 2201. REFERENCE.md names mdtrt_id; psn_no and
// ipt_otp_no come back too in the public integration (under "data").
type Registered struct {
	MdtrtID  string `json:"mdtrt_id"` // the platform's visit id: every later step names the visit by it
	PsnNo    string `json:"psn_no"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// dataInput wraps a transaction's input under "data", as 1101, 2201, 2202,
// 2205–2208, 2601 and 3201 take it in public integrations.
type dataInput struct {
	Data any `json:"data"`
}

// Register sends 2201. opts.InsuplcAdmdvs must be the insured's area.
func (c *Client) Register(ctx context.Context, opts CallOptions, in Registration) (Registered, error) {
	if err := required("人员编号", in.PsnNo, "险种类型", in.Insutype, "挂号时间", in.Begntime,
		"就诊凭证类型", in.MdtrtCertType, "就诊凭证编号", in.MdtrtCertNo, "门诊号", in.IptOtpNo,
		"医师编码", in.AtddrNo, "医师姓名", in.DrName, "科室编码", in.DeptCode, "科室名称", in.DeptName, "科别", in.Caty); err != nil {
		return Registered{}, err
	}
	var out struct {
		Data Registered `json:"data"`
	}
	if _, err := c.CallWith(ctx, opts, InfnoRegister, dataInput{in}, &out); err != nil {
		return Registered{}, err
	}
	if out.Data.MdtrtID == "" {
		return Registered{}, ihos.Errorf(ihos.EUnavailable, "医保平台未返回就诊ID，请稍后重试")
	}
	return out.Data, nil
}

// RegistrationCancel is the input of 2202 (门诊挂号撤销; public integration,
// not in REFERENCE.md).
type RegistrationCancel struct {
	PsnNo    string `json:"psn_no"`
	MdtrtID  string `json:"mdtrt_id"`
	IptOtpNo string `json:"ipt_otp_no"`
}

// CancelRegistration sends 2202.
func (c *Client) CancelRegistration(ctx context.Context, opts CallOptions, in RegistrationCancel) error {
	if err := required("人员编号", in.PsnNo, "就诊ID", in.MdtrtID, "门诊号", in.IptOtpNo); err != nil {
		return err
	}
	_, err := c.CallWith(ctx, opts, InfnoRegisterCancel, dataInput{in}, nil)
	return err
}

// MdtrtInfo is 2203's mdtrtinfo. REFERENCE.md lists mdtrt_id, psn_no,
// med_type, begntime, main_cond_dscr, dise_codg, dise_name "…"; the maternity
// fields are from the public integration.
type MdtrtInfo struct {
	MdtrtID         string `json:"mdtrt_id"`
	PsnNo           string `json:"psn_no"`
	MedType         string `json:"med_type"`
	Begntime        string `json:"begntime"`
	MainCondDscr    string `json:"main_cond_dscr"`
	DiseCodg        string `json:"dise_codg"`
	DiseName        string `json:"dise_name"`
	BirctrlType     string `json:"birctrl_type"`
	BirctrlMatnDate string `json:"birctrl_matn_date"`
	MatnType        string `json:"matn_type"`
	GesoVal         Number `json:"geso_val"`
}

// DiseInfo is one diagnosis of 2203 (diseinfo[]), REFERENCE.md's fields.
type DiseInfo struct {
	DiagType    string `json:"diag_type"`
	DiagSrtNo   int    `json:"diag_srt_no"` // 1 for the main diagnosis
	DiagCode    string `json:"diag_code"`
	DiagName    string `json:"diag_name"`
	DiagDept    string `json:"diag_dept"`
	DiseDorNo   string `json:"dise_dor_no"`
	DiseDorName string `json:"dise_dor_name"`
	DiagTime    string `json:"diag_time"`
	ValiFlag    string `json:"vali_flag"`
}

// VisitInfo is the input of 2203 (就诊信息上传): two nodes, not under "data".
type VisitInfo struct {
	MdtrtInfo MdtrtInfo  `json:"mdtrtinfo"`
	DiseInfo  []DiseInfo `json:"diseinfo"`
}

// UploadVisit sends 2203.
func (c *Client) UploadVisit(ctx context.Context, opts CallOptions, in VisitInfo) error {
	m := in.MdtrtInfo
	if err := required("就诊ID", m.MdtrtID, "人员编号", m.PsnNo, "医疗类别", m.MedType, "就诊时间", m.Begntime); err != nil {
		return err
	}
	if len(in.DiseInfo) == 0 {
		return ihos.Errorf(ihos.EInvalid, "请填写诊断后再上传就诊信息")
	}
	for _, d := range in.DiseInfo {
		if strings.TrimSpace(d.DiagCode) == "" || strings.TrimSpace(d.DiagName) == "" {
			return ihos.Errorf(ihos.EInvalid, "诊断代码和诊断名称不能为空")
		}
	}
	_, err := c.CallWith(ctx, opts, InfnoVisitInfo, in, nil)
	return err
}

// FeeDetail is one line of 2204 (feedetail[]). The names REFERENCE.md lists,
// plus the department and doctor names, dise_codg and the flags the public
// integration sends. Amounts are fen (Yuan); cnt (16,4), pric (16,6) and
// prd_days keep their decimals as Number.
type FeeDetail struct {
	FeedetlSn        string `json:"feedetl_sn"` // unique within the visit
	MdtrtID          string `json:"mdtrt_id"`
	PsnNo            string `json:"psn_no"`
	ChrgBchno        string `json:"chrg_bchno"` // the charging batch: what one 2206/2207 settles
	DiseCodg         string `json:"dise_codg"`
	Rxno             string `json:"rxno"`
	RxCircFlag       string `json:"rx_circ_flag"`
	FeeOcurTime      string `json:"fee_ocur_time"` // "yyyy-MM-dd HH:mm:ss"
	MedListCodg      string `json:"med_list_codg"` // the national catalogue code
	MedinsListCodg   string `json:"medins_list_codg"`
	DetItemFeeSumamt Yuan   `json:"det_item_fee_sumamt"`
	Cnt              Number `json:"cnt"`
	Pric             Number `json:"pric"`
	SinDosDscr       string `json:"sin_dos_dscr"`
	UsedFrquDscr     string `json:"used_frqu_dscr"`
	PrdDays          Number `json:"prd_days"`
	MedcWayDscr      string `json:"medc_way_dscr"`
	BilgDeptCodg     string `json:"bilg_dept_codg"`
	BilgDeptName     string `json:"bilg_dept_name"`
	BilgDrCodg       string `json:"bilg_dr_codg"`
	BilgDrName       string `json:"bilg_dr_name"`
	HospApprFlag     string `json:"hosp_appr_flag"`
}

// FeeResult is the platform's answer for one fee line (2204 output
// result[]): how much of it is outside the insurance scope. REFERENCE.md
// names fulamt_ownpay_amt, overlmt_amt, preselfpay_amt, inscp_scp_amt and
// chrgitm_lv; the rest is from the public integration.
type FeeResult struct {
	FeedetlSn        string `json:"feedetl_sn"`
	DetItemFeeSumamt Yuan   `json:"det_item_fee_sumamt"`
	Cnt              Number `json:"cnt"`
	Pric             Number `json:"pric"`
	PricUplmtAmt     Number `json:"pric_uplmt_amt"`
	SelfpayProp      Number `json:"selfpay_prop"`
	FulamtOwnpayAmt  Yuan   `json:"fulamt_ownpay_amt"` // wholly self-paid (丙类)
	OverlmtAmt       Yuan   `json:"overlmt_amt"`       // above the price limit
	PreselfpayAmt    Yuan   `json:"preselfpay_amt"`    // paid first by the patient (乙类 share)
	InscpScpAmt      Yuan   `json:"inscp_scp_amt"`     // within the policy scope
	ChrgitmLv        string `json:"chrgitm_lv"`        // 甲/乙/丙 class code
	MedChrgitmType   string `json:"med_chrgitm_type"`
	LmtUsedFlag      string `json:"lmt_used_flag"`
	Memo             string `json:"memo"`
}

// UploadFees sends 2204 and returns the platform's split of each line, in
// the order the platform gives.
func (c *Client) UploadFees(ctx context.Context, opts CallOptions, fees []FeeDetail) ([]FeeResult, error) {
	if len(fees) == 0 {
		return nil, ihos.Errorf(ihos.EInvalid, "没有需要上传的费用明细")
	}
	seen := map[string]bool{}
	for i, f := range fees {
		if err := required("费用明细流水号", f.FeedetlSn, "就诊ID", f.MdtrtID, "人员编号", f.PsnNo,
			"收费批次号", f.ChrgBchno, "医疗目录编码", f.MedListCodg, "费用发生时间", f.FeeOcurTime); err != nil {
			return nil, err
		}
		if seen[f.FeedetlSn] {
			return nil, ihos.Errorf(ihos.EInvalid, "费用明细流水号重复：%s", ihos.Truncate(f.FeedetlSn, 30))
		}
		seen[f.FeedetlSn] = true
		if f.DetItemFeeSumamt <= 0 {
			return nil, ihos.Errorf(ihos.EInvalid, "第 %d 条费用明细金额应大于 0", i+1)
		}
		if f.ChrgBchno != fees[0].ChrgBchno || f.MdtrtID != fees[0].MdtrtID {
			return nil, ihos.Errorf(ihos.EInvalid, "一次上传的费用明细应属于同一就诊和同一收费批次")
		}
	}
	var out struct {
		Result []FeeResult `json:"result"`
	}
	if _, err := c.CallWith(ctx, opts, InfnoFeeUpload, struct {
		Feedetail []FeeDetail `json:"feedetail"`
	}{fees}, &out); err != nil {
		return nil, err
	}
	if len(out.Result) != len(fees) {
		return nil, ihos.Errorf(ihos.EUnavailable, "医保平台返回的费用明细条数与上传的不一致，请联系信息科")
	}
	return out.Result, nil
}

// FeeCancel is the input of 2205 (费用明细撤销; public integration, not in
// REFERENCE.md). ChrgBchno FeeCancelAllUnsettled removes every detail of the
// visit that is not settled.
type FeeCancel struct {
	MdtrtID   string `json:"mdtrt_id"`
	ChrgBchno string `json:"chrg_bchno"`
	PsnNo     string `json:"psn_no"`
}

// CancelFees sends 2205.
func (c *Client) CancelFees(ctx context.Context, opts CallOptions, in FeeCancel) error {
	if err := required("就诊ID", in.MdtrtID, "收费批次号", in.ChrgBchno, "人员编号", in.PsnNo); err != nil {
		return err
	}
	_, err := c.CallWith(ctx, opts, InfnoFeeCancel, dataInput{in}, nil)
	return err
}

// SettleInput is the input of 2206 (预结算) and 2207 (结算), REFERENCE.md's
// fields. MedfeeSumamt must be the sum of the batch's uploaded lines; the
// four scope amounts are the sums of 2204's answers.
type SettleInput struct {
	PsnNo           string `json:"psn_no"`
	MdtrtCertType   string `json:"mdtrt_cert_type"`
	MdtrtCertNo     string `json:"mdtrt_cert_no"`
	MedType         string `json:"med_type"`
	MedfeeSumamt    Yuan   `json:"medfee_sumamt"`
	PsnSetlway      string `json:"psn_setlway"`
	MdtrtID         string `json:"mdtrt_id"`
	ChrgBchno       string `json:"chrg_bchno"`
	Insutype        string `json:"insutype"`
	AcctUsedFlag    string `json:"acct_used_flag"`
	Invono          string `json:"invono"`
	FulamtOwnpayAmt Yuan   `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  Yuan   `json:"overlmt_selfpay"`
	PreselfpayAmt   Yuan   `json:"preselfpay_amt"`
	InscpScpAmt     Yuan   `json:"inscp_scp_amt"`
}

// SetlInfo is setlinfo of 2206, 2207 and 2208: who pays what. REFERENCE.md
// lists setl_id … clr_type; the person fields, setl_time and the scope
// amounts are from the public integration.
type SetlInfo struct {
	MdtrtID         string `json:"mdtrt_id"`
	SetlID          string `json:"setl_id"` // empty for a pre-settlement
	PsnNo           string `json:"psn_no"`
	PsnName         string `json:"psn_name"`
	PsnCertType     string `json:"psn_cert_type"`
	Certno          string `json:"certno"`
	Gend            string `json:"gend"`
	Naty            string `json:"naty"`
	Brdy            string `json:"brdy"`
	Age             Number `json:"age"`
	Insutype        string `json:"insutype"`
	PsnType         string `json:"psn_type"`
	CvlservFlag     string `json:"cvlserv_flag"`
	SetlTime        string `json:"setl_time"`
	MdtrtCertType   string `json:"mdtrt_cert_type"`
	MedType         string `json:"med_type"`
	MedfeeSumamt    Yuan   `json:"medfee_sumamt"` // the total
	FulamtOwnpayAmt Yuan   `json:"fulamt_ownpay_amt"`
	OverlmtSelfpay  Yuan   `json:"overlmt_selfpay"`
	PreselfpayAmt   Yuan   `json:"preselfpay_amt"`
	InscpScpAmt     Yuan   `json:"inscp_scp_amt"`
	ActPayDedc      Yuan   `json:"act_pay_dedc"`      // deductible applied
	HifpPay         Yuan   `json:"hifp_pay"`          // basic pooled fund
	PoolPropSelfpay Number `json:"pool_prop_selfpay"` // the pooled fund's ratio (5,4)
	CvlservPay      Yuan   `json:"cvlserv_pay"`
	HifesPay        Yuan   `json:"hifes_pay"`
	HifmiPay        Yuan   `json:"hifmi_pay"`
	HifobPay        Yuan   `json:"hifob_pay"`
	MafPay          Yuan   `json:"maf_pay"`
	OthPay          Yuan   `json:"oth_pay"`
	FundPaySumamt   Yuan   `json:"fund_pay_sumamt"` // every fund together
	PsnPartAmt      Yuan   `json:"psn_part_amt"`    // the person's share: account + cash
	AcctPay         Yuan   `json:"acct_pay"`        // from the personal account
	PsnCashPay      Yuan   `json:"psn_cash_pay"`    // what the patient pays at the counter
	HospPartAmt     Yuan   `json:"hosp_part_amt"`   // borne by the hospital
	Balc            Yuan   `json:"balc"`            // account balance after
	AcctMulaidPay   Yuan   `json:"acct_mulaid_pay"`
	MedinsSetlID    string `json:"medins_setl_id"` // the hospital's id: the 2207 msgid (public field note)
	ClrOptins       string `json:"clr_optins"`
	ClrWay          string `json:"clr_way"`
	ClrType         string `json:"clr_type"`
}

// SetlDetail is one fund of setldetail[]. REFERENCE.md lists fund_pay_type
// and fund_payamt; the rest is from the public integration.
type SetlDetail struct {
	FundPayType     string `json:"fund_pay_type"`
	InscpScpAmt     Yuan   `json:"inscp_scp_amt"`
	CrtPaybLmtAmt   Yuan   `json:"crt_payb_lmt_amt"`
	FundPayamt      Yuan   `json:"fund_payamt"`
	FundPayTypeName string `json:"fund_pay_type_name"`
	SetlProcInfo    string `json:"setl_proc_info"`
}

// Settlement is the output of 2206, 2207 and 2208.
type Settlement struct {
	SetlInfo   SetlInfo     `json:"setlinfo"`
	SetlDetail []SetlDetail `json:"setldetail"`
}

// CheckSplit checks that a settlement's shares add up to its total, in
// integer fen:
//
//	fund_pay_sumamt + acct_pay + psn_cash_pay + hosp_part_amt = medfee_sumamt
//	psn_part_amt = acct_pay + psn_cash_pay
//
// The second line is REFERENCE.md's. The first is how public integrations
// compute the cash share (hsa-his: 个人现金 = 医疗费总额 − 基金支付总额, with
// the account added to the fund total where a province leaves it out); the
// hospital's share (hosp_part_amt, 医院负担) is a fourth payer and is zero in
// ordinary outpatient settlements. Some provinces (hsa-his names Zhuhai)
// include the account in fund_pay_sumamt: fundIncludesAcct says so, and the
// account is then taken out of the fund total before the check. Every amount
// must also be at least zero.
func CheckSplit(s SetlInfo, fundIncludesAcct bool) error {
	fund := s.FundPaySumamt
	if fundIncludesAcct {
		fund -= s.AcctPay
	}
	bad := func(detail string) error {
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算金额不一致：" + detail + "，请联系医保科核对",
			Err: errSplit(detail)}
	}
	for _, a := range []Yuan{s.MedfeeSumamt, fund, s.AcctPay, s.PsnCashPay, s.HospPartAmt, s.PsnPartAmt} {
		if a < 0 {
			return bad("存在负数金额")
		}
	}
	if sum := fund + s.AcctPay + s.PsnCashPay + s.HospPartAmt; sum != s.MedfeeSumamt {
		return bad("基金 " + ihos.FormatYuan(int64(fund)) + " + 个人账户 " + ihos.FormatYuan(int64(s.AcctPay)) +
			" + 现金 " + ihos.FormatYuan(int64(s.PsnCashPay)) + " + 医院负担 " + ihos.FormatYuan(int64(s.HospPartAmt)) +
			" ≠ 医疗费总额 " + ihos.FormatYuan(int64(s.MedfeeSumamt)))
	}
	if s.PsnPartAmt != s.AcctPay+s.PsnCashPay {
		return bad("个人负担 " + ihos.FormatYuan(int64(s.PsnPartAmt)) + " ≠ 个人账户 " + ihos.FormatYuan(int64(s.AcctPay)) +
			" + 现金 " + ihos.FormatYuan(int64(s.PsnCashPay)))
	}
	return nil
}

type errSplit string

func (e errSplit) Error() string { return "insurance: settlement split does not add up: " + string(e) }

// PreSetlChanged reports whether the final settlement (2207) splits the
// money differently from the pre-settlement (2206) the patient was shown:
// the total, the fund, the account, the cash or the hospital's share. The
// caller must then show the patient the new amounts before taking cash. A
// missing pre-settlement counts as changed, since nothing was shown.
func PreSetlChanged(pre, final *SetlInfo) bool {
	if pre == nil || final == nil {
		return true
	}
	return pre.MedfeeSumamt != final.MedfeeSumamt || pre.FundPaySumamt != final.FundPaySumamt ||
		pre.AcctPay != final.AcctPay || pre.PsnCashPay != final.PsnCashPay ||
		pre.PsnPartAmt != final.PsnPartAmt || pre.HospPartAmt != final.HospPartAmt
}

// checkSettleInput refuses a 2206/2207 input that cannot be right before it
// leaves the hospital.
func checkSettleInput(in SettleInput) error {
	if err := required("人员编号", in.PsnNo, "就诊凭证类型", in.MdtrtCertType, "就诊凭证编号", in.MdtrtCertNo,
		"医疗类别", in.MedType, "个人结算方式", in.PsnSetlway, "就诊ID", in.MdtrtID, "收费批次号", in.ChrgBchno, "险种类型", in.Insutype); err != nil {
		return err
	}
	if in.MedfeeSumamt <= 0 {
		return ihos.Errorf(ihos.EInvalid, "医疗费总额应大于 0")
	}
	if in.AcctUsedFlag != AcctUsed && in.AcctUsedFlag != AcctNotUsed {
		return ihos.Errorf(ihos.EInvalid, "个人账户使用标志应为 0 或 1")
	}
	if in.FulamtOwnpayAmt < 0 || in.OverlmtSelfpay < 0 || in.PreselfpayAmt < 0 || in.InscpScpAmt < 0 ||
		in.FulamtOwnpayAmt+in.OverlmtSelfpay+in.PreselfpayAmt+in.InscpScpAmt > in.MedfeeSumamt {
		return ihos.Errorf(ihos.EInvalid, "自费、超限价、先行自付与政策范围内金额之和不能超过医疗费总额")
	}
	return nil
}

// settle sends 2206 or 2207 and checks the split before the call is
// recorded, so a mismatch is in the call log.
func (c *Client) settle(ctx context.Context, opts CallOptions, infno string, in SettleInput) (Settlement, *Response, error) {
	if err := checkSettleInput(in); err != nil {
		return Settlement{}, nil, err
	}
	var out Settlement
	resp, err := c.call(ctx, opts, infno, dataInput{in}, &out, func() error {
		if infno == InfnoSettle && out.SetlInfo.SetlID == "" {
			return ihos.Errorf(ihos.EConflict, "医保平台未返回结算ID，结算结果需人工核对")
		}
		if out.SetlInfo.MedfeeSumamt != in.MedfeeSumamt {
			return &ihos.Error{Code: ihos.EConflict, Message: "医保结算金额不一致：平台医疗费总额 " +
				ihos.FormatYuan(int64(out.SetlInfo.MedfeeSumamt)) + " ≠ 上传 " + ihos.FormatYuan(int64(in.MedfeeSumamt)) + "，请联系医保科核对",
				Err: errSplit("medfee_sumamt differs from the input")}
		}
		return CheckSplit(out.SetlInfo, c.Fixmedins.FundIncludesAcct)
	})
	return out, resp, err
}

// PreSettle sends 2206 (门诊预结算): the split the patient is shown before
// paying. Nothing is settled. The answer's amounts are checked (CheckSplit);
// a mismatch is EConflict "医保结算金额不一致…".
func (c *Client) PreSettle(ctx context.Context, opts CallOptions, in SettleInput) (Settlement, error) {
	s, _, err := c.settle(ctx, opts, InfnoPreSettle, in)
	return s, err
}

// Settle sends 2207 (门诊结算). The answer is checked like PreSettle's; a
// settlement that fails the check has still happened on the platform, so the
// Settlement is returned with the EConflict error for the caller to keep and
// reverse (2208). An error without an answer (EUnavailable, a nil Response)
// means the result is unknown: see OutpatientSettlement.Resolve.
func (c *Client) Settle(ctx context.Context, opts CallOptions, in SettleInput) (Settlement, *Response, error) {
	return c.settle(ctx, opts, InfnoSettle, in)
}

// SettleCancel is the input of 2208 (结算撤销), REFERENCE.md's fields.
type SettleCancel struct {
	SetlID  string `json:"setl_id"`
	MdtrtID string `json:"mdtrt_id"`
	PsnNo   string `json:"psn_no"`
}

// CancelSettle sends 2208 and returns the platform's record of the
// reversal (its own setl_id; the amounts as the platform gives them).
func (c *Client) CancelSettle(ctx context.Context, opts CallOptions, in SettleCancel) (Settlement, error) {
	if err := required("结算ID", in.SetlID, "就诊ID", in.MdtrtID, "人员编号", in.PsnNo); err != nil {
		return Settlement{}, err
	}
	var out Settlement
	_, err := c.CallWith(ctx, opts, InfnoSettleCancel, dataInput{in}, &out)
	return out, err
}

// Reversal is the input of 2601 (冲正交易; public integration, not in
// REFERENCE.md): undo the transaction sent with msgid OMsgID, whose infno
// was OInfno, whether or not its answer ever arrived. Its output is empty.
type Reversal struct {
	PsnNo  string `json:"psn_no"`
	OMsgID string `json:"omsgid"`
	OInfno string `json:"oinfno"`
}

// Reverse sends 2601.
func (c *Client) Reverse(ctx context.Context, opts CallOptions, in Reversal) error {
	if err := required("人员编号", in.PsnNo, "原报文ID", in.OMsgID, "原交易编号", in.OInfno); err != nil {
		return err
	}
	if len(in.OMsgID) != MsgIDLen {
		return ihos.Errorf(ihos.EInvalid, "原报文ID应为 %d 位", MsgIDLen)
	}
	_, err := c.CallWith(ctx, opts, InfnoReversal, dataInput{in}, nil)
	return err
}

// StatementTotals is the input of 3201 (对总账; public integration, not in
// REFERENCE.md): the hospital's own totals for a period, which the platform
// compares with its records. Dates are "yyyy-MM-dd".
type StatementTotals struct {
	Insutype         string `json:"insutype"`
	ClrType          string `json:"clr_type"`
	SetlOptins       string `json:"setl_optins"`
	StmtBegndate     string `json:"stmt_begndate"`
	StmtEnddate      string `json:"stmt_enddate"`
	MedfeeSumamt     Yuan   `json:"medfee_sumamt"`
	FundPaySumamt    Yuan   `json:"fund_pay_sumamt"`
	AcctPay          Yuan   `json:"acct_pay"`
	FixmedinsSetlCnt int    `json:"fixmedins_setl_cnt"`
}

// StatementResult is 3201's stmtinfo. The public integration names the
// fields but not the stmt_rslt codes; this package and the simulator take
// StatementBalanced ("0") for agreement, which must be confirmed with the
// province before Balanced is relied on.
type StatementResult struct {
	SetlOptins   string `json:"setl_optins"`
	StmtRslt     string `json:"stmt_rslt"`
	StmtRsltDscr string `json:"stmt_rslt_dscr"`
}

// Balanced reports whether the platform's totals agree with the hospital's.
func (r StatementResult) Balanced() bool { return r.StmtRslt == StatementBalanced }

// ReconcileTotals sends 3201.
func (c *Client) ReconcileTotals(ctx context.Context, opts CallOptions, in StatementTotals) (StatementResult, error) {
	if err := required("险种类型", in.Insutype, "对账开始日期", in.StmtBegndate, "对账结束日期", in.StmtEnddate); err != nil {
		return StatementResult{}, err
	}
	var out struct {
		Stmtinfo StatementResult `json:"stmtinfo"`
	}
	if _, err := c.CallWith(ctx, opts, InfnoStatementTotals, dataInput{in}, &out); err != nil {
		return StatementResult{}, err
	}
	return out.Stmtinfo, nil
}

// required takes pairs of a field's Chinese name and its value and returns
// EInvalid naming the first empty one.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			return ihos.Errorf(ihos.EInvalid, "医保交易缺少必填项：%s", pairs[i])
		}
	}
	return nil
}
