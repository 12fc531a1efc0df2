//! API access end to end, on a real collector on loopback: every call but `/healthz` and the
//! signed acknowledgement link needs a bearer token whose role may make it; remote write needs
//! the write scope; failed authentications are refused, audited and rate-limited per address;
//! the login link sets a cookie; `hcmon tokens` makes, lists and revokes tokens.

use hcmon_proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use hcmon_tests::{Collector, bin_path, client_with, now_s};
use serde_json::{Value, json};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

/// One sample of `access_probe{via=…}` now, as a remote write request.
fn probe(via: &str, value: f64) -> WriteRequest {
    let label = |name: &str, value: &str| Label {
        name: name.into(),
        value: value.into(),
    };
    WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![label("__name__", "access_probe"), label("via", via)],
            samples: vec![Sample {
                value,
                timestamp: (now_s() * 1000.0) as i64,
            }],
        }],
    }
}

/// Makes a token through the API with the admin's client; its text.
async fn create_token(collector: &Collector, body: Value) -> anyhow::Result<String> {
    let url = format!("http://{}/api/v1/tokens", collector.http);
    let answer = collector.client()?.post(url).json(&body).send().await?;
    anyhow::ensure!(answer.status() == 200, "{}", answer.text().await?);
    let answer: Value = answer.json().await?;
    Ok(answer["data"]["token"]
        .as_str()
        .expect("the token")
        .to_owned())
}

/// `method path` sent with `client`: the status and the JSON answer.
async fn call(
    client: &reqwest::Client,
    collector: &Collector,
    method: reqwest::Method,
    path: &str,
) -> anyhow::Result<(u16, Value)> {
    let url = format!("http://{}{path}", collector.http);
    let answer = client.request(method, url).send().await?;
    let status = answer.status().as_u16();
    let text = answer.text().await?;
    Ok((
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    ))
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_needs_a_token_whose_role_may_make_it() -> anyhow::Result<()> {
    use reqwest::Method;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let collector = Collector::start(&data, 0, 0)?;
    let mode = std::fs::metadata(data.join("admin.token"))?
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "admin.token is the owner's alone");
    let nobody = reqwest::Client::new();

    // No token: 401, saying how to get one. /healthz stays open.
    let url = format!("http://{}/api/v1/query?query=up", collector.http);
    let refused = nobody.get(&url).send().await?;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    let body: Value = refused.json().await?;
    assert_eq!(body["errorType"], "unauthorized");
    let message = body["error"].as_str().unwrap();
    assert!(
        message.contains("no token was sent")
            && message.contains("Authorization: Bearer <token>")
            && message.contains(&format!("{}/admin.token", data.display())),
        "{message}"
    );
    let (status, _) = call(&nobody, &collector, Method::GET, "/healthz").await?;
    assert_eq!(status, 200);

    // A viewer reads and scrapes, but cannot acknowledge, write or read the audit log.
    let viewer = create_token(&collector, json!({"name": "grafana", "role": "viewer"})).await?;
    let viewer = client_with(&viewer)?;
    for path in ["/api/v1/query?query=up", "/metrics", "/api/v1/agents"] {
        let (status, answer) = call(&viewer, &collector, Method::GET, path).await?;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    let ack = "/api/v1/alerts/0123456789abcdef/ack?by=me";
    let (status, answer) = call(&viewer, &collector, Method::POST, ack).await?;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        answer["error"],
        "this call needs the operator or admin role; the token \"grafana\" has the viewer role without the write scope"
    );
    let (status, _) = call(&viewer, &collector, Method::GET, "/api/v1/audit").await?;
    assert_eq!(status, 403, "the audit log is the admin's");
    let (status, body) =
        hcmon_tests::remote_write(&viewer, collector.http, &probe("v", 1.0)).await?;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("a token with the write scope"), "{body}");

    // An operator may acknowledge (this alert does not exist: the handler says so).
    let operator = create_token(&collector, json!({"name": "oncall", "role": "operator"})).await?;
    let operator = client_with(&operator)?;
    let (status, answer) = call(&operator, &collector, Method::POST, ack).await?;
    assert_eq!(status, 404, "past authorisation: {answer}");

    // Remote write: refused without a token, stored with a write-scoped one.
    let (status, _) = hcmon_tests::remote_write(&nobody, collector.http, &probe("x", 1.0)).await?;
    assert_eq!(status, 401);
    let writer = json!({"name": "vmagent", "role": "viewer", "write": true});
    let writer = client_with(&create_token(&collector, writer).await?)?;
    let (status, body) =
        hcmon_tests::remote_write(&writer, collector.http, &probe("w", 42.0)).await?;
    assert_eq!(status, 204, "{body}");
    let (_, answer) = call(
        &viewer,
        &collector,
        Method::GET,
        "/api/v1/query?query=access_probe",
    )
    .await?;
    let result = answer["data"]["result"]
        .as_array()
        .expect("a vector")
        .clone();
    assert_eq!(
        result.len(),
        1,
        "only the authenticated write landed: {answer}"
    );
    assert_eq!(result[0]["metric"]["via"], "w");
    assert_eq!(result[0]["value"][1], "42");

    // Listed without secrets; a revoked token is refused.
    let (_, listed) = call(
        &collector.client()?,
        &collector,
        Method::GET,
        "/api/v1/tokens",
    )
    .await?;
    let tokens = listed["data"].as_array().expect("a list").clone();
    let names: Vec<&str> = tokens.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 4, "{listed}");
    for name in ["admin", "grafana", "oncall", "vmagent"] {
        assert!(names.contains(&name), "{listed}");
    }
    assert!(
        tokens
            .iter()
            .all(|t| t.get("token").is_none() && t.get("hash").is_none())
    );
    let grafana = tokens.iter().find(|t| t["name"] == "grafana").unwrap();
    let revoke = format!("/api/v1/tokens/{}", grafana["id"].as_str().unwrap());
    let (status, _) = call(&collector.client()?, &collector, Method::DELETE, &revoke).await?;
    assert_eq!(status, 200);
    let (status, answer) = call(&viewer, &collector, Method::GET, "/api/v1/query?query=up").await?;
    assert_eq!(status, 401);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("unknown or was revoked")
    );

    // The audit log names the token and its role, and the failed authentications.
    let audit = collector.get_json("/api/v1/audit", &[]).await?;
    let records = audit["data"].as_array().expect("records").clone();
    let acked = records
        .iter()
        .find(|r| r["event"]["what"] == "ack_alert")
        .expect("the ack is recorded");
    assert_eq!(
        (&acked["who"], &acked["role"]),
        (&json!("oncall"), &json!("operator"))
    );
    let failed: Vec<&Value> = records
        .iter()
        .filter(|r| r["event"]["what"] == "failed_authentication")
        .collect();
    assert_eq!(
        failed.len(),
        3,
        "no token twice, a revoked one once: {audit}"
    );
    assert_eq!(failed[0]["who"], "unauthenticated");
    assert_eq!(failed[0]["route"], "GET /api/v1/query");
    assert_eq!(failed[0]["event"]["reason"], "no token was sent");
    assert!(
        failed[0]["client"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    let revoked = records
        .iter()
        .find(|r| r["event"]["what"] == "revoke_token")
        .expect("the revocation is recorded");
    assert_eq!(
        (&revoked["who"], &revoked["role"]),
        (&json!("admin"), &json!("admin"))
    );

    let metrics = collector.get("/metrics").await?;
    for (reason, count) in [("unauthenticated", 3), ("forbidden", 3)] {
        let line = format!(
            "hcmon_collector_refused_requests_total{{listener=\"http\",reason=\"{reason}\"}} {count}"
        );
        assert!(metrics.contains(&line), "{line} not in\n{metrics}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_login_link_sets_a_cookie_that_alone_then_logs_the_browser_in() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let token = collector.token()?;
    let line = collector
        .process
        .wait_for_log("log in at", std::time::Duration::from_secs(10))?;
    let link = format!("http://{}/?token={token}", collector.http);
    assert!(line.contains(&link), "{line}");

    // Followed by hand: the answer itself must carry the cookie and send the browser on.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let opened = browser.get(&link).send().await?;
    assert_eq!(opened.status(), 303);
    let cookie = opened.headers()["set-cookie"].to_str()?.to_owned();
    assert_eq!(
        cookie,
        format!("hcmon_token={token}; HttpOnly; SameSite=Strict; Path=/")
    );
    // The token leaves the address bar: the link lands on the dashboard at `/`, which the
    // cookie alone opens.
    assert_eq!(opened.headers()["location"].to_str()?, "/");
    let home = browser
        .get(format!("http://{}/", collector.http))
        .header("Cookie", format!("hcmon_token={token}"))
        .send()
        .await?;
    assert!(
        home.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );
    let page = home.text().await?;
    assert!(page.contains("/assets/"), "{page}");
    let url = format!("http://{}/api/v1/query?query=up", collector.http);
    let with_cookie = browser
        .get(&url)
        .header("Cookie", format!("hcmon_token={token}"))
        .send()
        .await?;
    assert_eq!(with_cookie.status(), 200);
    assert!(with_cookie.headers().get("set-cookie").is_none());
    let bad_cookie = browser
        .get(&url)
        .header("Cookie", "hcmon_token=hcm_00000000_00")
        .send()
        .await?;
    assert_eq!(bad_cookie.status(), 401);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn guessing_tokens_from_one_address_is_refused_with_429_and_retry_after() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let collector = Collector::start(&dir.path().join("data"), 0, 0)?;
    let url = format!("http://{}/api/v1/query?query=up", collector.http);
    let guess = |n: u32| client_with(&format!("hcm_{n:08x}_{}", "ab".repeat(32)));
    for n in 0..10 {
        let answer = guess(n)?.get(&url).send().await?;
        assert_eq!(answer.status(), 401, "guess {n}");
    }
    let answer = guess(10)?.get(&url).send().await?;
    assert_eq!(answer.status(), 429);
    let wait: u64 = answer.headers()["retry-after"].to_str()?.parse()?;
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = answer.json().await?;
    let message = body["error"].as_str().unwrap();
    assert!(
        message
            .starts_with("too many failed authentications from 127.0.0.1 (10 a minute); retry in"),
        "{message}"
    );
    // Refused before its token is looked at, even a good one; /healthz still answers.
    let answer = collector.client()?.get(&url).send().await?;
    assert_eq!(answer.status(), 429);
    let health = reqwest::get(format!("http://{}/healthz", collector.http)).await?;
    assert_eq!(health.status(), 200);
    let metrics = reqwest::get(format!("http://{}/metrics", collector.http)).await?;
    assert_eq!(
        metrics.status(),
        429,
        "every other call from the address waits"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_over_its_write_rate_is_answered_429() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let toml = "[auth]\nwrite_samples_per_second = 1\n";
    let collector = Collector::start_with_config(&data, toml)?;
    let client = collector.client()?;
    // Five samples in one request: let in, then charged, so the bucket is in debt for seconds.
    let mut five = probe("a", 1.0);
    for via in ["b", "c", "d", "e"] {
        five.timeseries.extend(probe(via, 1.0).timeseries);
    }
    let (status, body) = hcmon_tests::remote_write(&client, collector.http, &five).await?;
    assert_eq!(status, 204, "{body}");
    let (status, body) =
        hcmon_tests::remote_write(&client, collector.http, &probe("b", 2.0)).await?;
    assert_eq!(status, 429, "{body}");
    assert!(body.contains("auth.write_samples_per_second"), "{body}");
    let metrics = collector.get("/metrics").await?;
    let line = "hcmon_collector_refused_requests_total{listener=\"http\",reason=\"write_samples_per_second\"} 1";
    assert!(metrics.contains(line), "{metrics}");
    Ok(())
}

/// Runs `hcmon <args>` against `collector` with `env` set.
fn hcmon(collector: &Collector, env: &[(&str, &str)], args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(bin_path("hcmon"))
        .args(["--url", &format!("http://{}", collector.http)])
        .args(args)
        .env_remove("HCMON_TOKEN")
        .envs(env.iter().copied())
        .output()?)
}

#[tokio::test(flavor = "multi_thread")]
async fn hcmon_tokens_creates_lists_and_revokes() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("data");
    let collector = Collector::start(&data, 0, 0)?;
    let data_dir = data.to_str().unwrap();
    let beside = [("HCMON_DATA_DIR", data_dir)];
    let text = |o: &Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    let made = hcmon(
        &collector,
        &beside,
        &[
            "tokens",
            "create",
            "--name",
            "ci",
            "--role",
            "operator",
            "--write",
            "--expires-in",
            "30d",
        ],
    )?;
    assert!(made.status.success(), "{}", text(&made));
    let token = String::from_utf8(made.stdout.clone())?.trim().to_owned();
    assert!(token.starts_with("hcm_"), "{}", text(&made));
    let id = token.split('_').nth(1).unwrap().to_owned();

    let listed = hcmon(&collector, &beside, &["tokens", "list"])?;
    let out = String::from_utf8(listed.stdout)?;
    let ci = out.lines().find(|l| l.contains(" ci ")).expect("ci listed");
    assert!(
        ci.starts_with(&id) && ci.contains("operator") && ci.contains("yes"),
        "{out}"
    );
    assert!(!out.contains(&token), "never shown again");

    // The new token works as itself: an operator may not manage tokens.
    let own = [("HCMON_TOKEN", token.as_str())];
    let refused = hcmon(&collector, &own, &["tokens", "list"])?;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("403") && text(&refused).contains("hcmon tokens create"),
        "{}",
        text(&refused)
    );
    assert!(
        hcmon(&collector, &own, &["alerts", "list"])?
            .status
            .success()
    );

    let revoked = hcmon(&collector, &beside, &["tokens", "revoke", &id])?;
    assert!(revoked.status.success(), "{}", text(&revoked));
    assert!(String::from_utf8(revoked.stdout)?.contains("revoked token"));
    let gone = hcmon(&collector, &own, &["alerts", "list"])?;
    assert!(!gone.status.success());
    assert!(
        text(&gone).contains("401") && text(&gone).contains("--token or HCMON_TOKEN"),
        "{}",
        text(&gone)
    );

    // Nowhere to find a token: the refusal says what to do.
    let elsewhere = [("HCMON_DATA_DIR", "/nonexistent")];
    let lost = hcmon(&collector, &elsewhere, &["status"])?;
    assert!(!lost.status.success());
    assert!(text(&lost).contains("no token was sent"), "{}", text(&lost));
    Ok(())
}
