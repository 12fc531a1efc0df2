//! The OTLP receiver's two transports on loopback: gRPC (tonic, the
//! `MetricsService`) and HTTP/1.1 (`POST /v1/metrics`, protobuf or JSON). Both answer as OTLP
//! says exporters expect: a spool failure is retryable (UNAVAILABLE, 503), a body that cannot
//! be read is not (INVALID_ARGUMENT, 400).

use super::otlp::OtlpReceiver;
use bytes::Bytes;
use hcmon_common::otlp::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use prost::Message;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Largest export body taken over HTTP (and decoded over gRPC).
const MAX_BODY_BYTES: usize = 16 << 20;

struct Grpc(Arc<OtlpReceiver>);

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let receiver = self.0.clone();
        let request = request.into_inner();
        tokio::task::spawn_blocking(move || receiver.accept(&request))
            .await
            .map_err(|e| tonic::Status::internal(format!("the export task failed: {e}")))?
            .map(tonic::Response::new)
            .map_err(|e| tonic::Status::unavailable(e.to_string()))
    }
}

/// Serves OTLP/gRPC on `listener` until `shutdown`.
pub async fn serve_grpc(
    listener: TcpListener,
    receiver: Arc<OtlpReceiver>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let service =
        MetricsServiceServer::new(Grpc(receiver)).max_decoding_message_size(MAX_BODY_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown.cancelled_owned(),
        )
        .await
}

fn reply(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

fn text(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    reply(status, "text/plain; charset=utf-8", message.into_bytes())
}

async fn handle(request: Request<Incoming>, receiver: Arc<OtlpReceiver>) -> Response<Full<Bytes>> {
    if request.uri().path() != "/v1/metrics" {
        return text(
            StatusCode::NOT_FOUND,
            "this agent takes OTLP metrics at POST /v1/metrics\n".into(),
        );
    }
    if request.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n".into());
    }
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let json = match media.as_str() {
        "application/x-protobuf" => false,
        "application/json" => true,
        other => {
            return text(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "Content-Type {other:?} is not supported; send application/x-protobuf or application/json\n"
                ),
            );
        }
    };
    if let Some(encoding) = request.headers().get(header::CONTENT_ENCODING)
        && encoding.as_bytes() != b"identity"
    {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "compressed bodies are not taken on loopback; export without compression\n".into(),
        );
    }
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("cannot read the body (at most {MAX_BODY_BYTES} bytes): {e}\n"),
            );
        }
    };
    let decoded = if json {
        serde_json::from_slice::<ExportMetricsServiceRequest>(&body).map_err(|e| e.to_string())
    } else {
        ExportMetricsServiceRequest::decode(body).map_err(|e| e.to_string())
    };
    let export = match decoded {
        Ok(export) => export,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("body is not an OTLP ExportMetricsServiceRequest: {e}\n"),
            );
        }
    };
    let answer = tokio::task::spawn_blocking(move || receiver.accept(&export)).await;
    match answer {
        Ok(Ok(response)) if json => reply(
            StatusCode::OK,
            "application/json",
            serde_json::to_vec(&response).unwrap_or_default(),
        ),
        Ok(Ok(response)) => reply(
            StatusCode::OK,
            "application/x-protobuf",
            response.encode_to_vec(),
        ),
        Ok(Err(e)) => text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n")),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the export task failed: {e}\n"),
        ),
    }
}

/// Serves OTLP/HTTP on `listener` until `shutdown`; each connection in its own task.
pub async fn serve_http(
    listener: TcpListener,
    receiver: Arc<OtlpReceiver>,
    shutdown: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => return,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(error) => {
                tracing::warn!(%error, "OTLP/HTTP: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let receiver = receiver.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let receiver = receiver.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(request, receiver).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "OTLP/HTTP connection ended");
                    }
                }
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
}
