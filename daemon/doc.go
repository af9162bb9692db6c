// Package daemon runs trtd: it watches the inbox, keeps the job store,
// plans and runs builds one at a time through the converter, writes results
// to the outbox, keeps the status file and talks to systemd (READY, STATUS,
// WATCHDOG, STOPPING).
package daemon
