package ihos

import (
	"context"
	"time"
)

// HIS is the hospital information system as the platform sees it. The
// appliance holds the only implementation that talks to a real HIS (package
// his: HL7 v2 over MLLP, or HTTP/JSON; docs/his-interface.md); the cloud
// reaches it through the appliance over the sync RPC.
//
// Queries are answered at once and fail with EUnavailable when the HIS cannot
// be reached. Deliver sends one message that changes something in the HIS; it is
// called by the appliance's durable outbound queue, never directly by a
// workflow, so that nothing is lost while the HIS is down.
type HIS interface {
	// FindPatients looks patients up by one identifier.
	FindPatients(ctx context.Context, id PatientIdentifier) ([]HISPatient, error)
	// VisitHistory lists the patient's visits since the given time (zero: all),
	// newest first, with their diagnoses: the follow-up eligibility check reads
	// it, and since = start of today (Asia/Shanghai) gives today's
	// registrations.
	VisitHistory(ctx context.Context, hisPatientID string, since time.Time) ([]HISVisit, error)
	// UnpaidFees lists the patient's outstanding fees (online and offline).
	UnpaidFees(ctx context.Context, hisPatientID string) ([]HISFee, error)
	// Reports lists the patient's lab and exam reports issued since the given
	// time (zero: all), newest first, whichever way they were ordered.
	Reports(ctx context.Context, hisPatientID string, since time.Time) ([]HISReport, error)
	// Catalog returns the whole catalogue of one kind.
	Catalog(ctx context.Context, kind string) ([]CatalogItem, error)
	// Deliver sends one outbound message and returns the HIS's answer. An error
	// means the answer is unknown (connection lost, timeout) and the message must
	// be sent again with the same ID; an answer with Code AE or AR means the HIS
	// refused it.
	Deliver(ctx context.Context, m HISMessage) (HISAck, error)
}

// Identifier types of a patient (HL7 table 0203 where it has one).
const (
	IDHISPatient = "PI"    // the HIS's own patient id
	IDResident   = "NNCHN" // 居民身份证号
	IDInsurance  = "HC"    // 医保卡号
	IDVisitNo    = "VN"    // 就诊号 (the HIS visit number printed on a registration slip): finds the patient of that visit
)

// PatientIdentifier is one way to name a patient to the HIS.
type PatientIdentifier struct {
	Type  string `json:"type"` // IDHISPatient, IDResident, IDInsurance or IDVisitNo
	Value string `json:"value"`
}

// HISPatient is a patient as the HIS knows them.
type HISPatient struct {
	HISID         string `json:"his_id"`
	Name          string `json:"name"`
	Sex           string `json:"sex"`        // M, F or U
	BirthDate     string `json:"birth_date"` // YYYY-MM-DD
	IDNumber      string `json:"id_number"`
	Phone         string `json:"phone"`
	InsuranceCard string `json:"insurance_card"`
}

// HISVisit is a visit (a registration) recorded in the HIS: past visits with
// their diagnoses, and today's registrations with what a registration slip
// shows (queue number, time slot, fee).
type HISVisit struct {
	VisitNo        string      `json:"visit_no"`
	DepartmentCode string      `json:"department_code"`
	DepartmentName string      `json:"department_name"`
	DoctorCode     string      `json:"doctor_code"`
	DoctorName     string      `json:"doctor_name"`
	VisitedAt      time.Time   `json:"visited_at"` // the registered time (start of the time slot)
	QueueNo        string      `json:"queue_no"`   // 就诊序号, e.g. "012"; empty when the HIS gives none
	TimeSlot       string      `json:"time_slot"`  // e.g. "08:00-08:30"
	FeeFen         int64       `json:"fee_fen"`    // registration fee (挂号费)
	Status         string      `json:"status"`     // VisitRegistered, VisitSeen, VisitCancelled; empty when the HIS does not say
	Diagnoses      []Diagnosis `json:"diagnoses"`
}

// Visit statuses.
const (
	VisitRegistered = "registered" // 已挂号, not yet seen
	VisitSeen       = "seen"       // 已就诊
	VisitCancelled  = "cancelled"  // 已退号
)

// Diagnosis is an ICD-10 coded diagnosis.
type Diagnosis struct {
	Code        string    `json:"code"` // ICD-10, e.g. I10
	Name        string    `json:"name"`
	DiagnosedAt time.Time `json:"diagnosed_at"`
}

// HISFee is a fee the HIS holds for a patient.
type HISFee struct {
	FeeID          string    `json:"fee_id"`
	VisitNo        string    `json:"visit_no"`
	ItemCode       string    `json:"item_code"`
	ItemName       string    `json:"item_name"`
	Quantity       string    `json:"quantity"` // decimal text, as the HIS counts it
	AmountFen      int64     `json:"amount_fen"`
	DepartmentCode string    `json:"department_code"`
	DoctorCode     string    `json:"doctor_code"`
	CreatedAt      time.Time `json:"created_at"`
}

// Catalogue kinds.
const (
	CatalogDrug = "DRUG"
	CatalogExam = "EXAM"
	CatalogLab  = "LAB"
)

// CatalogKinds lists the catalogue kinds the HIS serves.
var CatalogKinds = []string{CatalogDrug, CatalogExam, CatalogLab}

// Drug flags. Narcotic and psychotropic drugs cannot be prescribed online
// (DESIGN.md §7); antibiotic grades limit who may prescribe.
const (
	FlagNarcotic      = "NARC"  // 麻醉药品
	FlagPsychotropic1 = "PSY1"  // 第一类精神药品
	FlagPsychotropic2 = "PSY2"  // 第二类精神药品
	FlagToxic         = "TOX"   // 医疗用毒性药品
	FlagAntibiotic1   = "ANTI1" // 抗菌药物 非限制使用级
	FlagAntibiotic2   = "ANTI2" // 限制使用级
	FlagAntibiotic3   = "ANTI3" // 特殊使用级
)

// CatalogItem is a drug, exam or lab item with its current price.
type CatalogItem struct {
	Kind     string   `json:"kind"`
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Spec     string   `json:"spec"`
	Unit     string   `json:"unit"`
	PriceFen int64    `json:"price_fen"`
	Stock    *int64   `json:"stock"` // drugs only
	Flags    []string `json:"flags"`
	Category string   `json:"category"`
	Active   bool     `json:"active"`
	Specimen string   `json:"specimen"` // labs only
}

// Outbound HIS events.
const (
	HISRegisterVisit = "register_visit" // ADT^A04
	HISPharmacyOrder = "pharmacy_order" // OMP^O09
	HISLabOrder      = "lab_order"      // OML^O21
	HISExamOrder     = "exam_order"     // OMG^O19
	HISEMR           = "emr"            // MDM^T02
	HISFees          = "fees"           // DFT^P03
)

// HISEvents lists the outbound events.
var HISEvents = []string{HISRegisterVisit, HISPharmacyOrder, HISLabOrder, HISExamOrder, HISEMR, HISFees}

// HISMessage is one outbound message. ID is the message control id: fixed when
// the message is queued, so a resend is recognised by the HIS.
type HISMessage struct {
	ID    string         `json:"message_id"`
	Event string         `json:"event"`
	At    time.Time      `json:"at"`
	Data  HISMessageData `json:"data"`
}

// HISMessageData is the content of an outbound message; which fields an event
// uses is in docs/his-interface.md.
type HISMessageData struct {
	Patient        HISPatient     `json:"patient"`
	VisitNo        string         `json:"visit_no,omitempty"`
	DepartmentCode string         `json:"department_code,omitempty"`
	DepartmentName string         `json:"department_name,omitempty"`
	DoctorCode     string         `json:"doctor_code,omitempty"`
	DoctorName     string         `json:"doctor_name,omitempty"`
	Orders         []HISOrderLine `json:"orders,omitempty"`
	Fees           []HISFeeLine   `json:"fees,omitempty"`
	DocumentNo     string         `json:"document_no,omitempty"`
	Document       []byte         `json:"document,omitempty"` // the signed EMR
	ClinicalInfo   string         `json:"clinical_info,omitempty"`
}

// HISOrderLine is one line of an order: a drug, an exam or a lab item.
type HISOrderLine struct {
	PlacerOrderNo string `json:"placer_order_no"`
	Code          string `json:"code"`
	Name          string `json:"name"`
	Quantity      string `json:"quantity,omitempty"` // dispense amount, decimal text
	Unit          string `json:"unit,omitempty"`
	Dose          string `json:"dose,omitempty"`
	DoseUnit      string `json:"dose_unit,omitempty"`
	Frequency     string `json:"frequency,omitempty"`
	Route         string `json:"route,omitempty"`
	Specimen      string `json:"specimen,omitempty"`
}

// HISFeeLine is one fee line posted to the HIS.
type HISFeeLine struct {
	FeeID         string `json:"fee_id"`
	ItemCode      string `json:"item_code"`
	ItemName      string `json:"item_name"`
	Quantity      string `json:"quantity"`
	AmountFen     int64  `json:"amount_fen"` // negative for a refund
	FillerOrderNo string `json:"filler_order_no,omitempty"`
}

// HIS acknowledgement codes.
const (
	AckAccepted = "AA"
	AckError    = "AE" // application error: the HIS understood and refused
	AckRejected = "AR" // rejected: malformed or unsupported
)

// HISAck is the HIS's answer to a message.
type HISAck struct {
	Code string `json:"code"`
	Text string `json:"message,omitempty"`
	// Filler maps our placer order numbers to the HIS's filler numbers, when
	// the HIS returns them.
	Filler map[string]string `json:"filler,omitempty"`
}

// HISResult is a lab or exam result, with the order's status, sent by the HIS.
type HISResult struct {
	ControlID     string           `json:"control_id"` // identifies a resend of the same result
	PatientHISID  string           `json:"patient_his_id"`
	PlacerOrderNo string           `json:"placer_order_no"`
	FillerOrderNo string           `json:"filler_order_no"`
	OrderStatus   string           `json:"order_status"`  // IP, CM, CA
	ResultStatus  string           `json:"result_status"` // P, F, C
	ServiceCode   string           `json:"service_code"`
	ServiceName   string           `json:"service_name"`
	ReportedAt    time.Time        `json:"reported_at"`
	Observations  []HISObservation `json:"observations"`
}

// HISObservation is one observation of a result.
type HISObservation struct {
	Type  string `json:"type"` // NM, ST, TX
	Code  string `json:"code"`
	Name  string `json:"name"`
	Value string `json:"value"`
	Units string `json:"units"`
	Range string `json:"range"`
	Flag  string `json:"flag"` // H, L, N or empty
}

// HISReport is a finished lab or exam report the HIS holds for a patient,
// whichever way it was ordered (online through the platform, or at the
// hospital's own counters). The kiosk lists and prints these; HIS.Reports
// returns them.
type HISReport struct {
	ReportNo       string           `json:"report_no"`                 // the HIS's report number (filler order number)
	PlacerOrderNo  string           `json:"placer_order_no,omitempty"` // our order id when ordered through the platform; empty for counter orders
	Kind           string           `json:"kind"`                      // CatalogLab or CatalogExam
	VisitNo        string           `json:"visit_no"`
	ServiceCode    string           `json:"service_code"`
	ServiceName    string           `json:"service_name"`    // e.g. 血常规, 胸部正位片
	DepartmentName string           `json:"department_name"` // the ordering department (申请科室)
	DoctorName     string           `json:"doctor_name"`     // the reporting doctor
	ResultStatus   string           `json:"result_status"`   // P, F, C
	ReportedAt     time.Time        `json:"reported_at"`
	Observations   []HISObservation `json:"observations"`
	Conclusion     string           `json:"conclusion"` // exam impression (印象/结论), empty for labs
}
