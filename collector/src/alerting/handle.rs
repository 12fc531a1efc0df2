//! The API's handle on alerting: operator commands (acknowledge, silence, expire a silence,
//! forget a node) go to the service's loop, which owns the book, and wait for its answer;
//! reads (the published view, incidents from the store, checking an acknowledge link) need no
//! loop.

use super::ack_link::AckSigner;
use super::book::{BookError, Incident, IncidentEvent, SilenceRecord};
use super::ids::{AlertId, IncidentId, SilenceId};
use super::store;
use super::view::{AlertsView, Published};
use crate::clock::Clock;
use crate::storage::{StoreError, Tsdb};
use crate::tasks;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Why an operator request failed.
#[derive(Debug, thiserror::Error)]
pub enum AlertingError {
    #[error(transparent)]
    Book(#[from] BookError),
    #[error("the alerting service has stopped")]
    Stopped,
    #[error("cannot read alerting records: {0}")]
    Store(#[from] StoreError),
    #[error("cannot read alerting records: {0}")]
    Panicked(#[from] crate::tasks::Panicked),
}

/// The book's answer to a command.
pub(super) type Reply = oneshot::Sender<Result<(), BookError>>;

/// An operator request for the service's loop.
pub(super) enum Command {
    Ack {
        id: AlertId,
        by: String,
        reply: Reply,
    },
    Silence {
        record: SilenceRecord,
        reply: Reply,
    },
    Expire {
        id: SilenceId,
        reply: Reply,
    },
    ForgetNode {
        node: String,
        reply: Reply,
    },
}

/// The API's handle on alerting.
#[derive(Clone)]
pub struct Alerting {
    commands: mpsc::Sender<Command>,
    view: Published,
    signer: Arc<AckSigner>,
    tsdb: Arc<Tsdb>,
    clock: Clock,
}

impl Alerting {
    pub(super) fn new(
        commands: mpsc::Sender<Command>,
        view: Published,
        signer: Arc<AckSigner>,
        tsdb: Arc<Tsdb>,
        clock: Clock,
    ) -> Self {
        Self {
            commands,
            view,
            signer,
            tsdb,
            clock,
        }
    }

    pub fn view(&self) -> Arc<AlertsView> {
        self.view.get()
    }

    pub fn now_ms(&self) -> i64 {
        (self.clock)()
    }

    async fn ask(&self, command: impl FnOnce(Reply) -> Command) -> Result<(), AlertingError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| AlertingError::Stopped)?;
        Ok(answer.await.map_err(|_| AlertingError::Stopped)??)
    }

    /// Acknowledges the alert `id` (as a request names it) as `by`.
    pub async fn acknowledge(&self, id: &str, by: &str) -> Result<(), AlertingError> {
        let (id, by) = (AlertId::from(id), by.to_owned());
        self.ask(|reply| Command::Ack { id, by, reply }).await
    }

    /// Stops watching a node ingest forgot: its alerts resolve and go.
    pub async fn forget_node(&self, node: &str) -> Result<(), AlertingError> {
        let node = node.to_owned();
        self.ask(|reply| Command::ForgetNode { node, reply }).await
    }

    /// Checks a signed acknowledge link.
    pub fn verify_link(&self, alert: &str, by: &str, expires_s: i64, signature: &str) -> bool {
        self.signer
            .verify(alert, by, expires_s, signature, self.now_ms())
    }

    /// Creates a silence; its id is made here.
    pub async fn silence(&self, mut record: SilenceRecord) -> Result<SilenceRecord, AlertingError> {
        record.id = SilenceId::random();
        record.created_ms = self.now_ms();
        let stored = record.clone();
        self.ask(|reply| Command::Silence { record, reply }).await?;
        Ok(stored)
    }

    pub async fn expire_silence(&self, id: &str) -> Result<(), AlertingError> {
        let id = SilenceId::from(id);
        self.ask(|reply| Command::Expire { id, reply }).await
    }

    /// Incidents, newest first.
    pub async fn incidents(&self, limit: usize) -> Result<Vec<Incident>, AlertingError> {
        let tsdb = self.tsdb.clone();
        Ok(tasks::blocking("alert-incidents", move || {
            store::incidents(tsdb.kv(), limit)
        })
        .await??)
    }

    pub async fn incident(
        &self,
        id: &str,
    ) -> Result<Option<(Incident, Vec<IncidentEvent>)>, AlertingError> {
        let (tsdb, id) = (self.tsdb.clone(), IncidentId::from(id));
        Ok(tasks::blocking("alert-incidents", move || store::incident(tsdb.kv(), &id)).await??)
    }
}
