//! The collector under attack, and the ways to reach it: gRPC over TLS with or without a client
//! certificate, and raw HTTP/1.1 over TLS from a chosen loopback address.

use super::{LOOPBACK, cause, status_outcome};
use hcmon_agent::tls::connector::{Trust, client_config, connect};
use hcmon_agent::tls::identity::Identity;
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{HostFacts, RegisterRequest};
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tonic::transport::{Channel, Endpoint};

pub struct Target {
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub ca_pem: String,
    pub ca_pin: String,
    pub token: String,
    /// When the hostile traffic stops.
    pub until: Instant,
}

impl Target {
    pub fn running(&self) -> bool {
        Instant::now() < self.until
    }

    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_shared(format!("https://{}", self.grpc))
            .expect("an https URL")
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
    }

    /// A TLS channel to the gRPC listener, with `identity` as client certificate or none.
    pub async fn channel(&self, identity: Option<&Identity>) -> Result<Channel, String> {
        let trust = match identity {
            Some(identity) => Trust::Mutual {
                ca_pem: &self.ca_pem,
                identity,
            },
            None => Trust::Pinned(&self.ca_pin),
        };
        let config = client_config(trust).map_err(|e| e.to_string())?;
        match tokio::time::timeout(Duration::from_secs(10), connect(&self.endpoint(), config)).await
        {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(e)) => Err(format!("connect failed: {}", cause(&e))),
            Err(_) => Err("connect timed out".into()),
        }
    }

    /// Registers `node` over a new channel with `identity`; the outcome as counted.
    pub async fn register(&self, identity: Option<&Identity>, node: &str) -> String {
        let channel = match self.channel(identity).await {
            Ok(channel) => channel,
            Err(e) => return e,
        };
        let request = RegisterRequest {
            node_name: node.into(),
            spool_epoch: 1,
            agent_version: "hostile".into(),
            host: Some(HostFacts::default()),
            ..Default::default()
        };
        match IngestClient::new(channel).register(request).await {
            Ok(_) => "registered".into(),
            Err(status) => status_outcome(&status),
        }
    }

    /// A rustls client configuration that trusts the collector's CA (by its pin), offering
    /// ALPN `alpn`.
    pub fn tls_config(&self, alpn: &[u8]) -> Arc<ClientConfig> {
        let mut config = client_config(Trust::Pinned(&self.ca_pin)).expect("a TLS set-up");
        config.alpn_protocols = vec![alpn.to_vec()];
        Arc::new(config)
    }

    /// A TCP connection to `to` from the loopback address `from`.
    pub async fn tcp(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(from, 0))?;
        socket.connect(to).await
    }

    /// One HTTP/1.1 request over TLS to the HTTP listener from `from`: the head (request line
    /// and headers, ending in an empty line), then `body` while the answer is read. The
    /// outcome is the status, or how the connection ended.
    pub async fn https(&self, from: IpAddr, head: &str, body: &[u8]) -> String {
        let exchange = async {
            let tcp = Self::tcp(from, self.http)
                .await
                .map_err(|e| format!("connect failed: {}", cause(&e)))?;
            let name = ServerName::try_from("127.0.0.1").expect("an IP address");
            let tls = tokio_rustls::TlsConnector::from(self.tls_config(b"http/1.1"))
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS failed: {}", cause(&e)))?;
            let (mut reader, mut writer) = tokio::io::split(tls);
            let reading = status_line(&mut reader);
            tokio::pin!(reading);
            let writing = async {
                writer.write_all(head.as_bytes()).await?;
                writer.write_all(body).await?;
                writer.flush().await
            };
            tokio::select! {
                status = &mut reading => status,
                written = writing => match written {
                    Ok(()) => reading.await,
                    Err(e) => match tokio::time::timeout(Duration::from_secs(5), reading).await {
                        Ok(Ok(status)) => Ok(status),
                        _ => Err(format!("closed while sending: {}", cause(&e))),
                    },
                },
            }
        };
        match tokio::time::timeout(Duration::from_secs(60), exchange).await {
            Ok(Ok(status)) | Ok(Err(status)) => status,
            Err(_) => "no answer within 60 s".into(),
        }
    }

    /// A request with the admin token: `method path`, `content_type`, `body` with its length.
    pub async fn authorized(&self, method: &str, path: &str, content: &str, body: &[u8]) -> String {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n{content}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.token,
            body.len()
        );
        self.https(LOOPBACK, &head, body).await
    }

    /// A remote write of `body` (sent as snappy protobuf) with the admin token (write scope).
    pub async fn remote_write(&self, body: &[u8]) -> String {
        let content = "Content-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n";
        self.authorized("POST", "/api/v1/write", content, body)
            .await
    }
}

/// Reads an HTTP answer's status line: `HTTP <code>`, or how the connection ended.
async fn status_line<R: AsyncRead + Unpin>(reader: &mut R) -> Result<String, String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| format!("closed with no answer: {}", cause(&e)))?;
        if n == 0 {
            return Err("closed with no answer".into());
        }
        seen.extend_from_slice(&buf[..n]);
        if let Some(end) = seen.windows(2).position(|w| w == b"\r\n") {
            let line = String::from_utf8_lossy(&seen[..end]);
            let code = line.split_whitespace().nth(1).unwrap_or("?");
            return Ok(format!("HTTP {code}"));
        }
        if seen.len() > 8192 {
            return Err("no status line".into());
        }
    }
}
