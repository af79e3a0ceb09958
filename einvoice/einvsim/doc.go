// Package einvsim is a stand-in for the finance e-invoice platform
// (财政电子票据平台): it takes the signed envelope of package einvoice over
// real HTTP at ServicePrefix + service name and answers the way the
// platform does, so the payment flow, its tests and the demo run without a
// finance bureau.
//
// What it does:
//
//   - Checks every envelope: the appid must be Config.AppID, version "1.0",
//     the sign upper(MD5("appid=..&data=..&noise=..&key=..&version=..")) with
//     Config.Key, and the noise new (a repeated noise is refused as a
//     replay; the last 100,000 are remembered). Every answer is HTTP 200 with
//     a signed envelope whose data is {result, message}: S0000 and base64 of
//     the answer JSON, or an E-code and base64 of a Chinese text (see the
//     Result constants; only E0404 "not found" is meaningful to the client).
//   - invoiceEBillOutpatient and invEBillRegistration: validate the request
//     as einvoice.CheckOutpatient does (pay channels and charge categories
//     must add up to totalAmt; amounts with more than two decimals are
//     refused), then issue a bill numbered 0000000001, 0000000002 … per
//     batch code (票据代码, Config.OutpatientBatch / RegistrationBatch) with
//     a random six-hex-digit check code. The same busNo again returns the
//     same bill; a busNo reused with another total, payer or service is
//     refused (E0409). billQRCode is base64 of a PNG QR code, as on the real
//     platform; the QR's text is the check page URL, which is also
//     pictureNetUrl (pictureUrl is the same page at the listener's address).
//   - writeOffEBill: issues the red bill (the next number of the original's
//     batch); a bill is written off once, a second write-off answers E0409
//     "该电子票据已冲红".
//   - getEBillByBusNo {busNo}: the issue answer plus busNo, totalAmt, state
//     ("1" normal, "2" written off) and the red bill's eScarlet* fields; no
//     bill is E0404.
//   - invEBillHospitalized and the paper-bill services are refused (E0005).
//   - GET /check?code=..&no=..&random=.. shows a bill (or a red bill) in
//     Chinese HTML, like the bureau's check page; GET
//     /bills/{billBatchCode}/{billNo}.png draws a plain invoice picture with
//     the CJK font drivers/ticketimage finds (without one, Chinese text is
//     missing from the picture).
//   - Control API (works in every mode): GET /control (mode, counters), POST
//     /control/mode {"mode": "up|down|slow|error", "delay_ms", "text"}, GET
//     /control/bills. Down answers HTTP 503 on the services; slow delays every
//     service answer; error refuses every well-signed request with text
//     (E9999).
//
// Everything is in memory: a restart forgets every bill and numbers start
// again at 1, so the appliance must not be pointed at a restarted simulator
// with bills it still holds (its queries would answer E0404).
package einvsim
