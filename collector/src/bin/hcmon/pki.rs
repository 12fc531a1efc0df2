//! `hcmon enroll`, `hcmon nodes` and `hcmon revoke`: agent enrollment with the collector's CA
//! (admin).

use crate::{Api, data};
use hcmon_collector::api::pki::{EnrolledNode, EnrollmentGrant, NewEnrollment, Revocation};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

/// Issues a single-use enrollment token for `node`, printed on stdout or written (mode 0600)
/// to `out` for provisioning tools.
pub async fn enroll(
    api: &Api,
    node: String,
    ttl: Option<Duration>,
    out: Option<&Path>,
) -> anyhow::Result<()> {
    let request = NewEnrollment {
        node,
        ttl: ttl.map(|t| humantime::format_duration(t).to_string()),
    };
    let grant: EnrollmentGrant = data(&api.post("/api/v1/pki/enrollments", &request).await?)?;
    let expires = humantime::format_rfc3339_seconds(at(grant.expires_at_ms));
    match out {
        Some(path) => {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            writeln!(file, "{}", grant.token)?;
            eprintln!(
                "enrollment token for node {} written to {} (single use, expires {expires})",
                grant.node,
                path.display()
            );
        }
        None => {
            eprintln!(
                "enrollment token for node {} (single use, expires {expires}); on the node run:\n  hcmon-agent --node-name {} --enroll-token <token>   (or deploy/install-agent.sh --enroll-token <token>)",
                grant.node, grant.node
            );
            println!("{}", grant.token);
        }
    }
    Ok(())
}

/// Lists every enrolled node with its newest certificate.
pub async fn nodes(api: &Api) -> anyhow::Result<()> {
    let nodes: Vec<EnrolledNode> = data(&api.get("/api/v1/pki/nodes", vec![]).await?)?;
    println!(
        "{:<24} {:<10} {:<22} {:<22} {:<6} SERIAL",
        "NODE", "STATE", "ISSUED", "EXPIRES", "CERTS"
    );
    for n in nodes {
        let state = match n.revoked_at_ms {
            Some(_) => "revoked",
            None => n.issuance.as_str(),
        };
        println!(
            "{:<24} {:<10} {:<22} {:<22} {:<6} {}",
            n.node,
            state,
            humantime::format_rfc3339_seconds(at(n.issued_at_ms)).to_string(),
            humantime::format_rfc3339_seconds(at(n.not_after_ms)).to_string(),
            n.certificates,
            n.serial
        );
    }
    Ok(())
}

/// Revokes every certificate of `node` and cuts its agent off.
pub async fn revoke(api: &Api, node: &str) -> anyhow::Result<()> {
    let path = format!("/api/v1/pki/nodes/{node}/revoke");
    let revocation: Revocation = data(&api.post(&path, &serde_json::json!({})).await?)?;
    println!(
        "revoked {} certificate(s) of node {}; its agent is cut off and needs a new enrollment token",
        revocation.revoked, revocation.node
    );
    Ok(())
}

fn at(ms: i64) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)
}
