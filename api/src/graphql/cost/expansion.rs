//! The size of an operation with every fragment spread expanded, counted once per fragment.

use super::{error, too_costly};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, Selection, SelectionSet,
};
use async_graphql::{Name, Positioned, ServerResult};
use fishapp_domain::ErrorCode;
use std::collections::HashMap;

/// The number of selections in the document's largest operation with every fragment spread
/// expanded, or an error once it passes `max`. Each fragment's size is computed once (memoized),
/// so the count is linear in the document however often fragments spread each other; a cycle
/// of spreads is refused here (validation would refuse it too, but only after walking it).
pub(super) fn expanded_size(document: &ExecutableDocument, max: usize) -> ServerResult<usize> {
    let mut counter = Expansion {
        document,
        memo: HashMap::new(),
    };
    let operations: Vec<&SelectionSet> = match &document.operations {
        DocumentOperations::Single(op) => vec![&op.node.selection_set.node],
        DocumentOperations::Multiple(ops) => {
            ops.values().map(|op| &op.node.selection_set.node).collect()
        }
    };
    let mut largest = 0;
    for selection_set in operations {
        let size = counter.selection_set(selection_set)?;
        if size > max {
            let message = format!(
                "the query expands to {size} selections once its fragments are spread; at most {max} are accepted"
            );
            return Err(too_costly("maxSelections", message));
        }
        largest = largest.max(size);
    }
    Ok(largest)
}

enum Visit {
    InProgress,
    Done(usize),
}

struct Expansion<'d> {
    document: &'d ExecutableDocument,
    memo: HashMap<&'d Name, Visit>,
}

impl<'d> Expansion<'d> {
    /// Saturating: the sizes of a hostile document overflow any integer; they only need to
    /// compare as "more than the limit".
    fn selection_set(&mut self, set: &'d SelectionSet) -> ServerResult<usize> {
        let mut size = 0usize;
        for selection in &set.items {
            let inner = match &selection.node {
                Selection::Field(field) => self.selection_set(&field.node.selection_set.node)?,
                Selection::InlineFragment(inline) => {
                    self.selection_set(&inline.node.selection_set.node)?
                }
                Selection::FragmentSpread(spread) => self.fragment(&spread.node.fragment_name)?,
            };
            size = size.saturating_add(1).saturating_add(inner);
        }
        Ok(size)
    }

    fn fragment(&mut self, name: &'d Positioned<Name>) -> ServerResult<usize> {
        match self.memo.get(&name.node) {
            Some(Visit::Done(size)) => return Ok(*size),
            Some(Visit::InProgress) => {
                return Err(error(
                    ErrorCode::BadUserInput,
                    format!("fragment {} spreads itself", name.node),
                    Some(name.pos),
                ));
            }
            None => {}
        }
        // An unknown fragment costs nothing here; validation reports it.
        let Some(fragment) = self.document.fragments.get(&name.node) else {
            return Ok(0);
        };
        self.memo.insert(&name.node, Visit::InProgress);
        let size = self.selection_set(&fragment.node.selection_set.node)?;
        self.memo.insert(&name.node, Visit::Done(size));
        Ok(size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graphql::cost::doubling;

    fn size_of(query: &str, max: usize) -> ServerResult<usize> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        expanded_size(&document, max)
    }

    #[test]
    fn expansion_is_counted_without_walking_it() {
        // 2^(l+1) - 1 spreads plus 2^l leaves: 3·2^l - 1.
        assert_eq!(size_of(&doubling(3), usize::MAX).unwrap(), 3 * 8 - 1);
        // 2^64 overflows any count: it saturates, and is refused at once.
        let err = size_of(&doubling(64), 2_000).unwrap_err();
        assert!(err.message.contains("expands to"), "{}", err.message);
    }

    #[test]
    fn spreads_in_fields_inline_fragments_and_aliases_count() {
        let q = "query { a: healthCheck ...F ... on Query { ...F } user(id: 1) { ...U ...U } }
                 fragment F on Query { healthCheck b: healthCheck }
                 fragment U on User { id name }";
        // a(1) + ...F(1+2) + inline(1 + ...F(1+2)) + user(1 + 2·(1+2))
        assert_eq!(size_of(q, usize::MAX).unwrap(), 1 + 3 + 4 + 7);
    }

    #[test]
    fn the_largest_operation_decides() {
        let q = "query A { healthCheck } query B { ...F ...F } fragment F on Query { healthCheck }";
        assert_eq!(size_of(q, usize::MAX).unwrap(), 4);
    }

    #[test]
    fn fragment_cycles_are_refused_not_followed() {
        let err = size_of(
            "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            usize::MAX,
        )
        .unwrap_err();
        assert!(err.message.contains("spreads itself"), "{}", err.message);
    }
}
