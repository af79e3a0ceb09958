package auth

import (
	"context"

	"ihos/internal/admin"
)

// UsersResource declares 控制台用户管理 for the admin layer. Passwords are
// write-only and hashed with the policy of HashPassword; disabling a user,
// deleting one, or changing a role, department or password ends their sessions.
func (s *Service) UsersResource() *admin.Resource {
	var roles []admin.Option
	for _, r := range Roles {
		roles = append(roles, admin.Option{Value: r.Name, Label: r.Label})
	}
	return &admin.Resource{
		Name: "users", Title: "控制台用户管理", Noun: "控制台用户", Table: "console_users",
		Perm: "users", Display: "username", Sort: "username",
		Fields: []admin.Field{
			{Name: "username", Label: "用户名", Type: admin.Text, Required: true, Max: 64, Unique: true, Immutable: true, Search: true, List: true, Sort: true},
			{Name: "display_name", Label: "姓名", Type: admin.Text, Required: true, Max: 50, Search: true, List: true},
			{Name: "role", Label: "角色", Type: admin.Enum, Required: true, Options: roles, Filter: true, List: true},
			{Name: "department_id", Label: "所属科室（科室管理员必填）", Type: admin.Ref, Ref: "departments", Filter: true, List: true},
			{Name: "password", Label: "密码", Type: admin.Password, Required: true,
				Help: "至少 10 位，须同时包含字母和数字；修改时留空表示不变"},
		},
		HashPassword: s.HashPassword,
		Validate: func(_ context.Context, rec, _ admin.Record) map[string]string {
			role, _ := RoleByName(rec["role"].(string))
			if role.Scoped && rec["department_id"] == "" {
				return map[string]string{"department_id": "科室管理员必须指定所属科室"}
			}
			return nil
		},
		AfterWrite: s.RevokeUser,
	}
}
