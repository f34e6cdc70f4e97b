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
        let text = self
            .http
            .get(format!("http://{}/metrics", self.metrics_addr))
            .send()
            .await
            .expect("/metrics answers")
            .text()
            .await
            .expect("a metrics page");
        text.lines()
            .find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == name).then(|| value.trim().parse().ok()).flatten()
            })
            .unwrap_or(0.0)
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

/// Sends a GraphQL request, with `Authorization: Bearer <token>` when given; the JSON response.
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

/// A port nothing listens on (bound, read, released).
pub async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Forwards every connection on `port` to `target`, until the handle is aborted: brings a
/// "dead" address to life in the middle of a test. Aborting the handle also cuts every
/// connection it forwards (they live in the task's `JoinSet`), as a crashed server would.
pub async fn start_proxy(port: u16, target: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("proxy binds");
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
            // Reap finished connections as we go.
            while connections.try_join_next().is_some() {}
        }
    })
}

/// host:port of a URL, resolved (for pointing a proxy at the real service).
pub fn socket_addr_of(url: &str) -> SocketAddr {
    let url = url::Url::parse(url).expect("URL");
    let host = url.host_str().expect("host");
    let port = url.port_or_known_default().expect("port");
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .expect("resolves")
        .next()
        .expect("one address")
}

/// A URL with its port replaced.
pub fn with_port(url: &str, port: u16) -> String {
    let mut url = url::Url::parse(url).expect("URL");
    url.set_port(Some(port)).expect("URL takes a port");
    url.to_string()
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

/// A TCP proxy in front of Postgres that counts the statements clients execute: simple
/// queries (`Q`) and extended-protocol executions (`E`). Needs `sslmode=disable`.
pub async fn counting_proxy(target: std::net::SocketAddr) -> (u16, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a counting proxy");
    let port = listener.local_addr().expect("a counting proxy").port();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let Ok(outbound) = TcpStream::connect(target).await else {
                    return;
                };
                let (mut client_read, mut client_write) = inbound.into_split();
                let (mut server_read, mut server_write) = outbound.into_split();
                let upstream = async move {
                    // The startup message has no type byte: a length, then the body.
                    let mut len = [0u8; 4];
                    client_read.read_exact(&mut len).await?;
                    let mut body = vec![0u8; (u32::from_be_bytes(len) as usize).saturating_sub(4)];
                    client_read.read_exact(&mut body).await?;
                    server_write.write_all(&len).await?;
                    server_write.write_all(&body).await?;
                    loop {
                        let mut header = [0u8; 5];
                        client_read.read_exact(&mut header).await?;
                        if matches!(header[0], b'Q' | b'E') {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                        let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
                        let mut body = vec![0u8; (len as usize).saturating_sub(4)];
                        client_read.read_exact(&mut body).await?;
                        server_write.write_all(&header).await?;
                        server_write.write_all(&body).await?;
                    }
                    #[allow(unreachable_code)]
                    Ok::<(), std::io::Error>(())
                };
                let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                let _ = tokio::join!(upstream, downstream);
            });
        }
    });
    (port, count)
}

/// A graphql-transport-ws session: connection_init (with the token, when given), one
/// subscription; every message until the server completes it or answers with an error.
pub async fn subscribe(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: serde_json::Value,
) -> Vec<serde_json::Value> {
    let mut live = LiveSubscription::open(app, token, query, variables).await;
    let mut messages = Vec::new();
    while let Some(value) = live.next(Duration::from_secs(60)).await {
        let kind = value["type"].as_str().unwrap_or_default().to_owned();
        messages.push(value);
        if kind == "complete" || kind == "error" {
            break;
        }
    }
    messages
}

/// One open graphql-transport-ws subscription, read message by message.
pub struct LiveSubscription {
    ws: WebSocketClient,
}

impl LiveSubscription {
    /// Connects, sends connection_init (with the token, when given) and one subscription.
    pub async fn open(
        app: &TestApp,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Self {
        Self::open_at(app.addr, token, query, variables).await
    }

    pub async fn open_at(
        addr: SocketAddr,
        token: Option<&str>,
        query: &str,
        variables: serde_json::Value,
    ) -> Self {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        let mut ws = ws_connect(addr, Some("graphql-transport-ws"))
            .await
            .expect("the WebSocket connects");
        let send = |v: serde_json::Value| Message::Text(v.to_string().into());
        let payload = match token {
            Some(token) => serde_json::json!({ "Authorization": format!("Bearer {token}") }),
            None => serde_json::json!({}),
        };
        ws.send(send(
            serde_json::json!({ "type": "connection_init", "payload": payload }),
        ))
        .await
        .expect("connection_init sent");
        ws.send(send(serde_json::json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } })))
            .await
            .expect("subscribe sent");
        Self { ws }
    }

    /// The next message of the session (`next`, `error`, `complete`; not the ack), or `None`
    /// when nothing came `within` or the socket closed.
    pub async fn next(&mut self, within: Duration) -> Option<serde_json::Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            let Message::Text(text) = message else {
                continue;
            };
            let value: serde_json::Value = serde_json::from_str(&text).expect("JSON messages");
            if !matches!(
                value["type"].as_str(),
                Some("connection_ack" | "ping" | "pong")
            ) {
                return Some(value);
            }
        }
        None
    }
}

/// One message of the app's event stream: its subject, `Nats-Msg-Id` and envelope.
#[derive(Debug, Clone)]
pub struct Published {
    pub subject: String,
    pub message_id: String,
    pub envelope: fishapp_domain::events::Envelope,
    /// The outbox row the event was published from (its position in this database), while the
    /// row is there.
    pub row_id: Option<i64>,
}

impl Published {
    /// The outbox row id, for tests of order and once-ness by position.
    pub fn row(&self) -> i64 {
        self.row_id.expect("the event's outbox row")
    }
}

/// Every message in the app's event stream, in stream order (empty when there is no stream),
/// each with the outbox row it came from.
pub async fn published(app: &TestApp) -> Vec<Published> {
    let rows: std::collections::HashMap<uuid::Uuid, i64> =
        sqlx::query_as::<_, (uuid::Uuid, i64)>("SELECT event_id, id FROM outbox.events")
            .fetch_all(&app.pool().await)
            .await
            .expect("the outbox")
            .into_iter()
            .collect();
    let jetstream = app.jetstream().await;
    let Ok(mut stream) = jetstream.get_stream(&app.config.relay.relay_stream).await else {
        return Vec::new();
    };
    let state = stream.info().await.expect("stream info").state.clone();
    let mut messages = Vec::new();
    if state.messages == 0 {
        return messages;
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let message = stream
            .get_raw_message(sequence)
            .await
            .expect("message by sequence");
        let message_id = message
            .headers
            .get("Nats-Msg-Id")
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default();
        let envelope: fishapp_domain::events::Envelope =
            serde_json::from_slice(&message.payload).expect("an envelope");
        messages.push(Published {
            subject: message.subject.to_string(),
            message_id,
            row_id: rows.get(&envelope.id).copied(),
            envelope,
        });
    }
    messages
}

/// Waits until the relay has published every outbox row that can be published (none waiting
/// but failed ones); panics after `within`.
pub async fn wait_until_drained(app: &TestApp, within: Duration) {
    let pool = app.pool().await;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let waiting: i64 =
            sqlx::query_scalar("SELECT count(*) FROM outbox.pending WHERE failed_at IS NULL")
                .fetch_one(&pool)
                .await
                .expect("outbox count");
        if waiting == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{waiting} outbox events still unpublished after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A valid createPost input (no images), meeting in three days.
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

/// A `fishapp worker` process on every task queue of `app`, with the fault plan `faults` (see
/// `FISHAPP_FAULT_INJECTION`): a worker a test can kill outright (`start_kill` sends SIGKILL),
/// which an in-process worker cannot be.
pub fn worker_process(app: &TestApp, faults: &str) -> tokio::process::Child {
    worker_process_probed_on(app, faults, "127.0.0.1:0")
}

/// [`worker_process`] with its probes (`/healthz`, `/metrics`) on a free port of this machine,
/// and that address.
pub fn worker_process_probed(app: &TestApp) -> (tokio::process::Child, std::net::SocketAddr) {
    // The port is free when asked; another process taking it before the worker does would fail
    // the worker's start loudly, not the test silently.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let child = worker_process_probed_on(app, "", &addr.to_string());
    (child, addr)
}

fn worker_process_probed_on(app: &TestApp, faults: &str, probes: &str) -> tokio::process::Child {
    app.schedules_made
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let config = &app.config;
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"))
        .arg("worker")
        .env("FISHAPP_DATABASE_URL", &config.connections.database_url)
        .env(
            "FISHAPP_TEMPORAL_ADDRESS",
            config.temporal.temporal_address.as_str(),
        )
        .env(
            "FISHAPP_TEMPORAL_NAMESPACE",
            &config.temporal.temporal_namespace,
        )
        .env(
            "FISHAPP_TEMPORAL_TASK_QUEUE_PREFIX",
            &config.temporal.temporal_task_queue_prefix,
        )
        .env("FISHAPP_MEDIA_DIR", &config.media.media_dir)
        .env("FISHAPP_WORKER_HTTP_ADDR", probes)
        .env("FISHAPP_FAULT_INJECTION", faults)
        .env("FISHAPP_LOG_FILTER", "error")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("fishapp worker starts")
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

/// `fishapp <args>` on the app's database, NATS and stream, with its notifier's consumer.
pub fn fishapp_command(app: &TestApp, args: &[&str]) -> tokio::process::Command {
    let config = &app.config;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"));
    command
        .args(args)
        .env("FISHAPP_DATABASE_URL", &config.connections.database_url)
        .env("FISHAPP_NATS_URL", &config.connections.nats_url)
        .env("FISHAPP_RELAY_STREAM", &config.relay.relay_stream)
        .env(
            "FISHAPP_RELAY_SUBJECT_PREFIX",
            &config.relay.relay_subject_prefix,
        )
        .env("FISHAPP_NOTIFY_CONSUMER", &config.notify.notify_consumer)
        .env("FISHAPP_NOTIFY_HTTP_ADDR", "127.0.0.1:0")
        .env("FISHAPP_LOG_FILTER", "error")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    command
}

/// `fishapp <args>` run to its end: exit code, stdout, stderr.
pub async fn run_fishapp(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let output = fishapp_command(app, args)
        .output()
        .await
        .expect("fishapp runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `fishapp notifier` as a process of its own on the app's database and stream (one to kill).
pub fn notifier_process(app: &TestApp) -> tokio::process::Child {
    fishapp_command(app, &["notifier"])
        .spawn()
        .expect("fishapp notifier starts")
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

/// A WebSocket client connection.
pub type WebSocketClient =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a WebSocket to `/graphql`, asking for `protocol` (none: no subprotocol header).
pub async fn ws_connect(
    addr: SocketAddr,
    protocol: Option<&str>,
) -> Result<WebSocketClient, String> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = format!("ws://{addr}/graphql")
        .into_client_request()
        .expect("a WebSocket request");
    if let Some(protocol) = protocol {
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            protocol.parse().expect("a header value"),
        );
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(ws, _)| ws)
        .map_err(|e| format!("refused: {e}"))
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

/// A `fishapp serve` (or `dev`) process on `app`'s database, Redis, NATS stream, consumer and
/// task queues, on ports of its own: for what must be measured from outside (its memory, its
/// descriptors) or killed.
pub struct ServeProcess {
    pub addr: SocketAddr,
    pub metrics_addr: SocketAddr,
    pub pid: u32,
    _child: tokio::process::Child,
}

impl ServeProcess {
    /// Starts `fishapp serve` with `extra` environment (`FISHAPP_…` keys) and waits until it
    /// answers.
    pub async fn start(app: &TestApp, extra: &[(&str, &str)]) -> Self {
        Self::start_as(app, "serve", extra).await
    }

    /// Starts `fishapp <role>` (`serve` or `dev`) so.
    pub async fn start_as(app: &TestApp, role: &str, extra: &[(&str, &str)]) -> Self {
        if role == "dev" {
            // Its worker makes the deployment's schedules; the app deletes them when it ends.
            app.schedules_made
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port().await)
            .parse()
            .expect("an address");
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port().await)
            .parse()
            .expect("an address");
        let config = &app.config;
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_fishapp"));
        command
            .arg(role)
            .env("FISHAPP_HTTP_ADDR", addr.to_string())
            .env("FISHAPP_HTTP_METRICS_ADDR", metrics_addr.to_string())
            .env("FISHAPP_DATABASE_URL", &config.connections.database_url)
            .env("FISHAPP_NATS_URL", &config.connections.nats_url)
            .env("FISHAPP_REDIS_URL", &config.connections.redis_url)
            .env(
                "FISHAPP_REDIS_KEY_PREFIX",
                &config.connections.redis_key_prefix,
            )
            .env("FISHAPP_RELAY_STREAM", &config.relay.relay_stream)
            .env(
                "FISHAPP_RELAY_SUBJECT_PREFIX",
                &config.relay.relay_subject_prefix,
            )
            .env(
                "FISHAPP_TEMPORAL_ADDRESS",
                config.temporal.temporal_address.as_str(),
            )
            .env(
                "FISHAPP_TEMPORAL_TASK_QUEUE_PREFIX",
                &config.temporal.temporal_task_queue_prefix,
            )
            .env("FISHAPP_NOTIFY_CONSUMER", &config.notify.notify_consumer)
            .env("FISHAPP_MEDIA_DIR", &config.media.media_dir)
            .env("FISHAPP_MAIL_DIR", config.media.media_dir.join("mail"))
            .env("FISHAPP_JWT_PRIVATE_KEY_PEM", test_signing_key())
            .env("FISHAPP_SIGN_UP_MAX_PER_IP_PER_HOUR", "1000000")
            .env("FISHAPP_LOG_FILTER", "error")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        for (key, value) in extra {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("fishapp {role} starts: {e}"));
        let pid = child.id().expect("a running process");
        let http = reqwest::Client::new();
        let healthz = format!("http://{addr}/healthz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while http.get(&healthz).send().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "fishapp {role} did not answer within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            addr,
            metrics_addr,
            pid,
            _child: child,
        }
    }

    /// Resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    pub fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .expect("the process is running");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .unwrap_or(0.0)
                / 1024.0
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Descriptors the process holds open now.
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// One sample of its `/metrics` (a gauge or counter without labels); 0 when absent.
    pub async fn metric(&self, name: &str) -> f64 {
        metric_at(self.metrics_addr, name).await
    }
}

/// One sample of the `/metrics` page at `addr` (a gauge or counter without labels); 0 when
/// absent.
pub async fn metric_at(addr: SocketAddr, name: &str) -> f64 {
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a metrics page");
    text.lines()
        .find_map(|line| {
            let (key, value) = line.split_once(' ')?;
            (key == name).then(|| value.trim().parse().ok()).flatten()
        })
        .unwrap_or(0.0)
}

/// A graphql-transport-ws session for queries and mutations as well as subscriptions: each
/// operation has an id, and its messages are read by that id.
pub struct SocketClient {
    ws: WebSocketClient,
    /// Messages read while waiting for another operation's.
    unread: Vec<serde_json::Value>,
}

impl SocketClient {
    /// Connects and initialises (with `Authorization: Bearer <token>` when given), waiting for
    /// the acknowledgement.
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Self {
        let ws = ws_connect(addr, Some("graphql-transport-ws"))
            .await
            .expect("the WebSocket connects");
        let mut client = Self {
            ws,
            unread: Vec::new(),
        };
        let payload = match token {
            Some(token) => serde_json::json!({ "Authorization": format!("Bearer {token}") }),
            None => serde_json::json!({}),
        };
        client
            .send(serde_json::json!({ "type": "connection_init", "payload": payload }))
            .await;
        let ack = client.read(Duration::from_secs(10)).await;
        assert_eq!(
            ack.as_ref().and_then(|m| m["type"].as_str()),
            Some("connection_ack"),
            "{ack:?}"
        );
        client
    }

    async fn send(&mut self, message: serde_json::Value) {
        use futures::SinkExt;
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                message.to_string().into(),
            ))
            .await
            .expect("the message is sent");
    }

    /// The next JSON message (pings answered and skipped), or `None` when none came `within`
    /// or the socket closed.
    async fn read(&mut self, within: Duration) -> Option<serde_json::Value> {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, self.ws.next()).await {
            match message {
                Message::Text(text) => {
                    let value: serde_json::Value =
                        serde_json::from_str(&text).expect("JSON messages");
                    if value["type"] == "ping" {
                        self.send(serde_json::json!({ "type": "pong" })).await;
                        continue;
                    }
                    return Some(value);
                }
                Message::Close(frame) => {
                    return Some(serde_json::json!({
                        "type": "closed",
                        "code": frame.map(|f| u16::from(f.code)),
                    }));
                }
                _ => {}
            }
        }
        None
    }

    /// Starts an operation (query, mutation or subscription) under `id`.
    pub async fn start(&mut self, id: &str, query: &str, variables: serde_json::Value) {
        self.send(serde_json::json!({ "id": id, "type": "subscribe",
                                      "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next message of operation `id` (`next`, `error` or `complete`), or of the socket
    /// (`closed`); `None` when none came `within`.
    pub async fn next_of(&mut self, id: &str, within: Duration) -> Option<serde_json::Value> {
        if let Some(i) = self.unread.iter().position(|m| m["id"] == id) {
            return Some(self.unread.remove(i));
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.read(left).await?;
            if message["id"] == id || message["type"] == "closed" {
                return Some(message);
            }
            self.unread.push(message);
        }
    }

    /// A query or mutation's response (its `next` payload: `data` and `errors`).
    pub async fn request(
        &mut self,
        id: &str,
        query: &str,
        variables: serde_json::Value,
    ) -> serde_json::Value {
        self.start(id, query, variables).await;
        let message = self
            .next_of(id, Duration::from_secs(30))
            .await
            .expect("an answer within 30 s");
        match message["type"].as_str() {
            Some("next") => message["payload"].clone(),
            Some("error") => serde_json::json!({ "errors": message["payload"] }),
            _ => panic!("unexpected: {message}"),
        }
    }

    /// Sends raw text (not necessarily an operation).
    pub async fn send_text(&mut self, text: String) {
        use futures::SinkExt;
        // The server may close first: what it said is read afterwards.
        let _ = self
            .ws
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await;
    }

    /// Reads until the socket closes: its close code, or `None` when it did not close
    /// `within`.
    pub async fn closed(&mut self, within: Duration) -> Option<Option<u16>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.read(left).await?;
            if message["type"] == "closed" {
                return Some(message["code"].as_u64().map(|c| c as u16));
            }
        }
    }
}

/// A real SMTP server for a test (Python's aiosmtpd, which `scripts/stack tools` installs),
/// keeping every mail it receives in a Maildir of its own; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: std::path::PathBuf,
    _child: tokio::process::Child,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let port = free_port().await;
        let maildir = std::env::temp_dir().join(format!(
            "fishapp-test-maildir-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let child = tokio::process::Command::new("aiosmtpd")
            .args(["-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd starts (scripts/stack tools installs it)");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not listen within 15 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Self {
            port,
            maildir,
            _child: child,
        }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every mail received so far, as its raw text (headers and body).
    pub fn mails(&self) -> Vec<String> {
        let mut mails = Vec::new();
        for folder in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(folder)) {
                for entry in entries.flatten() {
                    if let Ok(text) = std::fs::read_to_string(entry.path()) {
                        mails.push(text);
                    }
                }
            }
        }
        mails
    }

    /// The mails to `address`, waiting up to `within` for at least `count` of them.
    pub async fn mails_to(&self, address: &str, count: usize, within: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let to: Vec<String> = self
                .mails()
                .into_iter()
                .filter(|m| {
                    m.lines()
                        .any(|l| l.eq_ignore_ascii_case(&format!("To: {address}")))
                })
                .collect();
            if to.len() >= count || tokio::time::Instant::now() > deadline {
                return to;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.maildir).ok();
    }
}

/// The decoded text of a raw mail's body (7bit/8bit as it is, base64 or quoted-printable
/// decoded), for reading what a mail says.
pub fn mail_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((raw.as_str(), ""));
    let encoding = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| value.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => {
            use base64::Engine;
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .expect("a base64 body");
            String::from_utf8_lossy(&bytes).into_owned()
        }
        "quoted-printable" => {
            let joined = body.replace("=\n", "");
            let mut bytes = Vec::new();
            let mut rest = joined.as_bytes();
            while let Some((&b, tail)) = rest.split_first() {
                let hex = tail.get(..2).and_then(|h| std::str::from_utf8(h).ok());
                if let (b'=', Some(Ok(byte))) = (b, hex.map(|h| u8::from_str_radix(h, 16))) {
                    bytes.push(byte);
                    rest = &tail[2..];
                    continue;
                }
                bytes.push(b);
                rest = tail;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        }
        _ => body.to_owned(),
    }
}
