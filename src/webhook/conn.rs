//! Read deadlines of an HTTP/1.1 connection: a client that has started a request must finish its
//! headers within `header_timeout`, and a connection idle between requests is closed after
//! `idle_timeout`. hyper's own `header_read_timeout` starts when the connection becomes ready for a
//! request, so one timer cannot be both "long while idle" (the apiserver reuses connections idle for
//! up to 90 s) and "short while a request head trickles in" (slow clients). This wrapper sits between
//! TLS and hyper and knows which phase the connection is in: it sees the bytes, and the service
//! tells it when a request's headers arrived and when its answer is ready.
//!
//! While a request is being answered (its body read, the review judged) there is no read deadline
//! here: the handler's per-request deadline covers that.
//!
//! HTTP/2 (the apiserver's choice when offered) multiplexes requests and pings on one connection,
//! so bytes say nothing there; its [`Clock`] only counts requests in progress, and the server closes
//! the connection gracefully (GOAWAY) once none has been in progress for `idle_timeout`.

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests (or before the first): waiting for the first byte of a request.
    Idle,
    /// Some bytes of a request head arrived; hyper has not parsed the whole head yet.
    Head,
    /// The service has the request.
    Busy,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    since: Instant,
    /// Requests in progress (at most one on HTTP/1.1).
    active: usize,
}

/// The phase of one connection, shared by its IO wrapper and its service.
#[derive(Debug)]
pub struct Clock {
    state: Mutex<State>,
}

impl Clock {
    pub fn new() -> Arc<Clock> {
        Arc::new(Clock {
            state: Mutex::new(State {
                phase: Phase::Idle,
                since: Instant::now(),
                active: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The service was called: a request head is complete.
    pub fn request_started(&self) {
        let mut state = self.lock();
        state.active += 1;
        state.phase = Phase::Busy;
        state.since = Instant::now();
    }

    /// The service produced a response (or its future was dropped): when it was the last request
    /// in progress, the connection is idle from now on.
    pub fn request_finished(&self) {
        let mut state = self.lock();
        state.active = state.active.saturating_sub(1);
        if state.active == 0 {
            state.phase = Phase::Idle;
            state.since = Instant::now();
        }
    }

    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.phase == Phase::Idle {
            state.phase = Phase::Head;
            state.since = Instant::now();
        }
    }

    fn read_deadline(&self, idle: Duration, header: Duration) -> Option<Instant> {
        let state = self.lock();
        match state.phase {
            Phase::Idle => Some(state.since + idle),
            Phase::Head => Some(state.since + header),
            Phase::Busy => None,
        }
    }

    /// When the connection will have had no request in progress for `idle` (None while one is).
    pub fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        let state = self.lock();
        (state.active == 0).then(|| state.since + idle)
    }
}

/// Marks a request in progress on a [`Clock`] for as long as it lives, so a request whose future
/// is dropped (its client went away) still ends.
pub struct InProgress(Arc<Clock>);

impl InProgress {
    pub fn start(clock: &Arc<Clock>) -> Self {
        clock.request_started();
        InProgress(clock.clone())
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.request_finished();
    }
}

/// Resolves when `clock`'s connection has been without a request for `idle`.
pub async fn idle_for(clock: &Clock, idle: Duration) {
    loop {
        match clock.idle_deadline(idle) {
            Some(deadline) if deadline <= Instant::now() => return,
            Some(deadline) => tokio::time::sleep_until(deadline).await,
            None => tokio::time::sleep(idle).await,
        }
    }
}

/// An IO stream with the read deadlines of its [`Clock`].
pub struct Timed<S> {
    inner: S,
    clock: Arc<Clock>,
    idle_timeout: Duration,
    header_timeout: Duration,
    sleep: Pin<Box<Sleep>>,
}

impl<S> Timed<S> {
    pub fn new(
        inner: S,
        clock: Arc<Clock>,
        idle_timeout: Duration,
        header_timeout: Duration,
    ) -> Self {
        Timed {
            inner,
            clock,
            idle_timeout,
            header_timeout,
            sleep: Box::pin(tokio::time::sleep(idle_timeout)),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Timed<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_read();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this
                    .clock
                    .read_deadline(this.idle_timeout, this.header_timeout)
                else {
                    return Poll::Pending;
                };
                if this.sleep.deadline() != deadline {
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "connection idle or request headers too slow",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Timed<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_is_closed_after_the_idle_timeout_only() {
        let (client, server) = tokio::io::duplex(64);
        let clock = Clock::new();
        let mut timed = Timed::new(
            server,
            clock.clone(),
            Duration::from_secs(120),
            Duration::from_secs(10),
        );
        let mut buf = [0u8; 8];
        let started = Instant::now();
        let err = timed.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(120));
        drop(client);
    }

    #[tokio::test(start_paused = true)]
    async fn a_trickling_request_head_is_cut_after_the_header_timeout() {
        let (mut client, server) = tokio::io::duplex(64);
        let clock = Clock::new();
        let mut timed = Timed::new(
            server,
            clock.clone(),
            Duration::from_secs(120),
            Duration::from_secs(10),
        );
        tokio::time::sleep(Duration::from_secs(100)).await;
        client.write_all(b"POST /").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(timed.read(&mut buf).await.unwrap(), 6);
        let started = Instant::now();
        let err = timed.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_idle_only_once_its_last_request_ends() {
        let clock = Clock::new();
        let idle = Duration::from_secs(120);
        let first = InProgress::start(&clock);
        let second = InProgress::start(&clock);
        assert_eq!(clock.idle_deadline(idle), None);
        tokio::time::sleep(Duration::from_secs(200)).await;
        drop(first);
        assert_eq!(clock.idle_deadline(idle), None, "one still in progress");
        drop(second);
        let started = Instant::now();
        idle_for(&clock, idle).await;
        assert_eq!(started.elapsed(), idle);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_being_answered_has_no_read_deadline_and_then_idles_again() {
        let (mut client, server) = tokio::io::duplex(64);
        let clock = Clock::new();
        let mut timed = Timed::new(
            server,
            clock.clone(),
            Duration::from_secs(120),
            Duration::from_secs(10),
        );
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(timed.read(&mut buf).await.unwrap(), 18);
        clock.request_started();
        let blocked = tokio::time::timeout(Duration::from_secs(600), timed.read(&mut buf)).await;
        assert!(blocked.is_err(), "no deadline while busy");
        clock.request_finished();
        let started = Instant::now();
        let err = timed.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(120));
    }
}
