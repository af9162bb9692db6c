package fault

import (
	"os"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// openWatch records which processes open files in a directory, with
// fanotify (root): the precise way to prove the daemon never opened a file
// outside its trees, however briefly.
type openWatch struct {
	f    *os.File
	mu   sync.Mutex
	pids map[int32]int
	done chan struct{}
}

func newOpenWatch(t *testing.T, dir string) *openWatch {
	t.Helper()
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE)
	if err != nil {
		t.Logf("fanotify unavailable (%v): opens outside the inbox are checked by a FIFO probe only", err)
		return nil
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD, unix.FAN_OPEN|unix.FAN_EVENT_ON_CHILD, unix.AT_FDCWD, dir); err != nil {
		unix.Close(fd)
		t.Logf("fanotify mark on %s: %v", dir, err)
		return nil
	}
	w := &openWatch{f: os.NewFile(uintptr(fd), "fanotify"), pids: map[int32]int{}, done: make(chan struct{})}
	go w.loop()
	t.Cleanup(w.Close)
	return w
}

func (w *openWatch) loop() {
	defer close(w.done)
	buf := make([]byte, 64*1024)
	for {
		n, err := w.f.Read(buf)
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) <= n; {
			m := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
			if m.Event_len == 0 {
				break
			}
			if m.Fd >= 0 {
				unix.Close(int(m.Fd))
			}
			w.mu.Lock()
			w.pids[m.Pid]++
			w.mu.Unlock()
			off += int(m.Event_len)
		}
	}
}

// openedBy reports how many opens pid made in the directory.
func (w *openWatch) openedBy(pid int) int {
	if w == nil {
		return 0
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pids[int32(pid)]
}

func (w *openWatch) Close() {
	select {
	case <-w.done:
	default:
		w.f.Close()
		<-w.done
	}
}
