// Package registrytest runs Debian's docker-registry (the distribution
// project's registry server) for tests and benchmarks: on 127.0.0.1 with
// a random port, TLS from a throw-away CA and htpasswd basic auth, all
// generated here. It is a real server, not a test double.
package registrytest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Binary is the registry server Debian's docker-registry package installs.
const Binary = "docker-registry"

// User and Password are the htpasswd account.
const (
	User     = "fleet"
	Password = "s3cret-fleet-pass"
)

// Server is a running registry.
type Server struct {
	Addr    string // 127.0.0.1:port
	Dir     string
	Storage string // the registry's filesystem root
	CA      string // PEM of the CA that signed the server's certificate
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd exited
	exitErr error
}

// Repository is the OCI repository name tests use under the server.
func (s *Server) Repository(name string) string { return s.Addr + "/" + name }

// Available says why the registry cannot be run here ("" when it can).
func Available() string {
	if _, err := exec.LookPath(Binary); err != nil {
		return "Debian's docker-registry is not installed (apt-get install docker-registry)"
	}
	return ""
}

// Start runs a registry with everything under dir; Stop ends it.
func Start(dir string) (*Server, error) {
	if why := Available(); why != "" {
		return nil, errors.New(why)
	}
	s := &Server{Dir: dir, Storage: filepath.Join(dir, "storage")}
	if err := s.writeSecrets(); err != nil {
		return nil, err
	}
	var last error
	for try := 0; try < 5; try++ {
		if last = s.start(); last == nil {
			return s, nil
		}
	}
	return nil, last
}

// T starts a registry for a test, skipping it with the reason when the
// package is missing or the test is -short, and stops it at cleanup.
func T(t testing.TB) *Server {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: no registry server")
	}
	if why := Available(); why != "" {
		t.Skip(why)
	}
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }() // only asked for its port
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) start() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	s.Addr = fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
  tls:
    certificate: %s
    key: %s
auth:
  htpasswd:
    realm: trtd-test
    path: %s
`, s.Storage, s.Addr, filepath.Join(s.Dir, "server.crt"), filepath.Join(s.Dir, "server.key"), filepath.Join(s.Dir, "htpasswd"))
	path := filepath.Join(s.Dir, "config.yml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(s.Dir, "registry.log"))
	if err != nil {
		return err
	}
	// The registry writes the log through its own descriptor; closing
	// ours loses nothing of it.
	defer func() { _ = log.Close() }()
	s.cmd = exec.Command(Binary, "serve", path)
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.watch()
	return s.waitReady()
}

// waitReady polls /v2/ until the server answers (401: auth is on) or
// exits.
func (s *Server) waitReady() error {
	pool := x509.NewCertPool()
	pem, _ := os.ReadFile(s.CA)
	pool.AppendCertsFromPEM(pem)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer c.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := c.Get("https://" + s.Addr + "/v2/")
		if err == nil {
			_ = resp.Body.Close() // only the status is wanted
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			return fmt.Errorf("registry /v2/ answered %s", resp.Status)
		}
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.Dir, "registry.log"))
			return fmt.Errorf("docker-registry exited (%v): %s", s.exitErr, strings.TrimSpace(string(log)))
		case <-ctx.Done():
			s.Stop()
			return fmt.Errorf("docker-registry did not answer on %s: %v", s.Addr, err)
		case <-tick.C:
		}
	}
}

func (s *Server) watch() {
	done, cmd := make(chan struct{}), s.cmd
	s.done = done
	go func() { s.exitErr = cmd.Wait(); close(done) }()
}

// Stop kills the server and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	// Fails only when the registry has exited already, which <-s.done
	// then returns at once.
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart stops the server and starts it again on the same address and
// storage.
func (s *Server) Restart() error {
	s.Stop()
	addr := s.Addr
	log, err := os.OpenFile(filepath.Join(s.Dir, "registry.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer func() { _ = log.Close() }() // as in Start: the registry holds its own descriptor
	s.cmd = exec.Command(Binary, "serve", filepath.Join(s.Dir, "config.yml"))
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	s.watch()
	s.Addr = addr
	return s.waitReady()
}

// Blob is the path of the stored blob with the given sha256 hex digest.
func (s *Server) Blob(hex string) string {
	return filepath.Join(s.Storage, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// WriteCredentials writes a docker config.json for addr with user and
// password to path (mode 0600).
func WriteCredentials(path, addr, user, password string) error {
	cfg := map[string]any{"auths": map[string]any{addr: map[string]string{
		"auth": base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}}}
	b, _ := json.Marshal(cfg)
	return os.WriteFile(path, b, 0o600)
}

func (s *Server) writeSecrets() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "trtd test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	s.CA = filepath.Join(s.Dir, "ca.crt")
	hash, err := bcrypt.GenerateFromPassword([]byte(Password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	files := map[string][]byte{
		"ca.crt":     pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		"server.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		"server.key": pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}),
		"htpasswd":   []byte(User + ":" + string(hash) + "\n"),
	}
	for n, b := range files {
		if err := os.WriteFile(filepath.Join(s.Dir, n), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// Creds writes the account's credentials for this server into dir and
// returns the path.
func (s *Server) Creds(dir, password string) (string, error) {
	p := filepath.Join(dir, "fleet-auth.json")
	return p, WriteCredentials(p, s.Addr, User, password)
}

// LayerLink is the path of the link file by which repository repo (e.g.
// "trtd/engines") holds the blob with the given sha256 hex digest; the
// registry reads it for every HEAD or GET of the blob and for every blob
// a manifest PUT references.
func (s *Server) LayerLink(repo, hex string) string {
	return filepath.Join(s.Storage, "docker", "registry", "v2", "repositories", filepath.FromSlash(repo), "_layers", "sha256", hex, "link")
}
