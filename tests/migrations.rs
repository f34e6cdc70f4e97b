//! Migrations: idempotent, one schema per context, and all-or-nothing.

mod common;

use common::{TestDatabase, test_config};
use fishapp_store::migrations::{MIGRATOR, migrate_with};
use sqlx::migrate::Migrator;

#[tokio::test]
async fn running_twice_is_a_no_op_and_every_context_has_its_schema() {
    let db = TestDatabase::create(&test_config().connections.database_url).await;
    let pool = db.pool().await;

    let first = fishapp_store::migrate(&pool).await.expect("first run");
    assert_eq!(first.applied.len(), MIGRATOR.iter().count());
    let second = fishapp_store::migrate(&pool).await.expect("second run");
    assert!(second.applied.is_empty());
    assert_eq!(second.current, first.current);

    let schemas: Vec<String> = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace WHERE nspname = ANY($1) ORDER BY nspname",
    )
    .bind(["account", "board", "chat", "media", "outbox"])
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(schemas, ["account", "board", "chat", "media", "outbox"]);
    pool.close().await;
}

#[tokio::test]
async fn concurrent_runs_serialize() {
    let db = TestDatabase::create(&test_config().connections.database_url).await;
    let pool = db.pool().await;
    let (a, b) = tokio::join!(fishapp_store::migrate(&pool), fishapp_store::migrate(&pool));
    let (a, b) = (a.expect("run a"), b.expect("run b"));
    // Exactly one of them applied everything; the other found nothing to do.
    assert_eq!(a.applied.len() + b.applied.len(), MIGRATOR.iter().count());
    pool.close().await;
}

#[tokio::test]
async fn a_failing_migration_leaves_the_database_as_it_was() {
    let db = TestDatabase::create(&test_config().connections.database_url).await;
    let pool = db.pool().await;

    let dir = std::env::temp_dir().join(format!("fishapp-migrations-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("1_good.sql"),
        "CREATE TABLE public.created_by_good (id int);",
    )
    .unwrap();
    std::fs::write(
        dir.join("2_bad.sql"),
        "CREATE TABLE public.oops (id nonexistent_type);",
    )
    .unwrap();
    let migrator = Migrator::new(dir.as_path()).await.unwrap();
    std::fs::remove_dir_all(&dir).ok();

    let error = migrate_with(&migrator, &pool)
        .await
        .expect_err("the bad migration fails");
    assert!(error.to_string().contains("nonexistent_type"), "{error}");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(tables.is_empty(), "left behind: {tables:?}");
    pool.close().await;
}
