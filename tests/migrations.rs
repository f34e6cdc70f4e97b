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

/// Upgrading a database that already has notifications: each user's list is ordered by the
/// last change from then on (a NEW_MESSAGES that grew is above what was written after it), and
/// what is written after the upgrade comes above everything before it.
#[tokio::test]
async fn notifications_written_before_the_recency_upgrade_keep_the_order_of_their_last_change() {
    const RECENCY: i64 = 20_261_205_000_015;
    let db = TestDatabase::create(&test_config().connections.database_url).await;
    let pool = db.pool().await;
    let before = Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version < RECENCY)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ignore_missing: false,
        locking: false,
        no_tx: false,
    };
    migrate_with(&before, &pool)
        .await
        .expect("up to the upgrade");
    let user: i64 = sqlx::query_scalar(
        "INSERT INTO account.users (name, email, password_hash, sex, introduction)
         VALUES ('Upgrader', 'upgrader@example.com', 'x', 'MALE', '') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    // Written in this order; the NEW_MESSAGES (the second) grew last.
    for (kind, minutes_ago) in [("APPLIED", 30), ("NEW_MESSAGES", 1), ("WITHDREW", 20)] {
        sqlx::query(
            "INSERT INTO notify.notifications (user_id, kind, event_id, room_id, updated_at)
             VALUES ($1, $2, $3, 1, now() - make_interval(mins => $4))",
        )
        .bind(user)
        .bind(kind)
        .bind(uuid::Uuid::now_v7())
        .bind(minutes_ago)
        .execute(&pool)
        .await
        .unwrap();
    }
    let report = fishapp_store::migrate(&pool).await.expect("the upgrade");
    assert!(report.applied.contains(&RECENCY), "{:?}", report.applied);
    sqlx::query(
        "INSERT INTO notify.notifications (user_id, kind, event_id) VALUES ($1, 'PROMOTED', $2)",
    )
    .bind(user)
    .bind(uuid::Uuid::now_v7())
    .execute(&pool)
    .await
    .unwrap();

    let listed: Vec<String> = fishapp_store::notify::page(&pool, user, None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.kind.as_str().to_owned())
        .collect();
    assert_eq!(listed, ["PROMOTED", "NEW_MESSAGES", "WITHDREW", "APPLIED"]);
    pool.close().await;
}
