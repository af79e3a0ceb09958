package hissim

import (
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"
)

// DemoPatient is one of the demo patients the simulator creates on first start.
type DemoPatient struct {
	HISID         string
	Name          string
	IDNumber      string
	Sex           string // M or F
	BirthDate     string // yyyyMMdd
	Phone         string
	InsuranceCard string
}

// DemoPatients are the demo patients, P000001 first. The first three are
// fixed (see the package documentation); the rest are generated from a fixed
// seed, so they are the same on every machine and every first start.
var DemoPatients = demoPatients()

const demoPatientCount = 60

type department struct {
	code, name string
	doctors    [][2]string // code, name
}

var departments = map[string]department{
	"0301": {"0301", "心血管内科", [][2]string{{"D0301", "王建国"}, {"D0302", "刘芳"}}},
	"0302": {"0302", "内分泌科", [][2]string{{"D0311", "陈静"}, {"D0312", "赵明"}}},
	"0303": {"0303", "呼吸内科", [][2]string{{"D0321", "孙立新"}, {"D0322", "周敏"}}},
	"0304": {"0304", "消化内科", [][2]string{{"D0331", "吴海涛"}, {"D0332", "郑丽"}}},
	"0305": {"0305", "肾内科", [][2]string{{"D0341", "冯志强"}}},
	"0306": {"0306", "神经内科", [][2]string{{"D0351", "韩雪"}, {"D0352", "杨帆"}}},
	"0307": {"0307", "风湿免疫科", [][2]string{{"D0361", "唐颖"}}},
	"0401": {"0401", "骨科", [][2]string{{"D0401", "马骏"}, {"D0402", "林涛"}}},
	"0501": {"0501", "精神心理科", [][2]string{{"D0501", "许宁"}}},
	"0601": {"0601", "泌尿外科", [][2]string{{"D0601", "何伟"}}},
	"0701": {"0701", "全科医学科", [][2]string{{"D0701", "罗红"}}},
}

type diagnosisDef struct{ code, name, dept string }

// Chronic conditions patients follow up online, and acute ones that come along.
var (
	chronicDiagnoses = []diagnosisDef{
		{"I10", "原发性高血压", "0301"},
		{"E11.9", "2型糖尿病", "0302"},
		{"J45.9", "哮喘", "0303"},
		{"K29.7", "胃炎", "0304"},
		{"M54.5", "腰痛", "0401"},
		{"N18.9", "慢性肾脏病", "0305"},
		{"I25.1", "冠状动脉粥样硬化性心脏病", "0301"},
		{"J44.9", "慢性阻塞性肺疾病", "0303"},
		{"E78.5", "高脂血症", "0301"},
		{"F32.9", "抑郁发作", "0501"},
		{"E03.9", "甲状腺功能减退症", "0302"},
		{"E05.9", "甲状腺功能亢进症", "0302"},
		{"I48.9", "心房颤动", "0301"},
		{"I63.9", "脑梗死", "0306"},
		{"G43.9", "偏头痛", "0306"},
		{"G47.0", "失眠症", "0501"},
		{"K21.9", "胃食管反流病", "0304"},
		{"M17.9", "膝关节病", "0401"},
		{"M81.9", "骨质疏松", "0401"},
		{"M10.9", "痛风", "0307"},
		{"N40", "前列腺增生", "0601"},
		{"K76.0", "脂肪肝", "0304"},
		{"F41.1", "广泛性焦虑障碍", "0501"},
	}
	acuteDiagnoses = []diagnosisDef{
		{"J06.9", "急性上呼吸道感染", "0701"},
		{"J20.9", "急性支气管炎", "0303"},
		{"K52.9", "非感染性胃肠炎", "0304"},
	}
)

func diagnosisByCode(code string) diagnosisDef {
	for _, d := range append(chronicDiagnoses, acuteDiagnoses...) {
		if d.code == code {
			return d
		}
	}
	return diagnosisDef{}
}

var (
	surnames = []rune("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
	// Given names by generation: 秀英 and 建国 were born before the 1970s,
	// 欣怡 and 子轩 after 1990.
	maleOld     = []string{"建国", "建华", "志强", "国强", "德明", "振华", "立新", "光明", "永康", "卫东", "建军", "国庆", "海峰", "伟", "强", "军", "勇", "刚", "平", "辉", "华", "明", "斌", "波"}
	maleYoung   = []string{"子轩", "浩然", "宇航", "家豪", "文博", "俊", "帆", "宇", "浩", "鑫", "凯", "杰", "涛", "磊", "鹏", "超", "飞", "健", "帅", "旭", "晓东"}
	femaleOld   = []string{"秀英", "桂英", "淑珍", "玉兰", "秀兰", "春梅", "丽华", "海燕", "美玲", "桂兰", "凤英", "芳", "丽", "艳", "红", "燕", "梅", "霞", "萍", "敏", "静", "娟"}
	femaleYoung = []string{"欣怡", "思雨", "雨涵", "诗涵", "佳怡", "婉婷", "晓雯", "婷", "雪", "慧", "颖", "琳", "洁", "倩", "娜", "静", "敏", "玲"}
	areas       = []string{"110101", "110102", "110105", "110106", "110108", "110114", "110105", "110108",
		"310104", "310115", "440106", "440305", "330106", "320102", "510107", "420106", "610113", "370102",
		"120101", "500103", "430104", "410105", "130102", "210102", "350102"}
	phonePrefixes = []string{"138", "139", "135", "136", "137", "150", "151", "152", "158", "159", "186", "187", "188",
		"130", "131", "132", "155", "156", "185", "133", "153", "180", "181", "189", "177", "199"}
)

func insuranceCard(area string, n int) string { return padded(area[:4]+"A", int64(n), 7) }

// demoPatients builds the patient list; the first three are fixed.
func demoPatients() []DemoPatient {
	out := []DemoPatient{
		{HISID: "P000001", Name: "张三", IDNumber: "110101199003078515", Sex: "M", BirthDate: "19900307", Phone: "13800138000", InsuranceCard: insuranceCard("110101", 1)},
		{HISID: "P000002", Name: "李四", IDNumber: makeIDNumber("310104", "19850615", 242), Sex: "F", BirthDate: "19850615", Phone: "13900139000", InsuranceCard: insuranceCard("310104", 2)},
		{HISID: "P000003", Name: "王五", IDNumber: makeIDNumber("440106", "19781122", 315), Sex: "M", BirthDate: "19781122", Phone: "13700137000", InsuranceCard: insuranceCard("440106", 3)},
	}
	rng := rand.New(rand.NewPCG(1101, 19900307))
	names := map[string]bool{"张三": true, "李四": true, "王五": true}
	ids := map[string]bool{}
	for _, p := range out {
		ids[p.IDNumber] = true
	}
	for n := len(out) + 1; n <= demoPatientCount; n++ {
		sex := "M"
		if rng.IntN(2) == 0 {
			sex = "F"
		}
		// Ages from 18 to 85, plus two children (one under six: the
		// guardian rule).
		var birth time.Time
		switch n {
		case 17:
			birth = time.Date(2022, 4, 18, 0, 0, 0, 0, time.UTC)
		case 41:
			birth = time.Date(2016, 9, 2, 0, 0, 0, 0, time.UTC)
		default:
			birth = time.Date(1940+rng.IntN(66), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		}
		old, young := maleOld, maleYoung
		if sex == "F" {
			old, young = femaleOld, femaleYoung
		}
		given := old
		switch y := birth.Year(); {
		case y >= 1990:
			given = young
		case y >= 1975 && rng.IntN(2) == 0:
			given = young
		}
		var name string
		for {
			name = string(surnames[rng.IntN(len(surnames))]) + given[rng.IntN(len(given))]
			if !names[name] {
				break
			}
		}
		names[name] = true
		b := birth.Format("20060102")
		area := areas[rng.IntN(len(areas))]
		var id string
		for {
			seq := rng.IntN(500) * 2 // even: female
			if sex == "M" {
				seq++
			}
			id = makeIDNumber(area, b, seq)
			if !ids[id] {
				break
			}
		}
		ids[id] = true
		phone := phonePrefixes[rng.IntN(len(phonePrefixes))]
		for range 8 {
			phone += string(rune('0' + rng.IntN(10)))
		}
		card := ""
		if rng.IntN(10) != 0 { // one in ten pays out of pocket
			card = insuranceCard(area, n)
		}
		out = append(out, DemoPatient{HISID: padded("P", int64(n), 6), Name: name, IDNumber: id, Sex: sex, BirthDate: b, Phone: phone, InsuranceCard: card})
	}
	return out
}

// seed writes the demo data into an empty database. now anchors the visit
// and fee times ("30 days ago").
func seed(ctx context.Context, db *sql.DB, now time.Time) error {
	return inTx(ctx, db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM patients`).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		created := fmtDB(now)
		items := buildCatalog()
		byName := map[string]catalogItem{}
		for i, it := range items {
			var panel []byte
			if len(it.Panel) > 0 {
				panel, _ = json.Marshal(it.Panel)
			}
			active := 0
			if it.Active {
				active = 1
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO catalog (code, kind, ord, name, spec, unit, price_fen, stock, flags, category, active, specimen, manufacturer, panel, report)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				it.Code, it.Kind, i, it.Name, it.Spec, it.Unit, it.PriceFen, it.Stock, strings.Join(it.Flags, " "), it.Category, active,
				it.Specimen, it.Manufacturer, string(panel), it.Report); err != nil {
				return err
			}
			if _, seen := byName[it.Name]; !seen {
				byName[it.Name] = it
			}
		}
		for _, p := range DemoPatients {
			if _, err := tx.ExecContext(ctx, `INSERT INTO patients (his_id, name, sex, birth_date, id_number, phone, insurance_card, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, p.HISID, p.Name, p.Sex, p.BirthDate, p.IDNumber, p.Phone, p.InsuranceCard, created); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES ('P', ?)`, len(DemoPatients)); err != nil {
			return err
		}

		rng := rand.New(rand.NewPCG(2575, 8095))
		day := func(daysAgo int) time.Time {
			// A clinic hour in Beijing, daysAgo days before now.
			d := now.In(beijing).AddDate(0, 0, -daysAgo)
			minute := 8*60 + rng.IntN(8*60)
			if minute >= 11*60+30 && minute < 13*60+30 {
				minute += 2 * 60
			}
			return time.Date(d.Year(), d.Month(), d.Day(), 0, 0, 0, 0, beijing).Add(time.Duration(minute) * time.Minute)
		}
		addVisit := func(hisID string, at time.Time, diags ...diagnosisDef) (string, department, [2]string, error) {
			dept := departments[diags[0].dept]
			doc := dept.doctors[rng.IntN(len(dept.doctors))]
			no, err := nextID(ctx, tx, "MZ", 8)
			if err != nil {
				return "", dept, doc, err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO visits (visit_no, his_id, department_code, department_name, doctor_code, doctor_name, visited_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, no, hisID, dept.code, dept.name, doc[0], doc[1], fmtDB(at)); err != nil {
				return "", dept, doc, err
			}
			for i, d := range diags {
				if _, err := tx.ExecContext(ctx, `INSERT INTO diagnoses (visit_no, seq, code, name, type, diagnosed_at) VALUES (?, ?, ?, ?, 'F', ?)`,
					no, i+1, d.code, d.name, fmtDB(at.Add(time.Duration(10+i*2)*time.Minute))); err != nil {
					return "", dept, doc, err
				}
			}
			return no, dept, doc, nil
		}
		addFee := func(hisID, visitNo string, dept department, doc [2]string, it catalogItem, qty int64, at time.Time) error {
			id, err := nextID(ctx, tx, "F", 8)
			if err != nil {
				return err
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO fees (fee_id, his_id, visit_no, type, item_code, item_name, quantity, amount_fen, department_code, doctor_code, doctor_name, status, created_at)
				VALUES (?, ?, ?, 'CG', ?, ?, ?, ?, ?, ?, ?, 'unpaid', ?)`,
				id, hisID, visitNo, it.Code, it.Name, itoa64(qty), it.PriceFen*qty, dept.code, doc[0], doc[1], fmtDB(at))
			return err
		}

		// The three fixed patients.
		no, dept, doc, err := addVisit("P000001", day(30), diagnosisByCode("I10"))
		if err != nil {
			return err
		}
		if err := addFee("P000001", no, dept, doc, byName["硝苯地平控释片"], 2, day(30)); err != nil {
			return err
		}
		if _, _, _, err := addVisit("P000002", day(60), diagnosisByCode("E11.9")); err != nil {
			return err
		}

		// The generated ones: three in four have visits in the last six
		// months, about one in eight only visits more than a year ago, the
		// rest none; a quarter of those with recent visits owe fees.
		var feeItems []catalogItem
		for _, it := range items {
			if it.Active && (it.Kind != "DRUG" || !controlled(it.Flags)) {
				feeItems = append(feeItems, it)
			}
		}
		for _, p := range DemoPatients[3:] {
			kind := rng.IntN(8)
			if kind == 0 {
				continue // no visits at all
			}
			conds := []diagnosisDef{chronicDiagnoses[rng.IntN(len(chronicDiagnoses))]}
			if rng.IntN(3) == 0 {
				conds = append(conds, chronicDiagnoses[rng.IntN(len(chronicDiagnoses))])
			}
			if kind == 1 {
				for range 1 + rng.IntN(2) {
					if _, _, _, err := addVisit(p.HISID, day(380+rng.IntN(520)), conds[rng.IntN(len(conds))]); err != nil {
						return err
					}
				}
				continue
			}
			visits := 1 + rng.IntN(4)
			var lastNo string
			var lastDept department
			var lastDoc [2]string
			var lastAt time.Time
			for v := range visits {
				daysAgo := 180 - (v*170)/visits - rng.IntN(170/visits)
				at := day(max(2, daysAgo))
				c := conds[rng.IntN(len(conds))]
				diags := []diagnosisDef{c}
				for _, other := range conds {
					if other.code != c.code && other.dept == c.dept {
						diags = append(diags, other)
					}
				}
				if rng.IntN(6) == 0 {
					diags = append(diags, acuteDiagnoses[rng.IntN(len(acuteDiagnoses))])
				}
				no, dept, doc, err := addVisit(p.HISID, at, diags...)
				if err != nil {
					return err
				}
				lastNo, lastDept, lastDoc, lastAt = no, dept, doc, at
			}
			if rng.IntN(4) == 0 {
				for range 1 + rng.IntN(3) {
					it := feeItems[rng.IntN(len(feeItems))]
					qty := int64(1)
					if it.Kind == "DRUG" {
						qty = int64(1 + rng.IntN(3))
					}
					if err := addFee(p.HISID, lastNo, lastDept, lastDoc, it, qty, lastAt.Add(25*time.Minute)); err != nil {
						return err
					}
				}
			}
		}
		return nil
	})
}

func itoa64(n int64) string { return padded("", n, 1) }
