package daemon

// Version is set at link time: -ldflags "-X github.com/trtd/trtd/daemon.Version=v1.2.3".
var Version = "0.1.0-dev"
