// Package mobile is the hospital's client of the insurance mobile payment
// centre (医保移动支付): a patient pays a bill in WeChat or Alipay with the
// insurance fund, the personal account and cash together.
//
// The flow: the patient authorises in the channel (the insurance auth page
// of WeChat/Alipay, with the 医保电子凭证 e-voucher activated) and the channel
// hands the hospital a payAuthNo and the location uldLatlnt; the hospital
// uploads the fees (6201 → payOrdId, payToken), places the order (6202 →
// ordStas and the split fund/account/cash), and learns the result from the
// 6202 answer, the centre's 6302 notify or a 6301 query. 6203 refunds
// (fully or in part), 6401 cancels an upload that was not paid.
//
// Every message travels in the envelope of envelope.go: JSON data encrypted
// with SM4-ECB under a key derived from appId and appSecret, signed with
// SM3withSM2 (user id = appSecret) by the sender's key, answers likewise by
// the centre's key. Field names are REFERENCE.md's; the URL paths (Paths),
// the answer fields code/message, the 6203/6401 outputs and the 6401 input
// are not in it and are this package's assumptions, said where they are
// defined.
//
// Money is integer fen (Yuan = insurance.Yuan) and travels as yuan with two
// decimals; more decimals are refused. Every result is checked: fund +
// account + cash = total, else EConflict "医保结算金额不一致". No answer,
// or an answer that fails verification, is EUnavailable "医保移动支付暂时无法连接",
// which never means "not paid": query again. A refusal by the centre is
// EInvalid "医保移动支付返回：…" with a *CentreError cause.
//
// Package mobilesim is a simulator of the centre over HTTP.
package mobile
