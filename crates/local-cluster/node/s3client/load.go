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

// tally is what the load saw over the whole run, or over one of its phases.
type tally struct {
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
	FailureTimeline  []string       `json:"failure_timeline,omitempty"`
}

func newTally() tally {
	return tally{
		Failed:          map[string]int{"put": 0, "get": 0, "list": 0},
		FailedByKind:    map[string]int{},
		RawErrorsByKind: map[string]int{},
	}
}

type loadReport struct {
	Command string `json:"command"`
	Workers int    `json:"workers"`
	tally
	LatencyP50Ms  float64 `json:"latency_p50_ms"`
	LatencyP99Ms  float64 `json:"latency_p99_ms"`
	LatencyMaxMs  float64 `json:"latency_max_ms"`
	VerifySeconds float64 `json:"verify_seconds"`
	ObjectBytes   int     `json:"object_bytes"`
	// The run cut at each SIGUSR1 (a test marks the start of each change it makes): a request,
	// an attempt and an acknowledged object count in the phase their request started in.
	Phases []tally `json:"phases,omitempty"`
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

// counter is a tally and the failing stretches it follows.
type counter struct {
	t     *tally
	after stretch
	raw   stretch
}

type loadState struct {
	mu      sync.Mutex
	started time.Time
	report  loadReport
	// The whole run, and its phases: phase i+1 starts at marks[i].
	total     counter
	phases    []*counter
	marks     []time.Time
	acked     map[string]acknowledged
	ackedKeys []string
	latencies []float64
}

// acknowledged is what an acknowledged object must read back as, and the phase its PUT started in.
type acknowledged struct {
	sum   [32]byte
	phase int
}

// phaseAt is the phase a request that started at `at` counts in.
func (st *loadState) phaseAt(at time.Time) int {
	phase := 0
	for _, mark := range st.marks {
		if !at.Before(mark) {
			phase++
		}
	}
	return phase
}

// counting is where a request or attempt that started at `at` counts: the whole run and its phase.
func (st *loadState) counting(at time.Time) [2]*counter {
	return [2]*counter{&st.total, st.phases[st.phaseAt(at)]}
}

// mark starts the next phase.
func (st *loadState) mark(at time.Time) int {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.marks = append(st.marks, at)
	t := newTally()
	st.phases = append(st.phases, &counter{t: &t})
	return len(st.phases) - 1
}

// countingTransport counts every attempt that failed: no answer, or a 5xx.
type countingTransport struct {
	inner http.RoundTripper
	state *loadState
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	begin := time.Now()
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
	for _, c := range t.state.counting(begin) {
		if kind != "" {
			c.t.RawErrors++
			c.t.RawErrorsByKind[kind]++
			c.raw.failed(end)
		} else {
			c.raw.succeeded(end)
		}
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
	st.latencies = append(st.latencies, float64(time.Since(start).Microseconds())/1000)
	end := time.Now()
	line := ""
	if err != nil {
		line = fmt.Sprintf("%.1fs %s: %v", start.Sub(st.started).Seconds(), op, err)
	}
	for _, c := range st.counting(start) {
		c.record(op, end, err, line)
	}
}

func (c *counter) record(op string, end time.Time, err error, line string) {
	c.t.Requests++
	switch op {
	case "put":
		c.t.Puts++
	case "get":
		c.t.Gets++
	case "list":
		c.t.Lists++
	}
	if err == nil {
		c.after.succeeded(end)
		return
	}
	kind := errorKind(err)
	c.t.Failed[op]++
	c.t.FailedByKind[kind]++
	c.after.failed(end)
	if c.t.FirstFailure == "" {
		c.t.FirstFailure = line
	}
	if len(c.t.FailureTimeline) < 20 {
		c.t.FailureTimeline = append(c.t.FailureTimeline, line)
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
			st.acked[key] = acknowledged{sum: sha256.Sum256(data), phase: st.phaseAt(start)}
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
		want := st.acked[readKey].sum
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

// verifyAcknowledged reads every acknowledged object back, with as many readers as the load had
// workers (one by one, the objects of a long run took minutes).
func verifyAcknowledged(client *minio.Client, st *loadState, bucket string, readers, attempts int) {
	started := time.Now()
	keys := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for key := range keys {
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				got, err := get(ctx, client, bucket, key, attempts)
				cancel()
				st.verified(key, got, err)
			}
		}()
	}
	sorted := append([]string(nil), st.ackedKeys...)
	sort.Strings(sorted)
	for _, key := range sorted {
		keys <- key
	}
	close(keys)
	wg.Wait()
	st.report.VerifySeconds = time.Since(started).Seconds()
}

// verified counts what reading an acknowledged object back gave, in the run and in its phase.
func (st *loadState) verified(key string, got []byte, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	var resp minio.ErrorResponse
	object := st.acked[key]
	for _, t := range []*tally{st.total.t, st.phases[object.phase].t} {
		switch {
		case err == nil && sha256.Sum256(got) == object.sum:
			t.Verified++
		case err == nil:
			t.Corrupt++
			if t.FirstLoss == "" {
				t.FirstLoss = key + ": other bytes than were written"
			}
		case errors.As(err, &resp) && resp.Code == "NoSuchKey":
			t.Lost++
			if t.FirstLoss == "" {
				t.FirstLoss = key + ": NoSuchKey"
			}
		default:
			t.Unreadable++
			if t.FirstLoss == "" {
				t.FirstLoss = fmt.Sprintf("%s: %v", key, err)
			}
		}
	}
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
	// Before anything slow: a SIGUSR1 that came before this would end the process.
	marks := make(chan os.Signal, 16)
	signal.Notify(marks, syscall.SIGUSR1)
	defer signal.Stop(marks)
	go func() {
		for range marks {
			phase := st.mark(time.Now())
			fmt.Fprintf(os.Stderr, "s3client load: phase %d starts\n", phase)
		}
	}()
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
	signal.Stop(marks)
	end := time.Now()
	st.mu.Lock()
	st.report.Acknowledged = len(st.ackedKeys)
	for _, object := range st.acked {
		st.phases[object.phase].t.Acknowledged++
	}
	st.total.t.Seconds = end.Sub(st.started).Seconds()
	for _, c := range append([]*counter{&st.total}, st.phases...) {
		c.after.close(end)
		c.raw.close(end)
		c.t.LongestFailingMs = c.after.longest.Milliseconds()
		c.t.LongestRawFailMs = c.raw.longest.Milliseconds()
	}
	for phase, c := range st.phases {
		from, to := st.started, end
		if phase > 0 {
			from = st.marks[phase-1]
		}
		if phase < len(st.marks) {
			to = st.marks[phase]
		}
		c.t.Seconds = to.Sub(from).Seconds()
	}
	sort.Float64s(st.latencies)
	st.report.LatencyP50Ms = percentile(st.latencies, 0.5)
	st.report.LatencyP99Ms = percentile(st.latencies, 0.99)
	st.report.LatencyMaxMs = percentile(st.latencies, 1)
	st.mu.Unlock()
	verifyAcknowledged(client, st, bucket, workers, attempts)
	// Once every count is in: the phases as they ended.
	for _, c := range st.phases {
		st.report.Phases = append(st.report.Phases, *c.t)
	}
	return st.report
}

func newLoadState(workers, size int) *loadState {
	st := &loadState{
		report: loadReport{
			Command:     "load",
			Workers:     workers,
			tally:       newTally(),
			ObjectBytes: size,
		},
		acked: map[string]acknowledged{},
	}
	st.total.t = &st.report.tally
	first := newTally()
	st.phases = []*counter{{t: &first}}
	return st
}
