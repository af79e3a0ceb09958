package mobile

import (
	"ihos"
	"ihos/insurance"
)

// Transaction codes and the centre's paths for them. REFERENCE.md gives the
// codes and fields but no URL paths; these paths are an assumption (the
// shape public integrations show), collected here so that a province with
// other paths only changes Paths.
const (
	Tx6201 = "6201" // 费用明细上传
	Tx6202 = "6202" // 支付下单
	Tx6203 = "6203" // 医保退费
	Tx6301 = "6301" // 医保订单结算结果查询
	Tx6302 = "6302" // 医保结算结果通知 (centre → hospital)
	Tx6401 = "6401" // 费用明细上传撤销
)

// Paths maps a transaction to its path under Client.BaseURL.
var Paths = map[string]string{
	Tx6201: "/org/local/api/hos/uldFeeInfo",
	Tx6202: "/org/local/api/hos/pay_order",
	Tx6301: "/org/local/api/hos/query_order",
	Tx6203: "/org/local/api/hos/refund_Order",
	Tx6401: "/org/local/api/hos/revoke_order",
}

// Yuan is an amount in fen that travels as yuan with two decimals; more
// decimals are refused, never rounded (see insurance.Yuan).
type Yuan = insurance.Yuan

// FeeUpload is the input of 6201 费用明细上传 (field names from REFERENCE.md,
// hsa-his OnlinePayFeeDTO). PayAuthNo and UldLatlnt come from the patient's
// authorisation in the channel (WeChat/Alipay insurance auth).
type FeeUpload struct {
	OrgCodg       string      `json:"orgCodg"`
	PsnNo         string      `json:"psnNo"`
	Insutype      string      `json:"insutype"`
	MedOrgOrd     string      `json:"medOrgOrd"` // the hospital's order number
	RxCircFlag    string      `json:"rxCircFlag"`
	Begntime      string      `json:"begntime"` // yyyy-MM-dd HH:mm:ss
	IDNo          string      `json:"idNo"`
	UserName      string      `json:"userName"`
	IDType        string      `json:"idType"`
	ECToken       string      `json:"ecToken"`
	InsuCode      string      `json:"insuCode"`
	IptOtpNo      string      `json:"iptOtpNo"`
	AtddrNo       string      `json:"atddrNo"`
	DeptCode      string      `json:"deptCode"`
	Caty          string      `json:"caty"`
	MdtrtID       string      `json:"mdtrtId"`
	MedType       string      `json:"medType"`
	FeeType       string      `json:"feeType"`
	MedfeeSumamt  Yuan        `json:"medfeeSumamt"`
	AcctUsedFlag  string      `json:"acctUsedFlag"` // "1" use the personal account, "0" not
	PsnSetlway    string      `json:"psnSetlway"`
	ChrgBchno     string      `json:"chrgBchno"`
	PayAuthNo     string      `json:"payAuthNo"`
	UldLatlnt     string      `json:"uldLatlnt"` // "longitude,latitude" from the channel
	MdtrtCertType string      `json:"mdtrtCertType"`
	DiseInfoList  []DiseInfo  `json:"diseinfoList"`
	FeeDetailList []FeeDetail `json:"feedetailList"`
	ExtData       any         `json:"extData,omitempty"`
}

// DiseInfo is one diagnosis of diseinfoList. REFERENCE.md names the list
// only; the members are 2203's diseinfo fields in the camel case the mobile
// interfaces use (an assumption).
type DiseInfo struct {
	DiagType    string `json:"diagType"`
	DiagSrtNo   string `json:"diagSrtNo"`
	DiagCode    string `json:"diagCode"`
	DiagName    string `json:"diagName"`
	DiagDept    string `json:"diagDept"`
	DiseDorNo   string `json:"diseDorNo"`
	DiseDorName string `json:"diseDorName"`
	DiagTime    string `json:"diagTime"`
	ValiFlag    string `json:"valiFlag"`
}

// FeeDetail is one fee of feedetailList: 2204's feedetail fields in camel
// case (an assumption, as for DiseInfo).
type FeeDetail struct {
	FeedetlSn        string `json:"feedetlSn"`
	MdtrtID          string `json:"mdtrtId"`
	PsnNo            string `json:"psnNo"`
	ChrgBchno        string `json:"chrgBchno"`
	RxNo             string `json:"rxno"`
	RxCircFlag       string `json:"rxCircFlag"`
	FeeOcurTime      string `json:"feeOcurTime"`
	MedListCodg      string `json:"medListCodg"`
	MedinsListCodg   string `json:"medinsListCodg"`
	DetItemFeeSumamt Yuan   `json:"detItemFeeSumamt"`
	Cnt              string `json:"cnt"`
	Pric             Yuan   `json:"pric"`
	SinDosDscr       string `json:"sinDosDscr"`
	UsedFrquDscr     string `json:"usedFrquDscr"`
	PrdDays          string `json:"prdDays"`
	MedcWayDscr      string `json:"medcWayDscr"`
	BilgDeptCodg     string `json:"bilgDeptCodg"`
	BilgDrCodg       string `json:"bilgDrCodg"`
	HospApprFlag     string `json:"hospApprFlag"`
}

// UploadResult is the output of 6201. ExtData.PreSetl, when the centre
// sends it (public integrations show 6201 answering with the 2206
// pre-settlement under extData, as 6202 does), is the split the patient is
// shown before paying; a centre that leaves it out gives no split before
// 6202.
type UploadResult struct {
	PayOrdID string   `json:"payOrdId"`
	PayToken string   `json:"payToken"`
	ExtData  OrderExt `json:"extData"`
}

// OrderRequest is the input of 6202 支付下单. OrgBizSer must be unique per
// business action and the same on every retry of it: the centre answers a
// repeated orgBizSer with its first answer, so a lost answer is recovered by
// sending the same request again. Empty OrgBizSer makes Order6202 generate
// one (then a retry is a new order attempt: store it first instead).
type OrderRequest struct {
	PayAuthNo    string `json:"payAuthNo"`
	PayOrdID     string `json:"payOrdId"`
	PayToken     string `json:"payToken"`
	OrgCodg      string `json:"orgCodg"`
	OrgBizSer    string `json:"orgBizSer"`
	ChrgBchno    string `json:"chrgBchno"`
	FeeType      string `json:"feeType"`
	MdtrtID      string `json:"mdtrtId"`
	AcctUsedFlag string `json:"acctUsedFlag"`
}

// QueryRequest is the input of 6301 医保订单结算结果查询.
type QueryRequest struct {
	OrgCodg  string `json:"orgCodg"`
	PayOrdID string `json:"payOrdId"`
	PayToken string `json:"payToken"`
	IDNo     string `json:"idNo"`
	UserName string `json:"userName"`
	IDType   string `json:"idType"`
	ExtData  any    `json:"extData,omitempty"`
}

// OrderResult is the output of 6202 and 6301. FeeSumamt = FundPay +
// PsnAcctPay + OwnPayAmt always holds on a result this package returns.
type OrderResult struct {
	PayOrdID      string   `json:"payOrdId"`
	OrdStas       string   `json:"ordStas"` // the centre's raw code; see State
	FeeSumamt     Yuan     `json:"feeSumamt"`
	OwnPayAmt     Yuan     `json:"ownPayAmt"` // cash, paid by the patient in the channel
	PsnAcctPay    Yuan     `json:"psnAcctPay"`
	FundPay       Yuan     `json:"fundPay"`
	Deposit       Yuan     `json:"deposit"`
	HospPartAmt   Yuan     `json:"hospPartAmt"`
	AcctMulaidPay Yuan     `json:"acctMulaidPay"`
	ExtData       OrderExt `json:"extData"`
	State         State    `json:"-"` // derived from OrdStas
}

// OrderExt is extData of an order result: preSetl carries the 2206
// pre-settlement output.
type OrderExt struct {
	PreSetl *PreSetl `json:"preSetl,omitempty"`
}

// PreSetl is the part of 2206's setlinfo the hospital books.
type PreSetl struct {
	SetlID        string `json:"setl_id"`
	MdtrtID       string `json:"mdtrt_id"`
	PsnNo         string `json:"psn_no"`
	MedfeeSumamt  Yuan   `json:"medfee_sumamt"`
	FundPaySumamt Yuan   `json:"fund_pay_sumamt"`
	HifpPay       Yuan   `json:"hifp_pay"`
	PsnPartAmt    Yuan   `json:"psn_part_amt"`
	AcctPay       Yuan   `json:"acct_pay"`
	PsnCashPay    Yuan   `json:"psn_cash_pay"`
	HospPartAmt   Yuan   `json:"hosp_part_amt"`
	Balc          Yuan   `json:"balc"`
	ClrOptins     string `json:"clr_optins"`
	ClrWay        string `json:"clr_way"`
	ClrType       string `json:"clr_type"`
}

// RefundRequest is the input of 6203 医保退费. TotlRefdAmt must equal
// PsnAcctRefdAmt + FundRefdAmt + CashRefdAmt. RefdType: REFERENCE.md names
// the field only; this package uses the 6302 setlType values, "ALL" (fund,
// account and cash), "HI" (insurance part only), "CASH" (cash only).
// AppRefdSn identifies the refund: repeating it returns the first answer.
type RefundRequest struct {
	PayOrdID       string `json:"payOrdId"`
	AppRefdSn      string `json:"appRefdSn"`
	AppRefdTime    string `json:"appRefdTime"` // yyyyMMddHHmmss, Beijing time; empty: now
	TotlRefdAmt    Yuan   `json:"totlRefdAmt"`
	PsnAcctRefdAmt Yuan   `json:"psnAcctRefdAmt"`
	FundRefdAmt    Yuan   `json:"fundRefdAmt"`
	CashRefdAmt    Yuan   `json:"cashRefdAmt"`
	ECToken        string `json:"ecToken"`
	RefdType       string `json:"refdType"`
}

// Refund types.
const (
	RefdAll  = "ALL"
	RefdHI   = "HI"
	RefdCash = "CASH"
)

// RefundResult is the output of 6203. REFERENCE.md gives no output fields;
// these are this package's design: the amounts refunded, the order's new
// ordStas and refdStas "SUCC" or "FAIL".
type RefundResult struct {
	PayOrdID       string `json:"payOrdId"`
	AppRefdSn      string `json:"appRefdSn"`
	RefdStas       string `json:"refdStas"`
	OrdStas        string `json:"ordStas"`
	TotlRefdAmt    Yuan   `json:"totlRefdAmt"`
	PsnAcctRefdAmt Yuan   `json:"psnAcctRefdAmt"`
	FundRefdAmt    Yuan   `json:"fundRefdAmt"`
	CashRefdAmt    Yuan   `json:"cashRefdAmt"`
}

// RefdStasOK is refdStas for a refund made.
const RefdStasOK = "SUCC"

// CancelRequest is the input of 6401, the cancel of a fee upload (6201) that
// was never paid. REFERENCE.md says the 6401 fields were not found: these
// are a minimal design of this package — the order (payOrdId, payToken),
// the hospital (orgCodg), the hospital's order (medOrgOrd) and an optional
// reason. The simulator refuses to cancel a settled order (refund it).
type CancelRequest struct {
	PayOrdID  string `json:"payOrdId"`
	PayToken  string `json:"payToken"`
	OrgCodg   string `json:"orgCodg"`
	MedOrgOrd string `json:"medOrgOrd"`
	Reason    string `json:"reason,omitempty"`
}

// CancelResult is the output of 6401 (this package's design, as the input).
type CancelResult struct {
	PayOrdID string `json:"payOrdId"`
	OrdStas  string `json:"ordStas"`
}

// Notify is the content of 6302 医保结算结果通知, the centre's call to the
// hospital when an order is settled (fields from REFERENCE.md).
type Notify struct {
	PayOrdID   string `json:"payOrdId"`
	CallType   string `json:"callType"` // "02"
	MedOrgOrd  string `json:"medOrgOrd"`
	TraceTime  string `json:"traceTime"` // yyyyMMddHHmmss (an assumption: no format in REFERENCE.md)
	FeeSumamt  Yuan   `json:"feeSumamt"`
	OwnPayAmt  Yuan   `json:"ownPayAmt"`
	PsnAcctPay Yuan   `json:"psnAcctPay"`
	FundPay    Yuan   `json:"fundPay"`
	SetlType   string `json:"setlType"` // ALL, CASH or HI
	RevsToken  string `json:"revsToken"`
}

// CallTypeSettle is callType of a settlement notify.
const CallTypeSettle = "02"

// State is what an ordStas means to the hospital.
type State int

// States. REFERENCE.md gives 0-2 and 17-25 as pending or unknown (query
// again), 3-6 as settled (a settlement candidate: book it once the amounts
// check), 14-16 as failed. 7-11 (refunds) and 12-13 (revoked) are this
// package's reading of the gap; any other code is Pending, since an unknown
// state must never be taken as "not paid".
const (
	Pending   State = iota // not final: query again later
	Settled                // paid: fund, account and cash as in the result
	Failed                 // final: nothing was paid
	Refunded               // refunded, fully or in part
	Cancelled              // the upload was cancelled (6401) or the order revoked
)

var stateNames = [...]string{"pending", "settled", "failed", "refunded", "cancelled"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// StateOf maps a raw ordStas to a State.
func StateOf(ordStas string) State {
	n := -1
	if len(ordStas) > 0 && len(ordStas) <= 2 {
		n = 0
		for _, c := range ordStas {
			if c < '0' || c > '9' {
				return Pending
			}
			n = n*10 + int(c-'0')
		}
	}
	switch {
	case n >= 3 && n <= 6:
		return Settled
	case n >= 7 && n <= 11:
		return Refunded
	case n == 12 || n == 13:
		return Cancelled
	case n >= 14 && n <= 16:
		return Failed
	}
	return Pending
}

// checkAmounts is the rule every result and notify must pass: fund +
// account + cash = total. A mismatch is never booked.
func checkAmounts(total, fund, acct, cash Yuan) error {
	if fund+acct+cash != total {
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算金额不一致",
			Err: errAmounts(total, fund, acct, cash)}
	}
	if fund < 0 || acct < 0 || cash < 0 {
		return &ihos.Error{Code: ihos.EConflict, Message: "医保结算金额不一致",
			Err: errAmounts(total, fund, acct, cash)}
	}
	return nil
}
