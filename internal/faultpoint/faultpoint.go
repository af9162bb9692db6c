// Package faultpoint kills the process at a named step when
// TRTD_TEST_CRASH_AT names it, for the crash-safety tests, which must stop
// the daemon at exact points of a job. The hook exists only in binaries
// built with the trtdfault build tag (the fault suite builds them so); in
// every other build, the shipped ones among them, Enabled is false and Hit
// does nothing and reads no environment.
package faultpoint

// Env names the step to die at.
const Env = "TRTD_TEST_CRASH_AT"

// Tag is the build tag that compiles the hook in.
const Tag = "trtdfault"
