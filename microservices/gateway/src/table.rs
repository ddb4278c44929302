//! The public API's route table: which method and path exist, which service owns each, and
//! which need a verified bearer token.
//!
//! It mirrors docs/api.md line for line (a test holds them together), so a path the API does
//! not have is a 404 at the gateway and a wrong method a 405, never a guess forwarded inward.
//! In particular the services' `/internal/*` routes can never be reached from outside.
//!
//! Plain data, importing neither `forward` nor `routes`: `forward` reads a route's service
//! and access, and `routes` turns the table into a router that forwards.

use archlab_kernel::processes;
use archlab_remote::Upstreams;

/// The service that owns a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Service {
    /// auth-service: `/api/auth/*`.
    Auth,
    /// users-service: `/api/users/*`.
    Users,
    /// payments-service: `/api/payments*`.
    Payments,
    /// notifications-service: `/api/notifications`.
    Notifications,
}

impl Service {
    /// Every service, in the order the gateway holds their upstreams.
    pub const ALL: [Service; 4] = [Service::Auth, Service::Users, Service::Payments, Service::Notifications];

    /// The name errors and `/ready` use, e.g. `users-service`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Auth => processes::AUTH_SERVICE.name,
            Service::Users => processes::USERS_SERVICE.name,
            Service::Payments => processes::PAYMENTS_SERVICE.name,
            Service::Notifications => processes::NOTIFICATIONS_SERVICE.name,
        }
    }

    /// Where its public HTTP routes are.
    pub fn http_url(self, upstreams: &Upstreams) -> &str {
        match self {
            Service::Auth => &upstreams.auth_http_url,
            Service::Users => &upstreams.users_http_url,
            Service::Payments => &upstreams.payments_http_url,
            Service::Notifications => &upstreams.notifications_http_url,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (signup, login).
    Public,
    /// Only with a bearer token auth-service vouches for; forwarded with a signed identity.
    Bearer,
}

/// One row of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// HTTP method, upper case.
    pub method: &'static str,
    /// axum path pattern.
    pub path: &'static str,
    /// Who serves it.
    pub service: Service,
    /// Who may call it.
    pub access: Access,
}

const fn route(method: &'static str, path: &'static str, service: Service, access: Access) -> Route {
    Route { method, path, service, access }
}

/// The public API of docs/api.md, except `/health`, `/ready` and `/openapi.json`, which the
/// gateway answers itself.
pub const ROUTES: &[Route] = &[
    route("POST", "/api/auth/signup", Service::Auth, Access::Public),
    route("POST", "/api/auth/login", Service::Auth, Access::Public),
    route("POST", "/api/auth/logout", Service::Auth, Access::Bearer),
    route("GET", "/api/users/me", Service::Users, Access::Bearer),
    route("PATCH", "/api/users/me", Service::Users, Access::Bearer),
    route("GET", "/api/users/{id}", Service::Users, Access::Bearer),
    route("POST", "/api/payments", Service::Payments, Access::Bearer),
    route("GET", "/api/payments", Service::Payments, Access::Bearer),
    route("GET", "/api/payments/{id}", Service::Payments, Access::Bearer),
    route("GET", "/api/notifications", Service::Notifications, Access::Bearer),
];
