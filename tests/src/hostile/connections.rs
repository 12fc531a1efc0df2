//! The kinds that attack connections rather than requests: no TLS, bad certificates, wrong
//! node names, slowloris, idle connections (with too many streams of one node).

use super::streams::extra_stream;
use super::{HOLDER, Mallory, Pace, Tally, Target, cause, status_outcome};
use hcmon_agent::tls::identity::Identity;
use hcmon_proto::v1::RegisterRequest;
use hcmon_proto::v1::ingest_client::IngestClient;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tonic::transport::Endpoint;

/// Streams `mallory` tries to open under one registration (the default cap is 4 a node).
const MAX_STREAM_ATTEMPTS: usize = 40;

/// (1) Plaintext gRPC and plaintext HTTP to the TLS ports.
pub async fn no_tls(target: Arc<Target>, tally: Arc<Tally>) {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("an HTTP client");
    let mut pace = Pace::every(Duration::from_millis(300));
    while pace.next(&target).await {
        let endpoint = Endpoint::from_shared(format!("http://{}", target.grpc))
            .expect("an http URL")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(5));
        let outcome = match endpoint.connect().await {
            Ok(channel) => match IngestClient::new(channel)
                .register(RegisterRequest {
                    node_name: "healthy".into(),
                    ..Default::default()
                })
                .await
            {
                Ok(_) => "registered".into(),
                Err(status) => status_outcome(&status),
            },
            Err(e) => format!("connect failed: {}", cause(&e)),
        };
        tally.add("plaintext gRPC register", outcome);
        for (what, addr, path) in [
            (
                "plaintext HTTP to the HTTP port",
                target.http,
                "/api/v1/agents",
            ),
            ("plaintext HTTP to the gRPC port", target.grpc, "/"),
        ] {
            let outcome = match http
                .get(format!("http://{addr}{path}"))
                .bearer_auth(&target.token)
                .send()
                .await
            {
                Ok(response) => format!("HTTP {}", response.status().as_u16()),
                Err(e) => format!("failed: {}", cause(&e)),
            };
            tally.add(what, outcome);
        }
    }
}

/// A certificate and key for `node` signed by a CA made here, or self-signed; the collector's
/// CA as the CA the client trusts.
fn forged_identity(ca_pem: &str, node: &str, self_signed: bool) -> anyhow::Result<Identity> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, node);
    let cert = if self_signed {
        params.self_signed(&key)?
    } else {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::default();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "hcmon collector CA");
        params.signed_by(&key, &Issuer::new(ca_params, ca_key))?
    };
    Ok(Identity::from_pem(
        key.serialize_pem(),
        cert.pem(),
        ca_pem.to_owned(),
        Path::new("forged"),
    )?)
}

/// (2) Client certificates from a foreign CA and self-signed ones, naming `healthy`.
pub async fn bad_certificates(target: Arc<Target>, tally: Arc<Tally>) {
    let forged = [
        (
            "foreign CA",
            forged_identity(&target.ca_pem, "healthy", false),
        ),
        (
            "self-signed",
            forged_identity(&target.ca_pem, "healthy", true),
        ),
    ];
    let mut pace = Pace::every(Duration::from_millis(200));
    let mut round = 0usize;
    while pace.next(&target).await {
        let (what, identity) = &forged[round % forged.len()];
        round += 1;
        let outcome = match identity {
            Ok(identity) => target.register(Some(identity), "healthy").await,
            Err(e) => format!("cannot forge: {e}"),
        };
        tally.add(
            &format!("{what} certificate registering as healthy"),
            outcome,
        );
    }
}

/// (3) Legitimately enrolled `mallory` registering under other nodes' names.
pub async fn wrong_names(target: Arc<Target>, tally: Arc<Tally>, mallory: Arc<Mallory>) {
    let names = ["healthy", "mallory-bomb", "root", "", "../../etc/passwd"];
    let mut pace = Pace::every(Duration::from_millis(200));
    let mut round = 0usize;
    while pace.next(&target).await {
        let name = names[round % names.len()];
        round += 1;
        let outcome = target.register(Some(&mallory.poser), name).await;
        tally.add(&format!("mallory as {name:?}"), outcome);
    }
}

/// How a held connection ended, its lifetime rounded to 5 s.
fn ended_after(opened: Instant, how: &str) -> String {
    let secs = (opened.elapsed().as_secs_f64() / 5.0).round() * 5.0;
    format!("{how} after ~{secs:.0} s")
}

/// Sends `bytes` one a second on `stream` until the collector closes it or the traffic stops.
async fn trickle<S: AsyncRead + AsyncWrite + Unpin>(
    target: &Target,
    mut stream: S,
    bytes: &[u8],
    opened: Instant,
) -> String {
    let mut next = 0;
    let mut buf = [0u8; 512];
    loop {
        let until = tokio::time::Instant::from_std(target.until);
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => return ended_after(opened, "closed by the collector"),
                Ok(_) => {}
            },
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if next < bytes.len() {
                    if stream.write_all(&bytes[next..=next]).await.is_err() {
                        return ended_after(opened, "closed by the collector");
                    }
                    next += 1;
                }
            }
            _ = tokio::time::sleep_until(until) => {
                return ended_after(opened, "still open at the end");
            }
        }
    }
}

/// The first flight of a TLS client: its ClientHello record.
fn client_hello(config: Arc<ClientConfig>) -> Vec<u8> {
    let name = ServerName::try_from("127.0.0.1").expect("an IP address");
    let mut connection = rustls::ClientConnection::new(config, name).expect("a TLS client");
    let mut hello = Vec::new();
    connection.write_tls(&mut hello).expect("a ClientHello");
    hello
}

/// One slowloris connection, reopened when the collector closes it.
async fn slow_client(
    target: Arc<Target>,
    tally: Arc<Tally>,
    to: SocketAddr,
    listener: &str,
    tls_first: bool,
) {
    let alpn: &[u8] = if to == target.grpc {
        b"h2"
    } else {
        b"http/1.1"
    };
    let config = target.tls_config(alpn);
    let headers: &[u8] = if to == target.grpc {
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0"
    } else {
        b"GET /api/v1/agents HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n"
    };
    let what = if tls_first {
        format!("{listener}: headers a byte a second after the TLS handshake")
    } else {
        format!("{listener}: TLS ClientHello a byte a second")
    };
    while target.running() {
        let opened = Instant::now();
        let outcome = match Target::tcp(HOLDER, to).await {
            Err(e) => format!("connect failed: {}", cause(&e)),
            Ok(tcp) if tls_first => {
                let name = ServerName::try_from("127.0.0.1").expect("an IP address");
                match tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                {
                    Ok(tls) => trickle(&target, tls, headers, opened).await,
                    Err(e) => format!("TLS failed: {}", cause(&e)),
                }
            }
            Ok(tcp) => trickle(&target, tcp, &client_hello(config.clone()), opened).await,
        };
        tally.add(&what, outcome);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// (5) Slowloris on both listeners: ClientHellos and headers a byte at a time.
pub async fn slowloris(target: Arc<Target>, tally: Arc<Tally>, per_group: usize) {
    let mut clients = Vec::new();
    for i in 0..per_group {
        for (to, listener) in [(target.grpc, "gRPC"), (target.http, "HTTP")] {
            for tls_first in [false, true] {
                clients.push(tokio::spawn(slow_client(
                    target.clone(),
                    tally.clone(),
                    to,
                    listener,
                    tls_first,
                )));
            }
        }
        if i % 10 == 9 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    for client in clients {
        let _ = client.await;
    }
}

/// One connection held idle: TCP only or with the TLS handshake done, reopened when closed.
async fn idle_connection(
    target: Arc<Target>,
    tally: Arc<Tally>,
    to: SocketAddr,
    what: String,
    tls: bool,
) {
    let alpn: &[u8] = if to == target.grpc {
        b"h2"
    } else {
        b"http/1.1"
    };
    let config = target.tls_config(alpn);
    while target.running() {
        let opened = Instant::now();
        let outcome = match Target::tcp(HOLDER, to).await {
            Err(e) => format!("connect failed: {}", cause(&e)),
            Ok(tcp) if tls => {
                let name = ServerName::try_from("127.0.0.1").expect("an IP address");
                match tokio::time::timeout(
                    Duration::from_secs(30),
                    tokio_rustls::TlsConnector::from(config.clone()).connect(name, tcp),
                )
                .await
                {
                    Ok(Ok(stream)) => trickle(&target, stream, &[], opened).await,
                    Ok(Err(e)) => format!("TLS failed: {}", cause(&e)),
                    Err(_) => "TLS handshake not answered in 30 s".into(),
                }
            }
            Ok(tcp) => trickle(&target, tcp, &[], opened).await,
        };
        tally.add(&what, outcome);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// (7) `count` idle connections (a quarter per listener and TLS state), plus `mallory`
/// opening ever more gRPC streams, each on its own connection.
pub async fn idle_streams(
    target: Arc<Target>,
    tally: Arc<Tally>,
    mallory: Arc<Mallory>,
    count: usize,
) {
    let mut held = Vec::new();
    let groups = [
        (target.grpc, "gRPC port, TCP only", false),
        (target.grpc, "gRPC port, TLS done", true),
        (target.http, "HTTP port, TCP only", false),
        (target.http, "HTTP port, TLS done", true),
    ];
    for i in 0..count {
        let (to, what, tls) = groups[i % groups.len()];
        held.push(tokio::spawn(idle_connection(
            target.clone(),
            tally.clone(),
            to,
            format!("idle connection, {what}"),
            tls,
        )));
        // 200 a second.
        if i % 20 == 19 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Streams of one registration, each on its own connection, held open.
    let mut streams = Vec::new();
    let mut pace = Pace::every(Duration::from_millis(250));
    let mut registered: Option<(String, u64)> = None;
    let mut attempts = 0;
    while attempts < MAX_STREAM_ATTEMPTS && pace.next(&target).await {
        attempts += 1;
        let outcome = match extra_stream(&target, &mallory.poser, &mut registered).await {
            Ok(stream) => {
                streams.push(stream);
                "stream opened".to_owned()
            }
            Err(e) => e,
        };
        tally.add("mallory: another stream of one registration", outcome);
    }
    tokio::time::sleep_until(tokio::time::Instant::from_std(target.until)).await;
    drop(streams);
    for connection in held {
        let _ = connection.await;
    }
}
