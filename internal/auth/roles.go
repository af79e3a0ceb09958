package auth

import "strings"

// Console roles. A role is a fixed set of permissions; department administrators
// are additionally confined to their own department's records.
const (
	RoleSysAdmin      = "sysadmin"
	RoleHospitalAdmin = "hospital_admin"
	RoleDeptAdmin     = "dept_admin"
	RoleAuditor       = "auditor"
)

// Role describes a role for screens and validation.
type Role struct {
	Name   string
	Label  string
	Scoped bool // confined to the user's department
	perms  []string
}

// Roles lists every role, most powerful first.
var Roles = []Role{
	{Name: RoleSysAdmin, Label: "系统管理员", perms: []string{"*"}},
	{Name: RoleHospitalAdmin, Label: "医院管理员", perms: []string{"masterdata.read", "masterdata.write", "audit.read", "sync.read", "his.read", "his.write", "signing.read", "signing.write", "printing.read", "printing.write", "kiosk.read", "kiosk.write", "recorder.read", "recorder.write", "payments.read", "payments.write", "staffapp.read", "staffapp.write"}},
	{Name: RoleDeptAdmin, Label: "科室管理员", Scoped: true, perms: []string{"masterdata.read", "masterdata.write"}},
	{Name: RoleAuditor, Label: "审计员（只读）", perms: []string{"*.read"}},
}

// RoleByName returns the role called name.
func RoleByName(name string) (Role, bool) {
	for _, r := range Roles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Can reports whether role holds perm. Permissions are "<group>.<verb>", for
// example "masterdata.write"; a role's "*" matches everything and "*.read" every
// read.
func Can(role, perm string) bool {
	r, ok := RoleByName(role)
	if !ok {
		return false
	}
	_, verb, _ := strings.Cut(perm, ".")
	for _, p := range r.perms {
		if p == "*" || p == perm || (strings.HasPrefix(p, "*.") && p[2:] == verb) {
			return true
		}
	}
	return false
}
