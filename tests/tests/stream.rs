//! The live stream (`GET /api/v1/stream`) against a real collector: the upgrade needs a token
//! (Bearer or the dashboard's cookie), samples written by remote write arrive on the sockets
//! whose subscriptions select them and nowhere else, a bad frame or selector is answered with
//! an error frame on a connection that stays open, an alert that fires is pushed, and a frame
//! over the size limit closes the connection with 1009.

use hcmon_tests::{
    Collector, StreamSocket, next_stream_message, now_s, open_stream, remote_write,
    send_stream_message, write_request,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Error as WsError;

const CONFIG: &str = r#"
[analytics]
enabled = false

[alerting]
default_rules = false
group_window = "1s"

[alerting.missing_data]
agents = false

[[alerting.rules]]
name = "StreamHot"
selector = "stream_hot"
direction = "above"
critical = 0.9
"#;

/// The next message of `kind` within `patience`, skipping others (e.g. alert events).
async fn next_of(
    socket: &mut StreamSocket,
    kind: &str,
    patience: Duration,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + patience;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let message = next_stream_message(socket, left).await?;
        if message["type"] == kind {
            return Ok(message);
        }
    }
}

/// Sends `subscribe`, then a frame that is refused, and waits for its error: the subscription
/// (taken in order) is in effect by then.
async fn subscribe(socket: &mut StreamSocket, id: &str, selectors: &[&str]) -> anyhow::Result<()> {
    let subscribe = json!({"type": "subscribe", "id": id, "match": selectors});
    send_stream_message(socket, &subscribe).await?;
    send_stream_message(socket, &json!({"type": "unsubscribe", "id": "never-made"})).await?;
    let error = next_of(socket, "error", Duration::from_secs(10)).await?;
    anyhow::ensure!(
        error["error"].as_str().unwrap_or("").contains("never-made"),
        "{error}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn samples_alerts_and_errors_reach_authenticated_sockets() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = Collector::start_with_config(&dir.path().join("collector"), CONFIG)?;
    let token = collector.token()?;

    // No token: the upgrade is refused before any WebSocket exists.
    match open_stream(collector.http, None).await {
        Err(WsError::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("an upgrade without a token was not refused with 401: {other:?}"),
    }
    let wrong = Some(("authorization", "Bearer not-a-token".to_owned()));
    assert!(
        matches!(open_stream(collector.http, wrong).await, Err(WsError::Http(r)) if r.status() == 401)
    );

    // A Bearer token (a Rust client) and the cookie (a browser) both work.
    let bearer = Some(("authorization", format!("Bearer {token}")));
    let mut cpu = open_stream(collector.http, bearer).await?;
    let hello = next_stream_message(&mut cpu, Duration::from_secs(10)).await?;
    assert_eq!(hello["type"], "hello", "{hello}");
    assert!((hello["now_ms"].as_f64().unwrap() / 1000.0 - now_s()).abs() < 60.0);
    let cookie = Some(("cookie", format!("theme=dark; hcmon_token={token}")));
    let mut memory = open_stream(collector.http, cookie).await?;
    assert_eq!(
        next_stream_message(&mut memory, Duration::from_secs(10)).await?["type"],
        "hello"
    );
    // Operators see the open connections in `/metrics`.
    let exposition = collector.get("/metrics").await?;
    assert!(
        exposition
            .lines()
            .any(|l| l == "hcmon_collector_live_connections 2"),
        "{exposition}"
    );

    // Bad frames are answered, and the connection stays open.
    send_stream_message(
        &mut cpu,
        &json!({"type": "subscribe", "id": "bad", "match": ["up{"]}),
    )
    .await?;
    let error = next_of(&mut cpu, "error", Duration::from_secs(10)).await?;
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("bad selector \"up{\""),
        "{error}"
    );
    send_stream_message(&mut cpu, &json!("not a message")).await?;
    let error = next_of(&mut cpu, "error", Duration::from_secs(10)).await?;
    assert!(
        error["error"].as_str().unwrap().starts_with("bad frame"),
        "{error}"
    );

    subscribe(&mut cpu, "cpu", &["{__name__=~\"stream_cpu.*\"}"]).await?;
    subscribe(
        &mut memory,
        "mem",
        &["stream_memory{node=\"a\"}", "stream_hot"],
    )
    .await?;
    let now_ms = (now_s() * 1000.0) as i64;
    let request = write_request(&[
        (
            "stream_cpu_seconds",
            &[("node", "a"), ("mode", "user")],
            now_ms,
            1.5,
        ),
        ("stream_memory", &[("node", "a")], now_ms, 2.0),
        ("stream_memory", &[("node", "b")], now_ms, 3.0),
        ("stream_other", &[], now_ms, f64::NAN),
    ]);
    let client = collector.client()?;
    let (status, body) = remote_write(&client, collector.http, &request).await?;
    assert_eq!(status, 204, "{body}");

    let samples = next_of(&mut cpu, "samples", Duration::from_secs(5)).await?;
    let expected = json!({"type": "samples", "id": "cpu", "series": [{
        "metric": {"__name__": "stream_cpu_seconds", "node": "a", "mode": "user"},
        "points": [[now_ms, 1.5]],
    }]});
    assert_eq!(samples, expected);
    let samples = next_of(&mut memory, "samples", Duration::from_secs(5)).await?;
    assert_eq!(samples["id"], "mem");
    assert_eq!(samples["series"].as_array().unwrap().len(), 1, "{samples}");
    assert_eq!(samples["series"][0]["metric"]["node"], "a", "{samples}");

    // A threshold crossing fires an alert: every socket is told.
    let hot = write_request(&[("stream_hot", &[("node", "a")], now_ms + 1, 0.95)]);
    let (status, body) = remote_write(&client, collector.http, &hot).await?;
    assert_eq!(status, 204, "{body}");
    let samples = next_of(&mut memory, "samples", Duration::from_secs(5)).await?;
    assert_eq!(samples["series"][0]["points"], json!([[now_ms + 1, 0.95]]));
    for socket in [&mut cpu, &mut memory] {
        let alert = next_of(socket, "alert", Duration::from_secs(30)).await?;
        assert_eq!(
            alert["alert"]["labels"]["alertname"], "StreamHot",
            "{alert}"
        );
        assert_eq!(alert["alert"]["hcmonState"], "firing", "{alert}");
    }

    // After unsubscribing, nothing more arrives for it.
    send_stream_message(&mut cpu, &json!({"type": "unsubscribe", "id": "cpu"})).await?;
    subscribe(&mut cpu, "other", &["stream_memory"]).await?;
    let later = write_request(&[
        (
            "stream_cpu_seconds",
            &[("node", "a"), ("mode", "user")],
            now_ms + 2,
            2.5,
        ),
        ("stream_memory", &[("node", "b")], now_ms + 2, 4.0),
    ]);
    remote_write(&client, collector.http, &later).await?;
    let samples = next_of(&mut cpu, "samples", Duration::from_secs(5)).await?;
    assert_eq!(samples["id"], "other", "{samples}");
    assert_eq!(samples["series"][0]["metric"]["__name__"], "stream_memory");

    // A frame over the limit ends the connection with 1009 (message too big).
    let huge = json!({"type": "subscribe", "id": "x".repeat(100_000), "match": ["up"]});
    send_stream_message(&mut cpu, &huge).await?;
    let ended = loop {
        match next_stream_message(&mut cpu, Duration::from_secs(10)).await {
            Ok(_) => continue,
            Err(ended) => break ended.to_string(),
        }
    };
    assert!(ended.contains("Size") || ended.contains("1009"), "{ended}");
    Ok(())
}
