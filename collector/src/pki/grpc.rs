//! The Enrollment gRPC service: decoding, the blocking work off the async workers, the audit
//! record of every attempt, and the mapping of [`EnrollmentError`] to `tonic::Status` (the only
//! place that mapping exists).

use super::authority::{AuthorityError, IssuedCertificate};
use super::enrollment::{Enrollment, EnrollmentError};
use super::incoming::TlsPeer;
use super::registry::TokenRefusal;
use crate::access::FailureThrottle;
use crate::audit::{AuditEvent, AuditLog, Entry};
use crate::clock::Clock;
use hcmon_proto::v1::enrollment_server::{self, EnrollmentServer};
use hcmon_proto::v1::{EnrollRequest, IssuedCertificate as WireCertificate, RenewRequest};
use std::sync::Arc;
use std::time::Instant;
use tonic::{Code, Request, Response, Status};

/// The longest certificate request accepted, in bytes: a P-256 or RSA-4096 request is far
/// below it.
const MAX_CSR_BYTES: usize = 16 * 1024;

/// The status code of each refusal.
fn code(error: &EnrollmentError) -> Code {
    match error {
        EnrollmentError::Token(_)
        | EnrollmentError::OtherCollector
        | EnrollmentError::NoCertificate => Code::Unauthenticated,
        EnrollmentError::Refused(TokenRefusal::OtherNode { .. })
        | EnrollmentError::Revoked { .. } => Code::PermissionDenied,
        EnrollmentError::Refused(_) => Code::Unauthenticated,
        EnrollmentError::BadNodeName(..)
        | EnrollmentError::Authority(AuthorityError::BadRequest(_)) => Code::InvalidArgument,
        EnrollmentError::UnknownNode(_) => Code::NotFound,
        EnrollmentError::Authority(_) | EnrollmentError::Store(_) | EnrollmentError::Random(_) => {
            Code::Internal
        }
    }
}

impl From<EnrollmentError> for Status {
    fn from(error: EnrollmentError) -> Self {
        // Display hides internal details: storage errors say only "storage failure".
        Status::new(code(&error), error.to_string())
    }
}

/// The HTTP status an attempt is recorded with in the audit log, as API calls are.
fn outcome(result: &Result<IssuedCertificate, EnrollmentError>) -> u16 {
    match result.as_ref().map_err(code) {
        Ok(_) => 200,
        Err(Code::Unauthenticated) => 401,
        Err(Code::PermissionDenied) => 403,
        Err(Code::InvalidArgument) => 400,
        Err(Code::NotFound) => 404,
        Err(_) => 500,
    }
}

pub struct EnrollmentService {
    enrollment: Arc<Enrollment>,
    audit: Arc<AuditLog>,
    clock: Clock,
    /// Failed attempts per client address: past the limit an address is refused unheard, so
    /// tokens cannot be guessed at speed nor the audit log flooded (as for API tokens).
    failures: FailureThrottle,
}

impl EnrollmentService {
    pub fn server(
        enrollment: Arc<Enrollment>,
        audit: Arc<AuditLog>,
        clock: Clock,
    ) -> EnrollmentServer<Self> {
        EnrollmentServer::new(Self {
            enrollment,
            audit,
            clock,
            failures: FailureThrottle::default(),
        })
    }

    /// Runs `work` on the blocking pool (signing, synced writes), then records the attempt.
    async fn attempt(
        &self,
        peer: Option<TlsPeer>,
        route: &'static str,
        event: impl FnOnce(Option<String>) -> AuditEvent,
        work: impl FnOnce(&Enrollment) -> Result<IssuedCertificate, EnrollmentError> + Send + 'static,
    ) -> Result<Response<WireCertificate>, Status> {
        let address = peer.as_ref().map(|p| p.remote.ip());
        if let Some(wait) = address.and_then(|a| self.failures.blocked(a, Instant::now())) {
            return Err(Status::resource_exhausted(format!(
                "too many failed enrollments from this address; try again in {}s",
                wait.as_secs().max(1)
            )));
        }
        let enrollment = self.enrollment.clone();
        let result = crate::tasks::blocking("enrollment", move || work(&enrollment))
            .await
            .map_err(|panicked| Status::internal(panicked.to_string()))?;
        if let (Err(_), Some(address)) = (&result, address) {
            self.failures.failed(address, Instant::now());
        }
        let serial = result.as_ref().ok().map(|c| c.serial.clone());
        let who = match &result {
            Ok(issued) => issued.node.clone(),
            Err(_) => "unauthenticated".to_owned(),
        };
        let entry = Entry {
            role: result.is_ok().then(|| "agent".to_owned()),
            who,
            client: peer.as_ref().map(|p| p.remote.to_string()),
            route: route.to_owned(),
            event: event(serial),
            outcome: outcome(&result),
        };
        let (audit, at) = (self.audit.clone(), (self.clock)());
        crate::tasks::blocking("audit-append", move || audit.append(entry, at))
            .await
            .map_err(|panicked| Status::internal(panicked.to_string()))?
            .map_err(|error| {
                tracing::error!(%error, "cannot record an enrollment in the audit log");
                Status::internal("cannot record the attempt in the audit log")
            })?;
        let issued = result?;
        tracing::info!(node = %issued.node, serial = %issued.serial, route, "certificate issued");
        Ok(Response::new(WireCertificate {
            certificate_pem: issued.certificate_pem,
            ca_pem: self.enrollment.authority().cert_pem().to_owned(),
            not_after_ms: issued.not_after_ms,
        }))
    }
}

#[tonic::async_trait]
impl enrollment_server::Enrollment for EnrollmentService {
    async fn enroll(
        &self,
        request: Request<EnrollRequest>,
    ) -> Result<Response<WireCertificate>, Status> {
        let peer = request.extensions().get::<TlsPeer>().cloned();
        let EnrollRequest {
            token,
            node_name,
            csr_pem,
        } = request.into_inner();
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(Status::invalid_argument(format!(
                "the certificate request has {} bytes, more than the {MAX_CSR_BYTES} accepted",
                csr_pem.len()
            )));
        }
        let node = node_name.clone();
        self.attempt(
            peer,
            "gRPC hcmon.v1.Enrollment/Enroll",
            |serial| AuditEvent::Enroll { node, serial },
            move |enrollment| enrollment.enroll(&token, &node_name, &csr_pem),
        )
        .await
    }

    async fn renew(
        &self,
        request: Request<RenewRequest>,
    ) -> Result<Response<WireCertificate>, Status> {
        let peer = request.extensions().get::<TlsPeer>().cloned();
        let RenewRequest { csr_pem } = request.into_inner();
        if csr_pem.len() > MAX_CSR_BYTES {
            return Err(Status::invalid_argument(format!(
                "the certificate request has {} bytes, more than the {MAX_CSR_BYTES} accepted",
                csr_pem.len()
            )));
        }
        let certificate = peer.as_ref().and_then(|p| p.certificate.clone());
        let node = certificate
            .as_ref()
            .map_or_else(String::new, |c| c.node.clone());
        self.attempt(
            peer,
            "gRPC hcmon.v1.Enrollment/Renew",
            |serial| AuditEvent::RenewCertificate { node, serial },
            move |enrollment| enrollment.renew(certificate.as_ref(), &csr_pem),
        )
        .await
    }
}
