// Package offload hands a model that no local stage could build to a peer
// trtd of the same device kind, over OpenSSH. An engine is tied to the
// TensorRT version, compute capability and L4T release it was built with,
// so a peer is used only when its fingerprint (asked with `trtd rebuild
// --fingerprint` over ssh) equals this device's; the engine that comes back
// must carry a provenance naming the same model sha256 and fingerprint, and
// is validated locally before it is used.
//
// Only configured peers are contacted, with ssh and scp in batch mode, the
// configured key and known_hosts file (host keys are always checked), and
// no user ssh configuration.
package offload

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/trtd/trtd/converter"
	"github.com/trtd/trtd/converter/protocol"
	"github.com/trtd/trtd/daemon/config"
	"github.com/trtd/trtd/daemon/provenance"
	"github.com/trtd/trtd/internal/filehash"
	"github.com/trtd/trtd/internal/safename"
)

// ErrNoPeer is wrapped when no configured peer can build for this device.
var ErrNoPeer = errors.New("no matching offload peer")

// Peer is one configured builder reachable over ssh.
type Peer struct {
	config.PeerConf
	// Trtd is the trtd command on the peer (default "trtd") and Config its
	// config file there ("" = the peer's default).
	Trtd, Config string
}

// Fingerprint is what an engine is tied to.
type Fingerprint struct {
	Builder protocol.Builder `json:"builder"`
	L4T     string           `json:"l4t,omitempty"`
}

// Offloader sends models to peers.
type Offloader struct {
	Peers []Peer
	// Local returns this device's fingerprint; ok is false when it is not
	// known (no builder probed yet).
	Local func() (Fingerprint, bool)
	// Validate loads the fetched engine with the local worker and runs it;
	// nil means local validation is not available (the report says so).
	Validate func(ctx context.Context, engine string) error
	// Timeout bounds one offload (upload, remote build, fetch).
	Timeout time.Duration
	// Poll is how often the peer's outbox is checked (default 5s).
	Poll time.Duration
	// SSH and SCP are the OpenSSH client binaries (default "ssh", "scp").
	SSH, SCP string
	Log      *slog.Logger

	ctl string // ssh control sockets of the running offload
}

// New makes an Offloader for cfg's [offload] peers.
func New(cfg *config.Config, local func() (Fingerprint, bool), log *slog.Logger) *Offloader {
	o := &Offloader{Local: local, Timeout: cfg.Offload.Timeout.D(), Log: log}
	for _, p := range cfg.Offload.Peers {
		o.Peers = append(o.Peers, Peer{PeerConf: p})
	}
	return o
}

func (o *Offloader) log() *slog.Logger {
	if o.Log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o.Log
}

// Offload matches converter.Hooks.Offload: it builds in.Model on a
// matching peer and returns the engine's local path. When it cannot, the
// reason says why, and when no peer matches, which kind of device could
// build this engine.
func (o *Offloader) Offload(ctx context.Context, in converter.Input, st converter.Stage) (string, string, bool) {
	if len(o.Peers) == 0 {
		return "", "offload is not configured ([offload] lists no peers)", false
	}
	local, ok := o.Local()
	if !ok {
		return "", "offload needs this device's TensorRT version and GPU, and no builder was found here", false
	}
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	// One ssh connection per peer for the whole offload (fingerprint,
	// uploads, polling, fetch), in a private directory.
	ctl, err := os.MkdirTemp("", "trtd-ssh-")
	if err == nil {
		o2 := *o
		o2.ctl = ctl
		o = &o2
		defer func() {
			for _, p := range o.Peers {
				// Fails for a peer never connected to (no master to stop).
				if _, err := o.run(context.Background(), orDefault(o.SSH, "ssh"), append(o.sshOpts(p), "-O", "exit", "-p", p.port(), "--", p.target())); err != nil {
					o.log().Debug("ssh control master not stopped", "peer", p.label(), "err", err)
				}
			}
			if err := os.RemoveAll(ctl); err != nil {
				o.log().Warn("ssh control directory not removed", "dir", ctl, "err", err)
			}
		}()
	}
	peer, why := o.pick(ctx, local)
	if peer == nil {
		return "", noPeerReason(local, why), false
	}
	engine, err := o.build(ctx, *peer, local, in, st)
	if err != nil {
		o.log().Warn("offload failed", "peer", peer.label(), "err", err)
		return "", fmt.Sprintf("offload to %s failed: %v", peer.label(), err), false
	}
	return engine, "", true
}

// pick returns the first peer whose fingerprint matches local, or why each
// did not.
func (o *Offloader) pick(ctx context.Context, local Fingerprint) (*Peer, []string) {
	var why []string
	for i := range o.Peers {
		p := &o.Peers[i]
		fp, err := o.remoteFingerprint(ctx, *p)
		if err != nil {
			why = append(why, fmt.Sprintf("%s: %v", p.label(), err))
			continue
		}
		if d := Mismatch(local, fp); d != "" {
			why = append(why, fmt.Sprintf("%s: %s", p.label(), d))
			continue
		}
		o.log().Info("offload peer matches", "peer", p.label(), "fingerprint", fp.Builder.Fingerprint())
		return p, nil
	}
	return nil, why
}

// Mismatch says how a peer's fingerprint differs from local's in what an
// engine is tied to (TensorRT version, compute capability, L4T release);
// "" when it matches.
func Mismatch(local, peer Fingerprint) string {
	var d []string
	if peer.Builder.TensorRT != local.Builder.TensorRT {
		d = append(d, fmt.Sprintf("TensorRT %s (this device: %s)", orUnknown(peer.Builder.TensorRT), orUnknown(local.Builder.TensorRT)))
	}
	if peer.Builder.ComputeCapability != local.Builder.ComputeCapability {
		d = append(d, fmt.Sprintf("compute capability %s, %s (this device: %s)", orUnknown(peer.Builder.ComputeCapability),
			DeviceKind(peer.Builder.ComputeCapability), orUnknown(local.Builder.ComputeCapability)))
	}
	if peer.L4T != local.L4T {
		d = append(d, fmt.Sprintf("L4T %s (this device: %s)", orNone(peer.L4T), orNone(local.L4T)))
	}
	if len(d) == 0 {
		return ""
	}
	return "has " + strings.Join(d, ", ")
}

// DeviceKind names the devices of a compute capability.
func DeviceKind(cc string) string {
	switch cc {
	case "5.3":
		return "a Jetson Nano or TX1"
	case "6.2":
		return "a Jetson TX2"
	case "7.2":
		return "a Jetson Xavier NX or AGX Xavier"
	case "8.7":
		return "a Jetson Orin"
	case "10.1", "11.0":
		return "a Jetson Thor"
	case "":
		return "an unknown GPU"
	}
	return "a discrete or data-centre GPU (compute capability " + cc + "), not a Jetson"
}

func noPeerReason(local Fingerprint, why []string) string {
	b := local.Builder
	need := fmt.Sprintf("%s with TensorRT %s", DeviceKind(b.ComputeCapability), orUnknown(b.TensorRT))
	if local.L4T != "" {
		need += " on L4T " + local.L4T
	}
	return fmt.Sprintf("%v: %s. Only %s can build an engine for this device (an engine is tied to the TensorRT version and the GPU it was built on; an x86 GPU cannot build a Jetson engine)",
		ErrNoPeer, strings.Join(why, "; "), need)
}

// build sends the model to p, waits for its engine and fetches it.
func (o *Offloader) build(ctx context.Context, p Peer, local Fingerprint, in converter.Input, st converter.Stage) (string, error) {
	model := filepath.Join(in.WorkDir, in.Model)
	modelSHA, err := filehash.SHA256(model)
	if err != nil {
		return "", fmt.Errorf("read the model: %w", err)
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand.Read never returns an error (it crashes instead)
	base := strings.TrimSuffix(in.Model, ".onnx")
	remote := "trtd-offload-" + hex.EncodeToString(rnd[:]) + "-" + safe(base)
	log := o.log().With("peer", p.label(), "remote", remote)

	// The settings file first, then the model: its rename into the peer's
	// inbox is what the peer acts on.
	uploads := [][2]string{}
	if side := filepath.Join(in.WorkDir, base+".toml"); fileExists(side) {
		uploads = append(uploads, [2]string{side, remote + ".toml"})
	}
	uploads = append(uploads, [2]string{model, remote + ".onnx"})
	for _, u := range uploads {
		tmp := ".trtd-upload-" + u[1]
		if err := o.scpTo(ctx, p, u[0], path(p.Inbox, tmp)); err != nil {
			return "", fmt.Errorf("upload %s: %w", filepath.Base(u[0]), err)
		}
		if _, err := o.ssh(ctx, p, "mv", "-f", "--", path(p.Inbox, tmp), path(p.Inbox, u[1])); err != nil {
			return "", fmt.Errorf("place %s in the peer's inbox: %w", u[1], err)
		}
	}
	log.Info("model sent to the offload peer; waiting for its engine", "event", "offload_sent")

	// Wait for the peer's report.
	poll := o.Poll
	if poll <= 0 {
		poll = 5 * time.Second
	}
	var rep struct {
		Outcome string `json:"outcome"`
		Reason  string `json:"reason"`
		Engine  *struct {
			File  string `json:"file"`
			Parts []any  `json:"parts"`
		} `json:"engine"`
	}
	for {
		out, err := o.ssh(ctx, p, "cat", "--", path(p.Outbox, remote+".report.json"))
		if err == nil && json.Unmarshal(out, &rep) == nil && rep.Outcome != "" {
			break
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no engine from the peer before the offload timeout: %w", ctx.Err())
		case <-time.After(poll):
		}
	}
	defer func() {
		if _, err := o.ssh(context.WithoutCancel(ctx), p, "rm", "-f", "--", path(p.Outbox, remote+".engine"), path(p.Outbox, remote+".engine.json"),
			path(p.Outbox, remote+".report.json"), path(p.Outbox, remote+".report.md"), path(p.Outbox, remote+".report.html")); err != nil {
			log.Warn("the offloaded build's files not removed from the peer's outbox", "err", err)
		}
	}()
	switch {
	case rep.Outcome != "built" && rep.Outcome != "reused":
		return "", fmt.Errorf("the peer could not build it: %s: %s", rep.Outcome, rep.Reason)
	case rep.Engine == nil || len(rep.Engine.Parts) > 0:
		return "", errors.New("the peer built the model in parts; offload takes single engines only")
	}

	// Fetch engine and provenance, then check them.
	dir := in.EngineDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	engine := filepath.Join(dir, st.Name+".engine")
	prov := filepath.Join(dir, st.Name+".engine.json")
	for _, f := range [][2]string{{remote + ".engine.json", prov}, {remote + ".engine", engine}} {
		if err := o.scpFrom(ctx, p, path(p.Outbox, f[0]), f[1]); err != nil {
			return "", fmt.Errorf("fetch %s: %w", f[0], err)
		}
	}
	if err := Verify(engine, prov, modelSHA, local); err != nil {
		return "", errors.Join(err, removeRefused(engine))
	}
	if o.Validate != nil {
		if err := o.Validate(ctx, engine); err != nil {
			return "", errors.Join(fmt.Errorf("the peer's engine does not run here: %w", err), removeRefused(engine))
		}
	} else {
		log.Warn("the offloaded engine was not validated locally: no local validation is available")
	}
	// Record who built it in the fetched provenance.
	if pv, err := provenance.Read(prov); err == nil {
		pv.Offload = p.label()
		if err := provenance.Write(prov, pv); err != nil {
			// The peer's verified provenance stays, without the label.
			log.Warn("offload peer not recorded in the provenance", "err", err)
		}
	}
	log.Info("offloaded engine fetched and verified", "engine", engine, "event", "offload_done")
	return engine, nil
}

// Verify checks a fetched engine against its provenance: the model sha256
// is the one sent, the fingerprint is this device's, and the engine's
// bytes hash to what the provenance records.
func Verify(engine, prov, modelSHA string, local Fingerprint) error {
	pv, err := provenance.Read(prov)
	if err != nil {
		return fmt.Errorf("the peer's provenance: %w", err)
	}
	if pv.ModelSHA != modelSHA {
		return fmt.Errorf("the peer's engine was built from model sha256 %s, not the one sent (%s)", short(pv.ModelSHA), short(modelSHA))
	}
	if pv.Builder == nil {
		return errors.New("the peer's provenance records no builder")
	}
	fp := Fingerprint{Builder: *pv.Builder, L4T: pv.L4T}
	if pv.L4T == "" {
		fp.L4T = local.L4T // not recorded by the peer: checked when it was picked
	}
	if d := Mismatch(local, fp); d != "" {
		return fmt.Errorf("the peer's engine was built by a builder that %s", d)
	}
	sum, err := filehash.SHA256(engine)
	if err != nil {
		return err
	}
	if sum != pv.EngineSHA {
		return fmt.Errorf("the fetched engine hashes to %s, its provenance says %s", short(sum), short(pv.EngineSHA))
	}
	return nil
}

// remoteFingerprint asks the peer's trtd for its builder fingerprint.
func (o *Offloader) remoteFingerprint(ctx context.Context, p Peer) (Fingerprint, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	args := []string{orDefault(p.Trtd, "trtd"), "rebuild", "--fingerprint"}
	if p.Config != "" {
		args = append(args, "--config", p.Config)
	}
	out, err := o.ssh(ctx, p, args...)
	if err != nil {
		return Fingerprint{}, fmt.Errorf("cannot read its fingerprint: %w", err)
	}
	var fp Fingerprint
	if err := json.Unmarshal(out, &fp); err != nil || fp.Builder.Backend == "" {
		return Fingerprint{}, fmt.Errorf("cannot read its fingerprint: unexpected answer %q", firstLine(out))
	}
	return fp, nil
}

// sshOpts are the options every ssh and scp run gets: no user config, no
// prompts, the configured identity only, host keys checked against the
// configured known_hosts.
func (o *Offloader) sshOpts(p Peer) []string {
	opts := sshOpts(p)
	if o.ctl != "" {
		opts = append(opts, "-o", "ControlMaster=auto", "-o", "ControlPath="+filepath.Join(o.ctl, "%C"), "-o", "ControlPersist=300")
	}
	return opts
}

func sshOpts(p Peer) []string {
	o := []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", "ConnectTimeout=20",
		"-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4", "-o", "LogLevel=ERROR"}
	if p.Key != "" {
		o = append(o, "-o", "IdentitiesOnly=yes", "-i", p.Key)
	}
	if p.KnownHosts != "" {
		o = append(o, "-o", "UserKnownHostsFile="+p.KnownHosts, "-o", "GlobalKnownHostsFile=/dev/null")
	}
	return o
}

func (p Peer) target() string {
	if p.User != "" {
		return p.User + "@" + p.Host
	}
	return p.Host
}

func (p Peer) label() string {
	if p.Name != "" {
		return "peer " + p.Name
	}
	return "peer " + p.Host
}

func (p Peer) port() string {
	if p.Port == 0 {
		return "22"
	}
	return strconv.Itoa(p.Port)
}

// ssh runs a command on p; args are quoted for the remote shell.
func (o *Offloader) ssh(ctx context.Context, p Peer, args ...string) ([]byte, error) {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	cmd := append(o.sshOpts(p), "-p", p.port(), "--", p.target(), strings.Join(q, " "))
	return o.run(ctx, orDefault(o.SSH, "ssh"), cmd)
}

func (o *Offloader) scpTo(ctx context.Context, p Peer, local, remote string) error {
	_, err := o.run(ctx, orDefault(o.SCP, "scp"), append(o.sshOpts(p), "-q", "-P", p.port(), "--", local, scpHost(p)+":"+remote))
	return err
}

// removeRefused removes an engine that failed its checks; a failure to is
// an error of its own, since the engine must not be taken for a good one.
func removeRefused(engine string) error {
	if err := os.Remove(engine); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing the refused engine: %w", err)
	}
	return nil
}

func (o *Offloader) scpFrom(ctx context.Context, p Peer, remote, local string) error {
	tmp := local + ".part"
	if _, err := o.run(ctx, orDefault(o.SCP, "scp"), append(o.sshOpts(p), "-q", "-P", p.port(), "--", scpHost(p)+":"+remote, tmp)); err != nil {
		if rerr := os.Remove(tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			return errors.Join(err, rerr)
		}
		return err
	}
	return os.Rename(tmp, local)
}

func scpHost(p Peer) string {
	h := p.Host
	if strings.Contains(h, ":") {
		h = "[" + h + "]"
	}
	if p.User != "" {
		return p.User + "@" + h
	}
	return h
}

func (o *Offloader) run(ctx context.Context, bin string, args []string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = nil
	t0 := time.Now()
	err := cmd.Run()
	o.log().Debug("ran", "cmd", filepath.Base(bin), "args", strings.Join(args[len(args)-2:], " "), "seconds", time.Since(t0).Seconds(), "err", err)
	if err != nil {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 400 {
			msg = msg[len(msg)-400:]
		}
		if msg != "" {
			return out.Bytes(), fmt.Errorf("%s: %w: %s", filepath.Base(bin), err, msg)
		}
		return out.Bytes(), fmt.Errorf("%s: %w", filepath.Base(bin), err)
	}
	return out.Bytes(), nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:@+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// path joins a remote directory and a file name.
func path(dir, name string) string { return strings.TrimRight(dir, "/") + "/" + name }

// safe keeps a model's base name to characters that survive any shell and
// file system, at most 80 of them.
func safe(s string) string {
	p := safename.Portable(s)
	if len(p) > 80 {
		return p[:80]
	}
	return p
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func orUnknown(s string) string { return orDefault(s, "unknown") }

func orNone(s string) string { return orDefault(s, "none") }
