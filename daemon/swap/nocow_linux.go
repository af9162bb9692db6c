package swap

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsNOCOWFl is FS_NOCOW_FL from linux/fs.h (chattr +C).
const fsNOCOWFl = 0x00800000

// setNOCOW sets the NOCOW attribute on an empty file (btrfs requires it for
// swapfiles, and only before the file has data).
func setNOCOW(f *os.File) error {
	flags, err := unix.IoctlGetUint32(int(f.Fd()), unix.FS_IOC_GETFLAGS)
	if err != nil {
		return err
	}
	if flags&fsNOCOWFl != 0 {
		return nil
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.FS_IOC_SETFLAGS, int(flags|fsNOCOWFl))
}
