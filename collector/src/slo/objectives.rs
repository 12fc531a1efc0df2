//! The SLOs in force: the defaults (recomputed from the live catalog at every listing, so a new
//! node or probe has its objectives at once), replaced by name by those declared in `[slo]`,
//! replaced by name by those created through the API (stored in table `slos`). Only the API's
//! may be deleted through the API, and the API may not shadow a declared one: the config
//! would then say one thing and the collector do another.

use super::config::SloConfig;
use super::defaults::default_objectives;
use super::definition::{Origin, SloDefinition, SloName};
use super::error::SloError;
use super::evaluate::SloSource;
use super::maintenance::{SilenceSpan, annotation_windows, silence_windows};
use super::store::SloStore;
use crate::analysis::history::History;
use crate::analytics::slo::{MaintenanceWindow, Window, Zone};
use crate::before_after::AnnotationStore;
use crate::catalog::SeriesCatalog;
use crate::storage::Tsdb;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// The live set of SLOs and what evaluating them needs.
pub struct Objectives {
    config: SloConfig,
    zone: Zone,
    tsdb: Arc<Tsdb>,
    catalog: Arc<SeriesCatalog>,
    /// Probe duration metric → the warning level of an alert rule on it, in seconds.
    latency_warnings: BTreeMap<String, f64>,
    /// `[[slo.objectives]]`, checked once at open.
    declared: Vec<SloDefinition>,
    /// The API's, as stored; written through to the store under this lock.
    created: RwLock<BTreeMap<SloName, SloDefinition>>,
    /// Local only unless [`Objectives::with_history`] names a remote one.
    history: Arc<History>,
}

impl Objectives {
    /// Checks the config and loads the API-created SLOs.
    pub fn open(
        config: SloConfig,
        latency_warnings: BTreeMap<String, f64>,
        tsdb: Arc<Tsdb>,
        catalog: Arc<SeriesCatalog>,
    ) -> Result<Self, SloError> {
        let invalid = |e: super::config::SloConfigError| SloError::invalid(e.key, e.problem);
        let zone = config.zone().map_err(invalid)?;
        let declared = config.definitions().map_err(invalid)?;
        let created = SloStore::new(&tsdb)
            .list()?
            .into_iter()
            .map(|def| (def.name.clone(), def))
            .collect();
        Ok(Self {
            history: Arc::new(History::local(tsdb.clone())),
            config,
            zone,
            tsdb,
            catalog,
            latency_warnings,
            declared,
            created: RwLock::new(created),
        })
    }

    /// Reads before the store's history from `history` (see `reading`).
    pub fn with_history(mut self, history: Arc<History>) -> Self {
        self.history = history;
        self
    }

    /// Every SLO in force, by name.
    pub fn list(&self) -> Vec<SloDefinition> {
        let mut all: BTreeMap<SloName, SloDefinition> = BTreeMap::new();
        if self.config.defaults {
            for def in default_objectives(&self.catalog, &self.config, &self.latency_warnings) {
                all.insert(def.name.clone(), def);
            }
        }
        for def in &self.declared {
            all.insert(def.name.clone(), def.clone());
        }
        for (name, def) in self.created().iter() {
            all.insert(name.clone(), def.clone());
        }
        all.into_values().collect()
    }

    pub fn get(&self, name: &SloName) -> Option<SloDefinition> {
        if let Some(def) = self.created().get(name) {
            return Some(def.clone());
        }
        if let Some(def) = self.declared.iter().find(|d| &d.name == name) {
            return Some(def.clone());
        }
        self.list().into_iter().find(|d| &d.name == name)
    }

    /// Stores `def` durably as an API-created SLO, replacing an API-created (or default) one
    /// of its name; refused when the config declares that name.
    pub fn create(&self, mut def: SloDefinition) -> Result<(), SloError> {
        def.origin = Origin::Api;
        self.admissible(&def)?;
        let mut created = self.created.write().unwrap_or_else(|e| e.into_inner());
        SloStore::new(&self.tsdb).put(&def)?;
        created.insert(def.name.clone(), def);
        Ok(())
    }

    /// Whether [`Objectives::create`] would take `def`: valid, and not named like a declared
    /// SLO.
    pub fn admissible(&self, def: &SloDefinition) -> Result<(), SloError> {
        def.validate()?;
        if self.declared.iter().any(|d| d.name == def.name) {
            return Err(SloError::invalid(
                "name",
                format!(
                    "{:?} is declared in the collector's config ([[slo.objectives]]); change it there, or pick another name",
                    def.name.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Deletes an API-created SLO; false when no SLO has that name, refused for defaults and
    /// declared ones.
    pub fn delete(&self, name: &SloName) -> Result<bool, SloError> {
        let mut created = self.created.write().unwrap_or_else(|e| e.into_inner());
        if created.contains_key(name) {
            SloStore::new(&self.tsdb).delete(name)?;
            created.remove(name);
            return Ok(true);
        }
        drop(created);
        match self.get(name) {
            Some(def) => Err(SloError::NotDeletable {
                name: name.to_string(),
                origin: match def.origin {
                    Origin::Default => "defaults (every node and probe has them)",
                    _ => "collector's config ([[slo.objectives]])",
                },
            }),
            None => Ok(false),
        }
    }

    pub fn zone(&self) -> &Zone {
        &self.zone
    }

    pub fn source(&self) -> SloSource {
        SloSource {
            tsdb: self.tsdb.clone(),
            catalog: self.catalog.clone(),
            history: self.history.clone(),
        }
    }

    pub fn config(&self) -> &SloConfig {
        &self.config
    }

    /// The maintenance windows touching `range`: the config's, annotations tagged
    /// `maintenance`, and the silences marked as maintenance (see `maintenance.rs`).
    pub fn maintenance(
        &self,
        silences: &[SilenceSpan],
        range: Window,
    ) -> Result<Vec<MaintenanceWindow>, SloError> {
        let mut out = self
            .config
            .maintenance_windows(&self.zone, range)
            .map_err(|e| SloError::invalid(e.key, e.problem))?;
        let annotations = AnnotationStore::new(&self.tsdb).list(range.start_ms, range.end_ms)?;
        out.extend(annotation_windows(&annotations));
        out.extend(silence_windows(silences, range));
        Ok(out)
    }

    fn created(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<SloName, SloDefinition>> {
        self.created.read().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slo::definition::Sli;
    use crate::storage::{MemoryKv, StorageConfig};

    fn ratio(name: &str) -> SloDefinition {
        SloDefinition::new(
            name.parse().unwrap(),
            "",
            Sli::Ratio {
                good: "a".into(),
                valid: "b".into(),
            },
            Origin::Api,
        )
    }

    fn open(tsdb: Arc<Tsdb>) -> Objectives {
        let config: SloConfig = toml::from_str(
            r#"
            defaults = false
            [[objectives]]
            name = "declared"
            kind = "ratio"
            good = "a"
            valid = "b"
            "#,
        )
        .unwrap();
        let catalog = Arc::new(SeriesCatalog::new(vec![]));
        Objectives::open(config, BTreeMap::new(), tsdb, catalog).unwrap()
    }

    #[test]
    fn api_slos_are_kept_across_opens_and_may_not_shadow_declared_ones() {
        let tsdb = Arc::new(
            Tsdb::open(Box::new(MemoryKv::default()), StorageConfig::default())
                .unwrap()
                .tsdb,
        );
        let objectives = open(tsdb.clone());
        objectives
            .create(SloDefinition {
                origin: Origin::Config,
                ..ratio("mine")
            })
            .unwrap();
        let e = objectives
            .create(ratio("declared"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("declared in the collector's config"), "{e}");
        let names = |o: &Objectives| -> Vec<(String, Origin)> {
            o.list()
                .into_iter()
                .map(|d| (d.name.to_string(), d.origin))
                .collect()
        };
        let reopened = open(tsdb);
        assert_eq!(
            names(&reopened),
            vec![
                ("declared".to_owned(), Origin::Config),
                ("mine".to_owned(), Origin::Api)
            ]
        );
        let e = reopened
            .delete(&"declared".parse().unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot be deleted"), "{e}");
        assert!(reopened.delete(&"mine".parse().unwrap()).unwrap());
        assert!(!reopened.delete(&"mine".parse().unwrap()).unwrap());
        assert_eq!(reopened.get(&"mine".parse().unwrap()), None);
        let invalid = SloDefinition {
            target: 2.0,
            ..ratio("bad")
        };
        assert!(reopened.create(invalid).is_err());
    }
}
