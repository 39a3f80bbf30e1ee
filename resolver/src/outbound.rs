//! The base every outbound HTTP client of this crate starts from: the daemon makes it once
//! (its TLS trust roots: the web roots and the operator's CA file), and each client adds its own
//! timeouts and policies on top. The default is reqwest's own builder (web roots only).

use std::sync::Arc;

/// Makes the [`reqwest::ClientBuilder`] an outbound client starts from.
#[derive(Clone)]
pub struct ClientBase(Arc<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>);

impl ClientBase {
    /// Clients start from what `make` returns.
    pub fn new(make: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static) -> ClientBase {
        ClientBase(Arc::new(make))
    }

    /// A fresh builder to add a client's own settings to.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        (self.0)()
    }
}

impl Default for ClientBase {
    fn default() -> ClientBase {
        ClientBase::new(reqwest::Client::builder)
    }
}

impl std::fmt::Debug for ClientBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientBase")
    }
}
