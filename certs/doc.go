// Package certs holds the hospital's certificates and cryptography.
//
// It will later also hold SM2/SM3/SM4 signing and PKCS#7 for the signing service
// (GM/T 0029 style, on github.com/emmansun/gmsm). The files here so far are the
// transport PKI for the sync link: the cloud runs a small certificate authority
// (CA), issues its hub's leafnode listener a server certificate, and signs one
// client certificate per hospital at enrollment, so the leafnode link between an
// appliance and the cloud is mutual TLS and the cloud knows which hospital is on
// the other end of every connection (the certificate's CommonName).
//
// Transport TLS uses ECDSA P-256 (and accepts RSA ≥ 2048 in CSRs), not SM2,
// because Go's crypto/tls and NATS do not speak SM2 TLS (GB/T 38636 / TLCP).
//
// Enrollment flow:
//
//	cloud:     ca := LoadOrCreateCA(dir); srv := ca.ServerCert(dir, hosts); tls := ca.HubTLS(srv)
//	appliance: keyPEM, csrPEM := NewCSR(hospitalID)         (key never leaves the hospital)
//	cloud:     certPEM := ca.SignCSR(csrPEM, hospitalID); send certPEM and ca.CAPEM()
//	appliance: tls := LeafTLS(certPEM, keyPEM, caPEM, hubHost)
//	cloud:     on each connection, HospitalOf(verified leaf) names the hospital
package certs
