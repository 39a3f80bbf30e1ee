//! Configuration: one TOML file, overridden by environment variables, overridden by flags.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use thiserror::Error;

/// The default data directory.
pub const DEFAULT_DATA: &str = "./sparkid-data";
/// The default HTTP address.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// The configuration file's shape. Every member is optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Data directory.
    pub data: Option<PathBuf>,
    /// HTTP listen address.
    pub http: Option<SocketAddr>,
    /// Dev mode: a single local validator whose key lives in the data directory.
    pub dev: Option<bool>,
    /// A genesis file (JSON), for a ledger that is not a dev ledger.
    pub genesis: Option<PathBuf>,
    /// This node's validator key file (`priSPK...`).
    pub validator_key: Option<PathBuf>,
    /// Log filter, as `RUST_LOG` takes it.
    pub log: Option<String>,
}

/// Why the configuration cannot be used.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
}

impl FileConfig {
    /// Reads a TOML file.
    pub fn load(path: &Path) -> Result<FileConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }
}

/// The settings `serve` runs with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    /// Data directory.
    pub data: PathBuf,
    /// HTTP listen address.
    pub http: SocketAddr,
    /// Dev mode.
    pub dev: bool,
    /// Genesis file for a new non-dev ledger.
    pub genesis: Option<PathBuf>,
    /// Validator key file.
    pub validator_key: Option<PathBuf>,
    /// Log filter.
    pub log: String,
}
