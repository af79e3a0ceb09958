package prescriptions

import "time"

// RPCSign is the sync RPC the cloud calls to sign a clinical document (a
// prescription, an EMR, an order) with a staff member's e-signature, which
// lives on the appliance (certs/esign): SignRequest → SignReply. The
// appliance answers it (appliance/clinical.go); cloud/signer.go calls it.
const RPCSign = "clinical.sign"

// SignRequest asks the appliance to sign Document (JSON, signed in its
// esign.Canonical form) for StaffID, who proves it is them with PIN.
type SignRequest struct {
	StaffID  string `json:"staff_id"`
	PIN      string `json:"pin"`
	Document []byte `json:"document"` // base64 in JSON: the bytes stay exactly as given
}

// SignReply is the signature: PKCS#7 detached over the canonical document,
// with the signer's certificate.
type SignReply struct {
	P7       []byte    `json:"p7"`
	Serial   string    `json:"serial"`
	CertPEM  string    `json:"cert_pem"`
	SignedAt time.Time `json:"signed_at"`
}
