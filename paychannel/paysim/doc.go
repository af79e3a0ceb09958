// Package paysim is a stand-in for the online payment channel (WeChat Pay
// API v3 as publicly documented): it speaks the merchant API of package
// paychannel over a real socket, signs and verifies as the real channel
// does, pays orders when told, sends encrypted notifies and keeps daily
// bills, so that the payment service, its tests, the demo and the chaos
// test run without the real channel.
//
// What it does:
//
//   - Checks every /v3 request: Authorization WECHATPAY2-SHA256-RSA2048
//     with a registered mchid, its certificate serial_no, a timestamp within
//     five minutes and a SHA256withRSA signature over method, path and
//     query, timestamp, nonce and body. A failure is HTTP 401 SIGN_ERROR.
//     Every answer (errors too) carries Wechatpay-Timestamp, -Nonce,
//     -Signature, -Serial and -Signature-Type, signed with the platform key.
//   - The 国密 option: a merchant registered with an SM2 public key must sign
//     WECHATPAY2-SM2-WITH-SM3 (SM2 with SM3, user id 1234567812345678); its
//     answers and notifies are signed with the platform's SM2 key (its own
//     certificate and serial) and its notifies encrypted AEAD_SM4_GCM under
//     the first 128 bits of SM3(APIv3 key). An answer is in the algorithm of
//     the request's Authorization.
//   - Creates JSAPI (prepay_id) and Native (code_url) orders. out_trade_no
//     is the idempotency key: the same order again (same type, total,
//     description, openid) returns the same prepay_id / code_url; anything
//     different is 400 OUT_TRADE_NO_USED; a paid order 400 ORDERPAID, a
//     closed one 400 ORDER_CLOSED. An unpaid order past time_expire (default
//     two hours) becomes CLOSED.
//   - Answers queries by out_trade_no (404 ORDER_NOT_EXIST for unknown
//     orders) and closes unpaid orders (400 ORDERPAID for paid ones).
//   - Pays an order when told (POST /control/pay or Sim.Pay) or by itself
//     (Mode.AutoPay); a payment may wait in USERPAYING first and end as
//     SUCCESS or PAYERROR. Paying twice takes nothing more.
//   - Sends TRANSACTION.SUCCESS and REFUND.SUCCESS / REFUND.ABNORMAL
//     notifies to notify_url: the resource encrypted with AEAD_AES_256_GCM
//     under the merchant's APIv3 key, signed with the platform key anew on
//     every attempt, retried on Config.NotifyRetry until the merchant
//     answers 2xx. A notify can be delayed, duplicated, dropped, or sent
//     before the create call is answered (Mode).
//   - Refunds (POST /v3/refund/domestic/refunds): the order must be paid,
//     amount.total must be the order's total and all refunds together at
//     most the total (400 INVALID_REQUEST otherwise); unknown orders are 404
//     RESOURCE_NOT_EXISTS. out_refund_no is the idempotency key. A refund
//     is PROCESSING, then SUCCESS after Mode.RefundDelayMS, or ABNORMAL
//     while Mode.RefundAbnormal lasts; sending the same out_refund_no again
//     retries an ABNORMAL refund (the real channel has a separate
//     apply-abnormal-refund call for this; the simulator keeps it simple).
//   - Daily trade bill (GET /v3/bill/tradebill?bill_date=…&bill_type=ALL):
//     hash_type SHA1, hash_value and a download_url; the file is CSV with
//     the channel's columns (paychannel.BillHeader), built from its own
//     records; a day without trades is 400 NO_STATEMENT_EXIST. Unlike the
//     real channel, today's bill is available at once (the day so far).
//   - Faults per operation (Mode.Faults): HTTP 500 before or after doing
//     the work, no answer (timeout) before or after, a dropped connection.
//
// Control API (unsigned; never on a production network): GET /control
// (mode, counters), GET /control/platform ({serial_no, certificate,
// public_key} and the same with sm2_ for the SM2 platform key, PEM), GET
// /control/platform.pem and /control/platform-sm2.pem (a certificate alone,
// the "platform_cert_url" of the demo credentials), POST /control/merchant
// ({mchid, appid, serial_no, public_key PEM (RSA or SM2), apiv3_key}), POST
// /control/mode (a Mode as JSON), POST /control/pay ({out_trade_no,
// mchid?, result?}), GET /control/notifies (the last notify attempts).
//
// The platform keys are generated at first start, never read from the repo.
// With Config.DBPath everything (platform keys, merchants, orders, refunds)
// is kept in that SQLite file and survives restarts; without it, state
// lives as long as the process.
package paysim
