//! OTLP/gRPC on the collector's gRPC listener (OTLP's own port, 4317): the
//! `opentelemetry.proto.collector.metrics.v1.MetricsService` an SDK's default exporter calls,
//! beside hcmon's agent protocol. Calls need a token that may write, sent as OTLP exporters send
//! headers (`OTEL_EXPORTER_OTLP_HEADERS="authorization=Bearer hcm_…"`), held to the same
//! per-token write rate and per-address failure limit as HTTP.
//!
//! This is the one mapping of OTLP outcomes to `tonic::Status`, following OTLP's rules for what
//! an exporter retries: UNAVAILABLE (storage failure, rate limit) is retried, INVALID_ARGUMENT,
//! UNAUTHENTICATED and PERMISSION_DENIED are not; points left out while the rest was stored
//! are an OK answer with `partial_success`.

use super::{IngestService, RemoteWriteError};
use crate::access::{AccessControl, AuthFailure, Permission};
use crate::clock::Clock;
use crate::telemetry::CollectorMetrics;
use hcmon_common::otlp::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Request, Response, Status};

pub struct OtlpGrpc {
    service: Arc<IngestService>,
    access: Arc<AccessControl>,
    metrics: Arc<CollectorMetrics>,
    clock: Clock,
}

impl OtlpGrpc {
    /// The tonic service, decoding up to the same size agents' streams may send.
    pub fn server(
        service: Arc<IngestService>,
        access: Arc<AccessControl>,
        metrics: Arc<CollectorMetrics>,
        clock: Clock,
    ) -> MetricsServiceServer<Self> {
        let limit = service.limits.max_batch_bytes.saturating_mul(4);
        MetricsServiceServer::new(Self {
            service,
            access,
            metrics,
            clock,
        })
        .max_decoding_message_size(limit)
    }

    /// The caller's token, checked to allow writing; the token id for the write rate.
    fn authorise<T>(&self, request: &Request<T>) -> Result<crate::access::TokenId, Status> {
        let address = request
            .remote_addr()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
        let access = &self.access;
        if let Some(retry_after) = access.failures.blocked(address, Instant::now()) {
            return Err(Status::unavailable(format!(
                "too many failed authentications from {address}; retry in {} s",
                retry_after.as_secs().max(1)
            )));
        }
        let token = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            });
        let checked = match token {
            None => Err(AuthFailure::Missing),
            Some(token) => access.tokens.authenticate(token, (self.clock)()),
        };
        let identity = checked.map_err(|failure| {
            access.failures.failed(address, Instant::now());
            Status::unauthenticated(format!(
                "{failure}: send a token that may write as `authorization: Bearer <token>` metadata (OTEL_EXPORTER_OTLP_HEADERS=\"authorization=Bearer <token>\")"
            ))
        })?;
        if !Permission::Write.allows(identity.grant()) {
            return Err(Status::permission_denied(format!(
                "token {:?} may not write metrics: create one with write access (hcmon tokens create --name NAME --role operator --write)",
                identity.name
            )));
        }
        Ok(identity.token_id)
    }

    async fn store(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<ExportMetricsServiceResponse, Status> {
        let token = self.authorise(&request)?;
        let writes = &self.access.writes;
        if let Err(retry_after) = writes.admit(&token, Instant::now()) {
            self.metrics
                .refused_requests
                .with_label_values(&["grpc", "write_samples_per_second"])
                .inc();
            return Err(Status::unavailable(format!(
                "over this token's write rate of {} samples per second; retry in {} s",
                writes.rate(),
                retry_after.as_secs().max(1)
            )));
        }
        let request = request.into_inner();
        let service = self.service.clone();
        let stored = crate::tasks::blocking("otlp-export", move || service.otlp(&request))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let outcome = stored.map_err(|e| match e {
            RemoteWriteError::Store(_) => Status::unavailable(e.to_string()),
            other => Status::invalid_argument(other.to_string()),
        })?;
        writes.charge(&token, outcome.stored, Instant::now());
        Ok(ExportMetricsServiceResponse {
            partial_success: (outcome.rejected > 0).then_some(ExportMetricsPartialSuccess {
                rejected_data_points: outcome.rejected,
                error_message: outcome.message,
            }),
        })
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let answer = self.store(request).await;
        let label = match &answer {
            Ok(r) if r.partial_success.is_some() => "partial",
            Ok(_) => "ok",
            Err(s) if s.code() == tonic::Code::Unavailable => "failed",
            Err(_) => "refused",
        };
        self.metrics
            .otlp_requests
            .with_label_values(&["grpc", label])
            .inc();
        answer.map(Response::new)
    }
}
