//! The route table: each HTTP route's path and methods, recorded by the very calls that mount
//! its handlers, so the daemon can list its API (`GET /1.0/routes`) and `tests/openapi.rs` can
//! hold `spec/openapi.yaml` to it without a hand-kept copy that drifts.
//!
//! [`Routes`] wraps an axum [`Router`] and [`Methods`] an axum [`MethodRouter`]; they read like
//! axum's own (one line per route):
//!
//! ```ignore
//! use crate::doors::routes::{get, post, Routes};
//! Routes::new()
//!     .route("/1.0/identifiers/{*identifier}", get(identifiers).post(identifiers_post))
//!     .route("/healthz", get(healthz))
//! ```
//!
//! A route can only enter the daemon's router through [`Routes::route`] or [`Routes::merge`]
//! (there is no way to merge a bare axum router), so whatever is served is listed.

use axum::handler::Handler;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use serde::Serialize;

/// The path of the route listing.
pub const LISTING: &str = "/1.0/routes";

/// One route: an axum path template (`{name}` captures one segment, `{*name}` the rest of the
/// path) and the methods it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Route {
    /// The path template, as mounted.
    pub path: String,
    /// The methods, upper case, in the order mounted (`GET` also answers `HEAD`, as axum does).
    pub methods: Vec<String>,
}

/// The handlers of one path, by method, and the list of those methods.
pub struct Methods<S = ()> {
    router: MethodRouter<S>,
    methods: Vec<Method>,
}

/// A `GET` handler (axum's [`axum::routing::get`], recorded).
pub fn get<H, T, S>(handler: H) -> Methods<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Methods {
        router: axum::routing::get(handler),
        methods: vec![Method::GET],
    }
}

/// A `POST` handler (axum's [`axum::routing::post`], recorded).
pub fn post<H, T, S>(handler: H) -> Methods<S>
where
    H: Handler<T, S>,
    T: 'static,
    S: Clone + Send + Sync + 'static,
{
    Methods {
        router: axum::routing::post(handler),
        methods: vec![Method::POST],
    }
}

impl<S: Clone + Send + Sync + 'static> Methods<S> {
    /// Adds a `GET` handler.
    pub fn get<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.get(handler);
        self.methods.push(Method::GET);
        self
    }

    /// Adds a `POST` handler.
    pub fn post<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.post(handler);
        self.methods.push(Method::POST);
        self
    }

    /// Adds an `OPTIONS` handler (CORS preflight, where a door answers it itself).
    pub fn options<H, T>(mut self, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.options(handler);
        self.methods.push(Method::OPTIONS);
        self
    }
}

/// An axum router and the table of its routes.
pub struct Routes<S = ()> {
    router: Router<S>,
    table: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes.
    pub fn new() -> Self {
        Routes {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    /// Mounts `methods` at `path` (axum's [`Router::route`]: an overlapping path panics at
    /// startup, as there).
    pub fn route(mut self, path: &str, methods: Methods<S>) -> Self {
        self.router = self.router.route(path, methods.router);
        self.table.push(Route {
            path: path.to_string(),
            methods: methods.methods.iter().map(ToString::to_string).collect(),
        });
        self
    }

    /// Mounts every route of `other`.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// Applies `f` to the router: for layers (body limits, extensions), which add no route.
    pub fn layer_with(mut self, f: impl FnOnce(Router<S>) -> Router<S>) -> Self {
        self.router = f(self.router);
        self
    }

    /// Gives the handlers their state.
    pub fn with_state<S2>(self, state: S) -> Routes<S2> {
        Routes {
            router: self.router.with_state(state),
            table: self.table,
        }
    }

    /// The routes mounted so far.
    pub fn table(&self) -> &[Route] {
        &self.table
    }
}

impl Routes {
    /// The router, with [`LISTING`] added: `GET /1.0/routes` answers the table (itself
    /// included), sorted by path, as a JSON array of `{path, methods}`.
    pub fn into_router_with_listing(self) -> Router {
        let mut table = self.table;
        table.push(Route {
            path: LISTING.to_string(),
            methods: vec![Method::GET.to_string()],
        });
        table.sort_by(|a, b| a.path.cmp(&b.path));
        // Rendered once: the table is fixed when the daemon starts.
        let body = serde_json::to_string(&table).unwrap_or_else(|_| "[]".into());
        self.router.route(
            LISTING,
            axum::routing::get(move || async move { listing(body) }),
        )
    }
}

fn listing(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ok() -> &'static str {
        "ok"
    }

    #[test]
    fn the_table_records_what_is_mounted() {
        let a: Routes = Routes::new().route("/a", get(ok).post(ok));
        let b = Routes::new()
            .route("/b/{*rest}", post(ok))
            .layer_with(|r| r.layer(axum::extract::DefaultBodyLimit::max(10)));
        let all = a.merge(b);
        assert_eq!(
            all.table(),
            [
                Route {
                    path: "/a".into(),
                    methods: vec!["GET".into(), "POST".into()]
                },
                Route {
                    path: "/b/{*rest}".into(),
                    methods: vec!["POST".into()]
                },
            ]
        );
        let _router = all.into_router_with_listing();
    }
}
