package cms_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"ihos/certs/cms/cmstest"
	"ihos/certs/tsa"
)

// pki is a root and a signing certificate of one key kind, made once per run.
type pki struct {
	ca   *cmstest.CA
	leaf cmstest.Issued
}

var (
	pkiMu  sync.Mutex
	pkis   = map[cmstest.Kind]*pki{}
	tsaMu  sync.Mutex
	tsaCAs = map[cmstest.Kind]*tsa.Authority{}
)

func testPKI(tb testing.TB, k cmstest.Kind) *pki {
	tb.Helper()
	pkiMu.Lock()
	defer pkiMu.Unlock()
	if p := pkis[k]; p != nil {
		return p
	}
	ca := cmstest.NewCA(tb, k, "测试根 CA "+string(k))
	p := &pki{ca: ca, leaf: ca.Leaf(tb, k, "张医生 "+string(k))}
	pkis[k] = p
	return p
}

// testTSA returns an authority with a key of kind k under the root of kind k.
func testTSA(tb testing.TB, k cmstest.Kind) *tsa.Authority {
	tb.Helper()
	p := testPKI(tb, k)
	tsaMu.Lock()
	defer tsaMu.Unlock()
	if a := tsaCAs[k]; a != nil {
		return a
	}
	is := p.ca.TSA(tb, k, "测试时间戳服务 "+string(k))
	a := &tsa.Authority{Cert: is.Cert, Key: is.Key}
	tsaCAs[k] = a
	return a
}

// emr returns an electronic medical record as JSON of about size bytes.
func emr(size int) []byte {
	type entry struct {
		Time    string `json:"time"`
		Doctor  string `json:"doctor"`
		Section string `json:"section"`
		Text    string `json:"text"`
	}
	rec := struct {
		ID        string  `json:"id"`
		Patient   string  `json:"patient"`
		IDNumber  string  `json:"id_number"`
		Dept      string  `json:"department"`
		Diagnosis string  `json:"diagnosis"`
		ICD10     string  `json:"icd10"`
		Entries   []entry `json:"entries"`
	}{ID: "0197a0c4-6c7e-7cc1-9f3e-2b1c6a0d9e11", Patient: "李四", IDNumber: "110101199003074514",
		Dept: "心血管内科", Diagnosis: "原发性高血压 2 级（高危）", ICD10: "I10.x00"}
	for i := 0; ; i++ {
		rec.Entries = append(rec.Entries, entry{
			Time:    fmt.Sprintf("2026-03-%02dT09:%02d:00+08:00", i%28+1, i%60),
			Doctor:  "张医生",
			Section: []string{"主诉", "现病史", "既往史", "体格检查", "辅助检查", "诊断", "处理意见"}[i%7],
			Text:    strings.Repeat("患者诉头晕、头痛三天，血压 160/100 mmHg，继续服用氨氯地平片 5 mg 每日一次。", 1+i%3),
		})
		b, _ := json.Marshal(rec)
		if len(b) >= size {
			return b
		}
	}
}
