package reconcile

// Record kinds beside payment and refund: the insurance centre's totals
// check (3201) of a day, one per hospital.
const KindStatement = "statement"

// Mismatch kinds.
const (
	MissingTheirs = "missing_theirs" // we have it (money moved), they do not
	MissingOurs   = "missing_ours"   // they have it, we have no record at all
	AmountDiffers = "amount"         // both have it, amounts (or insurance parts) differ
	StatusDiffers = "status"         // they say done, we say not (yet)
	OtherDay      = "other_day"      // both say done, but on different days
	Refused       = "refused"        // we have it, they have it and say they refused it (the HIS's nack)
	Unbalanced    = "statement"      // the insurance centre's totals of the day differ from ours (3201)
)

// Side describes an external side: its name in reconcile_runs.source, its
// Chinese name in labels, and the label and action suggested for each
// mismatch kind. Labels and Suggestions are keyed by mismatch kind, or by
// kind + "/" + record kind where a refund reads differently; a kind without
// a label gets the generic one.
type Side struct {
	Name        string
	Label       string // 渠道, 医保, HIS
	Labels      map[string]string
	Suggestions map[string]string
	// RefusedStatus is their status that means they refused a record (a
	// mismatch of kind Refused rather than MissingTheirs); "" for none.
	RefusedStatus string
}

// Channel is the payment channel's side: the cash legs against the daily bill.
var Channel = Side{
	Name:  "channel",
	Label: "渠道",
	Suggestions: map[string]string{
		MissingTheirs:             "查询渠道订单，确认未支付后关闭",
		MissingTheirs + "/refund": "查询渠道退款单，未退款则重新发起退款",
		MissingOurs:               "按渠道流水补记或原路退款",
		AmountDiffers:             "人工核对",
		StatusDiffers:             "调用查询补记为已支付",
		StatusDiffers + "/refund": "调用退款查询补记为已退款",
		OtherDay:                  "跨日入账，核对两日账单，无需调账",
	},
}

// Insurance is the insurance centre's side: the insurance legs (fund and
// personal account) and insurance refunds against the settlements the
// appliance recorded at the centre (insurance_settlements), plus the
// centre's totals check of the day (3201).
var Insurance = Side{
	Name:  "insurance",
	Label: "医保",
	Labels: map[string]string{
		StatusDiffers:             "我方未结算而医保已结算",
		StatusDiffers + "/refund": "我方未退款而医保已退款",
		AmountDiffers:             "统筹或个账金额不一致",
		Unbalanced:                "医保中心总额对账（3201）不平",
	},
	Suggestions: map[string]string{
		MissingTheirs:             "向医保中心查询结算结果，未结算则关闭订单并退还已收现金",
		MissingTheirs + "/refund": "向医保中心查询退费结果，未退则重新发起医保退费",
		MissingOurs:               "向医保中心查询并冲正",
		MissingOurs + "/refund":   "向医保中心查询退费记录，核实后补记退款",
		AmountDiffers:             "核对统筹与个账金额，必要时冲正后重新结算",
		StatusDiffers:             "向医保中心查询并冲正",
		StatusDiffers + "/refund": "向医保中心查询退费结果并补记",
		OtherDay:                  "跨日结算，核对两日明细，无需调账",
		Unbalanced:                "下载医保对账明细（3202）逐笔核对",
	},
}

// HIS is the hospital information system's side: paid outpatient bills
// (诊间支付) and their refunds against the charges and credits the HIS
// accepted (bill_postings).
var HIS = Side{
	Name:          "his",
	Label:         "HIS",
	RefusedStatus: "refused",
	Labels: map[string]string{
		MissingTheirs:             "我方已收费、HIS 未记费",
		MissingTheirs + "/refund": "我方已退费、HIS 未冲销",
		Refused:                   "HIS 拒收费用消息",
		Refused + "/refund":       "HIS 拒收退费冲销消息",
		MissingOurs:               "HIS 已记费、我方无收费",
		MissingOurs + "/refund":   "HIS 已冲销、我方无退费",
		StatusDiffers:             "HIS 已记费而我方未收款",
		StatusDiffers + "/refund": "HIS 已冲销而我方未退款",
		OtherDay:                  "记账日期不一致",
	},
	Suggestions: map[string]string{
		MissingTheirs:             "重发费用消息",
		MissingTheirs + "/refund": "重发退费冲销消息",
		Refused:                   "核对费用明细后重发费用消息",
		Refused + "/refund":       "核对退费明细后重发冲销消息",
		MissingOurs:               "在 HIS 冲销该费用，或向患者补收",
		MissingOurs + "/refund":   "核对 HIS 冲销记录，必要时重新记费",
		AmountDiffers:             "人工核对费用明细，按差额补发或冲销",
		StatusDiffers:             "查询支付结果，未收款则在 HIS 冲销该费用",
		StatusDiffers + "/refund": "查询退款进度，退款失败则重新发起退款",
		OtherDay:                  "跨日记账，核对两日明细，无需调账",
	},
}

// Sides are the three external sides, in the order a day runs them.
var Sides = []Side{Channel, Insurance, HIS}

// KindLabel is the Chinese label of a mismatch kind against s.
func (s Side) KindLabel(kind, recordKind string) string {
	if l := s.Labels[kind+"/"+recordKind]; l != "" {
		return l
	}
	if l := s.Labels[kind]; l != "" {
		return l
	}
	switch kind {
	case MissingTheirs:
		return "我方有、" + s.Label + "无"
	case MissingOurs:
		return s.Label + "有、我方无"
	case AmountDiffers:
		return "金额不一致"
	case StatusDiffers:
		if recordKind == KindRefund {
			return "我方未退款而" + s.Label + "已退款"
		}
		return "我方未支付而" + s.Label + "已支付"
	case OtherDay:
		return "入账日期不一致"
	case Refused:
		return s.Label + "拒收"
	}
	return kind
}

// Suggestion is the action suggested for a mismatch of kind.
func (s Side) Suggestion(kind, recordKind string) string {
	if v := s.Suggestions[kind+"/"+recordKind]; v != "" {
		return v
	}
	return s.Suggestions[kind]
}

// sideOf returns the Side named name; an unknown name gets a neutral label.
func sideOf(name string) Side {
	for _, s := range Sides {
		if s.Name == name {
			return s
		}
	}
	return Side{Name: name, Label: name}
}

// SideLabel is the Chinese name of the side named name, for pages.
func SideLabel(name string) string {
	switch name {
	case Channel.Name:
		return "支付渠道"
	case Insurance.Name:
		return "医保结算"
	case HIS.Name:
		return "HIS 费用"
	}
	return name
}
