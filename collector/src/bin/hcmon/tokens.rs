//! `hcmon tokens`: make, list and revoke the collector's API tokens (admin).

use crate::{Api, data};
use clap::Subcommand;
use hcmon_collector::access::Role;
use hcmon_collector::api::tokens::{CreatedToken, NewToken, RevokedToken, TokenSummary};
use std::time::Duration;

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token; its text is printed once and cannot be shown again.
    Create {
        /// Who or what holds it (names it in the audit log), e.g. grafana.
        #[arg(long)]
        name: String,
        /// viewer (reads), operator (also acknowledges and silences) or admin (everything).
        #[arg(long)]
        role: Role,
        /// May push samples (remote write), whatever its role.
        #[arg(long)]
        write: bool,
        /// How long it lives, e.g. 30d [default: forever].
        #[arg(long, value_parser = humantime::parse_duration)]
        expires_in: Option<Duration>,
    },
    /// Every token: id, name, role, scope, expiry (never the secrets).
    List,
    /// Revoke a token by id: it authenticates nothing from then on.
    Revoke { id: String },
}

pub async fn run(api: &Api, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create {
            name,
            role,
            write,
            expires_in,
        } => {
            let request = NewToken {
                name,
                role,
                write,
                expires_in: expires_in.map(|d| humantime::format_duration(d).to_string()),
            };
            let made: CreatedToken = data(&api.post("/api/v1/tokens", &request).await?)?;
            eprintln!(
                "token {} ({}, {}{}{}); keep it now, it is not shown again:",
                made.id,
                made.name,
                made.role,
                if made.write { ", write" } else { "" },
                made.expires_at
                    .map(|at| format!(", expires {at}"))
                    .unwrap_or_default()
            );
            println!("{}", made.token);
        }
        TokensCommand::List => {
            let tokens: Vec<TokenSummary> = data(&api.get("/api/v1/tokens", vec![]).await?)?;
            println!(
                "{:<10} {:<24} {:<9} {:<6} {:<26} EXPIRES",
                "ID", "NAME", "ROLE", "WRITE", "CREATED"
            );
            for t in tokens {
                println!(
                    "{:<10} {:<24} {:<9} {:<6} {:<26} {}",
                    t.id,
                    t.name,
                    t.role.name(),
                    if t.write { "yes" } else { "no" },
                    t.created_at,
                    t.expires_at.as_deref().unwrap_or("never")
                );
            }
        }
        TokensCommand::Revoke { id } => {
            let revoked: RevokedToken =
                data(&api.delete(&format!("/api/v1/tokens/{id}"), vec![]).await?)?;
            println!("revoked token {} ({})", revoked.id, revoked.name);
        }
    }
    Ok(())
}
