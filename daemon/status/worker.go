package status

import "github.com/trtd/trtd/daemon/workers"

// SetWorker records the worker the daemon runs and why, without writing
// out.
func (b *Board) SetWorker(sel *workers.Selection) {
	b.mu.Lock()
	b.s.Worker = sel
	b.mu.Unlock()
}
