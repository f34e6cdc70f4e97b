//! Admitted documents, kept parsed.
//!
//! A front end sends the same few documents over and over (with different variables). Parsing
//! one with async-graphql's parser cost about a tenth of the CPU of a 30-post listing
//! (docs/benchmarks.md); a copy of the parsed document costs a fraction of that. So once the
//! query-cost guard has admitted a document, its parsed form and its expanded size are kept under
//! its exact text, and the next request with the same text skips the guard's scan, the parse and
//! the expansion count. Nothing else is skipped: async-graphql still validates every request with
//! its own variables and executes its own copy (execution edits the document: `@skip`/`@include`).
//!
//! Bounded against abuse: only documents up to [`MAX_KEPT_BYTES`] are kept (anything larger is
//! parsed off the async worker every time, as before), at most `capacity` of them, the least
//! recently used going first. Someone sending a new document per request only churns the cache:
//! each such request costs what it cost without one, plus one copy.

use async_graphql::Request;
use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

/// Largest document kept: the size above which parsing is moved off the async worker (an honest
/// front end's documents are a few hundred bytes).
pub(crate) const MAX_KEPT_BYTES: usize = super::cost::OFFLOAD_PARSE_ABOVE_BYTES;

/// A document the guard admitted: parsed, with the expanded size of its largest operation.
pub(crate) struct Admitted {
    pub(crate) document: ExecutableDocument,
    pub(crate) selections: usize,
}

/// Admitted documents by their text. Shared by every clone of the schema.
pub(crate) struct Documents {
    /// `None` when the capacity is 0: nothing is kept.
    entries: Option<Mutex<LruCache<Box<str>, Arc<Admitted>>>>,
}

impl Documents {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    /// The admitted document with exactly this text, if kept.
    pub(crate) fn get(&self, query: &str) -> Option<Arc<Admitted>> {
        let entries = self.entries.as_ref()?;
        // The lock guards only a lookup and a reference count: nothing inside can panic midway,
        // so a poisoned lock still holds a consistent cache.
        let mut entries = entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.get(query).cloned()
    }

    /// Keeps a copy of the parsed document of `request`, admitted with `selections`, under its
    /// text, unless it is too large to keep.
    pub(crate) fn keep(&self, request: &mut Request, selections: usize) {
        let Some(entries) = self.entries.as_ref() else {
            return;
        };
        if request.query.len() > MAX_KEPT_BYTES {
            return;
        }
        let Ok(document) = request.parsed_query() else {
            return;
        };
        let admitted = Arc::new(Admitted {
            document: document.clone(),
            selections,
        });
        let mut entries = entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.put(request.query.as_str().into(), admitted);
    }

    /// How many documents are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.as_ref().map_or(0, |entries| {
            entries.lock().unwrap_or_else(PoisonError::into_inner).len()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep(documents: &Documents, query: &str) {
        documents.keep(&mut Request::new(query), 1);
    }

    #[test]
    fn the_least_recently_used_goes_first() {
        let documents = Documents::new(2);
        for query in ["{ a }", "{ b }"] {
            keep(&documents, query);
        }
        assert!(documents.get("{ a }").is_some()); // `a` is now the most recent
        keep(&documents, "{ c }");
        assert!(documents.get("{ b }").is_none());
        assert!(documents.get("{ a }").is_some());
        assert!(documents.get("{ c }").is_some());
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn large_documents_and_a_zero_capacity_keep_nothing() {
        let large = format!("{{ a {} }}", " b".repeat(MAX_KEPT_BYTES));
        let documents = Documents::new(8);
        keep(&documents, &large);
        assert!(documents.get(&large).is_none());

        let off = Documents::new(0);
        keep(&off, "{ a }");
        assert!(off.get("{ a }").is_none());
        assert_eq!(off.len(), 0);
    }

    #[test]
    fn only_the_exact_text_matches() {
        let documents = Documents::new(8);
        keep(&documents, "{ a }");
        assert!(documents.get("{a}").is_none());
        assert!(documents.get("{ a } ").is_none());
    }
}
