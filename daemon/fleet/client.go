package fleet

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/errcode"
)

// Options configure a Client (from the [fleet] section).
type Options struct {
	// Registry is an OCI repository: "registry.lan:5000/trtd/engines".
	Registry string
	// Credentials is a docker-style config.json with auths for the
	// registry; it must be readable by its owner only.
	Credentials string
	// CA is an extra PEM bundle trusted beside the system's.
	CA string
	// PlainHTTP talks http:// (a registry on a trusted network only).
	PlainHTTP bool
	// Timeout bounds connecting, each response's headers and every stall
	// of a transfer; a transfer that keeps moving is never cut.
	Timeout time.Duration
	// MaxEngine is the largest engine layer accepted (default 16 GiB).
	MaxEngine int64
	// Tool names the software in what is pushed ("trtd 1.2.0").
	Tool string
}

// Client talks to one repository of an OCI registry.
type Client struct {
	opt  Options
	repo *remote.Repository
}

// New checks the options (the credentials file's permissions, the CA
// bundle) and returns a client; it makes no request.
func New(o Options) (*Client, error) {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxEngine <= 0 {
		o.MaxEngine = 16 << 30
	}
	ref, err := registry.ParseReference(o.Registry)
	if err != nil || ref.Reference != "" {
		return nil, fmt.Errorf("%w: registry %q is not a repository like host:5000/trtd/engines", ErrConfig, o.Registry)
	}
	repo := &remote.Repository{Reference: ref, PlainHTTP: o.PlainHTTP, SkipReferrersGC: true}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   o.Timeout,
		ResponseHeaderTimeout: o.Timeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   4,
		TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
	}
	if o.CA != "" {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		pem, err := os.ReadFile(o.CA)
		if err != nil {
			return nil, fmt.Errorf("%w: ca: %v", ErrConfig, err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%w: ca %s: no PEM certificate in it", ErrConfig, o.CA)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	ac := &auth.Client{Client: &http.Client{Transport: tr}, Cache: auth.NewCache(), Header: http.Header{}}
	ac.Header.Set("User-Agent", strings.ReplaceAll(orDefault(o.Tool, "trtd"), " ", "/"))
	if o.Credentials != "" {
		if err := checkSecret(o.Credentials); err != nil {
			return nil, err
		}
		store, err := credentials.NewFileStore(o.Credentials)
		if err != nil {
			return nil, fmt.Errorf("%w: credentials %s: %v", ErrConfig, o.Credentials, err)
		}
		ac.Credential = credentials.Credential(store)
	}
	repo.Client = ac
	return &Client{opt: o, repo: repo}, nil
}

// checkSecret refuses a credentials file that anyone but its owner can
// read, or that a user other than the daemon's owns: the worker (an
// unprivileged user) must never be able to read it.
func checkSecret(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%w: credentials: %v", ErrConfig, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: credentials %s has mode %04o; it must be readable by its owner only (chmod 600)", ErrConfig, path, fi.Mode().Perm())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%w: credentials %s belongs to uid %d, not to the daemon's uid %d", ErrConfig, path, st.Uid, os.Geteuid())
	}
	return nil
}

// Registry is the repository the client talks to.
func (c *Client) Registry() string { return c.opt.Registry }

// classify wraps a transport or registry error in ErrUnavailable (or
// ErrNotFound), keeping the registry's own words.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrRefused) || errors.Is(err, ErrMismatch) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrUnavailable) {
		return err
	}
	if errors.Is(err, errdef.ErrNotFound) {
		return fmt.Errorf("%s: %w", op, ErrNotFound)
	}
	if errors.Is(err, auth.ErrBasicCredentialNotFound) {
		return fmt.Errorf("%s: %w: the registry wants credentials and [fleet] credentials has none for it: %w", op, ErrUnavailable, err)
	}
	var re *errcode.ErrorResponse
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s: %w: the registry refused the credentials (HTTP %d): %w", op, ErrUnavailable, re.StatusCode, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s: %w: %w", op, ErrNotFound, err)
		}
	}
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}

// fetchManifest reads the manifest under ref (a tag or digest), refusing
// one larger than maxManifestBytes or than its declared size, or whose
// content does not hash to its digest.
func (c *Client) fetchManifest(ctx context.Context, ref string) (desc ocispec.Descriptor, m *ocispec.Manifest, err error) {
	err = retryRace(ctx, serverError, func() error {
		desc, m, err = c.fetchManifestOnce(ctx, ref)
		return err
	})
	return desc, m, err
}

// raceTries bounds how often a request is repeated while the registry
// answers as it does during another client's write of the same path.
const raceTries = 5

// retryRace runs op until it succeeds, fails in a way transient does not
// forgive, or has failed raceTries times; it waits 50, 100, 200, 400 ms
// between tries (about 0.75 s in all).
//
// Why: distribution (the registry fleets and the tests run; v2.8.3
// registry/storage/driver/filesystem/driver.go:135-147 and :180-188)
// rewrites a link file in place: PutContent opens it, truncates it to
// zero bytes and then writes the digest. A concurrent reader of that
// link sees an empty file, digest.Parse fails (storage/blobstore.go:147)
// and the registry answers 500 to a HEAD or GET of that blob or tag
// (handlers/blob.go:64), or 400 MANIFEST_BLOB_UNKNOWN + DIGEST_INVALID to
// a manifest PUT that references that blob (storage/ocimanifesthandler.go
// :114-124, handlers/manifests.go:362-369). Two devices that push the
// same artifact, or merely share a blob (the empty config every trtd
// artifact has), rewrite the same links at the same moment. The window
// is one small write; the registry's answer a moment later is the truth.
func retryRace(ctx context.Context, transient func(error) bool, op func() error) error {
	for try := 0; ; try++ {
		err := op()
		if err == nil || try == raceTries-1 || !transient(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(50<<try) * time.Millisecond):
		}
	}
}

// serverError is a registry's 5xx answer.
func serverError(err error) bool {
	var re *errcode.ErrorResponse
	return errors.As(err, &re) && re.StatusCode >= 500
}

// blobUnknown is a manifest PUT refused because the registry could not
// find (or, mid-rewrite, read) a blob it references.
func blobUnknown(err error) bool {
	var re *errcode.ErrorResponse
	if !errors.As(err, &re) {
		return false
	}
	for _, e := range re.Errors {
		if e.Code == errcode.ErrorCodeManifestBlobUnknown || e.Code == errcode.ErrorCodeBlobUnknown {
			return true
		}
	}
	return false
}

func (c *Client) fetchManifestOnce(ctx context.Context, ref string) (ocispec.Descriptor, *ocispec.Manifest, error) {
	ctx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
	defer cancel()
	desc, rc, err := c.repo.Manifests().FetchReference(ctx, ref)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("no answer within the timeout of %s: %w", c.opt.Timeout, err)
	}
	if err != nil {
		return desc, nil, classify("fetch manifest "+ref, err)
	}
	defer func() { _ = rc.Close() }() // a response body only read from
	if desc.Size > maxManifestBytes {
		return desc, nil, fmt.Errorf("%w: manifest %s declares %d bytes (at most %d)", ErrRefused, ref, desc.Size, maxManifestBytes)
	}
	b, err := io.ReadAll(io.LimitReader(rc, desc.Size+1))
	if err != nil {
		return desc, nil, classify("read manifest "+ref, err)
	}
	if int64(len(b)) != desc.Size {
		return desc, nil, fmt.Errorf("%w: manifest %s is %d bytes, declared %d", ErrRefused, ref, len(b), desc.Size)
	}
	if desc.Digest != "" {
		if err := desc.Digest.Validate(); err != nil || desc.Digest.Algorithm() != digest.SHA256 || digest.FromBytes(b) != desc.Digest {
			return desc, nil, fmt.Errorf("%w: manifest %s does not hash to its digest %.80s", ErrRefused, ref, desc.Digest)
		}
	}
	desc.Digest = digest.FromBytes(b)
	m, err := parseManifest(ref, b)
	return desc, m, err
}

// parseManifest decodes an untrusted manifest and refuses what is not a
// trtd engine or carries hostile annotations.
func parseManifest(ref string, b []byte) (*ocispec.Manifest, error) {
	var m ocispec.Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: manifest %s: %v", ErrRefused, ref, err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest {
		return nil, fmt.Errorf("%w: manifest %s has media type %.80q, not an OCI image manifest", ErrRefused, ref, m.MediaType)
	}
	if m.ArtifactType != ArtifactType && m.Config.MediaType != ArtifactType {
		return nil, fmt.Errorf("%w: %s is not a trtd engine (artifact type %.80q)", ErrRefused, ref, m.ArtifactType)
	}
	if err := checkAnnotations(m.Annotations); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", ref, err)
	}
	return &m, nil
}

// layers picks the engine, provenance and report out of m and checks
// their declared sizes and digests.
func (c *Client) layers(m *ocispec.Manifest) (engine, prov, rep *ocispec.Descriptor, err error) {
	if len(m.Layers) > 8 {
		return nil, nil, nil, fmt.Errorf("%w: %d layers (a trtd engine has 3)", ErrRefused, len(m.Layers))
	}
	for i := range m.Layers {
		l := &m.Layers[i]
		if err := l.Digest.Validate(); err != nil || l.Digest.Algorithm() != digest.SHA256 {
			return nil, nil, nil, fmt.Errorf("%w: layer %d has digest %.80q (want sha256)", ErrRefused, i, l.Digest)
		}
		var max int64
		var slot **ocispec.Descriptor
		switch l.MediaType {
		case MediaEngine:
			slot, max = &engine, c.opt.MaxEngine
		case MediaProvenance:
			slot, max = &prov, maxProvenanceSize
		case MediaReport:
			slot, max = &rep, maxReportSize
		default:
			continue
		}
		if *slot != nil {
			return nil, nil, nil, fmt.Errorf("%w: two %s layers", ErrRefused, l.MediaType)
		}
		if l.Size < 0 || l.Size > max {
			return nil, nil, nil, fmt.Errorf("%w: %s layer declares %d bytes (at most %d)", ErrRefused, l.MediaType, l.Size, max)
		}
		*slot = l
	}
	if engine == nil || prov == nil {
		return nil, nil, nil, fmt.Errorf("%w: the artifact lacks its engine or provenance layer", ErrRefused)
	}
	return engine, prov, rep, nil
}

// stallGuard cancels a transfer when no byte moved for d.
type stallGuard struct {
	r io.Reader
	t *time.Timer
	d time.Duration
}

func (s *stallGuard) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.t.Reset(s.d)
	}
	return n, err
}

// withStall returns a context cancelled after d without progress, and a
// wrapper for the reader whose progress counts.
func withStall(ctx context.Context, d time.Duration) (context.Context, func(io.Reader) io.Reader, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	t := time.AfterFunc(d, func() { cancel(fmt.Errorf("no progress for %s", d)) })
	wrap := func(r io.Reader) io.Reader { return &stallGuard{r: r, t: t, d: d} }
	return ctx, wrap, func() { t.Stop(); cancel(nil) }
}

// download streams the blob desc into a new temporary file in dir,
// checking its size and sha256 as it goes; it holds 256 KiB of it in
// memory at most. The file is removed on any error.
func (c *Client) download(ctx context.Context, desc ocispec.Descriptor, dir, name string) (string, error) {
	ctx, wrap, stop := withStall(ctx, c.opt.Timeout)
	defer stop()
	rc, err := c.repo.Blobs().Fetch(ctx, desc)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return "", classify("fetch "+name, err)
	}
	defer func() { _ = rc.Close() }() // a response body only read from
	f, err := os.CreateTemp(dir, tempPrefix+name+"-")
	if err != nil {
		return "", err
	}
	ok := false
	defer func() {
		// The download failed and its error is returned; the temporary
		// file is clean-up (one a failed Remove leaves is discarded as a
		// temporary by the next pull).
		if !ok {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	h := digest.SHA256.Digester()
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h.Hash()), wrap(io.LimitReader(rc, desc.Size+1)), buf)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		return "", classify("download "+name, err)
	}
	if n != desc.Size {
		return "", fmt.Errorf("%w: %s is %d bytes, the manifest declares %d", ErrRefused, name, n, desc.Size)
	}
	if h.Digest() != desc.Digest {
		return "", fmt.Errorf("%w: %s hashes to %s, the manifest says %s", ErrRefused, name, h.Digest(), desc.Digest)
	}
	// No fsync here: the file is temporary, and whoever publishes it
	// writes it durably (the outbox copies and fsyncs); a crash leaves a
	// temporary file that is discarded.
	if err := f.Close(); err != nil {
		return "", err
	}
	ok = true
	return f.Name(), nil
}

// fileDesc describes a local file as a layer, hashing it by streaming.
func fileDesc(path, mediaType string) (ocispec.Descriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer func() { _ = f.Close() }() // read-only; read errors come from io.Copy
	h := digest.SHA256.Digester()
	n, err := io.Copy(h.Hash(), f)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("hash %s: %w", path, err)
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: h.Digest(), Size: n}, nil
}

// pushBlob uploads path as desc unless the registry has it (streamed from
// disk; the registry checks the digest).
func (c *Client) pushBlob(ctx context.Context, desc ocispec.Descriptor, path string) error {
	var exists bool
	err := retryRace(ctx, serverError, func() error {
		ectx, cancel := context.WithTimeout(ctx, c.opt.Timeout)
		defer cancel()
		var err error
		exists, err = c.repo.Exists(ectx, desc)
		return err
	})
	if err != nil {
		return classify("check blob", err)
	}
	if exists {
		return nil
	}
	var r io.Reader
	if path == "" {
		r = bytes.NewReader(ocispec.DescriptorEmptyJSON.Data)
	} else {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // read-only; the upload reports read errors
		r = f
	}
	ctx, wrap, stop := withStall(ctx, c.opt.Timeout)
	defer stop()
	if err := c.repo.Blobs().Push(ctx, desc, wrap(r)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return classify("push blob", err)
	}
	return nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func digestOf(b []byte) digest.Digest { return digest.FromBytes(b) }
