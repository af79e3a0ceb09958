// Package einvoice is the client of the finance e-invoice platform
// (财政电子票据平台, the Bosssoft-style interface most provinces use): after a
// payment the hospital issues a medical e-invoice there, shows it to the
// patient with its QR code, prints its summary, and writes it off (红冲)
// when the payment is refunded.
//
// # Wire format
//
// Every call is POST BaseURL + service name with the JSON envelope
//
//	{"appid": "...", "data": base64(JSON of the request), "noise": UUID,
//	 "version": "1.0", "sign": upper(MD5("appid=..&data=..&noise=..&key=..&version=.."))}
//
// (Sign, Seal). The answer is the same envelope; its data decodes to
// {"result": "S0000", "message": base64(JSON of the answer)}, and on
// failure message is base64 of an error text. The answer is signed like
// the request, with the caller's appid; the client verifies an answer's
// sign when it has one.
//
// Money is integer fen in Go (Amount) and yuan with two decimals on the
// wire; an amount with more decimals is refused, never rounded. Times are
// yyyyMMddHHmmssSSS in Beijing time (FormatTime).
//
// # Idempotency
//
// busNo is the idempotency key of an issue: the platform issues at most one
// bill per busNo, and the same busNo sent again gets the same bill. A
// caller stores the busNo (the payment's ID) before the first call. When a
// call fails with EUnavailable the outcome is unknown — unknown is not "not
// issued" — so the caller repeats the issue with the same busNo or asks
// Query(busNo): ENotFound is the only answer that says no bill exists.
// Every call carries a new noise, so a retry is never refused as a replay.
//
// The simulator is in package einvsim; ihos-einvoice-sim runs it.
package einvoice
