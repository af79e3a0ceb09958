// Command ihos-cloud is the internet-facing service: run it in the foreground, or
// install it as a systemd / Windows service with `ihos-cloud service install`.
package main

import (
	"os"

	"ihos/cloud"
	"ihos/packaging"
)

func main() {
	os.Exit(packaging.Main(packaging.Program{
		Name:        "ihos-cloud",
		DisplayName: "互联网医院云端服务",
		Description: "互联网医院云端服务：患者、医生、护士的线上服务接口",
		Run:         cloud.Run,
	}, os.Args[1:]))
}
