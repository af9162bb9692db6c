package trt

import "context"

// watchCancel calls cancel once when ctx ends or stop is closed, until the
// returned stop function is called. stop waits for the watcher to exit, so
// after it returns cancel is never called: the session can be freed
// without a race between the cancel goroutine and free().
func watchCancel(ctx context.Context, stopCh <-chan struct{}, cancel func()) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		select {
		case <-ctx.Done():
		case <-stopCh:
		case <-done:
			return
		}
		cancel()
	}()
	return func() {
		close(done)
		<-exited
	}
}
