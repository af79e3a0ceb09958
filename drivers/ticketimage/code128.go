package ticketimage

import "fmt"

// code128Patterns are the element widths, in modules, of the 107 Code 128
// symbols (ISO/IEC 15417), indexed by symbol value: bar, space, bar, space,
// bar, space, 11 modules in all. 103..105 are Start A, B and C; 106 is the
// stop symbol, whose final 2-module bar makes it 7 elements and 13 modules.
var code128Patterns = [107]string{
	"212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
	"221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
	"221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
	"212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
	"231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
	"231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
	"314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
	"112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
	"111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
	"214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
	"114131", "311141", "411131", "211412", "211214", "211232", "2331112",
}

const (
	code128StartB = 104
	code128Stop   = 106
)

// code128B returns the symbol values of data in code set B: Start B, one
// symbol per character (value = byte - 32), the check symbol (the weighted
// sum mod 103, Start B weighted 1 and the i-th character i) and Stop.
// data must be printable ASCII, what GS k 73 "{B" carries.
func code128B(data string) ([]int, error) {
	syms := make([]int, 0, len(data)+3)
	syms = append(syms, code128StartB)
	sum := code128StartB
	for i := 0; i < len(data); i++ {
		c := data[i]
		if c < 0x20 || c > 0x7E {
			return nil, fmt.Errorf("ticketimage: Code128 set B cannot encode byte 0x%02X", c)
		}
		v := int(c) - 0x20
		syms = append(syms, v)
		sum += v * (i + 1)
	}
	return append(syms, sum%103, code128Stop), nil
}

// code128Modules returns the barcode as modules, true for a bar.
func code128Modules(data string) ([]bool, error) {
	syms, err := code128B(data)
	if err != nil {
		return nil, err
	}
	mods := make([]bool, 0, 11*len(syms)+2)
	for _, s := range syms {
		bar := true
		for _, c := range code128Patterns[s] {
			for k := 0; k < int(c-'0'); k++ {
				mods = append(mods, bar)
			}
			bar = !bar
		}
	}
	return mods, nil
}
