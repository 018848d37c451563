package bytesize

import "testing"

func TestFormats(t *testing.T) {
	for _, tc := range []struct {
		n               int64
		decimal, binary string
	}{
		{0, "0 bytes", "0 bytes"},
		{999, "999 bytes", "999 bytes"},
		{1000, "1.0 KB", "1000 bytes"},
		{1024, "1.0 KB", "1.0 KB"},
		{204_800, "204.8 KB", "200.0 KB"},
		{1_000_000, "1.0 MB", "976.6 KB"},
		{10 << 20, "10.5 MB", "10.0 MB"},
		{25_300_000, "25.3 MB", "24.1 MB"},
	} {
		if got := Decimal(tc.n); got != tc.decimal {
			t.Errorf("Decimal(%d) = %q, want %q", tc.n, got, tc.decimal)
		}
		if got := Binary(tc.n); got != tc.binary {
			t.Errorf("Binary(%d) = %q, want %q", tc.n, got, tc.binary)
		}
	}
}
