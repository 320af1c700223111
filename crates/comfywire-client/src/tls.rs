//! One rustls configuration for the socket and HTTP: the system's roots,
//! plus a custom CA file for self-signed servers and private proxies.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::error::Error;

/// Builds the client TLS configuration.
pub(crate) fn client_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, Error> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates are skipped, not fatal: a custom CA
    // may be all that is needed.
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "CA file {} holds no certificate",
                path.display()
            )));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("CA file {}: {e}", path.display())))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
