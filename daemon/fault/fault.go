// Package fault holds the daemon's fault-injection hook for the crash-safety
// tests. The hook exists only in binaries built with the trtdfault build tag
// (the test suites build them so); in every other build, the shipped ones
// among them, Enabled is false and At does nothing and reads no
// environment.
package fault

// Env names the step at which a trtdfault build SIGKILLs itself.
const Env = "TRTD_TEST_CRASH_AT"

// Tag is the build tag that compiles the hook in.
const Tag = "trtdfault"
