// Package sqlite is the gateway's store on a SQLite file (modernc.org/sqlite,
// pure Go): the default, for one machine. It runs in WAL mode with a busy
// timeout, writes through one connection and reads through several, and
// applies its embedded migrations when opened.
//
//	st, err := sqlite.Open(ctx, "comfypod-data/comfypod.db", nil)
//	defer st.Close()
//
// Several processes may open one file (a `comfypod keys` command beside a
// running service), but a SQLite store is meant for one service replica: for
// several replicas use the postgres store.
package sqlite
