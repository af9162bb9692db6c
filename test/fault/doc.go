// Package fault is trtd's fault, hostile-input and load suite. Its tests
// build bin/trtd and the worker's test double (cmd/trtd-fake-worker) into a
// temporary directory, run the daemon as a real process on temporary
// inbox/outbox/state trees, and break things around it: SIGKILL at every
// persisted step of a job, hostile files in the inbox, real scp/sftp/rsync
// uploads over a loopback sshd, floods of models, full filesystems and low
// limits. Long cases run only with TRTD_SOAK=1 (make soak).
//
// See docs/TESTING.md for the groups and their case counts.
package fault
