// Package storetest is the contract suite of gateway/store: every Store
// implementation runs it from its own tests, against a fresh database per
// test, so that SQLite and PostgreSQL behave the same for the gateway:
// durable creation, claims that never exceed the limit or hand a job out
// twice, fenced updates, first-Finish-wins, leases and adoption, keys.
package storetest
