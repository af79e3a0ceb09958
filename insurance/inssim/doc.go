// Package inssim is a stand-in for the national medical insurance platform
// (国家医保信息业务基础信息平台): it takes the JSON envelope of package
// insurance over real HTTP at insurance.ServicePath and answers the way the
// platform does, so the appliance, its tests and the demo run without an
// insurance bureau.
//
// What it does:
//
//   - Checks every envelope: all the keys REFERENCE.md lists must be present,
//     msgid must be fixmedins_code + yyyyMMddHHmmss + 4 digits, infver
//     "V1.0", inf_time "yyyy-MM-dd HH:mm:ss", opter_type 1/2/3. A refusal is
//     HTTP 200 with infcode -1 and a Chinese err_msg, as the platform does;
//     every answer gets an inf_refmsgid of admdvs(6) + time(14) + serial(10).
//   - Answers 1101 人员信息获取 by e-voucher token (01), ID number (02) or
//     social security card number (03, card_sn required but not checked).
//     Unknown persons, unknown or expired tokens and mismatched names or
//     certificate numbers are refused with infcode -1. Other infno values
//     are refused ("暂不支持") until the payment transactions are added.
//   - Knows the HIS simulator's 60 demo patients (hissim.DemoPatients) as
//     insured persons, so the same ID numbers, names and insurance card
//     numbers work on both: 张三 (110101199003078515) and 李四 have 职工医保
//     (insutype 310) with personal account balances 1256.80 and 3480.00,
//     王五 城乡居民医保 (390) without an account; of the rest, children and one
//     adult in four are residents (390), the others employees (310, retired
//     from 60); P000005 is suspended (psn_insu_stas "2").
//   - Issues e-voucher tokens like the national insurance app showing its QR
//     code: POST /control/ectoken {"id_number": "...", "ttl_seconds": 600}
//     (ttl optional, default Config.TokenTTL) → {"ec_token", "id_number",
//     "name", "expires_at", "qr"}; qr is what a scanner would read.
//   - Control API (works in every mode): GET /control (mode, counters), POST
//     /control/mode {"mode": "up|down|slow|error", "delay_ms", "text"}, GET
//     /control/persons, GET /control/requests (the last 500 envelopes as
//     they arrived). Down answers HTTP 503 on the service URL; slow delays
//     every answer; error refuses every well-formed transaction with text.
//
// Everything is in memory: a restart forgets tokens and the request history;
// the persons are derived again, identically.
package inssim
