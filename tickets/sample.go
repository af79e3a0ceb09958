package tickets

import (
	"time"

	"ihos"
)

// sampleTime is the fixed moment of the sample tickets, so previews and
// golden files never change with the clock.
var sampleTime = time.Date(2025, 6, 12, 9, 30, 0, 0, ihos.Shanghai)

const sampleHospital = "示例市第一人民医院"

// Sample returns demo data of a kind (previews, test prints, golden tests),
// or nil for an unknown kind.
func Sample(kind string) Ticket {
	at := sampleTime
	switch kind {
	case KindRegistration:
		return &Registration{
			Hospital: sampleHospital, PatientName: "张三", IDNumber: "110105198001011234", Phone: "13812345678",
			VisitNo: "MZ2506120037", Department: "心血管内科", Doctor: "李明", DoctorTitle: "主任医师", VisitType: "视频",
			VisitDate: at, TimeSlot: "09:30-10:00", QueueNo: "012", Location: "互联网医院诊室（手机端视频）",
			Fee: 2500, PaidBy: "医保移动支付", RegisteredAt: at.Add(-26 * time.Hour), Operator: "自助机 K01",
		}
	case KindReceipt:
		return &Receipt{
			Hospital: sampleHospital, ReceiptNo: "SF202506120158", PatientName: "张三", VisitNo: "MZ2506120037",
			Department: "心血管内科",
			Items: []ReceiptItem{
				{Name: "苯磺酸氨氯地平片", Spec: "5mg*28片", Quantity: "2", Unit: "盒", Amount: 5640},
				{Name: "阿托伐他汀钙片", Spec: "20mg*7片", Quantity: "4", Unit: "盒", Amount: 9920},
				{Name: "血常规（五分类）", Quantity: "1", Unit: "次", Amount: 2000},
				{Name: "心电图检查（十二导联）", Quantity: "1", Unit: "次", Amount: 2500},
				{Name: "肝功能八项", Quantity: "1", Unit: "项", Amount: 6400},
				{Name: "静脉采血", Quantity: "1", Unit: "次", Amount: 600},
			},
			Total: 27060, FundPay: 16236, AccountPay: 5000, CashPay: 5824, Channel: "医保移动支付",
			PaidAt: at.Add(25 * time.Minute), Cashier: "自助机 K01",
			CheckURL: "https://ih.example.cn/r/SF202506120158",
		}
	case KindInvoice:
		return &Invoice{
			Hospital: sampleHospital, BillType: "医疗门诊收费电子票据", BillCode: "11060125", BillNo: "0003267841",
			CheckCode: "8a3f2c", IssuedAt: at.Add(26 * time.Minute), Payer: "张三",
			Total: 27060, FundPay: 16236, AccountPay: 5000, CashPay: 5824,
			Items:  []InvoiceItem{{Name: "西药费", Amount: 15560}, {Name: "化验费", Amount: 8400}, {Name: "检查费", Amount: 2500}, {Name: "治疗费", Amount: 600}},
			Payee:  "自助机 K01",
			QRCode: "https://pjcy.example.gov.cn/check?code=11060125&no=0003267841&cc=8a3f2c&amt=270.60&d=20250612",
		}
	case KindReport:
		return &Report{
			Hospital: sampleHospital, ReportNo: "JY2506120466", Kind: "检验", PatientName: "张三", Sex: "男", Age: "45岁",
			VisitNo: "MZ2506120037", ServiceName: "血常规（五分类）", Specimen: "静脉血", Department: "心血管内科",
			ReportedAt: at.Add(2 * time.Hour),
			Lines: []ReportLine{
				{Name: "白细胞计数 WBC", Value: "11.2", Units: "10^9/L", Range: "3.5-9.5", Flag: "H"},
				{Name: "红细胞计数 RBC", Value: "4.62", Units: "10^12/L", Range: "4.3-5.8"},
				{Name: "血红蛋白 HGB", Value: "128", Units: "g/L", Range: "130-175", Flag: "L"},
				{Name: "血小板计数 PLT", Value: "236", Units: "10^9/L", Range: "125-350"},
				{Name: "中性粒细胞百分比", Value: "78.5", Units: "%", Range: "40-75", Flag: "H"},
			},
			Conclusion: "白细胞及中性粒细胞比例升高，血红蛋白轻度降低，请结合临床。",
			Doctor:     "王芳", Reviewer: "赵强", ReportURL: "https://ih.example.cn/rp/JY2506120466",
		}
	case KindPrescription:
		return &Prescription{
			Hospital: sampleHospital, RxNo: "CF2506120089", RxType: "普通处方", PatientName: "张三", Sex: "男", Age: "45岁",
			VisitNo: "MZ2506120037", Department: "心血管内科", Diagnosis: "原发性高血压；高脂血症",
			Drugs: []RxDrug{
				{Name: "苯磺酸氨氯地平片", Spec: "5mg*28片", Dose: "5mg", Frequency: "每日1次", Route: "口服", Days: "28", Quantity: "2", Unit: "盒"},
				{Name: "阿托伐他汀钙片", Spec: "20mg*7片", Dose: "20mg", Frequency: "每晚1次", Route: "口服", Days: "28", Quantity: "4", Unit: "盒"},
			},
			Amount: 15560, Doctor: "李明", Pharmacist: "陈静", SignedAt: at.Add(10 * time.Minute), ReviewedAt: at.Add(18 * time.Minute),
			SignatureID: "SM2-7F3A9C21", CheckURL: "https://ih.example.cn/rx/CF2506120089",
		}
	case KindNursingOrder:
		return &NursingOrder{
			Hospital: sampleHospital, OrderNo: "HL2506120012", PatientName: "刘桂兰", Phone: "13912345678",
			Address: "示例市东城区和平街道幸福里小区3号楼2单元502", Item: "PICC 导管维护", Nurse: "孙丽", NurseTitle: "主管护师",
			ScheduledAt: at.Add(29 * time.Hour), ServiceFee: 15000, TravelFee: 5000,
			Consumables: []NursingConsumable{{Name: "PICC 维护包", Quantity: "1", Amount: 4500}, {Name: "无菌敷贴", Quantity: "2", Amount: 1200}},
			Total:       25700, PaidBy: "微信支付", CheckURL: "https://ih.example.cn/hl/HL2506120012",
			Note: "请家属在场，提前准备好既往护理记录。",
		}
	case KindTest:
		return &TestPage{Hospital: sampleHospital, Printer: "门诊大厅 1 号自助机打印机", PrintedAt: at}
	}
	return nil
}
