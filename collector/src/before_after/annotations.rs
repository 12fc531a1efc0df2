//! The `annotations` table: marked moments and spans, keyed by id (time-ordered, see the
//! module header), read straight from the store: annotations are made by people, so few, and
//! a listing seeks to its range.

use super::records::{decode_annotation, encode_annotation};
use super::{Annotation, BeforeAfterError, NewAnnotation, first_key_at, is_id, mint_id};
use crate::storage::{KvBatch, StoreError, Table, Tsdb};

/// Longest span an annotation may cover. Bounds how far before a range a listing looks for
/// spans that reach into it.
pub const MAX_SPAN_MS: i64 = 366 * 24 * 3_600_000;

/// Longest text, tag and node name, in characters; most tags.
const MAX_TEXT_CHARS: usize = 1000;
const MAX_TAG_CHARS: usize = 64;
const MAX_TAGS: usize = 20;
const MAX_NODE_CHARS: usize = 256;

/// What a missing annotation is called in errors.
const WHAT: &str = "annotation";

/// The annotations in a store.
pub struct AnnotationStore<'a> {
    tsdb: &'a Tsdb,
}

impl<'a> AnnotationStore<'a> {
    pub fn new(tsdb: &'a Tsdb) -> Self {
        Self { tsdb }
    }

    /// Stores a new annotation durably, made by `created_by` at `now_ms`.
    pub fn create(
        &self,
        new: NewAnnotation,
        created_by: &str,
        now_ms: i64,
    ) -> Result<Annotation, BeforeAfterError> {
        let invalid = |m: String| Err(BeforeAfterError::Invalid(m));
        let text = new.text.trim();
        if text.is_empty() || text.chars().count() > MAX_TEXT_CHARS {
            return invalid(format!("text: give 1 to {MAX_TEXT_CHARS} characters"));
        }
        if new.tags.len() > MAX_TAGS {
            return invalid(format!("tags: at most {MAX_TAGS}"));
        }
        let mut tags = Vec::with_capacity(new.tags.len());
        for tag in &new.tags {
            let tag = tag.trim();
            if tag.is_empty() || tag.chars().count() > MAX_TAG_CHARS || has_control(tag) {
                return invalid(format!(
                    "tags: {tag:?} is not 1 to {MAX_TAG_CHARS} printable characters"
                ));
            }
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        if let Some(node) = &new.node
            && (node.is_empty() || node.chars().count() > MAX_NODE_CHARS || has_control(node))
        {
            return invalid(format!(
                "node: {node:?} is not 1 to {MAX_NODE_CHARS} printable characters"
            ));
        }
        if let Some(end) = new.end_ms {
            if end < new.time_ms {
                return invalid("end: before time".into());
            }
            if end - new.time_ms > MAX_SPAN_MS {
                return invalid("end: a span may cover at most 366 days".into());
            }
        }
        let annotation = Annotation {
            id: mint_id(new.time_ms)?,
            time_ms: new.time_ms,
            end_ms: new.end_ms,
            text: text.to_owned(),
            tags,
            node: new.node,
            created_by: created_by.to_owned(),
            created_ms: now_ms,
        };
        let mut batch = KvBatch::default();
        let value = encode_annotation(&annotation);
        batch.put(Table::Annotations, annotation.id.as_bytes(), value);
        self.tsdb.kv().write(batch, true)?;
        Ok(annotation)
    }

    /// Annotations that overlap `[start_ms, end_ms]`, by time.
    pub fn list(&self, start_ms: i64, end_ms: i64) -> Result<Vec<Annotation>, StoreError> {
        let from = first_key_at(start_ms.saturating_sub(MAX_SPAN_MS));
        let to = match end_ms.checked_add(1) {
            Some(after) if after <= super::MAX_ID_TIME_MS => first_key_at(after),
            _ => vec![0xff],
        };
        let mut out = Vec::new();
        let mut failed = None;
        self.tsdb
            .kv()
            .scan(
                Table::Annotations,
                &from,
                &to,
                &mut |key, value| match decode_annotation(key, value) {
                    Ok(a) => {
                        if a.time_ms <= end_ms && a.end_ms.unwrap_or(a.time_ms) >= start_ms {
                            out.push(a);
                        }
                        true
                    }
                    Err(e) => {
                        failed = Some(e);
                        false
                    }
                },
            )?;
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// The annotation `id`.
    pub fn get(&self, id: &str) -> Result<Annotation, BeforeAfterError> {
        let missing = || BeforeAfterError::NotFound {
            what: WHAT,
            id: id.to_owned(),
        };
        if !is_id(id) {
            return Err(missing());
        }
        let value = self.tsdb.kv().get(Table::Annotations, id.as_bytes())?;
        let value = value.ok_or_else(missing)?;
        Ok(decode_annotation(id.as_bytes(), &value)?)
    }

    /// Deletes the annotation `id` durably; what it was.
    pub fn delete(&self, id: &str) -> Result<Annotation, BeforeAfterError> {
        let annotation = self.get(id)?;
        let mut batch = KvBatch::default();
        batch.delete(Table::Annotations, id.as_bytes());
        self.tsdb.kv().write(batch, true)?;
        Ok(annotation)
    }
}

fn has_control(text: &str) -> bool {
    text.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{MemoryKv, StorageConfig};

    const HOUR: i64 = 3_600_000;
    const T: i64 = 1_700_000_000_000;

    fn open(kv: &MemoryKv) -> Tsdb {
        Tsdb::open(Box::new(kv.clone()), StorageConfig::default())
            .unwrap()
            .tsdb
    }

    fn new(time_ms: i64, end_ms: Option<i64>, text: &str) -> NewAnnotation {
        NewAnnotation {
            time_ms,
            end_ms,
            text: text.into(),
            tags: vec!["deploy".into(), " deploy ".into()],
            node: None,
        }
    }

    #[test]
    fn annotations_list_by_overlap_survive_a_reopen_and_delete() {
        let kv = MemoryKv::default();
        let tsdb = open(&kv);
        let store = AnnotationStore::new(&tsdb);
        let early = store
            .create(new(T - 10 * HOUR, None, "early"), "a", T)
            .unwrap();
        let span = store
            .create(new(T - 5 * HOUR, Some(T + HOUR), "span"), "a", T)
            .unwrap();
        let point = store.create(new(T, None, " point "), "b", T).unwrap();
        assert_eq!(point.text, "point");
        assert_eq!(point.tags, ["deploy"]);
        assert!(is_id(&point.id));
        assert!(
            early.id < span.id && span.id < point.id,
            "ids are time-ordered"
        );
        let tsdb = open(&kv);
        let store = AnnotationStore::new(&tsdb);
        let texts = |start, end| -> Vec<String> {
            let listed = store.list(start, end).unwrap();
            listed.into_iter().map(|a| a.text).collect()
        };
        assert_eq!(texts(T - HOUR, T), ["span", "point"]);
        assert_eq!(texts(T + 1, T + 2 * HOUR), ["span"]);
        assert_eq!(texts(0, i64::MAX), ["early", "span", "point"]);
        assert_eq!(texts(T + 2 * HOUR, T + 3 * HOUR), Vec::<String>::new());
        assert_eq!(store.get(&span.id).unwrap(), span);
        assert_eq!(store.delete(&span.id).unwrap().text, "span");
        assert_eq!(texts(T - HOUR, T), ["point"]);
        for id in [span.id.as_str(), "nope"] {
            let error = store.delete(id).unwrap_err();
            assert!(
                matches!(error, BeforeAfterError::NotFound { .. }),
                "{error}"
            );
        }
    }

    #[test]
    fn bad_annotations_are_refused_naming_the_field() {
        let tsdb = open(&MemoryKv::default());
        let store = AnnotationStore::new(&tsdb);
        let mut long_tags = new(T, None, "x");
        long_tags.tags = vec!["t".repeat(65)];
        let mut blank_node = new(T, None, "x");
        blank_node.node = Some(String::new());
        for (bad, field) in [
            (new(T, None, "  "), "text"),
            (new(T, Some(T - 1), "x"), "end"),
            (new(T, Some(T + MAX_SPAN_MS + 1), "x"), "end"),
            (new(-1, None, "x"), "time"),
            (long_tags, "tags"),
            (blank_node, "node"),
        ] {
            let error = store.create(bad, "a", T).unwrap_err().to_string();
            assert!(error.starts_with(field), "{error}");
        }
    }
}
