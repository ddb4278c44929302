//! Services in Docker containers, for machines with a Docker engine and no local services.

use std::sync::OnceLock;
use testcontainers::ContainerAsync;
use testcontainers::runners::AsyncRunner;
use testcontainers_modules::{postgres::Postgres, rabbitmq::RabbitMq, redis::Redis};
use tokio::sync::OnceCell;

fn docker_reachable() -> bool {
    std::env::var_os("DOCKER_HOST").is_some() || std::path::Path::new("/var/run/docker.sock").exists()
}

// Containers live as long as the test process; one of each kind is shared by its tests.
static POSTGRES: OnceCell<Option<(ContainerAsync<Postgres>, String)>> = OnceCell::const_new();
static REDIS: OnceCell<Option<(ContainerAsync<Redis>, String)>> = OnceCell::const_new();
static RABBIT: OnceCell<Option<(ContainerAsync<RabbitMq>, String)>> = OnceCell::const_new();
static WARNED: OnceLock<()> = OnceLock::new();

async fn start<I: testcontainers::Image>(
    image: I,
    url: impl Fn(String, u16) -> String,
    port: u16,
) -> Option<(ContainerAsync<I>, String)> {
    if !docker_reachable() {
        return None;
    }
    match image.start().await {
        Ok(c) => {
            let host = c.get_host().await.ok()?.to_string();
            let mapped = c.get_host_port_ipv4(port).await.ok()?;
            let u = url(host, mapped);
            Some((c, u))
        }
        Err(e) => {
            WARNED.get_or_init(|| eprintln!("testkit: could not start a container ({e}); using local defaults"));
            None
        }
    }
}

/// The URL of a container-backed service, started on first use; `None` without Docker.
pub async fn url(which: &str) -> Option<String> {
    match which {
        "postgres" => POSTGRES
            .get_or_init(|| {
                start(Postgres::default().with_host_auth(), |h, p| format!("postgres://postgres@{h}:{p}"), 5432)
            })
            .await
            .as_ref()
            .map(|(_, u)| u.clone()),
        "redis" => REDIS
            .get_or_init(|| start(Redis::default(), |h, p| format!("redis://{h}:{p}"), 6379))
            .await
            .as_ref()
            .map(|(_, u)| u.clone()),
        "rabbitmq" => RABBIT
            .get_or_init(|| start(RabbitMq::default(), |h, p| format!("amqp://guest:guest@{h}:{p}/%2f"), 5672))
            .await
            .as_ref()
            .map(|(_, u)| u.clone()),
        _ => None,
    }
}
