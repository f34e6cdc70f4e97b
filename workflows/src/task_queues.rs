//! Task queue names. Workflows run on their own queue, activities on one queue per context, so
//! that a context's activities can be deployed (and scaled) apart from the rest — except the
//! steps a saga runs as local activities, on the workflow's own worker (`saga::Placement`).

/// The task queues of one Fishapp deployment, all derived from one prefix so that a test (or a
/// second deployment on the same Temporal namespace) gets a set of its own by changing one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskQueues {
    pub workflows: String,
    pub post: String,
    pub chat: String,
    pub media: String,
}

impl TaskQueues {
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            workflows: format!("{prefix}.workflows"),
            post: format!("{prefix}.post"),
            chat: format!("{prefix}.chat"),
            media: format!("{prefix}.media"),
        }
    }

    pub fn all(&self) -> [&str; 4] {
        [&self.workflows, &self.post, &self.chat, &self.media]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queues_share_the_prefix_and_are_distinct() {
        let queues = TaskQueues::with_prefix("t1");
        let all = queues.all();
        assert!(all.iter().all(|q| q.starts_with("t1.")));
        let mut unique = all.to_vec();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), all.len());
    }
}
