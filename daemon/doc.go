// Package daemon runs trtd: daemon.go wires the pieces and runs the main
// loop (inbox events, one build at a time, systemd READY/STATUS/WATCHDOG/
// STOPPING). The pieces live in packages named for their concern:
// daemon/pipeline takes a job from claim to its end, daemon/outbox places
// results, daemon/memory owns swap, cgroups, the guard and the planner,
// daemon/status keeps the status file.
package daemon
