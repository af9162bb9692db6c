# Long fault suite: 1,000-model bursts, 1 KB/s trickled uploads, the
# inotify watch limit (a system-wide knob). Needs root, openssh-server,
# openssh-client, rsync, e2fsprogs, util-linux.

.PHONY: soak test-fault

soak: ## Long fault/load suite (TRTD_SOAK=1: 1,000-model queue, 1 KB/s uploads, inotify limits; root)
	TRTD_SOAK=1 $(GO) test -count=1 -timeout 60m -v ./test/fault

test-fault: ## The fast fault, hostile-input and load suite alone (part of make test)
	$(GO) test -count=1 -timeout 15m ./test/fault
