// Package sync replicates data between a hospital's appliance and the cloud.
//
// Each replicated entity has one owning side (DESIGN.md §2); the other side
// holds a read-only replica. A write and its change record commit in one local
// transaction (the outbox); a relay publishes each outbox message to the other
// side's JetStream stream with the change id as Nats-Msg-Id and removes it only
// after the PubAck; the other side applies it in one transaction that also
// records the change id in a permanent inbox table, and acknowledges only after
// that commits. So a change is never lost (it stays in the outbox until
// acknowledged) and never applied twice (the inbox remembers it), whatever
// crashes in between.
//
// Entities both sides write (a doctor's own profile) merge field by field:
// last writer wins on a hybrid logical clock (HLC) with the origin node as the
// tie-break, and a value overwritten by a concurrent edit goes to the conflict
// log.
package sync
