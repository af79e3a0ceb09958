// Package hissim is a stand-in for the hospital's HIS: it speaks the interface
// profile of docs/his-interface.md over real sockets (HL7 v2.5.1 over MLLP, and
// the /his/api HTTP/JSON variant), keeps its own SQLite database, and answers
// the way a HIS would, so that the appliance, its tests and the demo run
// without a hospital.
//
// What it does:
//
//   - Accepts ADT^A04 (online visit), OMP^O09 / OML^O21 / OMG^O19 / ORM^O01
//     (orders, answered with one ORC per line carrying the placer number in
//     ORC-2 and a new filler number in ORC-3), MDM^T02 (signed EMR) and DFT^P03
//     (fees), and the same six events as JSON on POST /his/api/messages. A
//     message control id (MSH-10, message_id) already acted on is answered as
//     the first time and changes nothing; the arrival is recorded as a
//     duplicate. Refused messages (AE/AR) are not remembered, so a corrected
//     resend with the same id is acted on.
//   - Answers the queries QBP^Q22 (patients by one identifier, a visit number
//     included), QBP^ZV1 (visit history with ICD-10 diagnoses and, in ZPV,
//     the registration's queue number, time slot, fee and status), QBP^ZF1
//     (unpaid fees), QBP^ZR1 (lab and exam reports, counter orders and the
//     platform's) and QBP^ZC1 (catalogue, ZCI segments), and their GET
//     /his/api equivalents. Beyond
//     the profile, ZCI-12 (and "manufacturer" in JSON) names a drug's
//     manufacturer: the same drug and spec from two makers differ only there.
//   - Produces a result for every lab and exam order line ResultDelay after the
//     order (plausible values, deterministic for an order; exams get a 检查所见
//     and a 诊断意见), pushes it as ORU^R01 to ResultsTo, retrying with backoff
//     until the receiver acknowledges it, and keeps it for GET /his/api/results.
//   - Obeys the control API (GET /control, POST /control/mode, GET
//     /control/messages) and SetMode: down closes the MLLP listener and answers
//     503 on /his/api, slow delays every answer, error refuses every message
//     that is not a query.
//
// Everything lives in his-sim.db in the data directory: stopping and starting
// again on it keeps patients, orders, the dedup set, the received messages and
// pending result pushes.
//
// # Demo data
//
// On first start the database is seeded from fixed seeds, so every machine gets
// the same data: 60 patients (DemoPatients) with GB 11643 ID numbers whose
// check digit is right, 500 drugs (real generic names, specs, prices and the
// NARC/PSY1/PSY2/TOX/ANTI1-3 flags), 100 exams and 100 labs (each lab with its
// panel of analytes, units and reference ranges). Visit and fee times are
// relative to the first start. The first three patients are fixed, for tests
// and demos:
//
//	HIS id   name  sex  born        ID number           insurance card  offline history
//	P000001  张三  M    1990-03-07  110101199003078515  1101A0000001    I10 原发性高血压 30 days ago (心血管内科); one unpaid fee
//	P000002  李四  F    1985-06-15  310104198506152424  3101A0000002    E11.9 2型糖尿病 60 days ago (内分泌科)
//	P000003  王五  M    1978-11-22  440106197811223150  4401A0000003    none: no offline diagnosis at all
//
// 张三's unpaid fee is two boxes of 硝苯地平控释片 30mg*7片 (67.00 yuan) from
// that visit. Of the other 57, about three in four have one to four visits in
// the last six months, about one in eight only visits more than a year ago,
// the rest none; P000017 is a child under six.
//
// Past visits have reports: one or two labs of the visit's department (values
// drawn from the analytes' reference ranges, some above or below and flagged
// so) and for about half an exam with 检查所见 and 诊断意见; 张三's visit has
// 血常规(五分类), 血脂四项 and 胸部正位DR. An older data directory gets them
// at its next start.
//
// So that a self-service kiosk demo always has today's visits, the first 20
// patients get a registration every day (Beijing time), made at start and at
// the first visit query of a new day, the same on every machine: their latest
// department (or one in turn), a doctor, a half-hour slot with its queue
// number, the fee; every third from P000004 is already seen and owes the
// blood test the doctor ordered, P000020 cancelled. 张三 is registered at
// 心血管内科 王建国, 09:00-09:30, number 009, fee 50.00.
package hissim
