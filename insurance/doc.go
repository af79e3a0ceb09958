// Package insurance is the appliance's front-end to the national medical
// insurance information platform (国家医保信息业务基础信息平台): one JSON
// envelope posted to one URL (ServicePath), the transaction chosen by infno,
// its own fields under input and output.
//
// Client.Call / CallWith send any transaction on that envelope; the
// transaction-specific files add typed calls on top. So far:
//
//   - 1101 人员信息获取 (person.go): PersonInfo by e-voucher token (01), ID card
//     (02) or social security card (03), and ResolveVoucher for the kiosk's
//     展码 path (a scanned e-voucher QR → ID number and name).
//
//   - Outpatient settlement (outpatient.go): typed calls for 2201 挂号, 2202
//     挂号撤销, 2203 就诊信息上传, 2204 费用明细上传, 2205 费用明细撤销, 2206
//     预结算, 2207 结算, 2208 结算撤销, 2601 冲正 (by the original msgid) and
//     3201 对总账. Every 2206/2207 answer is checked in integer fen
//     (CheckSplit: fund + account + cash + hospital share = total, and
//     psn_part_amt = account + cash); a mismatch is EConflict
//     "医保结算金额不一致…" and is in the call log with the reason.
//
//   - The counter/kiosk flow (flow.go): OutpatientSettlement, a state the
//     payment service persists between steps, with one method per step and
//     the msgid of every call (StepCall). A step whose answer was lost is
//     repeated under the same msgid; a 2207 without an answer stays
//     "settling" until Resolve (repeat under the same msgid, then 2601) or
//     ReverseSettle gives a final result. PreSetlChanged tells whether the
//     settlement differs from the pre-settlement the patient was shown.
//
//   - CallLog (calllog.go): Client.Observe into the table insurance_calls.
//
// Where the fields come from: REFERENCE.md for 1101, 2201, 2203, 2204, 2206,
// 2207 and 2208; 2202, 2205, 2601, 3201 and the output node names (2201
// "data", 2204 "result", 2206–2208 "setlinfo"/"setldetail") from a public
// national-platform integration (newtouch-cloud/openhis YiBaoInterface
// models). Code values REFERENCE.md does not list (med_type "11",
// psn_setlway "01", 3201 stmt_rslt "0") are marked at their constants.
// 3202 对明细账 is not implemented: it takes a detail file uploaded first
// (file_qury_no), which needs the file-upload transactions.
//
// Field names are those the project's interface reference (REFERENCE.md)
// gives from public specifications; where it is silent the doc comments say
// where a name or format comes from instead. Personal data (ID numbers,
// names, tokens) never reaches a log unmasked: see MaskJSON.
//
// Errors are *ihos.Error: EUnavailable "医保系统暂时无法连接，请稍后重试"
// when no answer came (connection refused, timeout, HTTP error, not the
// envelope); EInvalid "医保平台返回：<err_msg>" for infcode -1, with a
// *PlatformError as cause.
//
// Package inssim is a simulator of the platform speaking the same envelope
// over HTTP, for tests and the demo.
package insurance
