package hl7

import (
	"fmt"
	"strings"
	"testing"
)

// oru20 is a lab result as the HIS sends it: ORU^R01 with 20 OBX, Chinese names, one
// value with an escape sequence.
func oru20() []byte {
	var b strings.Builder
	b.WriteString(`MSH|^~\&|LIS|市第一人民医院检验科|IHOS|IHOS|20240315143000+0800||ORU^R01^ORU_R01|F2024031500017|P|2.5.1|||AL|NE|CHN|UNICODE UTF-8` + "\r")
	b.WriteString(`PID|1||P000123^^^HIS^PI~110101199003078515^^^CHN^NNCHN||张三||19900307|M|||北京市东城区东华门大街1号||13800138000` + "\r")
	b.WriteString(`PV1|1|O|0301^^^^^^^^消化内科||||D017^李四|||ONLINE|||||||||0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a61` + "\r")
	b.WriteString(`ORC|RE|0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62|F2024031500017||CM||||20240315143000+0800|||D017^李四` + "\r")
	b.WriteString(`OBR|1|0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a62|F2024031500017|LAB01^血常规|||20240315090000+0800|||||||||D017^李四|||||20240315143000+0800|||F`)
	for i := 1; i <= 20; i++ {
		value := fmt.Sprintf("%d.%d", i+3, i%10)
		if i == 20 {
			value = `阴性\T\无异常`
		}
		fmt.Fprintf(&b, "\rOBX|%d|NM|%04d^检验项目%d^LOCAL||%s|10\\S\\9/L|3.5-9.5|N|||F|||20240315143000+0800", i, 1000+i, i, value)
	}
	return []byte(b.String())
}

// BenchmarkParseORU20 measures what a receiver does with each result: Parse, then read
// every OBX-3 and OBX-5.
func BenchmarkParseORU20(b *testing.B) {
	data := oru20()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		obx := 0
		for _, s := range m.Segments {
			if s.Name != "OBX" {
				continue
			}
			if s.Get("3") == "" || s.Get("3-2") == "" || s.Get("5") == "" {
				b.Fatal("empty OBX")
			}
			obx++
		}
		if obx != 20 || m.Get("PID-5") != "张三" {
			b.Fatal("wrong message")
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkEncodeORU20(b *testing.B) {
	m, err := Parse(oru20())
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := m.Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := m.Encode(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkParseORU20GB18030(b *testing.B) {
	m, err := Parse(oru20())
	if err != nil {
		b.Fatal(err)
	}
	m.Set("MSH-18", CharsetGB18030)
	data, err := m.Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
		n++
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "msgs/s")
}
