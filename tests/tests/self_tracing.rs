//! The collector traces itself: with `[traces] otlp_endpoint`, the spans of a batch's ingest
//! (node, sequence), a PromQL query (the query), a rule-evaluation round and a notification's
//! delivery (the alert's id) reach an OTLP/gRPC trace receiver on loopback, here the
//! protocol's own `TraceService` served by tonic. Without an endpoint nothing is exported.

use hcmon_tests::{Agent, Collector};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A trace receiver keeping every span it is sent, with the exporter's service name.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource in request.into_inner().resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in resource.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    async fn start() -> anyhow::Result<(Self, std::net::SocketAddr)> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let receiver = Self::default();
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
        );
        Ok((receiver, addr))
    }

    /// The attribute `key` of the first span named `name` that has it, once one arrives.
    async fn attribute(&self, name: &str, key: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let found = self.spans.lock().unwrap().iter().find_map(|(_, span)| {
                (span.name == name).then_some(())?;
                let kv = span.attributes.iter().find(|kv| kv.key == key)?;
                Some(match kv.value.as_ref()?.value.as_ref()? {
                    AnyValue::StringValue(s) => s.clone(),
                    AnyValue::IntValue(i) => i.to_string(),
                    other => format!("{other:?}"),
                })
            });
            if let Some(found) = found {
                return Ok(found);
            }
            let names: Vec<String> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .map(|(_, s)| s.name.clone())
                .collect();
            anyhow::ensure!(
                Instant::now() < deadline,
                "no {name} span with {key} in {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

const ALWAYS_FIRES: &str = r#"
[alerting]
group_window = "1s"

[[alerting.rules]]
name = "AgentAlive"
selector = 'hcmon_agent_samples_total'
direction = "above"
warning = 0.0
"#;

#[tokio::test(flavor = "multi_thread")]
async fn spans_of_ingest_queries_rules_and_deliveries_reach_an_otlp_receiver() -> anyhow::Result<()>
{
    let (receiver, addr) = Receiver::start().await?;
    let dir = tempfile::tempdir()?;
    let config = format!(
        "[traces]\notlp_endpoint = \"http://{addr}\"\nexport_interval = \"200ms\"\n{ALWAYS_FIRES}"
    );
    let collector = Collector::start_with_config(&dir.path().join("collector"), &config)?;
    let _agent = Agent::start(
        &collector.grpc_url(),
        "traced",
        &dir.path().join("spool"),
        "1s",
    );

    assert_eq!(receiver.attribute("ingest_batch", "node").await?, "traced");
    assert!(
        receiver
            .attribute("ingest_batch", "seq")
            .await?
            .parse::<u64>()?
            >= 1
    );
    collector
        .get_json(
            "/api/v1/query",
            &[("query", "up{node=\"traced\"}".to_owned())],
        )
        .await?;
    assert_eq!(
        receiver.attribute("query", "query").await?,
        "up{node=\"traced\"}"
    );
    receiver
        .attribute("rule_evaluation", "code.file.path")
        .await?;
    // The log channel delivers AgentAlive's firing: its span names the alert.
    let ids = receiver
        .attribute("notification_delivery", "alert_ids")
        .await?;
    let alerts = collector.get_json("/api/v1/alerts", &[]).await?;
    let known: Vec<&str> = alerts["data"]["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| a["id"].as_str())
        .collect();
    assert!(
        ids.split(',').all(|id| known.contains(&id)),
        "{ids} vs {known:?}"
    );
    assert_eq!(
        receiver
            .attribute("notification_delivery", "channel")
            .await?,
        "log"
    );
    let services: Vec<String> = receiver
        .spans
        .lock()
        .unwrap()
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    assert!(
        services.iter().all(|s| s == "hcmon-collector"),
        "{services:?}"
    );
    Ok(())
}
