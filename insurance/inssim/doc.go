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
//     certificate numbers are refused with infcode -1.
//   - Outpatient settlement (settle.go): 2201 挂号 (checks the person, the
//     insurance type and the certificate shown; one visit per outpatient
//     number), 2202, 2203, 2204 (per-line split by a toy catalogue: codes
//     "ZF…" 丙类 self-paid, "YB…" 乙类 with 10 % paid first, "…XJ…" limited
//     to 10.00 yuan a unit, anything else 甲类), 2205, 2206, 2207, 2208,
//     2601 冲正 and 3201 对总账. The split: the fund pays 70 % (310) or 55 %
//     (390) of the in-scope amount after a yearly deductible of 50.00 /
//     20.00 yuan, up to 20,000 / 3,000 yuan a year (PolicyFor); the personal
//     account pays the rest when acct_used_flag is 1, up to its balance; the
//     patient pays the remainder in cash. Balances, deductibles and fund use
//     change with 2207 and go back with 2208 and 2601.
//   - Every transaction but 1101 is idempotent on msgid: the same msgid
//     again gets the first answer and acts once; a msgid reused for another
//     infno is refused. 2601 of a msgid never received marks it, and that
//     2207 is refused if it arrives late; 2601 of a 2207 undoes it, and its
//     msgid is refused from then on. Every transaction that names psn_no
//     needs the envelope's insuplc_admdvs to be the person's area.
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
//     /control/mode {"mode": "up|down|slow|error|settle_slow|split_change",
//     "delay_ms", "text"}, GET /control/persons, GET /control/requests (the
//     last 500 envelopes as they arrived), GET /control/settlements
//     [?date=yyyy-MM-dd] (every settlement with its status settled,
//     cancelled or reversed, for reconciliation). Down answers HTTP 503 on
//     the service URL; slow delays every answer; error refuses every
//     well-formed transaction with text; settle_slow settles a 2207 at once
//     but answers only after the delay (the client times out: result
//     unknown); split_change makes 2207 differ from the 2206 before it (the
//     account emptied, or 10 points less fund without the account).
//
// Everything is in memory: a restart forgets tokens, visits, settlements,
// balances and the request history; the persons are derived again,
// identically. The msgid memory grows with every call, which is fine for
// tests and a demo day.
package inssim
