//! Schema migrations, embedded in the binary from `store/migrations/`.
//!
//! All pending migrations run in ONE transaction under a transaction-scoped advisory lock: two
//! processes migrating at once serialize, and a migration that fails leaves the database exactly
//! as it was, including the migrations before it in the same run. (sqlx's own runner commits each
//! migration separately and holds a session lock that a failed run can leave behind on a pooled
//! connection.)

use sqlx::migrate::{Migrate, MigrateError, Migrator};
use sqlx::postgres::PgPool;

/// The migrations this build of Fishapp knows.
pub static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Any fixed number, the same in every process: the key of the advisory lock migrations take.
const MIGRATION_LOCK_KEY: i64 = 0x0066_6973_6861_7070; // "fishapp" in ASCII

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run, in order. Empty when the database was up to date.
    pub applied: Vec<i64>,
    /// The newest version the database is at after the run.
    pub current: Option<i64>,
}

/// Applies Fishapp's pending migrations. Running it again is a no-op.
pub async fn migrate(pool: &PgPool) -> Result<MigrationReport, MigrateError> {
    migrate_with(&MIGRATOR, pool).await
}

/// Applies `migrator`'s pending migrations, all or none (see the module docs).
pub async fn migrate_with(
    migrator: &Migrator,
    pool: &PgPool,
) -> Result<MigrationReport, MigrateError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *tx)
        .await?;

    tx.ensure_migrations_table().await?;
    let before: Vec<i64> = tx
        .list_applied_migrations()
        .await?
        .into_iter()
        .map(|m| m.version)
        .collect();

    // Our own lock is held; sqlx's session-level lock would outlive a rolled-back run.
    let unlocked = Migrator {
        locking: false,
        ..clone_migrator(migrator)
    };
    // Inside our transaction, each migration's own transaction becomes a savepoint.
    unlocked.run(&mut *tx).await?;

    let after = tx.list_applied_migrations().await?;
    tx.commit().await?;

    let applied = after
        .iter()
        .map(|m| m.version)
        .filter(|v| !before.contains(v))
        .collect();
    Ok(MigrationReport {
        applied,
        current: after.iter().map(|m| m.version).max(),
    })
}

fn clone_migrator(migrator: &Migrator) -> Migrator {
    Migrator {
        migrations: migrator.migrations.clone(),
        ignore_missing: migrator.ignore_missing,
        locking: migrator.locking,
        no_tx: migrator.no_tx,
    }
}
