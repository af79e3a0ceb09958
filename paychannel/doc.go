// Package paychannel is the client of the online payment channel the
// patients pay self-pay amounts through: WeChat Pay API v3 as publicly
// documented (signed JSON over HTTPS, asynchronous notifies, refunds, daily
// trade bills). Package paysim is its simulator.
//
// Wire format, as the channel documents it:
//
//   - Every request carries Authorization: WECHATPAY2-SHA256-RSA2048
//     mchid="…",nonce_str="…",timestamp="…",serial_no="…",signature="…",
//     the signature being base64 SHA256withRSA (PKCS #1 v1.5) with the
//     merchant's RSA-2048 key over "METHOD\nPATH?QUERY\ntimestamp\nnonce\nbody\n".
//   - Every answer and every notify is signed by the platform key over
//     "timestamp\nnonce\nbody\n" (headers Wechatpay-Timestamp, -Nonce,
//     -Signature, -Serial); the client refuses an unsigned or badly signed
//     answer and one whose timestamp is more than MaxClockSkew away.
//   - A notify's resource is AEAD_AES_256_GCM under the 32-byte APIv3 key
//     (nonce, associated_data, base64 ciphertext||tag).
//   - The channel's 国密 option, chosen by giving the Client an SM2 key:
//     Authorization WECHATPAY2-SM2-WITH-SM3, the same messages signed SM2
//     with SM3 over the default user id 1234567812345678 (DER r‖s, base64);
//     answers and notifies carry Wechatpay-Signature-Type and are signed
//     with the platform's SM2 key; notify resources are AEAD_SM4_GCM under
//     the first 128 bits of SM3(APIv3 key). The JSAPI pay parameters stay
//     RSA (wx.requestPayment takes only RSA): Client.PaySignKey.
//
// # Money is never taken twice, lost, or left unknown
//
// The rules for the payment service that uses this client:
//
//   - out_trade_no and out_refund_no are the idempotency keys. Store the key
//     before the first call; repeat the call with the same key after any
//     doubt. The same key with the same contents returns the same order or
//     refund; the channel never creates a second one.
//   - An error never means "not paid" or "not refunded". EUnavailable ("支付渠道暂时无法连接")
//     means the outcome is unknown: the order may exist and may be paid.
//     Resolve by Query / QueryRefund; only Transaction.Paid() means money
//     arrived. To give up on an order, Close it and then Query: a Close that
//     fails with CodeOrderPaid means the patient paid after all.
//   - Notifies arrive at least once, possibly twice, possibly before the
//     create call returns, possibly never: dedupe by out_trade_no and state,
//     acknowledge (NotifyAck) only after storing, and poll Query for orders
//     without a notify.
//   - Reconcile daily with Bill: every SUCCESS row must match a paid order
//     and every REFUND row a refund; differences are for a person to look at.
//
// Cost: each call signs once. On the project's 2-core test machine an
// RSA-2048 signature costs about 1 ms of CPU and verifying one about 35 µs;
// SM2 signs in about 30 µs and verifies in about 65 µs
// (BenchmarkClientSign). Notifies are therefore the cheap way to learn
// results; Query is for doubt.
package paychannel
