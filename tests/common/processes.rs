//! `fishapp` as separate processes (worker, notifier, serve, dev, any subcommand) on a test app's
//! stack: what must be killed or measured from outside.

use super::*;

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
        let mut command = fishapp_command(app, &[role]);
        command
            .env("FISHAPP_HTTP_ADDR", addr.to_string())
            .env("FISHAPP_HTTP_METRICS_ADDR", metrics_addr.to_string())
            .env("FISHAPP_REDIS_URL", &config.connections.redis_url)
            .env(
                "FISHAPP_REDIS_KEY_PREFIX",
                &config.connections.redis_key_prefix,
            )
            .env(
                "FISHAPP_TEMPORAL_ADDRESS",
                config.temporal.temporal_address.as_str(),
            )
            .env(
                "FISHAPP_TEMPORAL_TASK_QUEUE_PREFIX",
                &config.temporal.temporal_task_queue_prefix,
            )
            .env("FISHAPP_MEDIA_DIR", &config.media.media_dir)
            .env("FISHAPP_MAIL_DIR", config.media.media_dir.join("mail"))
            .env("FISHAPP_JWT_PRIVATE_KEY_PEM", test_signing_key())
            .env("FISHAPP_SIGN_UP_MAX_PER_IP_PER_HOUR", "1000000");
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
