// Command ihos-appliance is the hospital-side service: run it in the foreground,
// or install it as a systemd / Windows service with `ihos-appliance service install`.
package main

import (
	"os"

	"ihos/appliance"
	"ihos/packaging"
)

func main() {
	os.Exit(packaging.Main(packaging.Program{
		Name:        "ihos-appliance",
		DisplayName: "互联网医院院内服务",
		Description: "互联网医院院内服务：HIS、医保、签名、打印、自助机接口与院内管理控制台",
		Run:         appliance.Run,
	}, os.Args[1:]))
}
