// Package e2e holds tests that run the appliance and the cloud together, in one
// process, the way a hospital and the cloud talk in production: over a real
// leafnode link on loopback. It has no non-test code.
package e2e
