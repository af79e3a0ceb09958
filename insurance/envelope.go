package insurance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ihos"
)

// ServicePath is where the national platform (and provincial gateways in
// front of it) take every transaction: one URL, the transaction chosen by
// infno in the body. REFERENCE.md does not name the path; it is the one that
// public integrations use throughout (for example the C# and Java samples
// that POST to http://host:port/fsi/api/rsfComIfsService/callService).
const ServicePath = "/fsi/api/rsfComIfsService/callService"

// InfVer is the interface version every request carries (infver).
const InfVer = "V1.0"

// Operator types (opter_type): who is at the terminal that starts the call.
const (
	OpterClerk  = "1" // a staff member at a window or the console
	OpterKiosk  = "2" // a self-service machine
	OpterMobile = "3" // a patient's phone
)

// Infcode values of a response.
const (
	InfcodeOK   = 0
	InfcodeFail = -1
)

// Request is the envelope of every call to the national platform. All the
// field names and their order are REFERENCE.md's; every key is always sent,
// empty or not, because platform validators check for the keys. Input is the
// transaction's own input (for 1101 an object {"data": {...}}).
type Request struct {
	Infno          string          `json:"infno"`           // transaction code, 4 digits
	MsgID          string          `json:"msgid"`           // fixmedins_code(12) + yyyyMMddHHmmss(14) + sequence(4)
	MdtrtareaAdmvs string          `json:"mdtrtarea_admvs"` // the hospital's insurance area code (6)
	InsuplcAdmdvs  string          `json:"insuplc_admdvs"`  // the insured's area (6); required with psn_no, known from 1101
	RecerSysCode   string          `json:"recer_sys_code"`  // receiving system code (10)
	DevNo          string          `json:"dev_no"`
	DevSafeInfo    string          `json:"dev_safe_info"`
	Cainfo         string          `json:"cainfo"` // up to 1024
	Signtype       string          `json:"signtype"`
	Infver         string          `json:"infver"`     // "V1.0"
	OpterType      string          `json:"opter_type"` // OpterClerk, OpterKiosk, OpterMobile
	Opter          string          `json:"opter"`
	OpterName      string          `json:"opter_name"`
	InfTime        string          `json:"inf_time"` // "yyyy-MM-dd HH:mm:ss", Beijing time
	FixmedinsCode  string          `json:"fixmedins_code"`
	FixmedinsName  string          `json:"fixmedins_name"`
	SignNo         string          `json:"sign_no"` // from the 9001 sign-in
	Input          json.RawMessage `json:"input"`
}

// Response is the platform's answer. REFERENCE.md names these six fields;
// public samples show more (warn_msg, cainfo, signtype) that this package
// neither needs nor reads. REFERENCE.md gives no format for refmsg_time and
// respond_time, so they are kept as the opaque strings they arrive as.
type Response struct {
	Infcode     Infcode         `json:"infcode"`      // 0 success, -1 failure
	InfRefMsgID string          `json:"inf_refmsgid"` // admdvs(6) + time(14) + serial(10)
	RefmsgTime  string          `json:"refmsg_time"`
	RespondTime string          `json:"respond_time"`
	ErrMsg      string          `json:"err_msg"`
	Output      json.RawMessage `json:"output"`

	// MsgID is the msgid of the request this answers. It is not on the
	// wire: Call fills it in so a caller can store it (a later reversal
	// names the original msgid).
	MsgID string `json:"-"`
}

// Infcode is the numeric result code. Some gateways send it as a string
// ("0"), so both forms are read; it is always written as a number.
type Infcode int

// UnmarshalJSON reads a number or a quoted number.
func (c *Infcode) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*c = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("infcode %s is not a number", b)
	}
	*c = Infcode(n)
	return nil
}

// MsgIDLen is the length of a msgid.
const MsgIDLen = 30

// msgIDTime is the time part of a msgid.
const msgIDTime = "20060102150405"

// InfTimeFormat is the layout of inf_time.
const InfTimeFormat = "2006-01-02 15:04:05"

// FormatMsgID builds a msgid from the institution code, the time (taken in
// Beijing time) and a sequence number (its last four digits are used).
func FormatMsgID(fixmedinsCode string, t time.Time, seq uint32) string {
	return fixmedinsCode + t.In(ihos.Shanghai).Format(msgIDTime) + fmt.Sprintf("%04d", seq%10000)
}

// CheckMsgID reports what is wrong with msgid for this institution, or nil.
// The simulator uses it to refuse malformed requests the way the platform
// does.
func CheckMsgID(msgid, fixmedinsCode string) error {
	if len(msgid) != MsgIDLen {
		return fmt.Errorf("msgid 长度应为 %d 位，实际 %d 位", MsgIDLen, len(msgid))
	}
	if len(fixmedinsCode) != 12 || !strings.HasPrefix(msgid, fixmedinsCode) {
		return fmt.Errorf("msgid 前 12 位应为定点医药机构编号 %s", fixmedinsCode)
	}
	if _, err := time.ParseInLocation(msgIDTime, msgid[12:26], ihos.Shanghai); err != nil {
		return fmt.Errorf("msgid 第 13-26 位应为 yyyyMMddHHmmss 时间")
	}
	for _, c := range msgid[26:] {
		if c < '0' || c > '9' {
			return fmt.Errorf("msgid 最后 4 位应为数字顺序号")
		}
	}
	return nil
}

// Yuan is an amount of money in fen that travels as a decimal number of yuan
// with two decimals (balc 1256.80), the way the platform writes amounts. It
// reads numbers and quoted numbers; more than two non-zero decimals is an
// error, never rounded.
type Yuan int64

// MarshalJSON writes the amount as a JSON number of yuan.
func (y Yuan) MarshalJSON() ([]byte, error) { return []byte(ihos.FormatYuan(int64(y))), nil }

// UnmarshalJSON reads a number of yuan, quoted or not; null and "" are zero.
func (y *Yuan) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*y = 0
		return nil
	}
	fen, err := ihos.ParseYuan(s)
	if err != nil {
		return fmt.Errorf("amount %s is not a yuan amount with at most two decimals", b)
	}
	*y = Yuan(fen)
	return nil
}

// Number is a decimal the platform may send as a JSON number or a string
// (age: 36 or "36.5"). It keeps the text; it is written as a number.
type Number string

// MarshalJSON writes the number bare (0 when empty).
func (n Number) MarshalJSON() ([]byte, error) {
	if n == "" {
		return []byte("0"), nil
	}
	if _, err := strconv.ParseFloat(string(n), 64); err != nil {
		return nil, fmt.Errorf("%q is not a number", string(n))
	}
	return []byte(n), nil
}

// UnmarshalJSON reads a number or a quoted number.
func (n *Number) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "null" {
		s = ""
	}
	if s != "" {
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return fmt.Errorf("%s is not a number", b)
		}
	}
	*n = Number(s)
	return nil
}
