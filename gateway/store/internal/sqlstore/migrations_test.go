package sqlstore

import (
	"strings"
	"testing"
	"testing/fstest"
)

func TestReadMigrations(t *testing.T) {
	ms, err := ReadMigrations(fstest.MapFS{
		"m/0002_outputs.sql": {Data: []byte("ALTER TABLE jobs ADD x TEXT")},
		"m/0001_init.sql":    {Data: []byte("CREATE TABLE jobs (id TEXT)")},
		"m/old/0009_x.sql":   {Data: []byte("not read: a folder")},
	}, "m")
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]Migration{}
	for _, m := range ms {
		got[m.Version] = m
	}
	if len(ms) != 2 || got[1].Name != "init" || got[1].SQL != "CREATE TABLE jobs (id TEXT)" || got[2].Name != "outputs" {
		t.Errorf("migrations = %+v", ms)
	}

	for _, bad := range []string{"init.sql", "0001_init.txt", "x_init.sql", "0000_zero.sql", "_init.sql"} {
		_, err := ReadMigrations(fstest.MapFS{"m/" + bad: {Data: []byte("SELECT 1")}}, "m")
		if err == nil || !strings.Contains(err.Error(), "want NNNN_name.sql") {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
	if _, err := ReadMigrations(fstest.MapFS{}, "missing"); err == nil {
		t.Error("a missing folder was read")
	}
}
