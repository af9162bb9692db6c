package inbox

import (
	"bytes"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// movedInWatch reports names renamed into the inbox (IN_MOVED_TO).
// fsnotify reports such a rename as a plain Create, indistinguishable from a
// new file that an upload is still writing; a rename, though, is complete
// when it happens, so it skips the settle period.
type movedInWatch struct {
	f *os.File
}

// The fd is non-blocking so os.File uses the runtime poller and Close
// interrupts a pending Read.
func newMovedInWatch(dir string, out chan<- string) (*movedInWatch, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, err
	}
	if _, err := unix.InotifyAddWatch(fd, dir, unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		_ = unix.Close(fd) // watching nothing; the add's error is the one to return
		return nil, err
	}
	m := &movedInWatch{f: os.NewFile(uintptr(fd), "inotify")}
	go m.loop(out)
	return m, nil
}

func (m *movedInWatch) loop(out chan<- string) {
	buf := make([]byte, 64*(unix.SizeofInotifyEvent+unix.NAME_MAX+1))
	for {
		n, err := m.f.Read(buf)
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			nameb := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if ev.Mask&unix.IN_MOVED_TO == 0 {
				continue
			}
			name := string(bytes.TrimRight(nameb, "\x00"))
			select {
			case out <- name:
			default: // the periodic rescan covers a full channel
			}
		}
	}
}

func (m *movedInWatch) Close() error { return m.f.Close() }
