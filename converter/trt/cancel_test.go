package trt

import (
	"context"
	"sync"
	"testing"
)

// After stop returns, cancel has either run to completion or will never
// run: freeing what cancel touches is then safe. Run under -race: the
// unguarded writes below race if a cancel can come after stop.
func TestWatchCancelStopWaits(t *testing.T) {
	for i := 0; i < 200; i++ {
		ctx, cancelCtx := context.WithCancel(context.Background())
		freed := false
		calls := 0
		stop := watchCancel(ctx, nil, func() {
			if freed {
				t.Error("cancel after free")
			}
			calls++
		})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); cancelCtx() }()
		stop()
		freed = true
		wg.Wait()
		if calls > 1 {
			t.Fatalf("cancel called %d times", calls)
		}
	}
}

func TestWatchCancelFires(t *testing.T) {
	ch := make(chan struct{})
	called := make(chan struct{})
	stop := watchCancel(context.Background(), ch, func() { close(called) })
	close(ch)
	<-called
	stop()
}
