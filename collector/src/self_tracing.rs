//! The collector's own traces (`[traces]`): the `tracing` spans it opens on the ingest of a
//! batch (node, sequence), a PromQL query (the query), a round of rule evaluation and a
//! notification's delivery (alert, channel) are exported over OTLP/gRPC to `otlp_endpoint`
//! (an OpenTelemetry Collector, Jaeger, Tempo…). Off by default: with no endpoint no layer is
//! installed, and the spans cost what any unexported `tracing` span costs.
//!
//! Spans are batched on the collector's tokio runtime and dropped, not queued without bound,
//! when the receiver is slow or away; exporting never blocks ingest.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, Sampler, SdkTracerProvider};
use serde::Deserialize;
use std::time::Duration;

/// `[traces]` in the collector's config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// OTLP/gRPC endpoint to export spans to, e.g. `http://127.0.0.1:4317`; empty: off.
    pub otlp_endpoint: String,
    /// The `service.name` of the exported spans.
    pub service_name: String,
    /// Share of traces kept, 0..1 (a child follows its parent's decision).
    pub sample_ratio: f64,
    /// How often batched spans are sent.
    #[serde(with = "humantime_serde")]
    pub export_interval: Duration,
}

impl Default for TracesConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: String::new(),
            service_name: "hcmon-collector".into(),
            sample_ratio: 1.0,
            export_interval: Duration::from_secs(5),
        }
    }
}

impl TracesConfig {
    /// Checks the endpoint and ratio, naming the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let endpoint = &self.otlp_endpoint;
        let is_url = endpoint.starts_with("http://") || endpoint.starts_with("https://");
        if !endpoint.is_empty() && !is_url {
            return Err((
                "traces.otlp_endpoint",
                format!(
                    "{:?} is not a URL like http://127.0.0.1:4317 (OTLP over gRPC)",
                    self.otlp_endpoint
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err((
                "traces.sample_ratio",
                format!("{} must be between 0 and 1", self.sample_ratio),
            ));
        }
        Ok(())
    }
}

/// The exporting pipeline while it runs; [`SelfTracing::shutdown`] sends what is batched.
pub struct SelfTracing {
    provider: SdkTracerProvider,
}

impl SelfTracing {
    /// The `tracing` layer exporting spans as `config` says, and its pipeline; `None` when no
    /// endpoint is configured. Call from within the tokio runtime.
    pub fn start<S>(
        config: &TracesConfig,
    ) -> anyhow::Result<Option<(impl tracing_subscriber::Layer<S> + use<S>, Self)>>
    where
        S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
    {
        config
            .validate()
            .map_err(|(key, problem)| anyhow::anyhow!("invalid `{key}`: {problem}"))?;
        if config.otlp_endpoint.is_empty() {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(&config.otlp_endpoint)
            .with_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| {
                anyhow::anyhow!(
                    "cannot export traces to {} ([traces] otlp_endpoint): {e}",
                    config.otlp_endpoint
                )
            })?;
        let batching = BatchConfigBuilder::default()
            .with_scheduled_delay(config.export_interval)
            .build();
        let processor = BatchSpanProcessor::builder(exporter, Tokio)
            .with_batch_config(batching)
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                config.sample_ratio,
            ))))
            .with_resource(
                Resource::builder()
                    .with_service_name(config.service_name.clone())
                    .build(),
            )
            .build();
        let tracer = provider.tracer("hcmon-collector");
        let layer = tracing_opentelemetry::layer().with_tracer(tracer);
        Ok(Some((layer, Self { provider })))
    }

    /// Sends the spans still batched; called once at shutdown.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "the last traces could not be exported");
        }
    }
}
