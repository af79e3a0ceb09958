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
// 2201/2203/2204/2206/2207/2208 (registration, diagnosis, fee upload,
// pre-settlement, settlement, reversal) come next on the same Client.
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
