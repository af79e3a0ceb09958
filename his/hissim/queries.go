package hissim

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"
)

type patientRow struct {
	HISID, Name, Sex, BirthDate, IDNumber, Phone, InsuranceCard string
}

// findPatients looks patients up by one identifier: typ PI, NNCHN or HC, or
// "" for any of the three.
func (s *Sim) findPatients(ctx context.Context, typ, value string) ([]patientRow, error) {
	const cols = `SELECT his_id, name, sex, birth_date, id_number, phone, insurance_card FROM patients WHERE `
	var rows *sql.Rows
	var err error
	switch typ {
	case "PI":
		rows, err = s.db.QueryContext(ctx, cols+`his_id = ?`, value)
	case "NNCHN":
		rows, err = s.db.QueryContext(ctx, cols+`id_number = ? ORDER BY his_id`, strings.ToUpper(value))
	case "HC":
		rows, err = s.db.QueryContext(ctx, cols+`insurance_card = ? ORDER BY his_id`, value)
	case "VN": // the patient of a visit: the HIS visit number, or the platform's
		if err := s.ensureToday(ctx); err != nil {
			return nil, err
		}
		rows, err = s.db.QueryContext(ctx, cols+`his_id IN (SELECT his_id FROM visits WHERE visit_no = ? OR platform_visit = ?)`, value, value)
	default:
		rows, err = s.db.QueryContext(ctx, cols+`his_id = ? OR id_number = ? OR insurance_card = ? ORDER BY his_id`, value, strings.ToUpper(value), value)
	}
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []patientRow
	for rows.Next() {
		var p patientRow
		if err := rows.Scan(&p.HISID, &p.Name, &p.Sex, &p.BirthDate, &p.IDNumber, &p.Phone, &p.InsuranceCard); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *Sim) patientExists(ctx context.Context, hisID string) (bool, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM patients WHERE his_id = ?`, hisID).Scan(&n)
	return n > 0, err
}

type visitRow struct {
	VisitNo, DeptCode, DeptName, DoctorCode, DoctorName, Service string
	QueueNo, TimeSlot, Status                                    string
	FeeFen                                                       int64
	At                                                           time.Time
	Diagnoses                                                    []diagnosisRow
}

type diagnosisRow struct {
	Code, Name, Type string
	At               time.Time
}

// visits lists a patient's visits since a time (zero: all), newest first,
// with their diagnoses. Today's demo registrations are made first if this is
// the first query of a new day.
func (s *Sim) visits(ctx context.Context, hisID string, since time.Time) ([]visitRow, error) {
	if err := s.ensureToday(ctx); err != nil {
		return nil, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT visit_no, department_code, department_name, doctor_code, doctor_name, service, visited_at, queue_no, time_slot, fee_fen, status
		FROM visits WHERE his_id = ? AND visited_at >= ? ORDER BY visited_at DESC, visit_no DESC`, hisID, fmtDB(since))
	if err != nil {
		return nil, err
	}
	var out []visitRow
	for rows.Next() {
		var v visitRow
		var at string
		if err := rows.Scan(&v.VisitNo, &v.DeptCode, &v.DeptName, &v.DoctorCode, &v.DoctorName, &v.Service, &at, &v.QueueNo, &v.TimeSlot, &v.FeeFen, &v.Status); err != nil {
			rows.Close()
			return nil, err
		}
		v.At = parseDB(at)
		out = append(out, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		drows, err := s.db.QueryContext(ctx, `SELECT code, name, type, diagnosed_at FROM diagnoses WHERE visit_no = ? ORDER BY seq`, out[i].VisitNo)
		if err != nil {
			return nil, err
		}
		for drows.Next() {
			var d diagnosisRow
			var at string
			if err := drows.Scan(&d.Code, &d.Name, &d.Type, &at); err != nil {
				drows.Close()
				return nil, err
			}
			d.At = parseDB(at)
			out[i].Diagnoses = append(out[i].Diagnoses, d)
		}
		drows.Close()
		if err := drows.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

type feeRow struct {
	FeeID, VisitNo, Type, ItemCode, ItemName, Quantity string
	AmountFen                                          int64
	DeptCode, DoctorCode, DoctorName                   string
	At                                                 time.Time
}

// unpaidFees lists a patient's unpaid fees, oldest first.
func (s *Sim) unpaidFees(ctx context.Context, hisID string) ([]feeRow, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT fee_id, visit_no, type, item_code, item_name, quantity, amount_fen, department_code, doctor_code, doctor_name, created_at
		FROM fees WHERE his_id = ? AND status = 'unpaid' ORDER BY created_at, fee_id`, hisID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []feeRow
	for rows.Next() {
		var f feeRow
		var at string
		if err := rows.Scan(&f.FeeID, &f.VisitNo, &f.Type, &f.ItemCode, &f.ItemName, &f.Quantity, &f.AmountFen, &f.DeptCode, &f.DoctorCode, &f.DoctorName, &at); err != nil {
			return nil, err
		}
		f.At = parseDB(at)
		out = append(out, f)
	}
	return out, rows.Err()
}

// catalog lists the items of one kind (DRUG, EXAM, LAB) in catalogue order.
func (s *Sim) catalog(ctx context.Context, kind string) ([]catalogItem, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kind, code, name, spec, unit, price_fen, stock, flags, category, active, specimen, manufacturer, panel, report
		FROM catalog WHERE kind = ? ORDER BY ord`, kind)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []catalogItem
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

type scanner interface{ Scan(...any) error }

func scanItem(r scanner) (catalogItem, error) {
	var it catalogItem
	var stock sql.NullInt64
	var flags, panel string
	if err := r.Scan(&it.Kind, &it.Code, &it.Name, &it.Spec, &it.Unit, &it.PriceFen, &stock, &flags, &it.Category, &it.Active,
		&it.Specimen, &it.Manufacturer, &panel, &it.Report); err != nil {
		return it, err
	}
	if stock.Valid {
		it.Stock = &stock.Int64
	}
	it.Flags = strings.Fields(flags)
	if panel != "" {
		if err := json.Unmarshal([]byte(panel), &it.Panel); err != nil {
			return it, err
		}
	}
	return it, nil
}

// item returns one catalogue item; ok is false when the code is unknown.
func (s *Sim) item(ctx context.Context, code string) (catalogItem, bool, error) {
	it, err := scanItem(s.db.QueryRowContext(ctx, `SELECT kind, code, name, spec, unit, price_fen, stock, flags, category, active, specimen, manufacturer, panel, report
		FROM catalog WHERE code = ?`, code))
	if err == sql.ErrNoRows {
		return it, false, nil
	}
	return it, err == nil, err
}
