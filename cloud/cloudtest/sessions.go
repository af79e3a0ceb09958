package cloudtest

import (
	"context"
	"net/http"

	"ihos/accounts"
	"ihos/his/hissim"
	"ihos/staffauth"
)

// PatientLogin signs phone in with the code the SMS simulator received
// (Options.Patients): the session token and its CSRF token.
func (c *Cloud) PatientLogin(phone string) (token, csrf string) {
	c.T.Helper()
	if code, msg := c.Call("POST", "/api/patient/sms-code", map[string]string{"phone": phone}, nil); code != http.StatusNoContent {
		c.T.Fatalf("sms-code: %d %s", code, msg)
	}
	var sess struct {
		Token string `json:"token"`
		CSRF  string `json:"csrf_token"`
	}
	if code, msg := c.Call("POST", "/api/patient/login", map[string]string{"hospital_id": c.Hospital, "phone": phone, "code": c.SMS.LastCode(phone)}, &sess); code != 200 {
		c.T.Fatalf("login: %d %s", code, msg)
	}
	return sess.Token, sess.CSRF
}

// VerifiedPatient logs phone in and verifies the real name of demo patient
// p: the session and the account's own member.
func (c *Cloud) VerifiedPatient(phone string, p hissim.DemoPatient) (token, csrf string, self accounts.Member) {
	c.T.Helper()
	token, csrf = c.PatientLogin(phone)
	if code, msg := c.Call("POST", "/api/patient/realname", map[string]string{"name": p.Name, "id_number": p.IDNumber}, &self, Bearer(token)); code != 200 {
		c.T.Fatalf("real name: %d %s", code, msg)
	}
	return token, csrf, self
}

// Grant gives staff member id (with a phone: Staff.Phone or StaffPhone) app
// access as the hospital's console does: the issued initial password. The
// console's grant (on the appliance) writes the row the cloud receives; the
// same database plays both sides here.
func (c *Cloud) Grant(id string) string {
	c.T.Helper()
	n := c.App.Node
	console := staffauth.New(n.DB, n.Sealer)
	console.Hospital, console.BcryptCost = c.Hospital, 4
	issued, err := console.Grant(context.Background(), id)
	if err != nil {
		c.T.Fatal(err)
	}
	return issued
}

// ChosenPassword is the password staff sessions change the issued one to.
const ChosenPassword = "Chosen-Pass-2026"

// StaffLogin logs phone in with the issued password and changes it to
// ChosenPassword, as the app makes them: the bearer token.
func (c *Cloud) StaffLogin(phone, issued string) string {
	c.T.Helper()
	var sess struct {
		Token string `json:"token"`
	}
	if code, msg := c.Call("POST", "/api/staff/login", map[string]string{"phone": phone, "password": issued}, &sess); code != 200 {
		c.T.Fatalf("login %s: %d %s", phone, code, msg)
	}
	if code, msg := c.Call("POST", "/api/staff/password", map[string]string{"old_password": issued, "new_password": ChosenPassword}, nil, Bearer(sess.Token)); code != http.StatusNoContent {
		c.T.Fatalf("change password %s: %d %s", phone, code, msg)
	}
	return sess.Token
}

// AppStaff gives staff member id the app login phone, grants access and logs
// in with a password of their own: the bearer token.
func (c *Cloud) AppStaff(id, phone string) string {
	c.T.Helper()
	c.StaffPhone(id, phone)
	return c.StaffLogin(phone, c.Grant(id))
}

// RealName passes today's real-name check of the staff session token with
// the code the SMS simulator received on phone.
func (c *Cloud) RealName(token, phone string) {
	c.T.Helper()
	if code, msg := c.Call("POST", "/api/staff/realname/code", nil, nil, Bearer(token)); code != http.StatusNoContent {
		c.T.Fatalf("real-name code: %d %s", code, msg)
	}
	if code, msg := c.Call("POST", "/api/staff/realname", map[string]string{"code": c.SMS.LastCode(phone)}, nil, Bearer(token)); code != 200 {
		c.T.Fatalf("real name: %d %s", code, msg)
	}
}

// Doctor is AppStaff and today's real-name check: the bearer token of a
// doctor ready to accept.
func (c *Cloud) Doctor(id, phone string) string {
	c.T.Helper()
	token := c.AppStaff(id, phone)
	c.RealName(token, phone)
	return token
}
