package emr

import (
	_ "embed"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/text/encoding/simplifiedchinese"

	"ihos"
)

// icd10TSV is the diagnosis table the doctor chooses from (see the header of
// icd10.tsv for what it holds and where it comes from). It is embedded so
// that the cloud and the appliance validate records against the same table
// whatever the database holds.
//
//go:embed icd10.tsv
var icd10TSV string

// Diagnosis is one ICD-10 coded diagnosis of a record.
type Diagnosis struct {
	Code string `json:"code"`
	Name string `json:"name"`
}

// icdEntry is a dictionary row with its search keys.
type icdEntry struct {
	Diagnosis
	flat     string // the code upper-cased without '.': E11900, I10X00
	initials string // pinyin initials of the name, upper case: 2XTNB
}

var (
	icdList   []icdEntry
	icdByCode = map[string]int{}
)

func init() {
	for _, line := range strings.Split(icd10TSV, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		code, name, ok := strings.Cut(line, "\t")
		if !ok {
			panic("emr: bad icd10.tsv line: " + line)
		}
		code, name = strings.TrimSpace(code), strings.TrimSpace(name)
		if _, dup := icdByCode[strings.ToUpper(code)]; dup {
			panic("emr: icd10.tsv lists " + code + " twice")
		}
		icdByCode[strings.ToUpper(code)] = len(icdList)
		icdList = append(icdList, icdEntry{Diagnosis: Diagnosis{Code: code, Name: name}, flat: flatCode(code), initials: Initials(name)})
	}
}

func flatCode(s string) string { return strings.ReplaceAll(strings.ToUpper(s), ".", "") }

// LookupICD10 returns the dictionary's diagnosis with code (case does not
// matter).
func LookupICD10(code string) (Diagnosis, bool) {
	i, ok := icdByCode[strings.ToUpper(strings.TrimSpace(code))]
	if !ok {
		return Diagnosis{}, false
	}
	return icdList[i].Diagnosis, true
}

// ICD10Size is the number of diagnoses in the dictionary.
func ICD10Size() int { return len(icdList) }

// SearchICD10 finds diagnoses by code prefix (I10, E11.9, e119), part of the
// Chinese name (糖尿病) or the name's pinyin initials (tnb). Best matches
// come first: code prefix, then name prefix, then name substring, then
// initials; within each, dictionary order. An empty query lists the
// dictionary from the start. limit is capped at 100 (default 20).
func SearchICD10(q string, limit int) []Diagnosis {
	if limit <= 0 {
		limit = 20
	}
	limit = min(limit, 100)
	q = strings.TrimSpace(q)
	out := []Diagnosis{}
	if q == "" {
		for _, e := range icdList[:min(limit, len(icdList))] {
			out = append(out, e.Diagnosis)
		}
		return out
	}
	fq, uq := flatCode(q), strings.ToUpper(q)
	letters := isInitials(q)
	var tiers [4][]Diagnosis
	for _, e := range icdList {
		switch {
		case strings.HasPrefix(e.flat, fq):
			tiers[0] = append(tiers[0], e.Diagnosis)
		case strings.HasPrefix(e.Name, q):
			tiers[1] = append(tiers[1], e.Diagnosis)
		case strings.Contains(e.Name, q):
			tiers[2] = append(tiers[2], e.Diagnosis)
		case letters && strings.Contains(e.initials, uq):
			tiers[3] = append(tiers[3], e.Diagnosis)
		}
	}
	for _, t := range tiers {
		out = append(out, t...)
	}
	return out[:min(limit, len(out))]
}

// isInitials reports whether q can be pinyin initials: letters and digits
// only (digits as in "2xtnb").
func isInitials(q string) bool {
	return q != "" && !strings.ContainsFunc(q, func(r rune) bool { return r > unicode.MaxASCII || !(unicode.IsLetter(r) || unicode.IsDigit(r)) })
}

// gbInitials are the first GB2312 codes of each pinyin initial: the 3,755
// level-1 hanzi of GB 2312 are ordered by pinyin, so a character's initial
// is the last boundary not above its code. (No common character begins
// with I, U or V.)
var gbInitials = []struct {
	code   int
	letter byte
}{
	{0xB0A1, 'A'}, {0xB0C5, 'B'}, {0xB2C1, 'C'}, {0xB4EE, 'D'}, {0xB6EA, 'E'}, {0xB7A2, 'F'}, {0xB8C1, 'G'},
	{0xB9FE, 'H'}, {0xBBF7, 'J'}, {0xBFA6, 'K'}, {0xC0AC, 'L'}, {0xC2E8, 'M'}, {0xC4C3, 'N'}, {0xC5B6, 'O'},
	{0xC5BE, 'P'}, {0xC6DA, 'Q'}, {0xC8BB, 'R'}, {0xC8F6, 'S'}, {0xCBFA, 'T'}, {0xCDDA, 'W'}, {0xCEF4, 'X'},
	{0xD1B9, 'Y'}, {0xD4D1, 'Z'},
}

// gbLevel1End is the last level-1 hanzi (座).
const gbLevel1End = 0xD7F9

// Initials returns the pinyin initials of s (高血压 → GXY), upper case:
// ASCII letters and digits are kept, level-1 GB 2312 hanzi give their
// initial, anything else (punctuation, rarer characters) is skipped. Good
// enough for searching; a polyphonic character gets the reading GB 2312
// files it under.
func Initials(s string) string {
	enc := simplifiedchinese.GBK.NewEncoder()
	var b strings.Builder
	for _, r := range s {
		if r < unicode.MaxASCII {
			if unicode.IsLetter(r) || unicode.IsDigit(r) {
				b.WriteRune(unicode.ToUpper(r))
			}
			continue
		}
		gb, err := enc.Bytes([]byte(string(r)))
		if err != nil || len(gb) != 2 {
			continue
		}
		code := int(gb[0])<<8 | int(gb[1])
		if code < gbInitials[0].code || code > gbLevel1End {
			continue
		}
		i, _ := slices.BinarySearchFunc(gbInitials, code, func(e struct {
			code   int
			letter byte
		}, c int) int {
			return e.code - c
		})
		if i == len(gbInitials) || gbInitials[i].code != code {
			i--
		}
		b.WriteByte(gbInitials[i].letter)
	}
	return b.String()
}

// checkDiagnoses replaces each diagnosis by the dictionary's (its name is
// the dictionary's, whatever the client sent) and refuses codes outside it,
// duplicates and more than MaxDiagnoses.
func checkDiagnoses(in []Diagnosis) ([]Diagnosis, error) {
	if len(in) > MaxDiagnoses {
		return nil, ihos.Invalid(map[string]string{"diagnoses": "诊断最多 " + itoa(MaxDiagnoses) + " 个"})
	}
	out := []Diagnosis{}
	seen := map[string]bool{}
	for i, d := range in {
		code := strings.TrimSpace(d.Code)
		field := "diagnoses." + itoa(i) + ".code"
		if code == "" {
			return nil, ihos.Invalid(map[string]string{field: "请从 ICD-10 诊断库中选择诊断"})
		}
		dict, ok := LookupICD10(code)
		if !ok {
			return nil, ihos.Invalid(map[string]string{field: "诊断编码 " + ihos.Truncate(code, 20) + " 不在 ICD-10 诊断库中，请从诊断库中选择"})
		}
		if seen[dict.Code] {
			return nil, ihos.Invalid(map[string]string{field: "诊断 " + dict.Name + " 重复"})
		}
		seen[dict.Code] = true
		out = append(out, dict)
	}
	return out, nil
}
