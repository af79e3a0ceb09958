package cloud

// UseRemoteSigner makes a's prescriptions sign through the appliance again,
// for tests that replaced the signer.
func UseRemoteSigner(a *App) {
	a.Prescriptions.Signer = remoteSigner{db: a.Node.DB, link: a.Link}
}
