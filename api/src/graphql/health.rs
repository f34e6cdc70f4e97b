use async_graphql::Object;

#[derive(Default)]
pub(crate) struct HealthQuery;

#[Object]
impl HealthQuery {
    /// Always true while the API process answers; says nothing about its dependencies
    /// (`/readyz` does).
    async fn health_check(&self) -> bool {
        true
    }
}
