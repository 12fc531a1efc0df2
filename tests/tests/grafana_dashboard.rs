//! The Grafana dashboard in `deploy/grafana` against a real collector fed by a real agent: the
//! agent runs every tier at a short interval and probes real servers on loopback (the
//! collector's own HTTP and gRPC ports, `redis-server` and `memcached` started here; a missing
//! binary fails the test), and the collector evaluates an alert rule that fires at once on the
//! agent's data. Every template variable and every panel query is sent as Grafana
//! sends it (variables substituted, `$__interval` and `$__rate_interval` computed as Grafana
//! does for a ten-minute range), once as an instant and once as a range query, and each must
//! answer with data. The dashboard JSON is also checked for what Grafana needs to load it.

use anyhow::{Context, bail, ensure};
use hcmon_tests::{Agent, Collector, now_s};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const DASHBOARD: &str = include_str!("../../deploy/grafana/dashboards/hcmon-overview.json");
const DATASOURCE: &str = include_str!("../../deploy/grafana/provisioning/datasources/hcmon.yaml");

/// The data source every panel must use, as provisioned.
const DATASOURCE_UID: &str = "hcmon";
/// The agent's node name, hence its `instance` label.
const NODE: &str = "grafana";
/// The agent's default `job` label.
const JOB: &str = "node";
/// The time range the range queries cover, and `$__range`.
const RANGE: Duration = Duration::from_secs(600);
/// The step of the range queries, unless a panel's minimum interval is longer.
const STEP: Duration = Duration::from_secs(15);
/// A Prometheus rule file whose alert fires as soon as the agent has sent its memory figures.
const ALERT_RULE: &str = r#"
groups:
  - name: grafana-dashboard
    interval: 1s
    rules:
      - alert: DashboardCheck
        expr: node_memory_MemTotal_bytes > 0
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.instance }} reports its memory"
"#;
/// How long the agent's data may take to make every query answer.
const DATA_DEADLINE: Duration = Duration::from_secs(90);

// ---- the dashboard's structure ----

#[test]
fn dashboard_is_valid_grafana_json() -> anyhow::Result<()> {
    let dashboard: Value = serde_json::from_str(DASHBOARD).context("dashboard JSON")?;
    for key in ["uid", "title"] {
        ensure!(
            dashboard[key].as_str().is_some_and(|s| !s.is_empty()),
            "dashboard has no {key}"
        );
    }
    ensure!(
        dashboard["schemaVersion"].as_u64().is_some_and(|v| v >= 36),
        "schemaVersion {} is older than Grafana 9's",
        dashboard["schemaVersion"]
    );

    let panels = all_panels(&dashboard);
    ensure!(!panels.is_empty(), "the dashboard has no panels");
    let mut ids = HashSet::new();
    for panel in &panels {
        let title = panel["title"].as_str().unwrap_or("(untitled)");
        let id = panel["id"]
            .as_u64()
            .with_context(|| format!("panel {title:?} has no id"))?;
        ensure!(ids.insert(id), "panel {title:?}: id {id} is used twice");
        let kind = panel["type"].as_str().unwrap_or("");
        ensure!(!kind.is_empty(), "panel {title:?} has no type");
        let grid = GridPos::of(panel).with_context(|| format!("panel {title:?}"))?;
        ensure!(
            (1..=24).contains(&grid.w) && grid.x + grid.w <= 24 && grid.h >= 1,
            "panel {title:?}: gridPos {grid:?} does not fit Grafana's 24 columns"
        );
        if kind == "row" {
            ensure!(panel.get("targets").is_none(), "row {title:?} has queries");
            continue;
        }
        ensure!(
            panel["datasource"]["uid"] == DATASOURCE_UID,
            "panel {title:?}: datasource {} is not uid {DATASOURCE_UID:?}",
            panel["datasource"]
        );
        let targets = panel["targets"].as_array().cloned().unwrap_or_default();
        ensure!(!targets.is_empty(), "panel {title:?} has no queries");
        let mut refs = HashSet::new();
        for target in &targets {
            let reference = target["refId"].as_str().unwrap_or("");
            ensure!(
                refs.insert(reference),
                "panel {title:?}: refId {reference:?} is empty or used twice"
            );
            ensure!(
                target["expr"]
                    .as_str()
                    .is_some_and(|e| !e.trim().is_empty()),
                "panel {title:?} query {reference}: no expr"
            );
            // A query without its own data source uses the panel's.
            ensure!(
                target.get("datasource").is_none() || target["datasource"]["uid"] == DATASOURCE_UID,
                "panel {title:?} query {reference}: datasource {} is not uid {DATASOURCE_UID:?}",
                target["datasource"]
            );
        }
    }

    // Grafana moves overlapping panels around; none should overlap as laid out.
    let placed: Vec<(&str, GridPos)> = panels
        .iter()
        .filter_map(|p| Some((p["title"].as_str().unwrap_or(""), GridPos::of(p).ok()?)))
        .collect();
    for (i, (a, ga)) in placed.iter().enumerate() {
        for (b, gb) in &placed[i + 1..] {
            ensure!(!ga.overlaps(gb), "panels {a:?} and {b:?} overlap");
        }
    }

    for variable in dashboard["templating"]["list"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let name = variable["name"].as_str().unwrap_or("");
        ensure!(
            variable["datasource"]["uid"] == DATASOURCE_UID,
            "variable {name:?}: datasource is not uid {DATASOURCE_UID:?}"
        );
        Variable::parse(&variable)?;
    }

    ensure!(
        provisioned("uid") == Some(DATASOURCE_UID),
        "provisioning/datasources/hcmon.yaml does not give the data source uid {DATASOURCE_UID:?}"
    );
    Ok(())
}

/// Every panel, those inside rows included.
fn all_panels(dashboard: &Value) -> Vec<&Value> {
    let mut panels = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        panels.push(panel);
        panels.extend(panel["panels"].as_array().into_iter().flatten());
    }
    panels
}

/// A panel's place on Grafana's grid (24 columns wide).
#[derive(Debug, Clone, Copy)]
struct GridPos {
    x: u64,
    y: u64,
    w: u64,
    h: u64,
}

impl GridPos {
    fn of(panel: &Value) -> anyhow::Result<Self> {
        let grid = &panel["gridPos"];
        let field = |name: &str| {
            grid[name]
                .as_u64()
                .with_context(|| format!("gridPos.{name} is missing or not a whole number"))
        };
        Ok(Self {
            x: field("x")?,
            y: field("y")?,
            w: field("w")?,
            h: field("h")?,
        })
    }

    fn overlaps(&self, other: &Self) -> bool {
        self.x < other.x + other.w
            && other.x < self.x + self.w
            && self.y < other.y + other.h
            && other.y < self.y + self.h
    }
}

/// The value of a top-level `key: value` of the data source in the provisioning file (a flat
/// look-up: the file is short and the keys asked for are unique in it).
fn provisioned(key: &str) -> Option<&'static str> {
    DATASOURCE.lines().find_map(|line| {
        let (k, v) = line.trim().trim_start_matches("- ").split_once(':')?;
        (k.trim() == key).then(|| v.trim())
    })
}

/// A `label_values(<selector>, <label>)` template variable, as Grafana's Prometheus data source
/// defines them.
#[derive(Debug)]
struct Variable {
    name: String,
    selector: String,
    label: String,
}

impl Variable {
    fn parse(variable: &Value) -> anyhow::Result<Self> {
        let name = variable["name"].as_str().unwrap_or("").to_owned();
        // Grafana 10 keeps the query in an object; older dashboards as a string.
        let query = variable["query"]["query"]
            .as_str()
            .or(variable["query"].as_str())
            .with_context(|| format!("variable {name:?} has no query"))?;
        let inner = query
            .trim()
            .strip_prefix("label_values(")
            .and_then(|q| q.strip_suffix(')'))
            .with_context(|| format!("variable {name:?}: {query:?} is not label_values(...)"))?;
        // The label comes after the last comma outside the selector's braces.
        let mut depth = 0i32;
        let mut split = None;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => split = Some(i),
                _ => {}
            }
        }
        let at = split
            .with_context(|| format!("variable {name:?}: {query:?} names no metric to match"))?;
        Ok(Self {
            name,
            selector: inner[..at].trim().to_owned(),
            label: inner[at + 1..].trim().to_owned(),
        })
    }
}

// ---- the queries against real data ----

/// One panel query, and what Grafana would put in place of its interval variables.
struct Query {
    panel: String,
    expr: String,
    /// The panel's minimum interval, else the data source's `timeInterval`: Grafana's "scrape
    /// interval" in `$__rate_interval`.
    min_interval: Duration,
}

impl Query {
    /// `$__interval` and the range step: the step Grafana picks for a ten-minute range (never
    /// below the panel's minimum interval).
    fn interval(&self) -> Duration {
        STEP.max(self.min_interval)
    }

    /// Grafana's rule: max($__interval + scrape interval, 4 × scrape interval).
    fn rate_interval(&self) -> Duration {
        (self.interval() + self.min_interval).max(4 * self.min_interval)
    }

    /// The expression with every variable replaced: the dashboard's (`chosen`) and Grafana's
    /// interval variables.
    fn substituted(&self, chosen: &BTreeMap<String, String>) -> anyhow::Result<String> {
        let mut values = vec![
            ("__rate_interval", promql_duration(self.rate_interval())),
            ("__interval", promql_duration(self.interval())),
            ("__range", promql_duration(RANGE)),
        ];
        values.extend(chosen.iter().map(|(n, v)| (n.as_str(), v.clone())));
        substitute(&format!("panel {:?}", self.panel), &self.expr, &values)
    }
}

/// `text` with every `$name` and `${name}` replaced by its value in `values`, or an error naming
/// a variable it has no value for (`context` says whose text it is).
fn substitute(context: &str, text: &str, values: &[(&str, String)]) -> anyhow::Result<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = match after.strip_prefix('{') {
            Some(braced) => {
                let end = braced
                    .find('}')
                    .with_context(|| format!("{context}: unclosed ${{ in {text:?}"))?;
                (&braced[..end], end + 2)
            }
            None => {
                let end = after.find(|c| !is_name(c)).unwrap_or(after.len());
                (&after[..end], end)
            }
        };
        // A `$` that starts no name (a regex anchor) stays, as Grafana leaves it.
        if name.is_empty() && len == 0 {
            out.push('$');
            rest = after;
            continue;
        }
        let value = values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
            .with_context(|| format!("{context}: no value for ${name} in {text:?}"))?;
        out.push_str(value);
        rest = &after[len..];
    }
    out.push_str(rest);
    Ok(out)
}

#[test]
fn variables_are_substituted_as_grafana_does() {
    let values = [("job", "node".to_owned()), ("__interval", "15s".to_owned())];
    let check = |text: &str, expected: Option<&str>| {
        let got = substitute("test", text, &values).ok();
        assert_eq!(got.as_deref(), expected, "{text}");
    };
    check(r#"up{job="$job"}"#, Some(r#"up{job="node"}"#));
    check(
        r#"up{job="${job}"}[$__interval]"#,
        Some(r#"up{job="node"}[15s]"#),
    );
    check(r#"up{job=~"no.*$"}"#, Some(r#"up{job=~"no.*$"}"#));
    check("rate(x[$__interval_ms])", None);
    check("x{a=\"${job\"}", None);
}

fn promql_duration(duration: Duration) -> String {
    format!("{}s", duration.as_secs())
}

fn panel_queries(dashboard: &Value, default_interval: Duration) -> anyhow::Result<Vec<Query>> {
    let mut queries = Vec::new();
    for panel in all_panels(dashboard) {
        let title = panel["title"].as_str().unwrap_or("").to_owned();
        let min_interval = match panel["interval"].as_str() {
            Some(text) => humantime::parse_duration(text)
                .with_context(|| format!("panel {title:?}: interval {text:?}"))?,
            None => default_interval,
        };
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                queries.push(Query {
                    panel: title.clone(),
                    expr: expr.to_owned(),
                    min_interval,
                });
            }
        }
    }
    Ok(queries)
}

/// What one query answered, instant and range.
struct Answer {
    expr: String,
    panel: String,
    instant: Value,
    range: Value,
}

impl Answer {
    fn count(value: &Value) -> usize {
        value["data"]["result"].as_array().map_or(0, Vec::len)
    }

    fn has_data(&self) -> bool {
        Self::count(&self.instant) > 0 && Self::count(&self.range) > 0
    }
}

/// Talks to the collector as Grafana's Prometheus data source does: POSTed form queries, the
/// admin token as a bearer token.
struct Api {
    client: reqwest::Client,
    http: SocketAddr,
}

impl Api {
    /// POSTs `params` as a form to `path`; an answer other than success is an error with the
    /// body, which names what the collector could not do.
    async fn post(&self, path: &str, params: &[(&str, String)]) -> anyhow::Result<Value> {
        let url = format!("http://{}{path}", self.http);
        let mut form = reqwest::Url::parse("http://form/")?;
        form.query_pairs_mut().extend_pairs(params);
        let response = self
            .client
            .post(&url)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form.query().unwrap_or("").to_owned())
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body = response.text().await?;
        ensure!(status.is_success(), "{status}: {body}");
        let value: Value = serde_json::from_str(&body).with_context(|| body.clone())?;
        ensure!(value["status"] == "success", "{body}");
        Ok(value)
    }

    async fn label_values(
        &self,
        variable: &Variable,
        selector: &str,
    ) -> anyhow::Result<Vec<String>> {
        let now = now_s();
        let url = format!(
            "http://{}/api/v1/label/{}/values",
            self.http, variable.label
        );
        let params = [
            ("match[]", selector.to_owned()),
            ("start", format!("{:.3}", now - RANGE.as_secs_f64())),
            ("end", format!("{now:.3}")),
        ];
        let response = self.client.get(&url).query(&params).send().await?;
        let status = response.status();
        let body = response.text().await?;
        ensure!(
            status.is_success(),
            "variable {:?}: GET {url} match[]={selector}: {status}: {body}",
            variable.name
        );
        let value: Value = serde_json::from_str(&body)?;
        Ok(value["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect())
    }

    async fn ask(&self, query: &Query, expr: String) -> anyhow::Result<Answer> {
        let now = now_s();
        let context = || format!("panel {:?}: {expr}", query.panel);
        let instant = self
            .post(
                "/api/v1/query",
                &[("query", expr.clone()), ("time", format!("{now:.3}"))],
            )
            .await
            .with_context(context)?;
        let range = self
            .post(
                "/api/v1/query_range",
                &[
                    ("query", expr.clone()),
                    ("start", format!("{:.3}", now - RANGE.as_secs_f64())),
                    ("end", format!("{now:.3}")),
                    ("step", promql_duration(query.interval())),
                ],
            )
            .await
            .with_context(context)?;
        Ok(Answer {
            panel: query.panel.clone(),
            expr,
            instant,
            range,
        })
    }
}

// ---- servers for the probes ----

/// A free loopback port, released for a server to bind.
fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A server process for a probe to check; killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Server {
    /// Starts `program` (from the Debian package `package`) and waits until it accepts
    /// connections on `port`.
    fn start(program: &str, package: &str, port: u16, args: &[&str]) -> anyhow::Result<Self> {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("cannot start {program}; this test needs it: apt-get install {package}")
            })?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server.child.try_wait()? {
                bail!("{program} exited with {status} before listening on port {port}");
            }
            ensure!(
                Instant::now() < deadline,
                "{program} did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn redis(dir: &Path) -> anyhow::Result<Self> {
        let port = free_port()?;
        let port_arg = port.to_string();
        let dir = dir.display().to_string();
        let args = [
            "--port",
            &port_arg,
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            &dir,
        ];
        Self::start("redis-server", "redis-server", port, &args)
    }

    fn memcached() -> anyhow::Result<Self> {
        let port = free_port()?;
        let port_arg = port.to_string();
        // -u: memcached refuses to run as root without a user to switch to; ignored otherwise.
        let args = [
            "-l",
            "127.0.0.1",
            "-p",
            &port_arg,
            "-U",
            "0",
            "-m",
            "16",
            "-u",
            "nobody",
        ];
        Self::start("memcached", "memcached", port, &args)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn every_dashboard_query_answers_with_agent_data() -> anyhow::Result<()> {
    let dashboard: Value = serde_json::from_str(DASHBOARD)?;
    let default_interval = provisioned("timeInterval")
        .context("the provisioned data source sets no timeInterval")
        .and_then(|text| Ok(humantime::parse_duration(text)?))?;
    let queries = panel_queries(&dashboard, default_interval)?;
    let variables: Vec<Variable> = dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Variable::parse)
        .collect::<anyhow::Result<_>>()?;

    let dir = tempfile::tempdir()?;
    let redis = Server::redis(dir.path())?;
    let memcached = Server::memcached()?;
    // A rule that fires at once on the agent's data, so the Alerts row has an alert to show.
    let rules = dir.path().join("rules.yml");
    std::fs::write(&rules, ALERT_RULE)?;
    let collector = Collector::start_with_config(
        &dir.path().join("collector"),
        &format!(
            "[alerting]\nrule_files = [{:?}]\n",
            rules.display().to_string()
        ),
    )?;
    // Every tier at a second or two, so the detailed tier's counters (CPU modes, disks) and the
    // extended tier's top processes have several points within a minute.
    let config = format!(
        r#"
interval = "1s"
detailed_interval = "1s"
extended_interval = "2s"
probe_interval = "1s"

[[probes.http]]
url = "http://{http}/-/healthy"

[[probes.tcp]]
address = "{grpc}"

[[probes.redis]]
address = "{redis}"

[[probes.memcached]]
address = "{memcached}"
"#,
        http = collector.http,
        grpc = collector.grpc,
        redis = redis.address(),
        memcached = memcached.address(),
    );
    let agent = Agent::start_with_config(
        &collector.grpc_url(),
        NODE,
        &dir.path().join("spool"),
        &config,
    )?;
    let api = Api {
        client: collector.client()?,
        http: collector.http,
    };
    let logs = || {
        format!(
            "agent log:\n{}\ncollector log:\n{}",
            agent.process.logs(),
            collector.process.logs()
        )
    };

    // The variables, in order (a later one's selector may use an earlier one), each waited for
    // until it lists this agent's value.
    let expected = BTreeMap::from([("job", JOB), ("instance", NODE)]);
    let deadline = Instant::now() + DATA_DEADLINE;
    let mut chosen: BTreeMap<String, String> = BTreeMap::new();
    for variable in &variables {
        let want = expected
            .get(variable.name.as_str())
            .with_context(|| format!("variable {:?}: no value expected for it", variable.name))?;
        let selector = substitute(
            &format!("variable {:?}", variable.name),
            &variable.selector,
            &chosen
                .iter()
                .map(|(n, v)| (n.as_str(), v.clone()))
                .collect::<Vec<_>>(),
        )?;
        loop {
            let values = api.label_values(variable, &selector).await?;
            if values.iter().any(|v| v == want) {
                eprintln!(
                    "variable {} = label_values({selector}, {}) -> {values:?}",
                    variable.name, variable.label
                );
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "variable {:?}: label_values({selector}, {}) gave {values:?}, without {want:?}\n{}",
                    variable.name,
                    variable.label,
                    logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        chosen.insert(variable.name.clone(), (*want).to_owned());
    }

    // Every query until all answer with data: the agent's tiers arrive over the first seconds,
    // and a rate needs two points. An error fails at once: waiting does not mend a query.
    let answers = loop {
        let mut answers = Vec::with_capacity(queries.len());
        for query in &queries {
            let expr = query.substituted(&chosen)?;
            answers.push(api.ask(query, expr).await?);
        }
        if answers.iter().all(Answer::has_data) {
            break answers;
        }
        if Instant::now() > deadline {
            let mut report = String::new();
            for answer in answers.iter().filter(|a| !a.has_data()) {
                report.push_str(&format!(
                    "panel {:?}: {}\n  instant: {}\n  range: {}\n",
                    answer.panel, answer.expr, answer.instant, answer.range
                ));
            }
            bail!(
                "these queries answered without data after {DATA_DEADLINE:?}:\n{report}{}",
                logs()
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    for answer in &answers {
        eprintln!(
            "{:>3} instant, {:>3} range series  [{}] {}",
            Answer::count(&answer.instant),
            Answer::count(&answer.range),
            answer.panel,
            answer.expr
        );
    }
    eprintln!(
        "{} panel queries and {} variables answered with data",
        answers.len(),
        variables.len()
    );
    Ok(())
}
