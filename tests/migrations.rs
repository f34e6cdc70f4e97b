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

/// A database as the release before `version` left it (Fishapp's migrations before that one),
/// with one user in it: (the database, a pool, the user's id).
async fn before_upgrade(version: i64) -> (TestDatabase, sqlx::PgPool, i64) {
    let db = TestDatabase::create(&test_config().connections.database_url).await;
    let pool = db.pool().await;
    let before = Migrator {
        migrations: MIGRATOR
            .iter()
            .filter(|m| m.version < version)
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
    let user = sqlx::query_scalar(
        "INSERT INTO account.users (name, email, password_hash, sex, introduction)
         VALUES ('Upgrader', 'upgrader@example.com', 'x', 'MALE', '') RETURNING id",
    )
    .fetch_one(&pool)
    .await
    .expect("a user");
    (db, pool, user)
}

/// Runs the pending migrations, `version` among them.
async fn upgrade(pool: &sqlx::PgPool, version: i64) {
    let report = fishapp_store::migrate(pool).await.expect("the upgrade");
    assert!(report.applied.contains(&version), "{:?}", report.applied);
}

/// Upgrading a database that already has notifications: each user's list is ordered by the
/// last change from then on (a NEW_MESSAGES that grew is above what was written after it), and
/// what is written after the upgrade comes above everything before it.
#[tokio::test]
async fn notifications_written_before_the_recency_upgrade_keep_the_order_of_their_last_change() {
    const RECENCY: i64 = 20_261_205_000_015;
    let (_db, pool, user) = before_upgrade(RECENCY).await;
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
    upgrade(&pool, RECENCY).await;
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

/// Upgrading a database that already has sign-ins: each gets its last refresh and its end from
/// its tokens (a revoked one ends a day after its revocation at the latest), a live one goes on,
/// and the prune deletes only those that ended, with their tokens.
#[tokio::test]
async fn sign_ins_made_before_the_bounds_upgrade_end_when_their_tokens_do() {
    const BOUNDS: i64 = 20_261_207_000_020;
    let (_db, pool, user) = before_upgrade(BOUNDS).await;
    // (family, revoked an hour ago, each token: its hash, created and expiring so many hours
    // from now, used)
    let families = [
        (
            "live",
            false,
            vec![("a1", -5, 235, true), ("a2", -2, 238, false)],
        ),
        ("revoked", true, vec![("b1", -3, 237, false)]),
        (
            "expired",
            false,
            vec![("c1", -300, -60, true), ("c2", -250, -10, false)],
        ),
    ];
    let mut ids = std::collections::HashMap::new();
    for (name, revoked, tokens) in &families {
        let id = uuid::Uuid::new_v4();
        ids.insert(*name, id);
        sqlx::query(
            "INSERT INTO account.token_families (id, user_id, created_at, revoked_at, revoked_why)
             VALUES ($1, $2, now() - interval '300 hours',
                     CASE WHEN $3 THEN now() - interval '1 hour' END,
                     CASE WHEN $3 THEN 'logout' END)",
        )
        .bind(id)
        .bind(user)
        .bind(revoked)
        .execute(&pool)
        .await
        .unwrap();
        for (hash, created, expires, used) in tokens {
            sqlx::query(
                "INSERT INTO account.refresh_tokens (token_hash, family_id, created_at, expires_at, used_at)
                 VALUES ($1, $2, now() + make_interval(hours => $3), now() + make_interval(hours => $4),
                         CASE WHEN $5 THEN now() END)",
            )
            .bind(hash.as_bytes())
            .bind(id)
            .bind(created)
            .bind(expires)
            .bind(used)
            .execute(&pool)
            .await
            .unwrap();
        }
    }
    upgrade(&pool, BOUNDS).await;

    let hours = |name: &str, column: &str| {
        let (pool, id) = (pool.clone(), ids[name]);
        let sql = format!(
            "SELECT round(extract(epoch FROM {column} - now()) / 3600)::int8
               FROM account.token_families WHERE id = $1"
        );
        async move {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(id)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(hours("live", "refreshed_at").await, -2, "its newest token");
    assert_eq!(hours("live", "expires_at").await, 238);
    assert_eq!(
        hours("revoked", "expires_at").await,
        23,
        "a day after the revocation"
    );
    assert_eq!(hours("expired", "expires_at").await, -10);

    assert_eq!(
        fishapp_store::account::prune_ended_sign_ins(&pool, 100)
            .await
            .unwrap(),
        1
    );
    let left: Vec<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM account.refresh_tokens ORDER BY token_hash")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(left, [b"a1".to_vec(), b"a2".to_vec(), b"b1".to_vec()]);
    let rotated = fishapp_store::account::rotate(
        &pool,
        b"a2",
        b"a3",
        chrono::Utc::now() + chrono::Duration::days(10),
    )
    .await
    .unwrap();
    assert!(
        matches!(rotated, fishapp_store::account::Rotation::Rotated { .. }),
        "{rotated:?}"
    );
    pool.close().await;
}
