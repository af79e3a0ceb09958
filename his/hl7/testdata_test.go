package hl7

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// canonical turns every line end into CR and drops the final one: the form Encode
// writes.
func canonical(b []byte) []byte {
	b = bytes.ReplaceAll(b, []byte("\r\n"), []byte("\r"))
	b = bytes.ReplaceAll(b, []byte("\n"), []byte("\r"))
	return bytes.TrimRight(b, "\r")
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTestdataRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/*.hl7")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test messages: %v", err)
	}
	for _, file := range files {
		name := filepath.Base(file)
		if name == "python-hl7_nonstandard_separators.hl7" {
			continue // lacks MSH-9 and MSH-10: see TestNonstandardSeparatorsSample
		}
		raw := readTestdata(t, name)
		m, err := Parse(raw)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		enc, err := m.Encode()
		if err != nil {
			t.Errorf("%s: Encode: %v", name, err)
			continue
		}
		if want := canonical(raw); !bytes.Equal(enc, want) {
			t.Errorf("%s: Encode(Parse(x)) differs\n got %q\nwant %q", name, enc, want)
		}
	}
}

func TestTestdataValues(t *testing.T) {
	for file, want := range map[string]map[string]string{
		"python-hl7_oru_r01.hl7": {
			"MSH-3": "GHH LAB", "MSH-9": "ORU", "MSH-9-2": "R01", "MSH-10": "CNTRL-3456", "MSH-12": "2.4",
			"PID-3": "555-44-4444", "PID-5": "EVERYWOMAN", "PID-5-2": "EVE", "PID-5-7": "L",
			"PID-11-3": "STATESVILLE", "OBR-15-9": "LEVEL SEVEN HEALTHCARE, INC.",
			"OBX-3": "1554-5", "OBX-3-3": "POST 12H CFST:MCNC:PT:SER/PLAS:QN", "OBX-5": "", "OBX-5-2": "182",
			"OBX(2)-2": "FN", "OBX(2)-3": "1553-5", "OBX(2)-8": "H", "OBX(2)-11": "F", "OBX(3)-1": "",
		},
		"python-hl7_repetitions.hl7": {
			"PID-1": "Field1", "PID-2-2": "Component2", "PID-3-2": "Sub-Component1",
			"PID-3-2-2": "Sub-Component2", "PID-3-3": "Component3", "PID-4": "Repeat1", "PID-4(2)": "Repeat2",
		},
		"python-hl7_adt_a04.hl7": {
			"MSH-9-3": "ADT_A01", "MSH-18": "ASCII", "EVN-1": "A04", "PID-3": "0000112234",
			"PID-3-4": "100", "PID-3-5": "A", "PID-11-3": "RICHMOND", "PV1-2": "O", "PV1-6-6": "1",
		},
		"python-hl7_adt_a01.hl7": {
			"MSH-10": "Q150084616T145947960", "PID-4": "3722", "PID-4(2)-5": "DONOR ", "PID-4(3)": "Q2147670",
			"PID-4(3)-4": "MSQ_MRN", "PID-13(2)": "(000)000-0000", "PID-13(2)-2": "ALTERNATE",
			"PV1-9": `""`, "PV1-20(2)": "SLF", "IN1(3)-4": "SELF-PAY", "IN2(2)-2": "062420044",
			"DG1-3-2": "ATHEROSCLEROSIS W/INT CLAUDCTN",
		},
		"escapes.hl7": {
			"MSH-4": "检验科", "PID-5": "张三", "OBX-5": "肝&胆&胰&脾未见异常\n双肾大小正常|形态规则",
			"OBX(2)-5": `比值 1^2，范围 3-5 为~；路径 C:\lis\out`, "OBX(3)-5": "第一行\n第二行\r\n第三行",
			"ZPI-2(2)": "P000124", "ZPI-3-1-2": "b", "ZPI-3-2-1": "c",
		},
		"zh_adt_a04_utf8.hl7": {
			"MSH-6": "市第一人民医院", "MSH-18": "UNICODE UTF-8", "PID-3(2)": "110101199003078515",
			"PID-3(3)-5": "HC", "PID-5": "张三", "PID-11": "北京市东城区东华门大街1号", "PV1-3-9": "消化内科",
			"PV1-7-2": "李四",
		},
		"zh_omp_o09_gb18030.hl7": {
			"MSH-4": "廣東葉區診所", "MSH-9": "OMP", "MSH-10": "GB-0001", "MSH-18": "GB 18030-2000",
			"PID-5": "张三", "PV1-3-9": "消化内科", "ORC-12-2": "李四", "RXO-1-2": "阿莫西林胶囊",
			"RXO-7": "每日三次 饭后&温水送服", "RXO-12": "粒", "RXR-1-2": "口服",
		},
	} {
		m, err := Parse(readTestdata(t, file))
		if err != nil {
			t.Errorf("%s: %v", file, err)
			continue
		}
		for path, v := range want {
			if got := m.Get(path); got != v {
				t.Errorf("%s: %s = %q, want %q", file, path, got, v)
			}
		}
	}
}

func TestNonstandardSeparatorsSample(t *testing.T) {
	raw := readTestdata(t, "python-hl7_nonstandard_separators.hl7")
	_, err := Parse(raw)
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Code != CodeRequiredField {
		t.Fatalf("Parse: %v, want a 101 error (no MSH-9)", err)
	}
	nak := Nak(raw, AckReject, pe.Code, pe.Reason)
	if nak.Get("MSH-5") != "GHH LAB" || nak.Get("ERR-3") != "101" {
		t.Errorf("NAK: MSH-5 %q ERR-3 %q", nak.Get("MSH-5"), nak.Get("ERR-3"))
	}
}
