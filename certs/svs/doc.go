// Package svs is the signing/verification server (签名验签服务器) the appliance
// offers to the platform and to other hospital systems, in the style of GM/T 0029:
// sign data (SM2 with SM3 over Z‖M, default user id 1234567812345678, DER
// signature), verify signed data at level 0 (signature), 1 (+ certificate chain
// and validity) or 2 (+ revocation by CRL and/or OCSP), sign a message as
// PKCS#7 SignedData (GM/T 0010 profile, attached or detached, with an RFC 3161
// timestamp token when the application's policy asks for one), verify a
// message, export, parse and validate certificates, a certificate store, and
// an RFC 3161 timestamp endpoint.
//
// # Wiring
//
// Fill Server (DB, the hospital CA, a KeyStore from NewKeyStore with the
// appliance's 16-byte KEK, optionally the TSA, the clock gate Ready), make the
// default key with Keys.EnsureKey, call Start, register Routes on the service's
// mux, and create applications with CreateApp (the token is returned once).
//
// # HTTP API
//
// Every route is under /api/svs and needs `Authorization: Bearer <token>` of an
// enabled application (401 otherwise). Bodies are JSON (except the timestamp
// query), at most 16 MB; binary values are standard Base64; certificates are PEM
// (Base64 DER is accepted too). Errors use the platform's one mapping
// ({code, message, fields}, messages in Simplified Chinese). A signature or
// certificate that does not verify is not an error: the verify endpoints answer
// 200 with "valid": false and the reason.
//
//	POST /api/svs/sign            {"data"}                        → {"signature","cert"}
//	POST /api/svs/verify          {"data","signature","cert"|"serial","level"} → {"valid","reason","signer"}
//	POST /api/svs/sign-message    {"data","detached","chain"}     → {"p7"}
//	POST /api/svs/verify-message  {"p7","data","level"}           → {"valid","reason","signer","signing_time","timestamp","content"}
//	POST /api/svs/cert/parse      {"cert"}                        → subject, issuer, serial, validity, key, usages, extensions
//	POST /api/svs/cert/validate   {"cert","level"}                → {"valid","reason"}
//	GET  /api/svs/cert                                            → the application's signing certificate and its CA
//	GET  /api/svs/certs?q=&page=                                  → the certificate store
//	GET  /api/svs/certs/{serial}                                  → one stored certificate
//	POST /api/svs/timestamp       application/timestamp-query     → application/timestamp-reply
//
// While the service is switched off (SetEnabled) every route answers 503
// "签名验签服务已停用"; while Server.Ready fails (the clock is not synchronised)
// sign, sign-message and timestamp answer 503 with its reason.
//
// # Applications and policies
//
// Each calling system is an application (svs_apps) with its own bearer token
// (32 random bytes, Base64URL, shown once; only its SM3 hash is stored), the
// named key it signs with, the trust chains its verifications accept
// ("hospital" is the hospital CA and always exists; others are imported with
// ImportTrust), the revocation check of level 2 ("none", "crl", "ocsp",
// "crl+ocsp"; with "none" level 2 checks what level 1 does) and whether signed
// messages carry a timestamp.
//
// # Signature log
//
// Every operation is written to svs_log before its answer leaves the server.
// Requests hand their entry to one writer goroutine that inserts whatever is
// waiting in one transaction (group commit, multi-row INSERTs, up to
// Options.LogBatch entries); when entries arrive concurrently it lingers
// Options.LogLinger (2 ms) for more, so one fsync covers dozens to hundreds of
// signatures, while a lone caller never waits. A failed commit fails every
// request of the batch (503): no signature leaves unlogged. Logs searches the
// log, LogStats reports the writer's batches. Entries are also sent to syslog (RFC 5424 over UDP or TCP) when
// Options.Syslog is set; a syslog failure never delays or fails a signature.
//
// # Load balancing, failover and hardware signing servers
//
// Both hospital servers serve this API. Client spreads calls over a list of
// base URLs round-robin and, when one fails to connect or answers 5xx, marks it
// down for a few seconds and retries the call on the next. A hardware signing
// server that offers the same API shape is used by pointing a Client at the
// box's URL with the token it issued: the "hardware adapter" is this client,
// chosen by configuration.
//
// # Backup
//
// Backup returns the configuration as JSON: the service switch, applications
// (with their token hashes, so restored applications keep working with the
// tokens they have), trust chains with their last good CRLs, the signing keys
// still sealed under the appliance's KEK (a restore needs the same KEK), and the
// certificate store. The signature log is not part of it.
package svs
