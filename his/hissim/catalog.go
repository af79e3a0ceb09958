package hissim

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Catalogue sizes the demo data reaches.
const (
	drugCount = 500
	examCount = 100
	labCount  = 100
)

// catalogItem is one drug, exam or lab item.
type catalogItem struct {
	Kind         string
	Code         string
	Name         string
	Spec         string
	Unit         string
	PriceFen     int64
	Stock        *int64
	Flags        []string
	Category     string
	Active       bool
	Specimen     string
	Manufacturer string
	Panel        []analyte // labs
	Report       string    // exams: key of examReports
}

// analyte is one observation a lab reports: numeric with a reference range,
// or qualitative with its normal and abnormal value, or a choice among values
// none of which is abnormal.
type analyte struct {
	Code     string   `json:"code"`
	Name     string   `json:"name"`
	Unit     string   `json:"unit,omitempty"`
	Low      string   `json:"low,omitempty"`
	High     string   `json:"high,omitempty"`
	Normal   string   `json:"normal,omitempty"`
	Abnormal string   `json:"abnormal,omitempty"`
	Choices  []string `json:"choices,omitempty"`
}

// numeric reports whether the analyte has a reference range.
func (a analyte) numeric() bool { return a.Low != "" || a.High != "" }

// refRange is OBX-7: "3.5-9.5".
func (a analyte) refRange() string {
	switch {
	case a.numeric():
		return a.Low + "-" + a.High
	case a.Normal != "":
		return a.Normal
	}
	return ""
}

func tableLines(t string) [][]string {
	var out [][]string
	for _, line := range strings.Split(t, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		out = append(out, strings.Split(line, "|"))
	}
	return out
}

func mustYuan(s string) int64 {
	fen, err := parseYuan(s)
	if err != nil {
		panic("hissim: catalogue table: " + err.Error())
	}
	return fen
}

// analytes parses analyteTable.
func analytes() map[string]analyte {
	out := map[string]analyte{}
	for _, f := range tableLines(analyteTable) {
		a := analyte{Code: f[0], Name: f[1]}
		switch {
		case strings.HasPrefix(f[2], "="):
			a.Normal, a.Abnormal = f[2][1:], f[3]
		case strings.HasPrefix(f[2], "?"):
			a.Choices = strings.Split(f[2][1:], ",")
		default:
			a.Unit, a.Low, a.High = f[2], f[3], f[4]
		}
		out[a.Code] = a
	}
	return out
}

// buildCatalog generates the catalogue deterministically: the same items,
// codes, prices and stock on every first start.
func buildCatalog() []catalogItem {
	rng := rand.New(rand.NewPCG(20240315, 11643))
	var items []catalogItem

	// Drugs: every spec line gets its first manufacturer, then lines are
	// picked at random for a second or third one until drugCount is reached.
	type row struct {
		name, category, spec, unit string
		flags                      []string
		price                      int64
		makers                     []int
	}
	var rows []*row
	for _, f := range tableLines(drugTable) {
		var flags []string
		if f[2] != "" {
			flags = strings.Fields(f[2])
		}
		for _, s := range strings.Split(f[3], ";") {
			p := strings.Split(s, ",")
			rows = append(rows, &row{name: f[0], category: f[1], flags: flags, spec: p[0], unit: p[1], price: mustYuan(p[2]), makers: []int{0}})
		}
	}
	total := len(rows)
	for total < drugCount {
		r := rows[rng.IntN(len(rows))]
		makers := westernMakers
		if r.category == "中成药" {
			makers = tcmMakers
		}
		if len(r.makers) >= 3 {
			continue
		}
		m := 1 + rng.IntN(len(makers)-1)
		dup := false
		for _, have := range r.makers {
			dup = dup || have == m
		}
		if dup {
			continue
		}
		r.makers = append(r.makers, m)
		total++
	}
	n := 0
	for _, r := range rows {
		makers := westernMakers
		if r.category == "中成药" {
			makers = tcmMakers
		}
		for i, m := range r.makers {
			n++
			price := r.price
			if i > 0 {
				// Another manufacturer's price: 75% to 135% of the first, to 0.10 yuan.
				price = price * int64(75+rng.IntN(61)) / 100
				price = max(10, (price+5)/10*10)
			}
			stock := int64(rng.IntN(2000))
			switch {
			case controlled(r.flags):
				stock = int64(rng.IntN(60))
			case rng.IntN(20) == 0:
				stock = 0
			}
			items = append(items, catalogItem{
				Kind: "DRUG", Code: padded("YP", int64(n), 5), Name: r.name, Spec: r.spec, Unit: r.unit,
				PriceFen: price, Stock: &stock, Flags: r.flags, Category: r.category,
				Active: i == 0 || rng.IntN(30) != 0, Manufacturer: makers[m],
			})
		}
	}

	for i, f := range tableLines(examTable) {
		items = append(items, catalogItem{
			Kind: "EXAM", Code: padded("JC", int64(i+1), 4), Name: f[0], Unit: "次", PriceFen: mustYuan(f[2]),
			Category: f[1], Active: true, Report: f[3],
		})
	}

	defs := analytes()
	for i, f := range tableLines(labTable) {
		var panel []analyte
		for _, code := range strings.Fields(f[3]) {
			a, ok := defs[code]
			if !ok {
				panic(fmt.Sprintf("hissim: lab %s: unknown analyte %s", f[0], code))
			}
			panel = append(panel, a)
		}
		items = append(items, catalogItem{
			Kind: "LAB", Code: padded("JY", int64(i+1), 4), Name: f[0], Unit: "项", PriceFen: mustYuan(f[2]),
			Category: "检验", Active: true, Specimen: f[1], Panel: panel,
		})
	}
	return items
}

func controlled(flags []string) bool {
	for _, f := range flags {
		switch f {
		case "NARC", "PSY1", "PSY2", "TOX":
			return true
		}
	}
	return false
}

// decimals is the number of digits after the point in s.
func decimals(s string) int {
	if _, frac, ok := strings.Cut(s, "."); ok {
		return len(frac)
	}
	return 0
}

func atof(s string) float64 {
	f, _ := strconv.ParseFloat(s, 64)
	return f
}
