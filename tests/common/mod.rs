//! Black-box test harness: the real application, in-process, on a random port, against the real
//! stack (`scripts/stack up`), with a database of its own that is dropped afterwards.
#![allow(dead_code, unreachable_pub)] // each test binary uses its own part of the harness

use fishapp::config::Config;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

mod mail;
mod network;
mod processes;
mod sockets;
mod stream;

// Each test binary uses its own part of the harness; the helpers stay at `common::`.
#[allow(unused_imports)]
pub use {mail::*, network::*, processes::*, sockets::*, stream::*};

/// The configuration tests start from: the environment (scripts/test points it at the stack),
/// with a random port, a fresh database name and task queues of the test's own.
pub fn test_config() -> Config {
    let mut config =
        Config::load(None).expect("the test environment's FISHAPP_* variables are valid");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let mut database_url =
        url::Url::parse(&config.connections.database_url).expect("database_url is a URL");
    database_url.set_path(&format!("fishapp_test_{id}"));
    config.http.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.http_metrics_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.http.readiness_timeout_ms = 1_000;
    config.http.shutdown_grace_secs = 5;
    config.connections.database_url = database_url.to_string();
    config.connections.database_max_connections = 5;
    config.connections.redis_key_prefix = format!("test-{id}");
    config.temporal.temporal_task_queue_prefix = format!("test-{id}");
    // The relay's own stream and subjects: tests that publish run side by side.
    config.relay.relay_stream = format!("T_{id}");
    config.relay.relay_subject_prefix = format!("test-{id}");
    config.media.media_dir = std::env::temp_dir().join(format!("fishapp-test-media-{id}"));
    config.accounts.jwt_private_key_pem = Some(test_signing_key().to_owned());
    // A saga answers as soon as it finishes; the budget only matters on a loaded machine
    // running every test at once.
    config.board.board_saga_wait_ms = 30_000;
    config.diagnostics.log_filter = "warn".to_owned();
    // Tests sign many users up from one address and post freely; the limits have tests of
    // their own.
    config.accounts.sign_up_max_per_ip_per_hour = 1_000_000;
    config.board.board_max_posts_per_hour = 1_000_000;
    config.board.board_max_applications_per_hour = 1_000_000;
    config.board.board_max_post_changes_per_hour = 1_000_000;
    config
}

/// One signing key per test process (generating is cheap, but tokens from one test app then also
/// verify in another of the same process, which the token tests rely on only where they say so).
pub fn test_signing_key() -> &'static str {
    static KEY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KEY.get_or_init(fishapp_app::account::tokens::generate_private_key_pem)
}

/// Drops a test database when dropped, even when the test panicked.
pub struct TestDatabase {
    pub url: String,
}

impl TestDatabase {
    pub async fn create(url: &str) -> Self {
        fishapp_store::database::create_database_if_missing(url)
            .await
            .expect("Postgres is up (run scripts/stack up)");
        Self {
            url: url.to_owned(),
        }
    }

    /// The test's own database (`config.connections.database_url`), created and migrated.
    pub async fn migrated(config: &Config) -> Self {
        let database = Self::create(&config.connections.database_url).await;
        fishapp::app::migrate(config)
            .await
            .expect("migrations apply");
        database
    }

    pub async fn pool(&self) -> sqlx::PgPool {
        sqlx::PgPool::connect(&self.url)
            .await
            .expect("test database connects")
    }
}

/// Runs `work` to completion on a thread and runtime of its own: `Drop` runs inside the test's
/// runtime, which cannot be blocked on. `None` when the thread panicked.
fn on_own_thread<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> Option<T> {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work)
    })
    .join()
    .ok()
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = self.url.clone();
        let dropped =
            on_own_thread(async move { fishapp_store::database::drop_database(&url).await });
        if !matches!(dropped, Some(Ok(()))) {
            eprintln!("could not drop test database {}", self.url);
        }
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    /// Where the app serves `/metrics` (not on the public port).
    pub metrics_addr: SocketAddr,
    pub http: reqwest::Client,
    pub config: Config,
    shutdown: CancellationToken,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Whether a relay ran (its stream is deleted with the app).
    relay_started: std::sync::atomic::AtomicBool,
    /// Whether a worker on the workflow queue ran (its schedules are deleted with the app).
    schedules_made: std::sync::atomic::AtomicBool,
    /// The API's own Temporal connection.
    temporal: fishapp_temporal::Temporal,
    // Last, so the app's connections close before the database is dropped. `None` only once
    // [`TestApp::stop_keeping_data`] handed it on.
    database: Option<TestDatabase>,
}

impl TestApp {
    /// The app against the real stack, with a migrated database of its own.
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with the configuration adjusted after the test database is
    /// created and migrated (e.g. a dependency pointed at a dead port).
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config();
        let database = TestDatabase::migrated(&config).await;
        adjust(&mut config);
        Self::spawn_on(config, database).await
    }

    /// The app on `config` and a database that exists already (a restart: see
    /// [`TestApp::stop_keeping_data`]).
    pub async fn spawn_on(config: Config, database: TestDatabase) -> Self {
        fishapp::telemetry::init(&config);
        let shutdown = CancellationToken::new();
        let deps = fishapp::app::connect_dependencies(&config, &shutdown)
            .await
            .expect("dependency handles build");
        let temporal = deps.temporal.clone();
        let keys =
            fishapp::app::token_keys(&config, fishapp::app::MissingKey::Refuse).expect("test key");
        let registry = fishapp_api::metrics::new_registry();
        let api = fishapp::app::start_api(&config, deps, keys, registry, None, shutdown.clone())
            .await
            .expect("API starts");
        Self {
            addr: api.addr,
            metrics_addr: api.metrics_addr,
            http: reqwest::Client::new(),
            config,
            shutdown,
            task: Some(api.task),
            relay_started: std::sync::atomic::AtomicBool::new(false),
            schedules_made: std::sync::atomic::AtomicBool::new(false),
            temporal,
            database: Some(database),
        }
    }

    /// Like [`TestApp::spawn_on`], with a worker on every task queue.
    pub async fn spawn_on_with_worker(config: Config, database: TestDatabase) -> Self {
        let app = Self::spawn_on(config, database).await;
        app.start_worker(app.shutdown.child_token(), &fishapp::worker::Queue::ALL);
        app.wait_for_readiness(200, Duration::from_secs(30)).await;
        app
    }

    /// Stops the app (API, worker, relay) but keeps its database and its stream, for a restart
    /// on the same data ([`TestApp::spawn_on`]); the restarted app cleans up after itself.
    pub async fn stop_keeping_data(mut self) -> (Config, TestDatabase) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.relay_started
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let database = self.database.take().expect("the app's database");
        (self.config.clone(), database)
    }

    /// The app with its database reached through [`counting_proxy`]: the counter tells how many
    /// statements the app ran (reset it before the request you measure).
    pub async fn spawn_counting_statements() -> (Self, std::sync::Arc<std::sync::atomic::AtomicU64>)
    {
        let postgres = {
            let url =
                url::Url::parse(&test_config().connections.database_url).expect("a database URL");
            let host = url.host_str().expect("a database host").to_owned();
            tokio::net::lookup_host((host, url.port().unwrap_or(5432)))
                .await
                .expect("the database host resolves")
                .next()
                .expect("an address")
        };
        let (port, statements) = counting_proxy(postgres).await;
        let app = Self::spawn_with(|c| {
            let mut url = url::Url::parse(&c.connections.database_url).expect("a database URL");
            url.set_port(Some(port)).expect("a port");
            url.query_pairs_mut().append_pair("sslmode", "disable");
            c.connections.database_url = url.to_string();
        })
        .await;
        (app, statements)
    }

    /// The app and, in the same process, a Temporal worker serving its task queues (the sagas
    /// need one). The worker stops with the app.
    pub async fn spawn_with_worker(adjust: impl FnOnce(&mut Config)) -> Self {
        let app = Self::spawn_with(adjust).await;
        app.start_worker(app.shutdown.child_token(), &fishapp::worker::Queue::ALL);
        // The app's Temporal client connects in the background; a saga started before it has
        // is UNAVAILABLE (as it should be), which is not what these tests are about.
        app.wait_for_readiness(200, Duration::from_secs(30)).await;
        app
    }

    /// Starts a worker on some of the app's task queues, on a thread and runtime of its own (the SDK's
    /// worker future is not `Send`); cancelling `stop` stops it gracefully.
    /// Stops a worker [`TestApp::start_worker`] started and waits until it has stopped (it
    /// finished what it was running).
    pub async fn stop_worker(
        stop: CancellationToken,
        worker: std::thread::JoinHandle<anyhow::Result<()>>,
    ) {
        stop.cancel();
        tokio::task::spawn_blocking(move || worker.join())
            .await
            .expect("the worker's thread joins")
            .expect("the worker did not panic")
            .expect("the worker stopped cleanly");
    }

    pub fn start_worker(
        &self,
        stop: CancellationToken,
        queues: &[fishapp::worker::Queue],
    ) -> std::thread::JoinHandle<anyhow::Result<()>> {
        self.start_worker_on(None, stop, queues)
    }

    /// Like [`TestApp::start_worker`], on the API's own Temporal connection, as `fishapp dev`
    /// runs them: a saga the API starts can then hand its first workflow task straight to this
    /// worker (eager workflow start). The worker stops with the app.
    pub fn start_worker_on_api_connection(
        &self,
        queues: &[fishapp::worker::Queue],
    ) -> std::thread::JoinHandle<anyhow::Result<()>> {
        let stop = self.shutdown.child_token();
        self.start_worker_on(Some(self.temporal.clone()), stop, queues)
    }

    fn start_worker_on(
        &self,
        temporal: Option<fishapp_temporal::Temporal>,
        stop: CancellationToken,
        queues: &[fishapp::worker::Queue],
    ) -> std::thread::JoinHandle<anyhow::Result<()>> {
        if queues.contains(&fishapp::worker::Queue::Workflows) {
            self.schedules_made
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let config = self.config.clone();
        let queues = queues.to_vec();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let temporal = temporal.unwrap_or_else(|| {
                    fishapp_temporal::Temporal::connect_in_background(
                        fishapp::app::temporal_settings(&config),
                        stop.clone(),
                    )
                });
                let db =
                    fishapp_store::Database::connect_lazy(&config.connections.database_url, 3)?;
                fishapp::worker::run(&config, &temporal, db, &queues, None, stop).await
            })
        })
    }

    /// Starts an outbox relay for the app's database and stream (in this process and runtime);
    /// several may run at once, as several processes would.
    pub async fn start_relay(&self) -> RunningRelay {
        self.relay_started
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let stop = self.shutdown.child_token();
        let registry = fishapp_api::metrics::new_registry();
        let nats = fishapp_relaylog::nats::connect(&self.config.connections.nats_url)
            .await
            .expect("NATS address");
        let task = {
            let (config, registry, stop) = (self.config.clone(), registry.clone(), stop.clone());
            tokio::spawn(async move {
                fishapp::app::run_relay(&config, nats, &registry, stop)
                    .await
                    .expect("relay runs");
            })
        };
        RunningRelay {
            stop,
            task,
            registry,
        }
    }

    /// Starts the notifications consumer for the app's database and stream (in this process and
    /// runtime); it stops with the app or with the returned token.
    pub async fn start_notifier(&self) -> CancellationToken {
        let stop = self.shutdown.child_token();
        let nats = fishapp_relaylog::nats::connect(&self.config.connections.nats_url)
            .await
            .expect("NATS address");
        let db = fishapp_store::Database::connect_lazy(&self.config.connections.database_url, 10)
            .expect("the app's database");
        let (config, token) = (self.config.clone(), stop.clone());
        tokio::spawn(async move {
            let registry = fishapp_api::metrics::new_registry();
            fishapp::app::run_notifier(&config, nats, db, &registry, token)
                .await
                .expect("notifier runs");
        });
        stop
    }

    /// A JetStream context on the test's NATS.
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        let client = async_nats::connect(&self.config.connections.nats_url)
            .await
            .expect("NATS is up (run scripts/stack up)");
        async_nats::jetstream::new(client)
    }

    /// One sample of the app's `/metrics` (a gauge or counter without labels); 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_at(self.metrics_addr, name).await
    }

    /// A pool on the app's own database, for checking what it wrote.
    pub async fn pool(&self) -> sqlx::PgPool {
        self.database
            .as_ref()
            .expect("the app's database")
            .pool()
            .await
    }

    /// A Temporal connection on the app's settings (it ends with the app) and its client.
    pub async fn temporal(&self) -> (fishapp_temporal::Temporal, temporalio_client::Client) {
        let temporal = fishapp_temporal::Temporal::connect_in_background(
            fishapp::app::temporal_settings(&self.config),
            self.shutdown.child_token(),
        );
        let client = temporal
            .connected(&self.shutdown)
            .await
            .expect("Temporal answers");
        (temporal, client)
    }

    /// Writes the history of workflow `workflow_id` (its latest run) to
    /// `tests/histories/<name>.json`, replayed by tests/histories.rs. Only the ignored recorders
    /// run by `scripts/record-histories` call this.
    pub async fn save_history(&self, workflow_id: &str, name: &str) {
        use temporalio_client::{UntypedWorkflow, WorkflowFetchHistoryOptions};
        let (_temporal, client) = self.temporal().await;
        let history = client
            .get_workflow_handle::<UntypedWorkflow>(workflow_id.to_owned())
            .fetch_history(WorkflowFetchHistoryOptions::default())
            .to_json()
            .await
            .expect("the workflow's history");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/histories");
        std::fs::write(dir.join(format!("{name}.json")), history)
            .expect("tests/histories/ is writable");
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs a GraphQL query and returns the JSON response.
    pub async fn graphql(&self, query: &str) -> serde_json::Value {
        self.graphql_as(None, query, serde_json::json!({})).await
    }

    /// POSTs a GraphQL operation with variables and, optionally, `Authorization: Bearer <token>`.
    pub async fn graphql_as(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        let request = self
            .http
            .post(self.url("/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        send(request, bearer).await
    }

    /// GETs a GraphQL query (`/graphql?query=…`) and returns the JSON response.
    pub async fn graphql_get(&self, query: &str) -> serde_json::Value {
        let request = self
            .http
            .get(self.url("/graphql"))
            .query(&[("query", query)]);
        send(request, None).await
    }

    /// POSTs a GraphQL multipart request (the GraphQL multipart request spec): `files` are
    /// (variable path, file name, bytes), e.g. ("variables.input.image", "a.png", bytes).
    pub async fn graphql_multipart(
        &self,
        bearer: Option<&str>,
        query: &str,
        variables: serde_json::Value,
        files: Vec<(&str, &str, Vec<u8>)>,
    ) -> serde_json::Value {
        let operations = serde_json::json!({ "query": query, "variables": variables });
        let map: serde_json::Map<String, serde_json::Value> = files
            .iter()
            .enumerate()
            .map(|(i, (path, _, _))| (i.to_string(), serde_json::json!([path])))
            .collect();
        let mut form = reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", serde_json::Value::Object(map).to_string());
        for (i, (_, name, bytes)) in files.into_iter().enumerate() {
            let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned());
            form = form.part(i.to_string(), part);
        }
        send(self.http.post(self.url("/graphql")).multipart(form), bearer).await
    }

    /// Every file under the media directory (what the local object store holds).
    pub fn media_files(&self) -> Vec<std::path::PathBuf> {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(&self.config.media.media_dir, &mut files);
        files
    }

    /// GET /readyz: status code and body.
    pub async fn readyz(&self) -> (u16, serde_json::Value) {
        let response = self
            .http
            .get(self.url("/readyz"))
            .send()
            .await
            .expect("readyz answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("readyz is JSON"))
    }

    /// Polls /readyz until it returns `status`, or panics with the last body after `within`.
    pub async fn wait_for_readiness(&self, status: u16, within: Duration) -> serde_json::Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let (got, body) = self.readyz().await;
            if got == status {
                return body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("/readyz still {got} after {within:?}, wanted {status}: {body}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Stops the app as SIGTERM would and waits for it to finish draining.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        match self.task.take() {
            Some(task) => task.await?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.config.media.media_dir);
        if self
            .schedules_made
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            // Left behind, a test's schedules would fire on the shared dev server forever.
            let settings = fishapp::app::temporal_settings(&self.config);
            let prefix = self.config.temporal.temporal_task_queue_prefix.clone();
            on_own_thread(async move {
                let stop = CancellationToken::new();
                let temporal =
                    fishapp_temporal::Temporal::connect_in_background(settings, stop.clone());
                let connected =
                    tokio::time::timeout(Duration::from_secs(5), temporal.connected(&stop));
                if let Ok(Some(client)) = connected.await {
                    let deleted =
                        fishapp_temporal::schedules::delete_worker_schedules(&client, &prefix);
                    if let Err(e) = deleted.await {
                        eprintln!("could not delete the test's schedules: {e}");
                    }
                    // Trip workflows live until some hours after their meeting: left behind,
                    // theirs would wait on the shared dev server for a worker that is gone.
                    terminate_running_workflows(&client, &prefix).await;
                }
                stop.cancel();
            });
        }
        if self
            .relay_started
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            let (url, stream) = (
                self.config.connections.nats_url.clone(),
                self.config.relay.relay_stream.clone(),
            );
            on_own_thread(async move {
                if let Ok(client) = async_nats::connect(&url).await {
                    let _ = async_nats::jetstream::new(client)
                        .delete_stream(&stream)
                        .await;
                }
            });
        }
    }
}

/// Terminates every running workflow whose id starts with `<prefix>/` (a test's trips).
pub async fn terminate_running_workflows(client: &temporalio_client::Client, prefix: &str) {
    use futures::StreamExt;
    let query = format!("WorkflowId STARTS_WITH \"{prefix}/\" AND ExecutionStatus = \"Running\"");
    let mut running = client.list_workflows(
        query,
        temporalio_client::WorkflowListOptions::builder()
            .limit(1_000)
            .build(),
    );
    while let Some(Ok(execution)) = running.next().await {
        let _ = client
            .get_workflow_handle::<temporalio_client::UntypedWorkflow>(execution.id())
            .terminate(
                temporalio_client::WorkflowTerminateOptions::builder()
                    .reason("the test is over".to_owned())
                    .build(),
            )
            .await;
    }
}

/// An outbox relay started by [`TestApp::start_relay`].
pub struct RunningRelay {
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
    pub registry: prometheus::Registry,
}

impl RunningRelay {
    /// A metric's value (first sample), e.g. `fishapp_relay_leader`.
    pub fn metric(&self, name: &str) -> f64 {
        self.registry
            .gather()
            .iter()
            .find(|family| family.name() == name)
            .and_then(|family| family.get_metric().first().cloned())
            // A sample is a gauge or a counter; the other reads 0.
            .map_or(0.0, |m| {
                m.get_gauge().get_value() + m.get_counter().get_value()
            })
    }

    /// Kills the relay's task mid-whatever (its connections drop with it).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// Sends a request (with `Authorization: Bearer <token>` when given) and returns its JSON body.
pub async fn send(mut request: reqwest::RequestBuilder, bearer: Option<&str>) -> serde_json::Value {
    if let Some(token) = bearer {
        request = request.bearer_auth(token);
    }
    request
        .send()
        .await
        .expect("request sent")
        .json()
        .await
        .expect("JSON response")
}

/// The `extensions.code` of a response's first error.
pub fn error_code(body: &serde_json::Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

/// Signs a new user up; their ID token and id.
pub async fn sign_up(app: &TestApp) -> (String, String) {
    let session = sign_up_session(app).await;
    (session.id_token, session.user_id)
}

/// A new user's sign-in: both tokens and the user id.
pub struct Session {
    pub id_token: String,
    pub refresh_token: String,
    pub user_id: String,
}

pub async fn sign_up_session(app: &TestApp) -> Session {
    let body = app
        .graphql_as(
            None,
            "mutation($input: CreateUserInput!) {
               createUser(input: $input) { user { id } tokenPair { idToken refreshToken } }
             }",
            serde_json::json!({ "input": {
                "email": format!("angler-{}@example.com", uuid::Uuid::new_v4().simple()),
                "password": "a-long-enough-secret", "name": "angler", "sex": "MALE",
                "introduction": "I fish", "image": null } }),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    let payload = &body["data"]["createUser"];
    let text = |v: &serde_json::Value| v.as_str().expect("a string").to_owned();
    Session {
        id_token: text(&payload["tokenPair"]["idToken"]),
        refresh_token: text(&payload["tokenPair"]["refreshToken"]),
        user_id: text(&payload["user"]["id"]),
    }
}

/// (applyCount, application rows, room members) of a post: they must always agree (the members
/// are the applicants and the owner).
pub async fn seats(pool: &sqlx::PgPool, post_id: i64) -> (i32, i64, i64) {
    sqlx::query_as(
        "SELECT p.apply_count,
                (SELECT count(*) FROM board.applications a WHERE a.post_id = p.id),
                (SELECT count(*) FROM chat.members m JOIN chat.rooms r ON r.id = m.room_id
                  WHERE r.post_id = p.id)
           FROM board.posts p WHERE p.id = $1",
    )
    .bind(post_id)
    .fetch_one(pool)
    .await
    .expect("the post's seats")
}

/// The id of the post's chat room, as its member `token` sees it.
pub async fn room_of(app: &TestApp, token: &str, post_id: &impl serde::Serialize) -> String {
    let body = app
        .graphql_as(
            Some(token),
            "query($post: ID!) { room(post_id: $post) { id } }",
            serde_json::json!({ "post": post_id }),
        )
        .await;
    body["data"]["room"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_owned()
}

/// A small JPEG photo, its colour set by `seed` (each seed a different file).
pub fn jpeg(seed: u8) -> Vec<u8> {
    use image::{DynamicImage, ImageFormat, RgbImage};
    let mut bytes = Vec::new();
    DynamicImage::ImageRgb8(RgbImage::from_pixel(320, 240, image::Rgb([seed, 90, 160])))
        .write_to(&mut std::io::Cursor::new(&mut bytes), ImageFormat::Jpeg)
        .expect("a JPEG encodes");
    bytes
}

/// A valid createPost input (no images), meeting in three days.
pub fn post_input(title: &str) -> serde_json::Value {
    serde_json::json!({
        "title": title,
        "content": "Sea bass at dawn; bring waders.",
        "fishingSpotTypeId": 1,
        "fishTypeIds": [12, 3],
        "prefectureId": 13,
        "meetingPlaceId": "ChIJN1t_tDeuEmsRUsoyG83frY4",
        "meetingAt": (chrono::Utc::now() + chrono::Duration::days(3)).to_rfc3339(),
        "maxApply": 3,
        "images": null,
        "clientMutationId": null,
    })
}

/// `createApplyPost` for `post_id` as `token`'s user; the response (the application's id at
/// `data.createApplyPost.applyPost.id`).
pub async fn apply_to(
    app: &TestApp,
    token: &str,
    post_id: &serde_json::Value,
) -> serde_json::Value {
    app.graphql_as(
        Some(token),
        "mutation($id: ID!) { createApplyPost(input: { postId: $id }) { applyPost { id } } }",
        serde_json::json!({ "id": post_id }),
    )
    .await
}

/// `deleteApplyPost` of `application_id` as `token`'s user; the response.
pub async fn withdraw(
    app: &TestApp,
    token: &str,
    application_id: &serde_json::Value,
) -> serde_json::Value {
    app.graphql_as(
        Some(token),
        "mutation($id: ID!) { deleteApplyPost(input: { id: $id }) { success } }",
        serde_json::json!({ "id": application_id }),
    )
    .await
}

/// A JWT from its header and claims (as JSON) and a signature, for forgery tests.
pub fn forge_jwt(
    header: &serde_json::Value,
    claims: &serde_json::Value,
    signature: &[u8],
) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let encode =
        |v: &serde_json::Value| URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("JSON"));
    format!(
        "{}.{}.{}",
        encode(header),
        encode(claims),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// An ID token for `user_id` signed with `key` (PKCS#8 PEM), under the given issuer and audience,
/// issued at `at` (an hour's lifetime): for tests of tokens that must be refused.
pub fn id_token_signed(
    key: &str,
    issuer: &str,
    audience: &str,
    user_id: i64,
    family: uuid::Uuid,
    at: chrono::DateTime<chrono::Utc>,
) -> String {
    fishapp_app::account::tokens::TokenKeys::new(
        key,
        &[],
        issuer,
        audience,
        Duration::from_secs(3600),
    )
    .expect("a signing key")
    .issue(user_id, family, at)
    .expect("a token")
    .token
}
