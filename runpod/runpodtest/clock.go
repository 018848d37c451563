package runpodtest

import (
	"time"

	"github.com/jonboulle/clockwork"
)

// timerAt arms a timer of clock c for the instant at. On a
// *clockwork.FakeClock it re-arms when the clock moved while arming, so a
// concurrent Advance cannot push the timer past at.
func timerAt(c clockwork.Clock, at time.Time) clockwork.Timer {
	fake, ok := c.(*clockwork.FakeClock)
	for {
		now := c.Now()
		t := c.NewTimer(at.Sub(now))
		if !ok || fake.Now().Equal(now) {
			return t
		}
		t.Stop()
	}
}
