package main

// The S3 load instrument: workers that write, read and list checksummed objects through a tenant's
// Service while something changes the tenant (a rollout, a certificate renewal, a takeover), and an
// account of what that cost the application:
//
//   - every request goes through minio-go with its standard retries (--retries after the first
//     attempt, exponential backoff with full jitter, on connection errors, 5xx and SlowDown);
//   - a request that still fails is counted by operation and by kind (the S3 error code, the HTTP
//     status, or the connection error), and so is every failed attempt before the retries;
//   - the longest stretch in which requests failed (from the end of the first failed request to
//     the end of the next one that succeeded: while it lasts, no request gets through), after and
//     before retries;
//   - at the end every acknowledged object is read back and compared byte for byte: lost (NoSuchKey),
//     corrupt (other bytes) or unreadable.
//
// It runs until SIGTERM or SIGINT (or --duration), then verifies and prints one JSON line.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
)

// requestTimeout bounds one operation, its retries included, as an application's would: a
// connection to a server whose pod went away can otherwise wait for minutes on packets that never
// come back.
const requestTimeout = 60 * time.Second

// responseHeaderTimeout bounds one attempt's wait for an answer; the SDK retries after it.
const responseHeaderTimeout = 15 * time.Second

type loadReport struct {
	Command  string  `json:"command"`
	Workers  int     `json:"workers"`
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	Puts     int     `json:"puts"`
	Gets     int     `json:"gets"`
	Lists    int     `json:"lists"`
	// Requests that failed after the retries, by operation and by kind.
	Failed       map[string]int `json:"failed"`
	FailedByKind map[string]int `json:"failed_by_kind"`
	// Attempts that failed, retried or not, by kind.
	RawErrors        int            `json:"raw_errors"`
	RawErrorsByKind  map[string]int `json:"raw_errors_by_kind"`
	LongestFailingMs int64          `json:"longest_failing_ms"`
	LongestRawFailMs int64          `json:"longest_raw_failing_ms"`
	Acknowledged     int            `json:"acknowledged"`
	Verified         int            `json:"verified"`
	Lost             int            `json:"lost"`
	Corrupt          int            `json:"corrupt"`
	Unreadable       int            `json:"unreadable"`
	FirstFailure     string         `json:"first_failure,omitempty"`
	FirstLoss        string         `json:"first_loss,omitempty"`
	LatencyP50Ms     float64        `json:"latency_p50_ms"`
	LatencyP99Ms     float64        `json:"latency_p99_ms"`
	LatencyMaxMs     float64        `json:"latency_max_ms"`
	FailureTimeline  []string       `json:"failure_timeline,omitempty"`
	VerifySeconds    float64        `json:"verify_seconds"`
	ObjectBytes      int            `json:"object_bytes"`
}

// stretch follows runs of failures: from the end of the first failed request to the end of the
// next request that succeeded. (By start times, a request that hung for a minute before it failed
// made a minute-long stretch while others succeeded.)
type stretch struct {
	since   time.Time
	longest time.Duration
}

func (s *stretch) failed(at time.Time) {
	if s.since.IsZero() || at.Before(s.since) {
		s.since = at
	}
}

func (s *stretch) succeeded(at time.Time) {
	if !s.since.IsZero() && at.After(s.since) {
		if d := at.Sub(s.since); d > s.longest {
			s.longest = d
		}
		s.since = time.Time{}
	}
}

func (s *stretch) close(at time.Time) {
	s.succeeded(at)
}

type loadState struct {
	mu        sync.Mutex
	started   time.Time
	report    loadReport
	acked     map[string][32]byte
	ackedKeys []string
	after     stretch
	raw       stretch
	latencies []float64
}

// countingTransport counts every attempt that failed: no answer, or a 5xx.
type countingTransport struct {
	inner http.RoundTripper
	state *loadState
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.inner.RoundTrip(req)
	end := time.Now()
	kind := ""
	switch {
	case err != nil:
		kind = errorKind(err)
	case res.StatusCode >= 500:
		kind = fmt.Sprintf("HTTP %d", res.StatusCode)
	}
	t.state.mu.Lock()
	if kind != "" {
		t.state.report.RawErrors++
		t.state.report.RawErrorsByKind[kind]++
		t.state.raw.failed(end)
	} else {
		t.state.raw.succeeded(end)
	}
	t.state.mu.Unlock()
	return res, err
}

// errorKind names a failure the way a person reads it: the S3 code, else the connection error.
func errorKind(err error) string {
	if errors.Is(err, errMismatch) {
		return "checksum mismatch"
	}
	var resp minio.ErrorResponse
	if errors.As(err, &resp) && resp.Code != "" {
		return resp.Code
	}
	msg := err.Error()
	for _, known := range []string{"connection refused", "connection reset", "broken pipe", "EOF", "i/o timeout", "no route to host", "context deadline exceeded", "TLS handshake", "server closed idle connection"} {
		if strings.Contains(msg, known) {
			return known
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return "timeout"
	}
	if len(msg) > 60 {
		msg = msg[:60]
	}
	return msg
}

func loadContent(key string, size int) []byte {
	out := make([]byte, 0, size+sha256.Size)
	seed := sha256.Sum256([]byte("hanzo-s3-operator load " + key))
	for len(out) < size {
		out = append(out, seed[:]...)
		seed = sha256.Sum256(seed[:])
	}
	return out[:size]
}

func (st *loadState) record(op string, start time.Time, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.report.Requests++
	switch op {
	case "put":
		st.report.Puts++
	case "get":
		st.report.Gets++
	case "list":
		st.report.Lists++
	}
	st.latencies = append(st.latencies, float64(time.Since(start).Microseconds())/1000)
	end := time.Now()
	if err == nil {
		st.after.succeeded(end)
		return
	}
	kind := errorKind(err)
	st.report.Failed[op]++
	st.report.FailedByKind[kind]++
	st.after.failed(end)
	line := fmt.Sprintf("%.1fs %s: %v", start.Sub(st.started).Seconds(), op, err)
	if st.report.FirstFailure == "" {
		st.report.FirstFailure = line
	}
	if len(st.report.FailureTimeline) < 20 {
		st.report.FailureTimeline = append(st.report.FailureTimeline, line)
	}
}

// get reads an object whole. The request itself is retried by the client; a body cut off
// mid-response (its server went away after answering) is asked again, as an application would,
// within the same budget of attempts.
func get(ctx context.Context, client *minio.Client, bucket, key string, attempts int) ([]byte, error) {
	var err error
	for attempt := 0; attempt < attempts; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Duration(rand.Int63n(int64(200*time.Millisecond) << attempt)))
		}
		// The request, with the client's retries: its error is the request's.
		body, _, _, err := minio.Core{Client: client}.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			return nil, err
		}
		data, readErr := io.ReadAll(body)
		body.Close()
		if readErr == nil {
			return data, nil
		}
		err = readErr
	}
	return nil, err
}

func worker(ctx context.Context, client *minio.Client, st *loadState, bucket string, id, size, attempts int) {
	rng := rand.New(rand.NewSource(int64(id) + time.Now().UnixNano()))
	for seq := 0; ctx.Err() == nil; seq++ {
		key := fmt.Sprintf("load/w%02d/%06d", id, seq)
		data := loadContent(key, size)
		start := time.Now()
		putCtx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		_, err := client.PutObject(putCtx, bucket, key, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ContentType: "application/octet-stream"})
		cancel()
		st.record("put", start, err)
		if err == nil {
			st.mu.Lock()
			st.acked[key] = sha256.Sum256(data)
			st.ackedKeys = append(st.ackedKeys, key)
			st.mu.Unlock()
		}
		// Read back what was just acknowledged, or an older object: a GET that answers NoSuchKey
		// for an acknowledged object is a failure.
		st.mu.Lock()
		readKey := ""
		if n := len(st.ackedKeys); n > 0 {
			readKey = st.ackedKeys[n-1-rng.Intn(min(n, 50))]
		}
		want := st.acked[readKey]
		st.mu.Unlock()
		if readKey != "" {
			start = time.Now()
			getCtx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			got, err := get(getCtx, client, bucket, readKey, attempts)
			cancel()
			if err == nil && sha256.Sum256(got) != want {
				err = errMismatch
			}
			st.record("get", start, err)
		}
		if seq%10 == 9 {
			start = time.Now()
			var listErr error
			listCtx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			for obj := range client.ListObjects(listCtx, bucket, minio.ListObjectsOptions{Prefix: fmt.Sprintf("load/w%02d/", id), MaxKeys: 100}) {
				if obj.Err != nil {
					listErr = obj.Err
					break
				}
			}
			cancel()
			st.record("list", start, listErr)
		}
	}
}

// verifyAcknowledged reads every acknowledged object back.
func verifyAcknowledged(client *minio.Client, st *loadState, bucket string, attempts int) {
	started := time.Now()
	keys := append([]string(nil), st.ackedKeys...)
	sort.Strings(keys)
	for _, key := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
		got, err := get(ctx, client, bucket, key, attempts)
		cancel()
		var resp minio.ErrorResponse
		switch {
		case err == nil && sha256.Sum256(got) == st.acked[key]:
			st.report.Verified++
		case err == nil:
			st.report.Corrupt++
			if st.report.FirstLoss == "" {
				st.report.FirstLoss = key + ": other bytes than were written"
			}
		case errors.As(err, &resp) && resp.Code == "NoSuchKey":
			st.report.Lost++
			if st.report.FirstLoss == "" {
				st.report.FirstLoss = key + ": NoSuchKey"
			}
		default:
			st.report.Unreadable++
			if st.report.FirstLoss == "" {
				st.report.FirstLoss = fmt.Sprintf("%s: %v", key, err)
			}
		}
	}
	st.report.VerifySeconds = time.Since(started).Seconds()
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

// runLoad is the `load` command. The client's own retries are set by its caller.
func runLoad(client *minio.Client, st *loadState, bucket string, workers, size, attempts int, duration time.Duration) loadReport {
	for i := 0; i < 30; i++ {
		err := client.MakeBucket(context.Background(), bucket, minio.MakeBucketOptions{})
		if err == nil {
			break
		}
		if exists, e := client.BucketExists(context.Background(), bucket); e == nil && exists {
			break
		}
		time.Sleep(time.Second)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, duration)
	defer cancel()
	st.mu.Lock()
	st.started = time.Now()
	st.mu.Unlock()
	fmt.Fprintf(os.Stderr, "s3client load: %d workers on bucket %s\n", workers, bucket)
	var wg sync.WaitGroup
	for id := 0; id < workers; id++ {
		wg.Add(1)
		go func(id int) {
			defer wg.Done()
			worker(ctx, client, st, bucket, id, size, attempts)
		}(id)
	}
	<-ctx.Done()
	wg.Wait()
	end := time.Now()
	st.mu.Lock()
	st.after.close(end)
	st.raw.close(end)
	st.report.Seconds = end.Sub(st.started).Seconds()
	st.report.LongestFailingMs = st.after.longest.Milliseconds()
	st.report.LongestRawFailMs = st.raw.longest.Milliseconds()
	st.report.Acknowledged = len(st.ackedKeys)
	sort.Float64s(st.latencies)
	st.report.LatencyP50Ms = percentile(st.latencies, 0.5)
	st.report.LatencyP99Ms = percentile(st.latencies, 0.99)
	st.report.LatencyMaxMs = percentile(st.latencies, 1)
	st.mu.Unlock()
	verifyAcknowledged(client, st, bucket, attempts)
	return st.report
}

func newLoadState(workers, size int) *loadState {
	return &loadState{
		report: loadReport{
			Command:         "load",
			Workers:         workers,
			ObjectBytes:     size,
			Failed:          map[string]int{"put": 0, "get": 0, "list": 0},
			FailedByKind:    map[string]int{},
			RawErrorsByKind: map[string]int{},
		},
		acked: map[string][32]byte{},
	}
}
