//! Trust between agents and the collector, end to end with the real binaries on loopback: TLS on
//! both listeners with the collector's own CA, enrollment with single-use tokens, mutual TLS
//! with the node name in the certificate, renewal without a reconnect, revocation that cuts a
//! streaming agent off, certificate rotation without a restart, and the refusal to serve
//! plaintext on a network address.

use anyhow::{Context, bail};
use hcmon_agent::tls::connector::{Trust, client_config, connect};
use hcmon_agent::tls::identity::Identity;
use hcmon_collector::outbound::OutboundClient;
use hcmon_proto::v1::ingest_client::IngestClient;
use hcmon_proto::v1::{HostFacts, RegisterRequest};
use hcmon_tests::{Agent, Collector, bin_path};
use http::{HeaderMap, Method};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Endpoint;

/// A collector with TLS on and agent certificates that live 30 s (renewed after about 20 s).
fn tls_collector(dir: &Path) -> anyhow::Result<Collector> {
    Collector::start_with_config(
        &dir.join("collector"),
        "[tls]\nenabled = true\nagent_certificate_lifetime = \"30s\"\n",
    )
}

/// The HTTP API over TLS, trusting only the collector's CA, as the admin.
struct Https {
    client: OutboundClient,
    base: String,
    token: String,
}

impl Https {
    fn new(collector: &Collector) -> anyhow::Result<Self> {
        let ca = std::fs::read(collector.data_dir.join("pki/ca.crt"))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert?)?;
        }
        Ok(Self {
            client: OutboundClient::trusting(roots, "hcmon-tests")?,
            base: format!("https://{}", collector.http),
            token: collector.token()?,
        })
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {}", self.token).parse()?);
        headers.insert("content-type", "application/json".parse()?);
        let body = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let url = format!("{}{path}", self.base);
        let answer = self
            .client
            .call(method, &url, headers, body, 1 << 20)
            .await
            .with_context(|| url.clone())?;
        let text = String::from_utf8_lossy(&answer.body).into_owned();
        if !answer.status.is_success() {
            bail!("{url}: {}: {text}", answer.status);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// A single-use enrollment token for `node`.
    async fn enrollment_token(&self, node: &str, ttl: &str) -> anyhow::Result<String> {
        let answer = self
            .call(
                Method::POST,
                "/api/v1/pki/enrollments",
                Some(json!({"node": node, "ttl": ttl})),
            )
            .await?;
        Ok(answer["data"]["token"]
            .as_str()
            .context("no token in the answer")?
            .to_owned())
    }

    /// The enrolled node's entry in `/api/v1/pki/nodes`.
    async fn enrolled(&self, node: &str) -> anyhow::Result<Option<Value>> {
        let answer = self.call(Method::GET, "/api/v1/pki/nodes", None).await?;
        Ok(answer["data"]
            .as_array()
            .and_then(|nodes| nodes.iter().find(|n| n["node"] == node).cloned()))
    }

    /// How many series `node` has stored.
    async fn series_of(&self, node: &str) -> anyhow::Result<usize> {
        let path = format!("/api/v1/series?match[]=%7Bnode%3D%22{node}%22%7D");
        let answer = self.call(Method::GET, &path, None).await?;
        Ok(answer["data"].as_array().map_or(0, Vec::len))
    }
}

/// Starts an agent for `node` against the TLS collector, with its identity in `dir/<node>`.
fn agent(collector: &Collector, dir: &Path, node: &str, token: Option<&str>) -> Agent {
    let url = format!("https://{}", collector.grpc);
    let spool = dir.join(format!("{node}-spool"));
    let identity = identity_dir(dir, node);
    let (spool, identity) = (spool.display().to_string(), identity.display().to_string());
    let mut args = vec![
        "--collector",
        &url,
        "--node-name",
        node,
        "--spool-dir",
        &spool,
        "--identity-dir",
        &identity,
        "--interval",
        "1s",
    ];
    if let Some(token) = token {
        args.extend(["--enroll-token", token]);
    }
    Agent::start_args(&args)
}

fn identity_dir(dir: &Path, node: &str) -> PathBuf {
    dir.join(format!("{node}-identity"))
}

async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if check().await.unwrap_or(false) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not happen within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A registration straight over gRPC, with or without a client certificate.
async fn register(collector: &Collector, trust: Trust<'_>, node: &str) -> tonic::Status {
    let endpoint = Endpoint::from_shared(format!("https://{}", collector.grpc)).unwrap();
    let channel = connect(&endpoint, client_config(trust).unwrap())
        .await
        .expect("TLS connection");
    let request = RegisterRequest {
        node_name: node.into(),
        spool_epoch: 7,
        agent_version: "0.0.0".into(),
        host: Some(HostFacts::default()),
        ..Default::default()
    };
    match IngestClient::new(channel).register(request).await {
        Ok(_) => tonic::Status::ok("registered"),
        Err(status) => status,
    }
}

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

#[tokio::test]
async fn an_enrolled_agent_streams_as_itself_only_renews_without_reconnecting_and_is_cut_off_when_revoked()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = tls_collector(dir.path())?;
    let api = Https::new(&collector)?;
    let ca_pem = std::fs::read_to_string(collector.data_dir.join("pki/ca.crt"))?;

    // Enrollment: a token for alpha; the agent makes its key, gets its certificate, streams.
    let token = api.enrollment_token("alpha", "1h").await?;
    let mut alpha = agent(&collector, dir.path(), "alpha", Some(&token));
    wait_until("alpha's series", Duration::from_secs(30), || async {
        Ok(api.series_of("alpha").await? > 0)
    })
    .await
    .with_context(|| alpha.process.logs())?;
    let identity = Identity::load(&identity_dir(dir.path(), "alpha"))?.context("identity saved")?;
    let first_cert = identity.cert_pem.clone();

    // The token was single-use: a second machine cannot enroll as alpha with it.
    let second = dir.path().join("second");
    let mut again = agent(&collector, &second, "alpha", Some(&token));
    again
        .process
        .wait_for_log("already used", Duration::from_secs(20))?;
    drop(again);

    // Without a certificate, or with alpha's certificate under another name: refused.
    let pin = hcmon_agent::tls::pinned::pin_of(
        &hcmon_agent::tls::identity::first_certificate(&ca_pem).map_err(anyhow::Error::msg)?,
    );
    let anonymous = register(&collector, Trust::Pinned(&pin), "alpha").await;
    assert_eq!(anonymous.code(), Code::Unauthenticated, "{anonymous:?}");
    assert!(
        anonymous
            .message()
            .contains("requires a client certificate"),
        "{anonymous:?}"
    );
    let posing = register(
        &collector,
        Trust::Mutual {
            ca_pem: &ca_pem,
            identity: &identity,
        },
        "beta",
    )
    .await;
    assert_eq!(posing.code(), Code::PermissionDenied, "{posing:?}");
    assert!(
        posing
            .message()
            .contains("certificate is for node \"alpha\"; it cannot act as node \"beta\""),
        "{posing:?}"
    );
    // An agent speaking plaintext to the TLS port gets nowhere.
    let plaintext = Endpoint::from_shared(format!("http://{}", collector.grpc))?;
    let refused = match plaintext.connect().await {
        Ok(channel) => IngestClient::new(channel)
            .register(RegisterRequest::default())
            .await
            .is_err(),
        Err(_) => true,
    };
    assert!(refused, "a plaintext registration went through");

    // Renewal at two thirds of 30 s: a new certificate, the same stream.
    wait_until("renewal", Duration::from_secs(40), || async {
        let renewed = Identity::load(&identity_dir(dir.path(), "alpha"))?
            .is_some_and(|i| i.cert_pem != first_cert);
        Ok(renewed)
    })
    .await
    .with_context(|| alpha.process.logs())?;
    let entry = api.enrolled("alpha").await?.context("alpha listed")?;
    assert_eq!(entry["issuance"], "renewed", "{entry}");
    assert_eq!(entry["certificates"], 2, "{entry}");
    let logs = collector.process.logs();
    assert_eq!(
        count(&logs, "agent stream opened"),
        1,
        "the renewal must not reconnect:\n{logs}"
    );
    let before = api.series_of("alpha").await?;
    assert!(before > 0);

    // Revocation: the open stream is cut off at once, and the agent is told why.
    api.call(
        Method::POST,
        "/api/v1/pki/nodes/alpha/revoke",
        Some(json!({})),
    )
    .await?;
    alpha
        .process
        .wait_for_log("revoked", Duration::from_secs(10))?;
    let entry = api.enrolled("alpha").await?.context("alpha listed")?;
    assert!(entry["revoked_at_ms"].is_i64(), "{entry}");
    wait_until("alpha disconnected", Duration::from_secs(10), || async {
        let agents = api.call(Method::GET, "/api/v1/agents", None).await?;
        Ok(agents["data"].as_array().is_some_and(|a| {
            a.iter()
                .any(|n| n["node"] == "alpha" && n["connected"] == false)
        }))
    })
    .await?;
    // It stays out: its reconnections are refused, with the reason.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let logs = collector.process.logs();
    assert_eq!(count(&logs, "agent stream opened"), 1, "{logs}");

    // The audit log has the enrollment, the renewal and the revocation.
    let audit = api
        .call(Method::GET, "/api/v1/audit", None)
        .await?
        .to_string();
    for what in ["\"enroll\"", "\"renew_certificate\"", "\"revoke_node\""] {
        assert!(audit.contains(what), "{what} missing from {audit}");
    }
    Ok(())
}

#[tokio::test]
async fn an_expired_enrollment_token_is_refused() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = tls_collector(dir.path())?;
    let api = Https::new(&collector)?;
    let token = api.enrollment_token("gamma", "1s").await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut gamma = agent(&collector, dir.path(), "gamma", Some(&token));
    gamma
        .process
        .wait_for_log("expired", Duration::from_secs(20))?;
    assert_eq!(api.series_of("gamma").await?, 0);
    assert!(Identity::load(&identity_dir(dir.path(), "gamma"))?.is_none());

    // The CLI reaches the HTTPS API beside the collector (its CA and admin token found in the
    // data folder), and writes a token file for provisioning tools.
    let hcmon = |args: &[&str]| {
        Command::new(bin_path("hcmon"))
            .arg("--url")
            .arg(format!("https://{}", collector.http))
            .arg("--data-dir")
            .arg(&collector.data_dir)
            .args(args)
            .output()
    };
    let file = dir.path().join("delta.token");
    let output = hcmon(&[
        "enroll",
        "delta",
        "--ttl",
        "10m",
        "--out",
        file.to_str().unwrap(),
    ])?;
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&file)?;
    assert!(text.starts_with("hce1."), "{text}");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&file)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    let output = hcmon(&["revoke", "ghost"])?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("has no certificate to revoke"), "{stderr}");
    let output = hcmon(&["nodes"])?;
    assert!(output.status.success(), "{output:?}");
    Ok(())
}

#[tokio::test]
async fn a_rotated_server_certificate_is_served_without_a_restart() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let collector = tls_collector(dir.path())?;
    let served = || async {
        let ca = std::fs::read(collector.data_dir.join("pki/ca.crt"))?;
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&ca) {
            roots.add(cert?)?;
        }
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(collector.http).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1")?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await?;
        let (_, connection) = tls.get_ref();
        let version = connection.protocol_version();
        anyhow::ensure!(
            version == Some(rustls::ProtocolVersion::TLSv1_3),
            "{version:?}"
        );
        anyhow::Ok(connection.peer_certificates().context("a certificate")?[0].to_vec())
    };
    let before = served().await?;
    let status = Command::new(bin_path("hcmon-collector"))
        .arg("--data-dir")
        .arg(&collector.data_dir)
        .args(["init-tls", "--name", "rotated.example"])
        .status()?;
    assert!(status.success());
    let mut after = before.clone();
    let deadline = Instant::now() + Duration::from_secs(15);
    while after == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = served().await?;
    }
    assert_ne!(
        after, before,
        "the collector still serves the old certificate"
    );
    Ok(())
}

#[test]
fn the_collector_refuses_a_network_address_without_tls() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let output = Command::new(bin_path("hcmon-collector"))
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--grpc-listen", "0.0.0.0:0", "--http-listen", "127.0.0.1:0"])
        .output()?;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without TLS"),
        "{stderr}"
    );
    Ok(())
}
