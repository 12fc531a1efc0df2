//! `GET /api/v1/stream`: the live stream, a WebSocket of JSON text frames (docs/stream.md).
//! Authenticated like every read (the middleware runs before the upgrade: a token in the
//! `hcmon_token` cookie, a Bearer header or `?token=`).
//!
//! One task per connection serves a [`Feed`] of the [`crate::live`] hub: it reads the client's
//! subscribe and unsubscribe frames, writes routed samples when the feed says they are due
//! (at once when idle, at most every `live::FLUSH_INTERVAL`), alert and anomaly events as they
//! come, `lagged` when the feed lost messages, and pings. Here are the socket's limits: frames
//! over [`MAX_FRAME_BYTES`] end the connection (close code 1009), a client silent (not even a
//! pong) for [`IDLE_TIMEOUT`] or not reading for [`WRITE_TIMEOUT`] is dropped, and shutdown
//! closes every connection with code 1001.

use super::error::ApiError;
use super::{ApiState, metric};
use crate::api::stream::{ClientMessage, ServerMessage, StreamPoint, StreamSeries};
use crate::live::{Delivery, Feed, LiveEvent, Received};
use crate::quality::QualityTracker;
use crate::telemetry::CollectorMetrics;
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use std::convert::Infallible;
use std::time::Duration;
use tokio::time::Instant;

/// Largest frame (and message) a client may send: subscriptions are small.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// How often the collector pings a client.
const PING_EVERY: Duration = Duration::from_secs(20);

/// How long a client may send nothing at all (browsers answer pings by themselves).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long one frame may take to write: a client that stopped reading is dropped.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

pub fn routes() -> Router<ApiState> {
    Router::new().route("/api/v1/stream", get(upgrade))
}

async fn upgrade(
    State(state): State<ApiState>,
    socket: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let feed = state.live.connect().map_err(|e| {
        let refused = &state.metrics.refused_requests;
        refused
            .with_label_values(&["http", "live_connections"])
            .inc();
        ApiError::Unavailable(e.to_string())
    })?;
    let (now_ms, metrics) = (state.now_ms(), state.metrics.clone());
    let quality = state.quality.clone();
    Ok(socket
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            let open = OpenConnection::counted(metrics);
            serve(socket, feed, now_ms, &open.0, quality.as_deref()).await;
        }))
}

/// A connection counted in `hcmon_collector_live_connections` until dropped, however its task
/// ends.
struct OpenConnection(std::sync::Arc<CollectorMetrics>);

impl OpenConnection {
    fn counted(metrics: std::sync::Arc<CollectorMetrics>) -> Self {
        metrics.live_connections.inc();
        Self(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.live_connections.dec();
    }
}

/// What woke the connection's loop.
enum Step {
    Closing,
    Frame(Message),
    /// The client went away, or sent what the socket refused.
    Gone(Option<axum::Error>),
    Fed(Received),
    Flush,
    Ping,
}

/// Why the loop stops: the close frame to send, if any.
type Stop = Option<(u16, &'static str)>;

/// `quality` marks anomaly verdicts on series with low-quality data as low-confidence.
async fn serve(
    mut socket: WebSocket,
    mut feed: Feed,
    now_ms: i64,
    metrics: &CollectorMetrics,
    quality: Option<&QualityTracker>,
) {
    let closing = feed.closing();
    let stop = match send(&mut socket, &ServerMessage::Hello { now_ms }).await {
        Ok(()) => {
            let Err(stop) = run(&mut socket, &mut feed, closing, metrics, quality).await;
            stop
        }
        Err(stop) => stop,
    };
    if let Some((code, reason)) = stop {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = tokio::time::timeout(WRITE_TIMEOUT, socket.send(Message::Close(Some(frame)))).await;
    }
}

/// The connection's loop: see the module header.
async fn run(
    socket: &mut WebSocket,
    feed: &mut Feed,
    closing: tokio_util::sync::CancellationToken,
    metrics: &CollectorMetrics,
    quality: Option<&QualityTracker>,
) -> Result<Infallible, Stop> {
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut heard = Instant::now();
    loop {
        let due = feed.due().map(Instant::from_std);
        let step = tokio::select! {
            _ = closing.cancelled() => Step::Closing,
            frame = socket.recv() => match frame {
                Some(Ok(frame)) => Step::Frame(frame),
                Some(Err(error)) => Step::Gone(Some(error)),
                None => Step::Gone(None),
            },
            received = feed.recv() => Step::Fed(received),
            _ = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                Step::Flush
            }
            _ = ping.tick() => Step::Ping,
        };
        match step {
            Step::Closing => {
                return Err(Some((close_code::AWAY, "the collector is shutting down")));
            }
            Step::Gone(error) => return Err(gone(error)),
            Step::Frame(frame) => {
                heard = Instant::now();
                if let Some(answer) = answer(feed, frame)? {
                    send(socket, &answer).await?;
                }
            }
            Step::Fed(Received::Routed) => {
                if due_now(feed) {
                    flush(socket, feed).await?;
                }
            }
            Step::Fed(Received::Event(event)) => {
                send(socket, &event_message(&event, quality)).await?
            }
            Step::Fed(Received::Lagged(dropped)) => {
                metrics.live_dropped_messages.inc_by(dropped);
                flush(socket, feed).await?;
                send(socket, &ServerMessage::Lagged { dropped }).await?;
            }
            Step::Flush => flush(socket, feed).await?,
            Step::Ping if heard.elapsed() > IDLE_TIMEOUT => {
                return Err(Some((close_code::POLICY, "no frame or pong for 60 s")));
            }
            Step::Ping => write(socket, Message::Ping(Default::default())).await?,
        }
    }
}

/// The close frame after the socket failed: a frame over the limit is answered 1009; a client
/// that went away, or broke the protocol, is not answered.
fn gone(error: Option<axum::Error>) -> Stop {
    let error = error?;
    tracing::debug!(%error, "live stream connection ended");
    match error
        .into_inner()
        .downcast::<tungstenite::Error>()
        .map(|e| *e)
    {
        Ok(tungstenite::Error::Capacity(_)) => Some((close_code::SIZE, "frame over 65536 bytes")),
        _ => None,
    }
}

fn due_now(feed: &Feed) -> bool {
    feed.due()
        .is_some_and(|due| due <= std::time::Instant::now())
}

/// What the client's frame asks for, done; the answer to send, if any.
fn answer(feed: &mut Feed, frame: Message) -> Result<Option<ServerMessage>, Stop> {
    let text = match frame {
        Message::Text(text) => text,
        Message::Binary(_) => return Ok(Some(error("send JSON text frames, not binary"))),
        Message::Ping(_) | Message::Pong(_) => return Ok(None),
        Message::Close(_) => return Err(None),
    };
    let message = match serde_json::from_str::<ClientMessage>(text.as_str()) {
        Ok(message) => message,
        Err(e) => return Ok(Some(error(&format!("bad frame: {e}")))),
    };
    Ok(match message {
        ClientMessage::Subscribe { id, selectors } => (feed.subscribe(&id, &selectors))
            .err()
            .map(|e| error(&e.to_string())),
        ClientMessage::Unsubscribe { id } => {
            (!feed.unsubscribe(&id)).then(|| error(&format!("no subscription {id:?}")))
        }
    })
}

fn error(message: &str) -> ServerMessage {
    ServerMessage::Error {
        error: message.to_owned(),
    }
}

/// Sends every routed point, a frame per subscription.
async fn flush(socket: &mut WebSocket, feed: &mut Feed) -> Result<(), Stop> {
    for delivery in feed.take() {
        send(socket, &samples_message(delivery)).await?;
    }
    Ok(())
}

fn samples_message(delivery: Delivery) -> ServerMessage {
    let series = (delivery.series.into_iter())
        .map(|(meta, points)| StreamSeries {
            metric: metric(&meta.labels),
            points: (points.into_iter())
                .map(|(at_ms, value)| StreamPoint::new(at_ms, value))
                .collect(),
        })
        .collect();
    ServerMessage::Samples {
        id: delivery.id,
        series,
    }
}

fn event_message(event: &LiveEvent, quality: Option<&QualityTracker>) -> ServerMessage {
    match event {
        LiveEvent::Alert(view) => ServerMessage::Alert {
            alert: Box::new(super::alerts::alert_response(view)),
        },
        LiveEvent::Anomaly { series, verdict } => ServerMessage::Anomaly {
            metric: metric(&series.labels),
            verdict: Box::new(super::analytics::series_anomaly(
                series,
                verdict,
                None,
                quality.is_some_and(|q| !q.confident(series.id)),
            )),
        },
    }
}

async fn send(socket: &mut WebSocket, message: &ServerMessage) -> Result<(), Stop> {
    let text = serde_json::to_string(message).expect("stream messages serialize");
    write(socket, Message::Text(text.into())).await
}

/// Writes one frame within [`WRITE_TIMEOUT`]; a failed or late write ends the connection.
async fn write(socket: &mut WebSocket, frame: Message) -> Result<(), Stop> {
    match tokio::time::timeout(WRITE_TIMEOUT, socket.send(frame)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(None),
        Err(_) => Err(Some((
            close_code::POLICY,
            "the client does not read its frames",
        ))),
    }
}
