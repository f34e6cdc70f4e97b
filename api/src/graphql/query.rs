use async_graphql::Object;

pub struct Query;

#[Object]
impl Query {
    /// Always true while the API process answers; says nothing about its dependencies
    /// (`/readyz` does).
    async fn health_check(&self) -> bool {
        true
    }
}
