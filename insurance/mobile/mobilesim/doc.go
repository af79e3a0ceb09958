// Package mobilesim is a stand-in for the insurance mobile payment centre
// (医保移动支付中心) over real HTTP, speaking package mobile's envelope: it
// verifies every request (appId, SM4 data, the hospital's SM3withSM2
// signature with user id = appSecret, timestamp within Config.Window) and
// signs every answer with its own SM2 key.
//
// The centre's paths are mobile.Paths — an assumption, REFERENCE.md gives
// none: 6201 POST /org/local/api/hos/uldFeeInfo, 6202 …/pay_order, 6301
// …/query_order, 6203 …/refund_Order, 6401 …/revoke_order.
//
// What it does:
//
//   - Insured persons are the insurance simulator's (inssim, derived from
//     the HIS simulator's demo patients): 张三 110101199003078515 has 职工医保
//     with 1256.80 in his personal account, 王五 城乡居民医保 without an
//     account, P000005 is suspended (6201 refused). Balances change with
//     payments and refunds and can be set.
//   - The patient's authorisation in the channel (WeChat/Alipay insurance
//     auth, e-voucher activated) is POST /control/auth {"id_number"} →
//     {"payAuthNo", "uldLatlnt", "ecToken", "id_number", "name",
//     "expires_at"}; 6201 needs a valid payAuthNo and checks idNo/userName
//     against it.
//   - 6201 checks that the fee details add up to medfeeSumamt and refuses a
//     medOrgOrd uploaded twice; its answer carries the pre-settlement
//     (extData.preSetl: the split 6202 would make at that moment). 6202 splits the total: the fund pays
//     FundRatioPct % (rounded down to the fen), the personal account pays up
//     to its balance when acctUsedFlag is "1", cash the rest; a repeated
//     orgBizSer gets the first answer. ordStas: 0 uploaded, 1 pending, 6
//     settled, 7 fully refunded, 10 partly refunded, 12 cancelled (6401),
//     15 failed.
//   - 6302 notifies go to the notify URL when an order settles (signed
//     envelope; the hospital's signed answer is recorded). 6203 refunds in
//     part or in full (appRefdSn idempotent), 6401 cancels an unpaid upload.
//   - Control API (works in every mode): GET /control; POST /control/mode
//     {"mode": "up|down|slow|error", "delay_ms", "text", "pending_ms" (6202
//     answers ordStas 1 and settles that much later), "fail" (6202 fails:
//     ordStas 15), "notify": "normal|none|duplicate|early" (early: before
//     the 6202 answer leaves), "notify_delay_ms"}; POST /control/settings
//     {"fund_ratio_pct", "balances": {"<id number>": fen}, "notify_url"};
//     POST /control/auth; GET /control/persons, /control/orders,
//     /control/notifies.
//
// Everything is in memory.
package mobilesim
