//! The processes of both builds, declared once: binary names, the environment variables that
//! place them, and their default addresses and databases.
//!
//! Every binary's `clap` config, the clients that call a service, the gateway's upstreams and
//! the harness (`archlab up`) read this table, so a port or a name is changed here and
//! nowhere else. The ports are DESIGN.md's: monolith 8080, gateway 8000, services HTTP
//! 8001–8004 and gRPC 9001–9004, extsim 8090; the hybrid's core 8005 and 9005.

/// One listener of a process: the variable that sets its address, the variable its callers
/// read for its URL, and the defaults of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// Where the process listens, e.g. `AUTH_HTTP_ADDR`.
    pub addr_var: &'static str,
    /// Its default, e.g. `127.0.0.1:8001`.
    pub default_addr: &'static str,
    /// Where callers find it, e.g. `AUTH_HTTP_URL`.
    pub url_var: &'static str,
    /// Its default, e.g. `http://127.0.0.1:8001`.
    pub default_url: &'static str,
}

/// One process of either build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Binary name, log prefix, `service.name` in telemetry and the dependency name in errors.
    pub name: &'static str,
    /// Its HTTP listener (every process has one).
    pub http: Listener,
    /// Its gRPC listener, for the four services.
    pub grpc: Option<Listener>,
    /// The variable naming its own database and the default name, for those that have one.
    pub database: Option<(&'static str, &'static str)>,
    /// The variable placing its fault admin endpoint (loopback only, unset by default: no
    /// endpoint), for the processes that reach fault points.
    pub admin_addr_var: Option<&'static str>,
}

/// A [`Listener`] whose variables start with `$prefix` (`AUTH_HTTP` → `AUTH_HTTP_ADDR`,
/// `AUTH_HTTP_URL`), the URL derived from the address so the two cannot disagree.
macro_rules! listener {
    ($prefix:literal, $addr:literal) => {
        Listener {
            addr_var: concat!($prefix, "_ADDR"),
            default_addr: $addr,
            url_var: concat!($prefix, "_URL"),
            default_url: concat!("http://", $addr),
        }
    };
}

/// The simulated third parties (payment provider and email).
pub const EXTSIM: ProcessSpec = ProcessSpec {
    name: "extsim",
    http: listener!("EXTSIM", "127.0.0.1:8090"),
    grpc: None,
    database: None,
    admin_addr_var: None,
};

/// The modular monolith.
pub const MONOLITH: ProcessSpec = ProcessSpec {
    name: "monolith",
    http: listener!("MONOLITH", "127.0.0.1:8080"),
    grpc: None,
    database: Some(("MONOLITH_DATABASE", "archlab_monolith")),
    admin_addr_var: Some("MONOLITH_ADMIN_ADDR"),
};

/// The monolith with one module extracted (`archlab up hybrid --extract <module>`): the
/// other three modules in one process over the monolith's own database, serving behind the
/// gateway like a service (so it has a gRPC listener) and calling the extracted one remotely.
pub const HYBRID: ProcessSpec = ProcessSpec {
    name: "hybrid",
    http: listener!("HYBRID_HTTP", "127.0.0.1:8005"),
    grpc: Some(listener!("HYBRID_GRPC", "127.0.0.1:9005")),
    database: MONOLITH.database,
    admin_addr_var: Some("HYBRID_ADMIN_ADDR"),
};

/// The microservices' front door.
pub const GATEWAY: ProcessSpec = ProcessSpec {
    name: "gateway",
    http: listener!("GATEWAY", "127.0.0.1:8000"),
    grpc: None,
    database: None,
    admin_addr_var: None,
};

/// Credentials and sessions.
pub const AUTH_SERVICE: ProcessSpec = ProcessSpec {
    name: "auth-service",
    http: listener!("AUTH_HTTP", "127.0.0.1:8001"),
    grpc: Some(listener!("AUTH_GRPC", "127.0.0.1:9001")),
    database: Some(("AUTH_DATABASE", "archlab_auth")),
    admin_addr_var: Some("AUTH_ADMIN_ADDR"),
};

/// Profiles and preferences.
pub const USERS_SERVICE: ProcessSpec = ProcessSpec {
    name: "users-service",
    http: listener!("USERS_HTTP", "127.0.0.1:8002"),
    grpc: Some(listener!("USERS_GRPC", "127.0.0.1:9002")),
    database: Some(("USERS_DATABASE", "archlab_users")),
    admin_addr_var: Some("USERS_ADMIN_ADDR"),
};

/// The purchase flow.
pub const PAYMENTS_SERVICE: ProcessSpec = ProcessSpec {
    name: "payments-service",
    http: listener!("PAYMENTS_HTTP", "127.0.0.1:8003"),
    grpc: Some(listener!("PAYMENTS_GRPC", "127.0.0.1:9003")),
    database: Some(("PAYMENTS_DATABASE", "archlab_payments")),
    admin_addr_var: Some("PAYMENTS_ADMIN_ADDR"),
};

/// Welcome and receipt notifications.
pub const NOTIFICATIONS_SERVICE: ProcessSpec = ProcessSpec {
    name: "notifications-service",
    http: listener!("NOTIFICATIONS_HTTP", "127.0.0.1:8004"),
    grpc: Some(listener!("NOTIFICATIONS_GRPC", "127.0.0.1:9004")),
    database: Some(("NOTIFICATIONS_DATABASE", "archlab_notifications")),
    admin_addr_var: Some("NOTIFICATIONS_ADMIN_ADDR"),
};

/// The four services in the order `archlab up micro` starts them: those that others call
/// first, payments (which calls three of them) last.
pub const SERVICES: [ProcessSpec; 4] = [AUTH_SERVICE, USERS_SERVICE, NOTIFICATIONS_SERVICE, PAYMENTS_SERVICE];

/// Every process of both builds and of the hybrid between them.
pub const ALL: [ProcessSpec; 8] =
    [EXTSIM, MONOLITH, HYBRID, GATEWAY, AUTH_SERVICE, USERS_SERVICE, PAYMENTS_SERVICE, NOTIFICATIONS_SERVICE];

/// A module the hybrid can run as its own service (`hybrid --extract <module>`; see
/// hybrid/src/lib.rs for why only these two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Module {
    /// notifications-service: the leaf every other module only sends events to.
    Notifications,
    /// payments-service: the purchase flow, calling back auth, users and notifications here.
    Payments,
}

impl Module {
    /// Both, in the order the docs recommend extracting them.
    pub const ALL: [Module; 2] = [Module::Notifications, Module::Payments];

    /// The process that runs it.
    pub fn service(self) -> ProcessSpec {
        match self {
            Module::Notifications => NOTIFICATIONS_SERVICE,
            Module::Payments => PAYMENTS_SERVICE,
        }
    }

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Module::Notifications => "notifications",
            Module::Payments => "payments",
        }
    }
}

impl std::fmt::Display for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_variables_and_ports_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in ALL {
            assert!(seen.insert(p.name), "{} twice", p.name);
            for l in std::iter::once(p.http).chain(p.grpc) {
                for item in [l.addr_var, l.default_addr, l.url_var] {
                    assert!(seen.insert(item), "{item} twice");
                }
                assert_eq!(l.default_url, format!("http://{}", l.default_addr));
            }
            if let Some(var) = p.admin_addr_var {
                assert!(seen.insert(var), "{var} twice");
            }
        }
    }
}
