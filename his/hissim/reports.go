package hissim

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"ihos/his/hl7"
)

// reportRow is a finished lab or exam report: one the demo data holds for an
// order placed at the hospital's counters, or the result of an order the
// platform placed.
type reportRow struct {
	ReportNo, PlacerOrderNo, Kind, VisitNo, ServiceCode, ServiceName string
	DeptCode, DeptName, DoctorCode, DoctorName                       string // the ordering department and doctor
	Reporter                                                         string // the reporting doctor
	ResultStatus                                                     string
	At                                                               time.Time
	Observations                                                     []observation
	Conclusion                                                       string // exams: the impression
}

// Reporting doctors: the laboratory's, and the imaging, ultrasound,
// endoscopy and function departments'.
var reporters = map[string][]string{
	"检验": {"钱立平", "孙晓燕", "李慧"},
	"放射": {"陈志远", "刘洋", "高翔"},
	"超声": {"黄丽", "周婷"},
	"内镜": {"吴刚"},
	"":   {"郑敏", "范文"}, // 心电, 肺功能, 电生理
}

// reporter picks the reporting doctor of a report, fixed by its number.
func reporter(category, reportNo string) string {
	names, ok := reporters[category]
	if !ok {
		names = reporters[""]
	}
	return names[int(draw(reportNo, "reporter")*float64(len(names)))]
}

// What each department orders: labs, then exams (catalogue names).
var departmentOrders = map[string][2][]string{
	"0301": {{"血脂四项", "肾功能", "N端脑钠肽前体"}, {"胸部正位DR", "心脏彩超", "常规心电图"}},
	"0302": {{"空腹血糖", "糖化血红蛋白", "甲状腺功能五项"}, {"甲状腺及颈部淋巴结彩超"}},
	"0303": {{"血常规(五分类)", "C反应蛋白"}, {"胸部CT平扫", "肺功能检查(通气+弥散)"}},
	"0304": {{"肝功能", "碳13尿素呼气试验"}, {"腹部彩超(肝胆胰脾)", "电子胃镜检查"}},
	"0305": {{"肾功能", "尿常规", "尿微量白蛋白"}, {"泌尿系彩超"}},
	"0306": {{"血常规(五分类)", "同型半胱氨酸"}, {"头颅CT平扫", "颈动脉彩超"}},
	"0307": {{"血尿酸", "类风湿因子", "红细胞沉降率"}, {"手正斜位DR"}},
	"0401": {{"血常规(五分类)", "25-羟维生素D"}, {"腰椎正侧位DR", "膝关节正侧位DR", "骨密度测定(双能X线)"}},
	"0501": {{"甲状腺功能三项", "血常规(五分类)"}, {"常规心电图"}},
	"0601": {{"尿常规", "前列腺特异性抗原"}, {"前列腺彩超", "泌尿系彩超"}},
	"0701": {{"血常规(五分类)", "C反应蛋白"}, {"胸部正位DR"}},
}

// seedReports writes, once, the reports of the demo patients' past visits:
// one or two labs of the visit's department and, for about half the visits,
// an exam; 张三's visit has 血常规, 血脂四项 and 胸部正位DR. Values come from
// the lab catalogue's analytes and reference ranges, exam text from the
// report templates, both fixed by the report number.
func seedReports(ctx context.Context, db *sql.DB) error {
	return inTx(ctx, db, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM counters WHERE name = 'seed-reports'`).Scan(&n); err != nil || n > 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO counters (name, value) VALUES ('seed-reports', 1)`); err != nil {
			return err
		}
		byName := map[string]catalogItem{}
		rows, err := tx.QueryContext(ctx, `SELECT kind, code, name, spec, unit, price_fen, stock, flags, category, active, specimen, manufacturer, panel, report
			FROM catalog WHERE kind IN ('LAB', 'EXAM') ORDER BY ord`)
		if err != nil {
			return err
		}
		for rows.Next() {
			it, err := scanItem(rows)
			if err != nil {
				rows.Close()
				return err
			}
			if _, seen := byName[it.Name]; !seen {
				byName[it.Name] = it
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		type visit struct {
			no, hisID, deptCode, deptName, doctorCode, doctorName string
			at                                                    time.Time
		}
		var visits []visit
		rows, err = tx.QueryContext(ctx, `SELECT visit_no, his_id, department_code, department_name, doctor_code, doctor_name, visited_at
			FROM visits WHERE service = '' AND queue_no = '' ORDER BY visited_at, visit_no`)
		if err != nil {
			return err
		}
		for rows.Next() {
			var v visit
			var at string
			if err := rows.Scan(&v.no, &v.hisID, &v.deptCode, &v.deptName, &v.doctorCode, &v.doctorName, &at); err != nil {
				rows.Close()
				return err
			}
			v.at = parseDB(at)
			visits = append(visits, v)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		rng := rand.New(rand.NewPCG(7, 1101))
		now := time.Now()
		for _, v := range visits {
			orders := departmentOrders[v.deptCode]
			var names []string
			if v.hisID == "P000001" {
				names = []string{"血常规(五分类)", "血脂四项", "胸部正位DR"}
			} else {
				labs := orders[0]
				first := rng.IntN(len(labs))
				names = append(names, labs[first])
				if len(labs) > 1 && rng.IntN(2) == 0 {
					names = append(names, labs[(first+1+rng.IntN(len(labs)-1))%len(labs)])
				}
				if exams := orders[1]; len(exams) > 0 && rng.IntN(2) == 0 {
					names = append(names, exams[rng.IntN(len(exams))])
				}
			}
			for _, name := range names {
				it, ok := byName[name]
				if !ok {
					continue
				}
				no, err := nextID(ctx, tx, fillerPrefix[it.Kind], 8)
				if err != nil {
					return err
				}
				r := reportRow{ReportNo: no, Kind: it.Kind, VisitNo: v.no, ServiceCode: it.Code, ServiceName: it.Name,
					DeptCode: v.deptCode, DeptName: v.deptName, DoctorCode: v.doctorCode, DoctorName: v.doctorName, ResultStatus: "F"}
				if it.Kind == "EXAM" {
					r.At = v.at.Add(time.Duration(60+rng.IntN(24*60)) * time.Minute)
					r.Observations = examObservations(no, it.Name, it.Report)
					r.Conclusion = r.Observations[len(r.Observations)-1].Value
					r.Reporter = reporter(it.Category, no)
				} else {
					r.At = v.at.Add(time.Duration(90+rng.IntN(120)) * time.Minute)
					r.Observations = labObservations(no, it.Code, it.Name, it.Panel)
					r.Reporter = reporter("检验", no)
				}
				if r.At.After(now) {
					r.At = now.Add(-time.Minute)
				}
				obs, err := json.Marshal(r.Observations)
				if err != nil {
					return err
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO reports (report_no, his_id, kind, visit_no, service_code, service_name, department_code, department_name,
					doctor_code, doctor_name, reporter, result_status, reported_at, observations) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
					r.ReportNo, v.hisID, r.Kind, r.VisitNo, r.ServiceCode, r.ServiceName, r.DeptCode, r.DeptName, r.DoctorCode, r.DoctorName,
					r.Reporter, r.ResultStatus, fmtDB(r.At), string(obs)); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// reports lists a patient's finished reports since a time (zero: all),
// newest first: those of counter orders, and the results of the platform's
// orders (their visit number is the HIS's when the platform registered the
// visit).
func (s *Sim) reports(ctx context.Context, hisID string, since time.Time) ([]reportRow, error) {
	var out []reportRow
	scan := func(q string, platform bool) error {
		rows, err := s.db.QueryContext(ctx, q, hisID, fmtDB(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var r reportRow
			var at, obs, category string
			if err := rows.Scan(&r.ReportNo, &r.PlacerOrderNo, &r.Kind, &r.VisitNo, &r.ServiceCode, &r.ServiceName, &r.DeptCode, &r.DeptName,
				&r.DoctorCode, &r.DoctorName, &r.Reporter, &r.ResultStatus, &at, &obs, &category); err != nil {
				return err
			}
			r.At = parseDB(at)
			if err := json.Unmarshal([]byte(obs), &r.Observations); err != nil {
				return err
			}
			if platform {
				if r.DeptName == "" {
					r.DeptName = departments[r.DeptCode].name
				}
				if r.Kind == "LAB" {
					category = "检验"
				}
				r.Reporter = reporter(category, r.ReportNo)
			}
			if r.Kind == "EXAM" {
				for _, o := range r.Observations {
					if o.Code == "IMPRESSION" {
						r.Conclusion = o.Value
					}
				}
			}
			out = append(out, r)
		}
		return rows.Err()
	}
	if err := scan(`SELECT report_no, '', kind, visit_no, service_code, service_name, department_code, department_name, doctor_code, doctor_name,
		reporter, result_status, reported_at, observations, '' FROM reports WHERE his_id = ? AND reported_at >= ?`, false); err != nil {
		return nil, err
	}
	if err := scan(`SELECT r.filler_order_no, r.placer_order_no, o.kind, COALESCE(v.visit_no, o.visit_no), r.service_code, r.service_name,
		o.department_code, COALESCE(v.department_name, ''), o.doctor_code, o.doctor_name, '', r.result_status, r.reported_at, r.observations, COALESCE(c.category, '')
		FROM results r JOIN orders o ON o.placer_order_no = r.placer_order_no
		LEFT JOIN visits v ON v.platform_visit = o.visit_no AND o.visit_no <> ''
		LEFT JOIN catalog c ON c.code = r.service_code
		WHERE r.his_id = ? AND r.reported_at >= ? AND o.kind IN ('LAB', 'EXAM')`, true); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b reportRow) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(b.ReportNo, a.ReportNo))
	})
	return out, nil
}

// writeReport appends one report to a ZR2 answer: PV1 ORC OBR {OBX}.
func writeReport(m *hl7.Message, set int, r reportRow) {
	pv1 := m.Add("PV1")
	pv1.Set("1", strconv.Itoa(set))
	pv1.Set("2", "O")
	pv1.Set("3-1", r.DeptCode)
	pv1.Set("3-9", r.DeptName)
	pv1.Set("7-1", r.DoctorCode)
	pv1.Set("7-2", r.DoctorName)
	pv1.Set("19", r.VisitNo)
	orc := m.Add("ORC")
	orc.Set("1", "RE")
	orc.Set("2", r.PlacerOrderNo)
	orc.Set("3", r.ReportNo)
	orc.Set("5", "CM")
	orc.Set("12-1", r.DoctorCode)
	orc.Set("12-2", r.DoctorName)
	orc.Set("17-1", r.DeptCode)
	obr := m.Add("OBR")
	obr.Set("1", strconv.Itoa(set))
	obr.Set("2", r.PlacerOrderNo)
	obr.Set("3", r.ReportNo)
	obr.Set("4-1", r.ServiceCode)
	obr.Set("4-2", r.ServiceName)
	obr.Set("16-1", r.DoctorCode)
	obr.Set("16-2", r.DoctorName)
	obr.Set("22", hl7.Timestamp(r.At))
	obr.Set("24", r.Kind)
	obr.Set("25", r.ResultStatus)
	obr.Set("32-1-2", r.Reporter)
	for i, ob := range r.Observations {
		obx := m.Add("OBX")
		obx.Set("1", strconv.Itoa(i+1))
		obx.Set("2", ob.Type)
		obx.Set("3-1", ob.Code)
		obx.Set("3-2", ob.Name)
		obx.Set("5", ob.Value)
		obx.Set("6-1", ob.Units)
		obx.Set("7", ob.Range)
		obx.Set("8", ob.Flag)
		obx.Set("11", cmp.Or(r.ResultStatus, "F"))
	}
}
