// Command s3client is the S3 client of the real-node tests: it talks to a tenant the way an
// application would (minio-go, HTTPS verified against a given CA) and prints one JSON line per
// command with what it did and measured.
//
//	s3client [flags] make-bucket BUCKET
//	s3client [flags] put BUCKET COUNT        objects obj-0000.. of sizes from 1 KiB to 6 MiB (multipart)
//	s3client [flags] verify BUCKET COUNT     reads every object back and compares it byte for byte
//	                                         (a GET cut off mid-body is asked again, up to 3 times)
//	s3client [flags] read-loop BUCKET COUNT  verify, again and again, until --duration has passed
//	s3client [flags] load BUCKET             --workers writing, reading and listing checksummed
//	                                         objects until SIGTERM (or --duration), then every
//	                                         acknowledged object read back (load.go)
//
// Credentials come from S3_ACCESS_KEY and S3_SECRET_KEY (never from arguments, which other users of
// the machine can read), the server's address from --endpoint host:port. --server-name sets the host
// name the certificate must carry (and the Host header); --resolve-to sends the connection to
// another address, as curl's --resolve does (a Service's ClusterIP, say). The --ca file is read
// again when it changes, as a client following a published trust bundle does (a rotation of the
// operator CA: the tests replace the file with the tenant's new ca.crt).
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// objectSize makes every tenth object large enough for a multipart upload (part size 5 MiB).
func objectSize(i int) int {
	if i%10 == 9 {
		return 6<<20 + i
	}
	return 1024 * (1 + i%37)
}

// content is deterministic, so verify needs nothing but the index to know what to expect.
func content(i int) []byte {
	size := objectSize(i)
	out := make([]byte, 0, size+sha256.Size)
	seed := sha256.Sum256([]byte("hanzo-s3-operator object " + strconv.Itoa(i)))
	for len(out) < size {
		out = append(out, seed[:]...)
		seed = sha256.Sum256(seed[:])
	}
	return out[:size]
}

func name(i int) string { return fmt.Sprintf("obj-%04d", i) }

type report struct {
	Command    string  `json:"command"`
	Objects    int     `json:"objects"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	MiBPerSec  float64 `json:"mib_per_s"`
	Failures   int     `json:"failures"`
	Retries    int     `json:"retries"`
	Rounds     int     `json:"rounds,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

func main() {
	endpoint := flag.String("endpoint", "", "the server's host:port (required)")
	serverName := flag.String("server-name", "", "host name to verify the certificate against (default: the endpoint's host)")
	resolveTo := flag.String("resolve-to", "", "connect to this IP address instead of resolving the endpoint's host")
	caFile := flag.String("ca", "", "PEM file of the CA that signed the server's certificate (HTTPS); empty: plain HTTP")
	duration := flag.Duration("duration", 30*time.Second, "how long read-loop runs")
	timeout := flag.Duration("timeout", 10*time.Minute, "a bound on the whole command")
	workers := flag.Int("workers", 4, "load: concurrent workers")
	objectSize := flag.Int("object-size", 64<<10, "load: bytes per object")
	retries := flag.Int("retries", 3, "load: retries of a failed request after its first attempt (the SDK's standard backoff)")
	flag.Parse()
	if *endpoint == "" || flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: s3client --endpoint HOST:PORT [--ca FILE] [--server-name NAME] [--resolve-to IP] make-bucket|put|verify|read-loop|load BUCKET [COUNT]")
		os.Exit(2)
	}
	access, secret := os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY")
	if access == "" || secret == "" {
		fmt.Fprintln(os.Stderr, "s3client: set S3_ACCESS_KEY and S3_SECRET_KEY")
		os.Exit(2)
	}
	host, port, err := net.SplitHostPort(*endpoint)
	if err != nil {
		fail("endpoint: %v", err)
	}
	if *serverName != "" {
		host = *serverName
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if *resolveTo != "" {
			addr = net.JoinHostPort(*resolveTo, port)
		}
		return dialer.DialContext(ctx, network, addr)
	}
	if *caFile != "" {
		roots := &reloadingRoots{path: *caFile}
		if _, err := roots.get(); err != nil {
			fail("CA: %v", err)
		}
		// Go verifies against a fixed pool: the chain is verified here instead, against the
		// file as it is at each handshake.
		transport.TLSClientConfig = &tls.Config{
			InsecureSkipVerify: true,
			MinVersion:         tls.VersionTLS12,
			ServerName:         host,
			VerifyConnection: func(cs tls.ConnectionState) error {
				return roots.verify(cs, host)
			},
		}
	}
	options := &minio.Options{
		Creds:     credentials.NewStaticV4(access, secret, ""),
		Secure:    *caFile != "",
		Transport: transport,
		Region:    "us-east-1",
	}
	var load *loadState
	if flag.Arg(0) == "load" {
		load = newLoadState(*workers, *objectSize)
		transport.ResponseHeaderTimeout = responseHeaderTimeout
		options.Transport = countingTransport{inner: transport, state: load}
		options.MaxRetries = *retries + 1
	}
	client, err := minio.New(net.JoinHostPort(host, port), options)
	if err != nil {
		fail("client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	command, bucket := flag.Arg(0), flag.Arg(1)
	count := 0
	if flag.NArg() > 2 {
		if count, err = strconv.Atoi(flag.Arg(2)); err != nil {
			fail("COUNT: %v", err)
		}
	}
	r := report{Command: command}
	started := time.Now()
	switch command {
	case "make-bucket":
		err := client.MakeBucket(ctx, bucket, minio.MakeBucketOptions{})
		if err != nil {
			if exists, e := client.BucketExists(ctx, bucket); e != nil || !exists {
				fail("make-bucket %s: %v", bucket, err)
			}
		}
	case "put":
		for i := 0; i < count; i++ {
			data := content(i)
			_, err := client.PutObject(ctx, bucket, name(i), bytes.NewReader(data), int64(len(data)),
				minio.PutObjectOptions{ContentType: "application/octet-stream", PartSize: 5 << 20})
			if err != nil {
				fail("put %s/%s: %v", bucket, name(i), err)
			}
			r.Objects++
			r.Bytes += int64(len(data))
		}
	case "verify":
		r.Objects, r.Bytes, r.Failures, r.Retries, r.FirstError = verify(ctx, client, bucket, count)
		if r.Failures > 0 {
			emit(r, started)
			os.Exit(1)
		}
	case "load":
		out, _ := json.Marshal(runLoad(client, load, bucket, *workers, *objectSize, *retries+1, *duration))
		fmt.Println(string(out))
		return
	case "read-loop":
		end := time.Now().Add(*duration)
		for time.Now().Before(end) && ctx.Err() == nil {
			objects, n, failures, retries, first := verify(ctx, client, bucket, count)
			r.Objects += objects
			r.Bytes += n
			r.Failures += failures
			r.Retries += retries
			if r.FirstError == "" {
				r.FirstError = first
			}
			r.Rounds++
		}
	default:
		fail("unknown command %q", command)
	}
	emit(r, started)
}

// errMismatch marks an object that came back with other bytes than put wrote: never retried.
var errMismatch = errors.New("content differs from what was written")

// readAttempts bounds the GETs of one object. A GET whose body breaks off (the server that served
// it was killed mid-response) is asked again, as an application would; minio-go retries a request
// that got no response, but never a body cut short.
const readAttempts = 3

// verify reads objects 0..count-1 and compares each with what put wrote.
func verify(ctx context.Context, client *minio.Client, bucket string, count int) (objects int, n int64, failures, retries int, first string) {
	read := func(i int) error {
		obj, err := client.GetObject(ctx, bucket, name(i), minio.GetObjectOptions{})
		if err != nil {
			return err
		}
		defer obj.Close()
		got, err := io.ReadAll(obj)
		if err != nil {
			return err
		}
		n += int64(len(got))
		if !bytes.Equal(got, content(i)) {
			return errMismatch
		}
		return nil
	}
	for i := 0; i < count; i++ {
		err := read(i)
		for attempt := 1; attempt < readAttempts && err != nil && !errors.Is(err, errMismatch) && ctx.Err() == nil; attempt++ {
			retries++
			time.Sleep(200 * time.Millisecond)
			err = read(i)
		}
		objects++
		if err != nil {
			failures++
			if first == "" {
				first = fmt.Sprintf("%s/%s: %v", bucket, name(i), err)
			}
		}
	}
	return objects, n, failures, retries, first
}

func emit(r report, started time.Time) {
	r.Seconds = time.Since(started).Seconds()
	if r.Seconds > 0 {
		r.MiBPerSec = float64(r.Bytes) / (1 << 20) / r.Seconds
	}
	out, _ := json.Marshal(r)
	fmt.Println(string(out))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "s3client: "+format+"\n", args...)
	os.Exit(1)
}

// reloadingRoots is the CA file, read again whenever its modification time changes.
type reloadingRoots struct {
	path string
	mu   sync.Mutex
	mod  time.Time
	pool *x509.CertPool
}

func (r *reloadingRoots) get() (*x509.CertPool, error) {
	st, err := os.Stat(r.path)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pool != nil && st.ModTime().Equal(r.mod) {
		return r.pool, nil
	}
	pem, err := os.ReadFile(r.path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", r.path)
	}
	r.pool, r.mod = pool, st.ModTime()
	return pool, nil
}

// verify checks the server's chain and name against the CAs of the file now.
func (r *reloadingRoots) verify(cs tls.ConnectionState, host string) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("the server presented no certificate")
	}
	roots, err := r.get()
	if err != nil {
		return fmt.Errorf("CA: %w", err)
	}
	opts := x509.VerifyOptions{Roots: roots, DNSName: host, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err = cs.PeerCertificates[0].Verify(opts)
	return err
}
