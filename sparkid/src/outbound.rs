//! Every outbound HTTP client of the daemon is built from here: drivers, sub-chain resolvers,
//! followed peers, the other validators and the anchoring target. They speak `http://` and
//! `https://` (rustls), and trust the web roots (Mozilla's, built in) plus the CA certificates
//! of the operator's `ca_file` (`--ca-file`, `SPARKID_CA_FILE`), for a private CA.

use std::path::{Path, PathBuf};

use thiserror::Error;

/// How big a CA file may be: a bundle of a few hundred certificates.
const MAX_CA_FILE: u64 = 4 * 1024 * 1024;

/// The trust roots outbound clients use.
#[derive(Debug, Clone, Default)]
pub struct Outbound {
    roots: Vec<reqwest::Certificate>,
}

/// Why the CA file cannot be used.
#[derive(Debug, Error)]
pub enum OutboundError {
    /// It cannot be read.
    #[error("CA file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It holds no PEM certificate, or one that does not parse.
    #[error("CA file {}: {why}", path.display())]
    Certificates {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
}

impl Outbound {
    /// The web roots, plus the certificates of `ca_file` when given.
    pub fn load(ca_file: Option<&Path>) -> Result<Outbound, OutboundError> {
        let Some(path) = ca_file else {
            return Ok(Outbound::default());
        };
        let read = |source| OutboundError::Read {
            path: path.into(),
            source,
        };
        let size = std::fs::metadata(path).map_err(read)?.len();
        if size > MAX_CA_FILE {
            return Err(OutboundError::Certificates {
                path: path.into(),
                why: format!("{size} bytes, more than a CA bundle's {MAX_CA_FILE}"),
            });
        }
        let pem = std::fs::read(path).map_err(read)?;
        let certificates = |why: String| OutboundError::Certificates {
            path: path.into(),
            why,
        };
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| certificates(format!("not PEM certificates: {e}")))?;
        if roots.is_empty() {
            return Err(certificates("no PEM certificate in it".into()));
        }
        // reqwest parses the PEM lazily; building a client is what checks each certificate.
        let mut check = reqwest::Client::builder().use_rustls_tls();
        for root in &roots {
            check = check.add_root_certificate(root.clone());
        }
        check
            .build()
            .map_err(|e| certificates(format!("a certificate does not parse: {e}")))?;
        Ok(Outbound { roots })
    }

    /// How many certificates the CA file added.
    pub fn extra_roots(&self) -> usize {
        self.roots.len()
    }

    /// A client builder with the trust roots, for a client to add its timeouts to.
    pub fn builder(&self) -> reqwest::ClientBuilder {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .user_agent(concat!("sparkid/", env!("CARGO_PKG_VERSION")));
        for root in &self.roots {
            builder = builder.add_root_certificate(root.clone());
        }
        builder
    }

    /// The base of the node's clients (peers, validators, anchoring).
    pub fn node(&self) -> sparkid_node::outbound::ClientBase {
        let this = self.clone();
        sparkid_node::outbound::ClientBase::new(move || this.builder())
    }

    /// The base of the resolver's clients (drivers, sub-chain resolvers).
    pub fn resolver(&self) -> sparkid_resolver::outbound::ClientBase {
        let this = self.clone();
        sparkid_resolver::outbound::ClientBase::new(move || this.builder())
    }
}
