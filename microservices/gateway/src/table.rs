//! The public API's route table: which method and path exist, which service owns each, and
//! which need a verified bearer token.
//!
//! It mirrors docs/api.md line for line (a test holds them together), so a path the API does
//! not have is a 404 at the gateway and a wrong method a 405, never a guess forwarded inward.
//! In particular the services' `/internal/*` routes can never be reached from outside.
//!
//! It is also what the gateway sends: the upstream path is the matched row's pattern with
//! each `{param}` replaced by its parsed, re-encoded value ([`Route::upstream_path`]), never
//! the client's spelling of it.
//!
//! Plain data, importing neither `forward` nor `routes`: `forward` reads a route's service
//! and access, and `routes` turns the table into a router that forwards.

use archlab_kernel::Result;
use archlab_kernel::http::parse_id;
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
    /// axum path pattern; every `{param}` in it is a UUID (docs/api.md).
    pub path: &'static str,
    /// Who serves it.
    pub service: Service,
    /// Who may call it.
    pub access: Access,
}

impl Route {
    /// The path to send upstream: this route's pattern with each `{param}` replaced by its
    /// value from `params` (as the router matched and percent-decoded it), parsed as a UUID
    /// and written back in its one hyphenated form. A value that is not a UUID is the 422
    /// the monolith's `IdPath` answers.
    ///
    /// No route takes a query string, so none is forwarded.
    pub fn upstream_path(&self, params: &[(String, String)]) -> Result<String> {
        let segments = self.path.split('/').map(|segment| match param_name(segment) {
            None => Ok(segment.to_owned()),
            Some(name) => {
                let value = params.iter().find(|(n, _)| n == name).map_or("", |(_, v)| v.as_str());
                parse_id(value).map(|id| id.hyphenated().to_string())
            }
        });
        Ok(segments.collect::<Result<Vec<_>>>()?.join("/"))
    }

    /// Whether the pattern has any `{param}` to fill.
    pub fn has_params(&self) -> bool {
        self.path.split('/').any(|segment| param_name(segment).is_some())
    }
}

/// `id` for a pattern segment `{id}`.
fn param_name(segment: &str) -> Option<&str> {
    segment.strip_prefix('{')?.strip_suffix('}')
}

const fn route(method: &'static str, path: &'static str, service: Service, access: Access) -> Route {
    Route { method, path, service, access }
}

/// The public API of docs/api.md, except `/health`, `/ready`, `/metrics` and `/openapi.json`,
/// which the gateway answers itself (its own `/metrics`: a service's is never forwarded).
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

#[cfg(test)]
mod tests {
    use super::*;
    use archlab_kernel::http::require_canonical_path;

    fn params(id: &str) -> Vec<(String, String)> {
        vec![("id".to_owned(), id.to_owned())]
    }

    #[test]
    fn the_upstream_path_is_the_pattern_with_the_parsed_id() {
        let by_id = ROUTES.iter().find(|r| r.path == "/api/users/{id}").expect("the route");
        let id = uuid::Uuid::new_v4();
        for spelling in [id.to_string(), id.to_string().to_uppercase(), id.simple().to_string(), format!("{{{id}}}")] {
            assert_eq!(by_id.upstream_path(&params(&spelling)).expect(&spelling), format!("/api/users/{id}"));
        }
    }

    #[test]
    fn an_id_that_is_not_a_uuid_is_the_monoliths_422() {
        let by_id = ROUTES.iter().find(|r| r.path == "/api/payments/{id}").expect("the route");
        for bad in ["", "me", "..", "..\\..\\internal\\users\\profiles", "../../internal", "1234"] {
            let refused = by_id.upstream_path(&params(bad)).expect_err(bad);
            assert_eq!(refused.code, archlab_kernel::codes::VALIDATION_FAILED, "{bad:?}");
        }
        assert!(by_id.upstream_path(&[]).is_err(), "a missing parameter is not a UUID either");
    }

    #[test]
    fn every_route_s_upstream_path_is_canonical_and_only_ids_are_parameters() {
        let id = uuid::Uuid::new_v4().to_string();
        for route in ROUTES {
            let path = route.upstream_path(&params(&id)).expect(route.path);
            require_canonical_path(&path).unwrap_or_else(|e| panic!("{}: {e}", route.path));
            assert_eq!(path, route.path.replace("{id}", &id), "{} has a parameter other than {{id}}", route.path);
            assert_eq!(route.has_params(), route.path.contains("{id}"));
        }
    }
}
