// Package entities is the one list of replicated entities. The appliance and
// the cloud must build their sync registries from the same list: an entity
// known to one side only is rejected when it arrives at the other.
package entities

import (
	"ihos/billpay"
	"ihos/booking"
	"ihos/emr"
	"ihos/his"
	"ihos/insurance/settle"
	"ihos/internal/masterdata"
	"ihos/internal/patients"
	"ihos/invoicing"
	"ihos/payments"
	"ihos/prescriptions"
	"ihos/ratings"
	"ihos/reconcile"
	"ihos/staffauth"
	"ihos/sync"
	"ihos/visits"
)

// All returns every replicated entity, in registration order.
func All() []sync.Entity {
	var all []sync.Entity
	for _, set := range [][]sync.Entity{
		masterdata.Entities(),
		{patients.Entity()},
		his.Entities(),
		payments.Entities(),
		invoicing.Entities(),
		reconcile.Entities(),
		settle.Entities(),
		billpay.Entities(),
		booking.Entities(),
		visits.Entities(),
		prescriptions.Entities(),
		ratings.Entities(),
		emr.Entities(),
		staffauth.Entities(),
	} {
		all = append(all, set...)
	}
	return all
}

// Registry returns a registry of All.
func Registry() *sync.Registry { return sync.NewRegistry(All()...) }
