//! The audit log over HTTP: [`record`], the middleware that writes a record for every
//! state-changing call, and the endpoints that read the log (`GET /api/v1/audit`, the JSON-lines
//! `GET /api/v1/audit/export` that `hcmon audit verify` checks).
//!
//! A call is recorded after its handler answered, with the status it answered as the outcome;
//! its answer goes out only once the record is durable. When the record cannot be written the
//! call is answered 500 instead, though its effect may stand: no call succeeds unrecorded.

use super::error::{ApiError, success};
use super::params::QueryParams;
use super::{ApiState, blocking};
use crate::api::ApiResponse;
use crate::api::alerts::SilenceResponse;
use crate::api::annotations::Annotation;
use crate::api::compare::Experiment;
use crate::api::pki::EnrollmentGrant;
use crate::api::slo::{Definition as SloDefinition, ImportedSlos};
use crate::api::tokens::CreatedToken;
use crate::audit::{AuditEvent, AuditRecord, Entry};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, RawPathParams, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{RequestExt, Router};
use std::collections::VecDeque;
use std::net::SocketAddr;

/// Who made a call that needs no token: the signed acknowledgement link (the person it names
/// is the event's).
const SIGNED_LINK: &str = "signed link";

/// Records a list answers by default, and at most.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 10_000;

pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/audit", get(list))
        .route("/api/v1/audit/export", get(export))
}

/// The state-changing calls, by method and route template; the signed ack link is a GET (and
/// axum answers a HEAD with the GET handler). Remote write changes only data and is not
/// audited; queries sent as POST change nothing.
#[derive(Clone, Copy)]
enum Call {
    AckAlert,
    CreateSilence,
    ExpireSilence,
    ForgetAgent,
    Compact,
    CreateToken,
    RevokeToken,
    IssueEnrollmentToken,
    RevokeNode,
    CreateAnnotation,
    DeleteAnnotation,
    CreateExperiment,
    DeleteExperiment,
    CreateSlo,
    ImportSlos,
    DeleteSlo,
}

impl Call {
    /// The call a request makes, with its route template, if it changes state.
    fn of(method: &Method, path: &str) -> Option<(Call, &'static str)> {
        let segments: Vec<&str> = path.strip_prefix("/api/v1/")?.split('/').collect();
        Some(match (method.as_str(), segments.as_slice()) {
            ("POST" | "GET" | "HEAD", ["alerts", _, "ack"]) => {
                (Call::AckAlert, "/api/v1/alerts/{id}/ack")
            }
            ("POST", ["silences"]) => (Call::CreateSilence, "/api/v1/silences"),
            ("DELETE", ["silences", _]) => (Call::ExpireSilence, "/api/v1/silences/{id}"),
            ("DELETE", ["agents", _]) => (Call::ForgetAgent, "/api/v1/agents/{node}"),
            ("POST", ["admin", "compact"]) => (Call::Compact, "/api/v1/admin/compact"),
            ("POST", ["tokens"]) => (Call::CreateToken, "/api/v1/tokens"),
            ("DELETE", ["tokens", _]) => (Call::RevokeToken, "/api/v1/tokens/{id}"),
            ("POST", ["pki", "enrollments"]) => {
                (Call::IssueEnrollmentToken, "/api/v1/pki/enrollments")
            }
            ("POST", ["pki", "nodes", _, "revoke"]) => {
                (Call::RevokeNode, "/api/v1/pki/nodes/{node}/revoke")
            }
            ("POST", ["annotations"]) => (Call::CreateAnnotation, "/api/v1/annotations"),
            ("DELETE", ["annotations", _]) => (Call::DeleteAnnotation, "/api/v1/annotations/{id}"),
            ("POST", ["experiments"]) => (Call::CreateExperiment, "/api/v1/experiments"),
            ("DELETE", ["experiments", _]) => (Call::DeleteExperiment, "/api/v1/experiments/{id}"),
            ("POST", ["slos"]) => (Call::CreateSlo, "/api/v1/slos"),
            ("POST", ["slos", "openslo"]) => (Call::ImportSlos, "/api/v1/slos/openslo"),
            ("DELETE", ["slos", _]) => (Call::DeleteSlo, "/api/v1/slos/{name}"),
            _ => return None,
        })
    }
}

/// Middleware: runs a state-changing call, then appends its record before answering (see the
/// module header). Other calls pass through untouched.
pub async fn record(State(state): State<ApiState>, mut request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let Some((call, route)) = Call::of(&method, request.uri().path()) else {
        return next.run(request).await;
    };
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.to_string());
    let (who, role) = match super::auth::identity(&request) {
        Some(identity) => (identity.name.clone(), Some(identity.role.to_string())),
        None => (SIGNED_LINK.to_owned(), None),
    };
    let target = match request.extract_parts::<RawPathParams>().await {
        Ok(params) => params.iter().next().map(|(_, value)| value.to_owned()),
        Err(_) => None,
    }
    .unwrap_or_default();
    let response = next.run(request).await;
    let outcome = response.status();
    let (event, response) = match call {
        Call::AckAlert => (AuditEvent::AckAlert { alert: target }, response),
        Call::ExpireSilence => (AuditEvent::ExpireSilence { silence: target }, response),
        Call::ForgetAgent => (AuditEvent::ForgetAgent { node: target }, response),
        Call::Compact => (AuditEvent::Compact, response),
        Call::CreateSilence => {
            let (created, response) = answer::<SilenceResponse>(response).await;
            let silence = created.map(|s| s.id);
            (AuditEvent::CreateSilence { silence }, response)
        }
        Call::RevokeToken => (AuditEvent::RevokeToken { token: target }, response),
        Call::CreateToken => {
            let (created, response) = answer::<CreatedToken>(response).await;
            let token = created.map(|t| t.id);
            (AuditEvent::CreateToken { token }, response)
        }
        Call::IssueEnrollmentToken => {
            let (grant, response) = answer::<EnrollmentGrant>(response).await;
            let node = grant.map(|g| g.node);
            (AuditEvent::IssueEnrollmentToken { node }, response)
        }
        Call::RevokeNode => (AuditEvent::RevokeNode { node: target }, response),
        Call::CreateAnnotation => {
            let (made, response) = answer::<Annotation>(response).await;
            let annotation = made.map(|a| a.id);
            (AuditEvent::CreateAnnotation { annotation }, response)
        }
        Call::DeleteAnnotation => (
            AuditEvent::DeleteAnnotation { annotation: target },
            response,
        ),
        Call::CreateExperiment => {
            let (made, response) = answer::<Experiment>(response).await;
            let experiment = made.map(|e| e.id);
            (AuditEvent::CreateExperiment { experiment }, response)
        }
        Call::DeleteExperiment => (
            AuditEvent::DeleteExperiment { experiment: target },
            response,
        ),
        Call::CreateSlo => {
            let (made, response) = answer::<SloDefinition>(response).await;
            let slo = made.map(|d| d.name);
            (AuditEvent::CreateSlo { slo }, response)
        }
        Call::ImportSlos => {
            let (made, response) = answer::<ImportedSlos>(response).await;
            let slos = made.map(|i| i.created).unwrap_or_default();
            (AuditEvent::ImportSlos { slos }, response)
        }
        Call::DeleteSlo => (AuditEvent::DeleteSlo { slo: target }, response),
    };
    let entry = Entry {
        who,
        role,
        client,
        route: format!("{method} {route}"),
        event,
        outcome: outcome.as_u16(),
    };
    let (audit, at_ms) = (state.audit.clone(), state.now_ms());
    let appended = blocking("audit", move || audit.append(entry, at_ms)).await;
    match appended.and_then(|written| written.map_err(ApiError::from)) {
        Ok(_) => response,
        Err(error) => {
            tracing::error!(%error, %method, %route, "cannot write the audit record; answering 500");
            error.into_response()
        }
    }
}

/// The `data` of a successful answer (the handler's own JSON, in memory: reading it cannot
/// fail), and the answer to send on.
async fn answer<T: serde::de::DeserializeOwned>(response: Response) -> (Option<T>, Response) {
    if !response.status().is_success() {
        return (None, response);
    }
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    let data = serde_json::from_slice::<ApiResponse<T>>(&bytes)
        .ok()
        .map(|answer| answer.data);
    (data, Response::from_parts(parts, Body::from(bytes)))
}

/// `GET /api/v1/audit[?since=<time>][&limit=<n>]`: the newest `limit` records (100 by default,
/// at most 10,000) made at or after `since`, oldest first.
async fn list(
    State(state): State<ApiState>,
    QueryParams(params): QueryParams,
) -> Result<Response, ApiError> {
    let since = params.time_ms("since")?.unwrap_or(i64::MIN);
    let limit = params.count("limit", MAX_LIMIT)?.unwrap_or(DEFAULT_LIMIT);
    let audit = state.audit.clone();
    let records = blocking("/api/v1/audit", move || {
        let mut newest = VecDeque::with_capacity(limit);
        audit.read(0, &mut |record: AuditRecord| {
            if record.at_ms >= since && limit > 0 {
                if newest.len() == limit {
                    newest.pop_front();
                }
                newest.push_back(record);
            }
            true
        })?;
        Ok::<_, ApiError>(Vec::from(newest))
    })
    .await??;
    Ok(success(records))
}

/// `GET /api/v1/audit/export`: every record, oldest first, one JSON object per line.
async fn export(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let audit = state.audit.clone();
    let body = blocking("/api/v1/audit/export", move || {
        let mut body = Vec::new();
        audit.read(0, &mut |record| {
            serde_json::to_writer(&mut body, &record).expect("audit records serialize");
            body.push(b'\n');
            true
        })?;
        Ok::<_, ApiError>(body)
    })
    .await??;
    Ok(([(header::CONTENT_TYPE, "application/stream+json")], body).into_response())
}

#[cfg(test)]
mod tests {
    use super::super::HttpLimits;
    use super::*;
    use crate::storage::{Kv, KvBatch, MemoryKv, StoreError, Table};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    /// A store whose writes fail while `failing` is set.
    #[derive(Clone, Default)]
    struct FlakyKv {
        kv: MemoryKv,
        failing: Arc<AtomicBool>,
    }

    impl Kv for FlakyKv {
        fn write(&self, batch: KvBatch, durable: bool) -> Result<(), StoreError> {
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Failed);
            }
            self.kv.write(batch, durable)
        }
        fn scan(
            &self,
            table: Table,
            start: &[u8],
            end: &[u8],
            visit: &mut (dyn FnMut(&[u8], &[u8]) -> bool + '_),
        ) -> Result<(), StoreError> {
            self.kv.scan(table, start, end, visit)
        }
        fn disk_size(&self, table: Table) -> u64 {
            self.kv.disk_size(table)
        }
        fn compact(&self, table: Table) -> Result<(), StoreError> {
            self.kv.compact(table)
        }
        fn flush(&self) -> Result<(), StoreError> {
            self.kv.flush()
        }
        fn sync(&self) -> Result<(), StoreError> {
            self.kv.sync()
        }
        fn log(&self) -> &dyn crate::storage::Log {
            self.kv.log()
        }
    }

    /// The API (alerting and analytics off) over `kv`, served on a loopback port: its address
    /// and a client with an admin token named `test`.
    async fn serve(kv: FlakyKv) -> (String, reqwest::Client) {
        let served = crate::http::tests::serve_on(Box::new(kv), HttpLimits::default()).await;
        (served.base, served.client)
    }

    async fn audit_log(client: &reqwest::Client, base: &str) -> Vec<AuditRecord> {
        let answer = client.get(format!("{base}/api/v1/audit"));
        let answer = answer.send().await.unwrap();
        let answer: ApiResponse<Vec<AuditRecord>> = answer.json().await.unwrap();
        answer.data
    }

    #[tokio::test]
    async fn state_changes_are_recorded_with_their_outcome_and_reads_are_not() {
        let (base, client) = serve(FlakyKv::default()).await;
        let forget = client.delete(format!("{base}/api/v1/agents/ghost%20node"));
        assert_eq!(forget.send().await.unwrap().status(), 404);
        let compact = client.post(format!("{base}/api/v1/admin/compact"));
        assert_eq!(compact.send().await.unwrap().status(), 200);
        // The signed link, here to a collector with alerting off.
        let link = reqwest::Client::new().get(format!(
            "{base}/api/v1/alerts/abc/ack?by=me&expires=2000000000&sig=00"
        ));
        assert_eq!(link.send().await.unwrap().status(), 404);
        for path in ["/api/v1/query?query=up", "/api/v1/agents", "/healthz"] {
            let read = client.get(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(read.status(), 200, "{path}");
        }
        let query = client
            .post(format!("{base}/api/v1/query"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("query=up");
        assert_eq!(query.send().await.unwrap().status(), 200);
        let seen: Vec<_> = audit_log(&client, &base)
            .await
            .into_iter()
            .map(|r| (r.seq, (r.who, r.role), r.route, r.event, r.outcome))
            .collect();
        let admin = || ("test".to_owned(), Some("admin".to_owned()));
        let node = "ghost node".to_owned();
        let expected = vec![
            (
                0,
                admin(),
                "DELETE /api/v1/agents/{node}".to_owned(),
                AuditEvent::ForgetAgent { node },
                404,
            ),
            (
                1,
                admin(),
                "POST /api/v1/admin/compact".to_owned(),
                AuditEvent::Compact,
                200,
            ),
            (
                2,
                ("signed link".to_owned(), None),
                "GET /api/v1/alerts/{id}/ack".to_owned(),
                AuditEvent::AckAlert {
                    alert: "abc".to_owned(),
                },
                404,
            ),
        ];
        assert_eq!(seen, expected);
    }

    #[tokio::test]
    async fn a_call_whose_record_cannot_be_written_is_answered_500() {
        let kv = FlakyKv::default();
        let (base, client) = serve(kv.clone()).await;
        kv.failing.store(true, Ordering::SeqCst);
        let forget = client.delete(format!("{base}/api/v1/agents/ghost"));
        let answer = forget.send().await.unwrap();
        assert_eq!(answer.status(), 500);
        kv.failing.store(false, Ordering::SeqCst);
        assert!(audit_log(&client, &base).await.is_empty());
    }
}
