//! The `proxy.response` still owed for an allowed request.
//!
//! For streams and websockets it is created when the answer's head goes out;
//! [`PendingResponse::finish`] records how the exchange ended. For every
//! allowed request, one is also held while it is forwarded, as a guard: if
//! the request is cancelled half-way (the client hung up and the server
//! dropped the handler), its drop records that, with status 499 (client
//! closed the request). Either way every allowed request gets its response
//! event. The record is appended on a task of its own, counted as in flight
//! so a stop waits for it.

use std::time::Instant;

use events::store::Appender;

use super::context::RequestContext;
use super::inflight::InflightGuard;
use super::record::{self, Exchange};

pub struct PendingResponse {
    appender: Appender,
    ctx: RequestContext,
    /// Time to the answer's head, in µs.
    latency_us: u64,
    head_sent: Instant,
    status: u16,
    kind: &'static str,
    guard: Option<InflightGuard>,
    done: bool,
}

impl PendingResponse {
    pub fn new(
        appender: Appender,
        ctx: RequestContext,
        guard: InflightGuard,
        status: u16,
        kind: &'static str,
    ) -> PendingResponse {
        PendingResponse {
            latency_us: ctx.elapsed_us(),
            head_sent: Instant::now(),
            appender,
            ctx,
            status,
            kind,
            guard: Some(guard),
            done: false,
        }
    }

    /// Someone else records the end (the request finished normally): record nothing.
    pub fn disarm(mut self) {
        self.done = true;
    }

    /// Record how it ended. `duration_us` is filled in here.
    pub fn finish(mut self, mut exchange: Exchange) {
        self.done = true;
        exchange.status = self.status;
        exchange.kind = self.kind;
        exchange.duration_us = Some(self.ctx.elapsed_us());
        self.spawn_record(exchange);
    }

    fn spawn_record(&mut self, exchange: Exchange) {
        let draft = record::response_event(&self.ctx, self.latency_us, &exchange);
        let appender = self.appender.clone();
        let guard = self.guard.take();
        let request_id = self.ctx.request_id.clone();
        let stream_us = u64::try_from(self.head_sent.elapsed().as_micros()).unwrap_or(u64::MAX);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = appender.append(draft).await {
                        tracing::error!(
                            %request_id,
                            error = %error,
                            stream_us,
                            "could not record proxy.response for a stream"
                        );
                    }
                    drop(guard);
                });
            }
            Err(_) => tracing::error!(
                %request_id,
                "no runtime to record proxy.response for a stream"
            ),
        }
    }
}

impl Drop for PendingResponse {
    fn drop(&mut self) {
        if !self.done {
            self.done = true;
            let exchange = Exchange {
                status: self.status,
                kind: self.kind,
                duration_us: Some(self.ctx.elapsed_us()),
                closed_by: Some("abandoned"),
                ..Exchange::default()
            };
            self.spawn_record(exchange);
        }
    }
}
