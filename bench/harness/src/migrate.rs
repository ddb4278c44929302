//! `archlab migrate extract|consolidate <module>`: move one module's rows between the
//! monolith's database and its service's, while writes keep coming.
//!
//! The module's schema exists on both sides (each side runs the module's own migrations);
//! exactly one side is *live*. The other is *fenced*: a statement trigger on each of the
//! module's tables refuses every write with "<module> has moved" (SQLSTATE 25006,
//! read_only_sql_transaction), except from a session that says it is this migration. So a
//! process still bound to the old side gets a clear error, never a half-written row on a copy
//! nobody reads.
//!
//! A run, from `source` (live) to `target`:
//! 1. **Prepare.** Migrate the module's schema on the target and fence it (refusing, if the
//!    target already holds rows and is live: both sides live is for a person to sort out).
//! 2. **Copy.** Upsert every source row into the target, table by table, keyed by its primary
//!    key, while the source keeps taking writes.
//! 3. **Catch up.** Copy again: only what changed since lands.
//! 4. **Switch.** Lock the source's tables (`EXCLUSIVE`: reads go on, writes queue), copy the
//!    last changes and delete what the source no longer has, compare the checksums, fence the
//!    source and commit (the queued writes now fail with "moved"), then unfence the target.
//!    The time from the lock to the target's unfencing is the **write window**: writes queue,
//!    then are refused, until the process bound to the target takes them.
//!
//! Every step is idempotent, so a second run, or a run after one that died, does the right
//! thing from what it finds:
//! - source live, target fenced or empty: the whole run (copies land as upserts);
//! - both fenced (a run died between fencing the source and unfencing the target; the target
//!   was fully synced under the lock before the source was fenced): sync again, unfence the
//!   target;
//! - source fenced, target live: already moved; nothing changes.
//!
//! Fencing the source before unfencing the target means no crash can leave both sides live;
//! the worst a crash leaves is both fenced, which the next run finishes.

use anyhow::{Context, bail};
use archlab_kernel::processes::{self, Module};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, PgConnection, Row};
use std::str::FromStr;
use std::time::{Duration, Instant};

/// Which way the rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// From the monolith's database into the service's (`archlab up hybrid --extract`).
    Extract,
    /// From the service's database back into the monolith's.
    Consolidate,
}

/// Arguments of `archlab migrate`.
#[derive(Debug, Clone, clap::Args)]
pub struct MigrateArgs {
    /// Which way the rows go.
    #[arg(value_enum)]
    pub direction: Direction,
    /// The module that moves.
    #[arg(value_enum)]
    pub module: Module,
    /// PostgreSQL server URL without a database.
    #[arg(long, env = "DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432")]
    pub database_url: String,
    /// The monolith's database [default: MONOLITH_DATABASE, else archlab_monolith].
    #[arg(long, value_name = "NAME")]
    pub monolith_db: Option<String>,
    /// The service's database [default: its *_DATABASE variable, else its default name].
    #[arg(long, value_name = "NAME")]
    pub service_db: Option<String>,
}

/// What one run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What the run found and so did.
    pub found: Found,
    /// Rows written to the target by each pass (copy, catch-up, switch), all tables together.
    pub passes: Vec<u64>,
    /// Rows deleted from the target because the source no longer had them (switch only).
    pub deleted: u64,
    /// Rows per table on the target at the end, as `(table, rows)`.
    pub rows: Vec<(String, i64)>,
    /// From locking the source to unfencing the target; zero when nothing was switched.
    pub window: Duration,
}

/// The state a run found the two sides in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Source live, target fenced or empty: a whole run.
    Fresh,
    /// Both fenced: an earlier run died mid-switch; this one finished it.
    Interrupted,
    /// Source fenced, target live: nothing to do.
    AlreadyMoved,
}

/// Where a run may be told to die, to test recovery (`ARCHLAB_MIGRATE_CRASH_AT`): `copied`
/// (after the first copy) or `fenced` (after fencing the source, before unfencing the target).
const CRASH_AT_VAR: &str = "ARCHLAB_MIGRATE_CRASH_AT";

fn crash_point(name: &str) {
    if std::env::var(CRASH_AT_VAR).is_ok_and(|at| at == name) {
        eprintln!("archlab migrate: dying at {name} ({CRASH_AT_VAR})");
        std::process::abort();
    }
}

/// The module's schema (`notifications`, `payments`).
fn schema(module: Module) -> &'static str {
    match module {
        Module::Notifications => archlab_notifications::SCHEMA,
        Module::Payments => archlab_payments::SCHEMA,
    }
}

/// Run `archlab migrate` from the command line.
pub async fn run(args: MigrateArgs) -> anyhow::Result<()> {
    let env = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty());
    let (mono_var, mono_default) = processes::MONOLITH.database.expect("the monolith has a database");
    let (svc_var, svc_default) = args.module.service().database.expect("a service has a database");
    let monolith = args.monolith_db.clone().or_else(|| env(mono_var)).unwrap_or_else(|| mono_default.to_owned());
    let service = args.service_db.clone().or_else(|| env(svc_var)).unwrap_or_else(|| svc_default.to_owned());
    let (from, to) = match args.direction {
        Direction::Extract => (&monolith, &service),
        Direction::Consolidate => (&service, &monolith),
    };
    println!("archlab migrate: {} {} from {from} to {to}", args.direction.name(), args.module);
    let outcome = migrate(&args.database_url, args.module, from, to).await?;
    print!("{}", outcome.describe(args.module));
    Ok(())
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Extract => "extract",
            Direction::Consolidate => "consolidate",
        }
    }
}

impl Outcome {
    /// The lines `archlab migrate` prints.
    pub fn describe(&self, module: Module) -> String {
        let mut out = String::new();
        match self.found {
            Found::AlreadyMoved => {
                out.push_str(&format!(
                    "  {module} is already live on the target and fenced on the source: nothing to do\n"
                ));
            }
            Found::Interrupted => {
                out.push_str("  both sides were fenced (an earlier run died mid-switch): finished it\n")
            }
            Found::Fresh => {}
        }
        let names = ["copy", "catch-up", "switch"];
        for (name, rows) in names.iter().zip(&self.passes) {
            out.push_str(&format!("  {name:<10}{rows} rows written\n"));
        }
        if self.deleted > 0 {
            out.push_str(&format!("  deleted   {} rows the source no longer had\n", self.deleted));
        }
        for (table, rows) in &self.rows {
            out.push_str(&format!("  {table:<34}{rows} rows, checksums equal\n"));
        }
        if self.found != Found::AlreadyMoved {
            out.push_str(&format!(
                "  write window {:.1} ms: writes to {module} queued, then refused, from the lock to the switch\n",
                self.window.as_secs_f64() * 1e3
            ));
        }
        out
    }
}

/// Move `module` from database `from` to database `to` on the server at `database_url`.
pub async fn migrate(database_url: &str, module: Module, from: &str, to: &str) -> anyhow::Result<Outcome> {
    if from == to {
        bail!("the source and the target are the same database ({from})");
    }
    let schema = schema(module);
    archlab_kernel::db::ensure_database(database_url, to).await.with_context(|| format!("creating {to}"))?;
    let mut source = connect(database_url, from).await?;
    let mut target = connect(database_url, to).await?;
    migrate_schema(database_url, module, to).await?;
    let tables = tables(&mut target, schema).await?;
    if tables.is_empty() {
        bail!("{to} has no {schema} tables after migrating");
    }
    if !schema_exists(&mut source, schema).await? {
        bail!("{from} has no {schema} schema: there is nothing to move");
    }
    ensure_fence_function(&mut source, schema, module).await?;
    ensure_fence_function(&mut target, schema, module).await?;
    let source_live = !fenced(&mut source, schema, &tables).await?;
    let target_live = !fenced(&mut target, schema, &tables).await?;
    let found = match (source_live, target_live) {
        (false, true) => Found::AlreadyMoved,
        (false, false) => Found::Interrupted,
        (true, false) => Found::Fresh,
        (true, true) => {
            if total_rows(&mut target, schema, &tables).await? > 0 {
                bail!(
                    "{module} is live on both {from} and {to}, and {to} holds rows: a process may have written to \
                     each; refusing to merge them (fence one side by hand, or empty {to})"
                );
            }
            set_fence(&mut target, schema, &tables, true).await?;
            Found::Fresh
        }
    };
    if found == Found::AlreadyMoved {
        let rows = verified_rows(&mut source, &mut target, schema, &tables).await.unwrap_or_default();
        return Ok(Outcome { found, passes: Vec::new(), deleted: 0, rows, window: Duration::ZERO });
    }

    let mut passes = Vec::new();
    if found == Found::Fresh {
        passes.push(copy_all(&mut source, &mut target, schema, &tables).await?);
        crash_point("copied");
        passes.push(copy_all(&mut source, &mut target, schema, &tables).await?);
    }

    // The switch: writes to the source queue behind the lock from here on (from the first
    // attempt: a lock taken and given up held them too).
    let started = Instant::now();
    lock_for_switch(&mut source, schema, &tables).await?;
    let mut written = 0;
    let mut deleted = 0;
    for table in &tables {
        let (w, d) = sync_table(&mut source, &mut target, schema, table, true).await?;
        written += w;
        deleted += d;
    }
    passes.push(written);
    let rows = verified_rows(&mut source, &mut target, schema, &tables).await?;
    set_fence(&mut source, schema, &tables, true).await?;
    // Ends the transaction `lock_for_switch` began; an error before it drops the connection,
    // which rolls it back.
    sqlx::query("COMMIT").execute(&mut source).await?;
    crash_point("fenced");
    set_fence(&mut target, schema, &tables, false).await?;
    let window = started.elapsed();
    Ok(Outcome { found, passes, deleted, rows, window })
}

/// Attempts at locking the source's tables before the switch gives up.
const LOCK_ATTEMPTS: u32 = 50;

/// Begin a transaction on `source` holding every table of the module in `EXCLUSIVE` mode
/// (the caller commits it).
///
/// The tables are locked one after the other, and a writer holding one of them (a delivery
/// has written its inbox row and waits to write the notification) would deadlock with the
/// lock, and PostgreSQL would abort one of the two after `deadlock_timeout` (1 s by default):
/// perhaps the writer. So the lock waits at most 100 ms: then it gives the tables back, lets
/// the writers through, and tries again, before any deadlock check runs.
async fn lock_for_switch(source: &mut PgConnection, schema: &str, tables: &[String]) -> anyhow::Result<()> {
    let list = tables.iter().map(|t| format!("{schema}.{t}")).collect::<Vec<_>>().join(", ");
    let lock = format!("LOCK TABLE {list} IN EXCLUSIVE MODE");
    for attempt in 1..=LOCK_ATTEMPTS {
        sqlx::raw_sql("BEGIN; SET LOCAL lock_timeout = '100ms'").execute(&mut *source).await?;
        match sqlx::query(sqlx::AssertSqlSafe(lock.clone())).execute(&mut *source).await {
            Ok(_) => {
                // Unlike taking the locks, nothing after may give up on a slow writer.
                sqlx::query("SET LOCAL lock_timeout = 0").execute(&mut *source).await?;
                return Ok(());
            }
            Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("40P01" | "55P03")) => {
                tracing::info!(attempt, error = %e.message(), "switch lock given up; trying again");
                sqlx::query("ROLLBACK").execute(&mut *source).await?;
                tokio::time::sleep(Duration::from_millis(5 * u64::from(attempt))).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("could not lock {list} for the switch in {LOCK_ATTEMPTS} attempts: writers kept them busy")
}

async fn connect(database_url: &str, name: &str) -> anyhow::Result<PgConnection> {
    let options = PgConnectOptions::from_str(database_url)
        .with_context(|| format!("DATABASE_URL {database_url:?} is not a PostgreSQL URL"))?
        .database(name);
    let mut conn = options.connect().await.with_context(|| format!("connecting to {name}"))?;
    // This session may write to a fenced side: it is the migration.
    sqlx::query("SET archlab.migrating = 'on'").execute(&mut conn).await?;
    Ok(conn)
}

/// Run the module's own migrations on database `name` (creating its schema).
async fn migrate_schema(database_url: &str, module: Module, name: &str) -> anyhow::Result<()> {
    let db = archlab_kernel::config::DatabaseArgs { database_url: database_url.to_owned(), db_max_connections: 1 };
    let pool = db.open(name).await.with_context(|| format!("opening {name}"))?;
    match module {
        Module::Notifications => archlab_notifications::migrate(&pool).await,
        Module::Payments => archlab_payments::migrate(&pool).await,
    }
    .with_context(|| format!("migrating {module} on {name}"))?;
    pool.close().await;
    Ok(())
}

async fn schema_exists(conn: &mut PgConnection, schema: &str) -> anyhow::Result<bool> {
    let exists = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
        .bind(schema)
        .fetch_one(conn)
        .await?;
    Ok(exists)
}

/// The module's tables, but the record of its migrations (each side keeps its own).
async fn tables(conn: &mut PgConnection, schema: &str) -> anyhow::Result<Vec<String>> {
    let tables = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = $1 AND tablename <> '_sqlx_migrations' ORDER BY 1",
    )
    .bind(schema)
    .fetch_all(conn)
    .await?;
    Ok(tables)
}

async fn ensure_fence_function(conn: &mut PgConnection, schema: &str, module: Module) -> anyhow::Result<()> {
    let sql = format!(
        "CREATE OR REPLACE FUNCTION {schema}.archlab_moved() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF current_setting('archlab.migrating', true) = 'on' THEN RETURN NULL; END IF;
           RAISE EXCEPTION '{module} has moved to another database; this copy is read-only'
             USING ERRCODE = 'read_only_sql_transaction';
         END $$"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(conn).await?;
    Ok(())
}

/// Whether every table of the module carries the fence (a side with some fenced and some
/// not cannot come from this tool).
async fn fenced(conn: &mut PgConnection, schema: &str, tables: &[String]) -> anyhow::Result<bool> {
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
          JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE t.tgname = 'archlab_moved' AND n.nspname = $1 AND c.relname = ANY($2)",
    )
    .bind(schema)
    .bind(tables)
    .fetch_one(conn)
    .await?;
    Ok(count as usize == tables.len())
}

/// Fence (`on`) or unfence every table of the module on this side.
async fn set_fence(conn: &mut PgConnection, schema: &str, tables: &[String], on: bool) -> anyhow::Result<()> {
    for table in tables {
        let sql = match on {
            true => format!(
                "DROP TRIGGER IF EXISTS archlab_moved ON {schema}.{table};
                 CREATE TRIGGER archlab_moved BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.{table}
                   FOR EACH STATEMENT EXECUTE FUNCTION {schema}.archlab_moved()"
            ),
            false => format!("DROP TRIGGER IF EXISTS archlab_moved ON {schema}.{table}"),
        };
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut *conn).await?;
    }
    Ok(())
}

async fn total_rows(conn: &mut PgConnection, schema: &str, tables: &[String]) -> anyhow::Result<i64> {
    let mut n = 0;
    for table in tables {
        let sql = format!("SELECT count(*) FROM {schema}.{table}");
        n += sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *conn).await?;
    }
    Ok(n)
}

/// The one-column primary key of `schema.table`.
async fn primary_key(conn: &mut PgConnection, schema: &str, table: &str) -> anyhow::Result<String> {
    let columns: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
          WHERE i.indrelid = ($1 || '.' || $2)::regclass AND i.indisprimary",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?;
    match columns.as_slice() {
        [one] => Ok(one.clone()),
        _ => bail!("{schema}.{table} has no one-column primary key ({columns:?}); this tool moves only such tables"),
    }
}

/// Every column of `schema.table`, in order.
async fn columns(conn: &mut PgConnection, schema: &str, table: &str) -> anyhow::Result<Vec<String>> {
    let columns = sqlx::query_scalar(
        "SELECT column_name::text FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(table)
    .fetch_all(conn)
    .await?;
    Ok(columns)
}

/// One pass over every table; rows written.
async fn copy_all(
    source: &mut PgConnection,
    target: &mut PgConnection,
    schema: &str,
    tables: &[String],
) -> anyhow::Result<u64> {
    let mut written = 0;
    for table in tables {
        written += sync_table(source, target, schema, table, false).await?.0;
    }
    Ok(written)
}

/// Rows written to the target per batch.
const BATCH: usize = 500;

/// Upsert every row of the source's `schema.table` whose copy on the target differs or is
/// missing; with `delete`, also delete target rows the source does not have. Returns
/// (written, deleted). Sequences behind `serial` columns are moved past the highest value.
async fn sync_table(
    source: &mut PgConnection,
    target: &mut PgConnection,
    schema: &str,
    table: &str,
    delete: bool,
) -> anyhow::Result<(u64, u64)> {
    let pk = primary_key(source, schema, table).await?;
    let columns = columns(target, schema, table).await?;
    let rows: Vec<Value> =
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT to_jsonb(t) FROM {schema}.{table} t ORDER BY {pk}")))
            .fetch_all(&mut *source)
            .await?;
    let others: Vec<&String> = columns.iter().filter(|c| **c != pk).collect();
    let on_conflict = match others.is_empty() {
        true => "DO NOTHING".to_owned(),
        false => {
            let list = others.iter().map(|c| c.as_str()).collect::<Vec<_>>().join(", ");
            let excluded = others.iter().map(|c| format!("EXCLUDED.{c}")).collect::<Vec<_>>().join(", ");
            format!("DO UPDATE SET ({list}) = ROW({excluded}) WHERE ({schema}.{table}.*) IS DISTINCT FROM (EXCLUDED.*)")
        }
    };
    let upsert = format!(
        "INSERT INTO {schema}.{table} SELECT * FROM jsonb_populate_recordset(NULL::{schema}.{table}, $1)
         ON CONFLICT ({pk}) {on_conflict}"
    );
    let mut written = 0;
    for batch in rows.chunks(BATCH) {
        let done = sqlx::query(sqlx::AssertSqlSafe(upsert.clone()))
            .bind(Value::Array(batch.to_vec()))
            .execute(&mut *target)
            .await
            .with_context(|| format!("copying {schema}.{table}"))?;
        written += done.rows_affected();
    }
    let mut deleted = 0;
    if delete {
        let keys: Vec<String> = rows.iter().map(|row| row[pk.as_str()].to_string()).collect();
        let sql = format!("DELETE FROM {schema}.{table} WHERE to_jsonb({pk})::text <> ALL($1)");
        deleted = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&keys).execute(&mut *target).await?.rows_affected();
    }
    for column in &columns {
        let sql = format!("SELECT pg_get_serial_sequence('{schema}.{table}', '{column}')");
        let sequence: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut *target).await?;
        if let Some(sequence) = sequence {
            let sql = format!("SELECT setval('{sequence}', GREATEST((SELECT max({column}) FROM {schema}.{table}), 1))");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut *target).await?;
        }
    }
    Ok((written, deleted))
}

/// Rows and checksum of `schema.table` on one side.
async fn fingerprint(conn: &mut PgConnection, schema: &str, table: &str, pk: &str) -> anyhow::Result<(i64, String)> {
    let sql = format!(
        "SELECT count(*), md5(coalesce(string_agg(to_jsonb(t)::text, '|' ORDER BY {pk}), ''))
           FROM {schema}.{table} t"
    );
    let row = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_one(conn).await?;
    Ok((row.try_get(0)?, row.try_get(1)?))
}

/// Rows per table, after checking that both sides hold the same rows (count and checksum).
async fn verified_rows(
    source: &mut PgConnection,
    target: &mut PgConnection,
    schema: &str,
    tables: &[String],
) -> anyhow::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    for table in tables {
        let pk = primary_key(source, schema, table).await?;
        let (rows, sum) = fingerprint(source, schema, table, &pk).await?;
        let (target_rows, target_sum) = fingerprint(target, schema, table, &pk).await?;
        if (rows, &sum) != (target_rows, &target_sum) {
            bail!(
                "{schema}.{table}: source {rows} rows ({sum}), target {target_rows} rows ({target_sum}) after the copy"
            );
        }
        out.push((format!("{schema}.{table}"), rows));
    }
    Ok(out)
}
