module github.com/trtd/trtd

go 1.26.0

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/coreos/go-systemd/v22 v22.7.0
	golang.org/x/sys v0.50.0
	google.golang.org/protobuf v1.36.12
)

require github.com/fsnotify/fsnotify v1.10.1 // indirect
