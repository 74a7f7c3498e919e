//! Joining a cluster over the network. The node token (`<data-dir>/node-token` on the
//! server) carries the hash of the cluster CA, k3s-style — `K10<sha256 of the CA PEM>::node:
//! <secret>` — so an agent given only the server's URL and the token fetches the CA from
//! `/cacerts` and knows it is the right one before trusting it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::api::server::NODE_IDENTITY_PATH;
use crate::client::{Client, ClientError};
use crate::tls::Identity;

const PREFIX: &str = "K10";
const SEPARATOR: &str = "::node:";

/// Why an agent could not join.
#[derive(Debug, thiserror::Error)]
pub enum JoinError {
    #[error("the node token is malformed: expected K10<ca-hash>::node:<secret>")]
    MalformedToken,
    #[error("cannot fetch the cluster CA from the server: {0}")]
    FetchCa(#[source] ClientError),
    #[error(
        "the server's CA (sha256 {actual}) is not the one the token names ({expected}): wrong server or token"
    )]
    CaMismatch { expected: String, actual: String },
    #[error("the server issued no certificate for this node: {0}")]
    Identity(#[source] ClientError),
    #[error("the server's node certificate answer is malformed: {0}")]
    IdentityMalformed(String),
}

/// A join token for the cluster whose CA is `ca_pem`.
pub fn node_token(ca_pem: &str, secret: &str) -> String {
    format!("{PREFIX}{}{SEPARATOR}{secret}", ca_hash(ca_pem))
}

fn ca_hash(ca_pem: &str) -> String {
    hex::encode(Sha256::digest(ca_pem.as_bytes()))
}

/// The CA hash a token names.
fn expected_ca_hash(token: &str) -> Result<&str, JoinError> {
    let (head, secret) = token
        .split_once(SEPARATOR)
        .ok_or(JoinError::MalformedToken)?;
    let hash = head.strip_prefix(PREFIX).ok_or(JoinError::MalformedToken)?;
    let well_formed = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    if !well_formed || secret.is_empty() {
        return Err(JoinError::MalformedToken);
    }
    Ok(hash)
}

/// A client of the server at `server` authenticated by `token`, trusting the cluster CA once
/// its hash matched the token's.
///
/// # Errors
/// A malformed token, an unreachable server, or a CA that is not the token's.
pub async fn connect(server: &str, token: &str) -> Result<Client, JoinError> {
    let expected = expected_ca_hash(token)?;
    let bootstrap = Client::with_tls(server, "", unverified_tls());
    let ca_pem = bootstrap
        .get_text("/cacerts")
        .await
        .map_err(JoinError::FetchCa)?;
    let actual = ca_hash(&ca_pem);
    if !actual.eq_ignore_ascii_case(expected) {
        return Err(JoinError::CaMismatch {
            expected: expected.to_string(),
            actual,
        });
    }
    Client::with_ca(server, token, &ca_pem).map_err(JoinError::FetchCa)
}

/// The node's identity from the control plane (k3s-style): a certificate of the cluster CA for
/// `name` at `address`, which serves the node's endpoint and opens tunnels to other nodes.
///
/// # Errors
/// When the server refuses or answers something else than an identity.
pub async fn node_identity(
    client: &Client,
    name: &str,
    address: std::net::IpAddr,
) -> Result<Identity, JoinError> {
    let path = format!("{NODE_IDENTITY_PATH}?node={name}&address={address}");
    let answer = client
        .create(&path, &serde_json::json!({}))
        .await
        .map_err(JoinError::Identity)?;
    let field = |name: &str| {
        answer[name]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| JoinError::IdentityMalformed(format!("no {name:?}")))
    };
    Ok(Identity {
        ca_pem: field("caCert")?,
        cert_pem: field("cert")?,
        key_pem: field("key")?,
    })
}

/// TLS that accepts any server certificate: only for fetching the CA, whose hash is then
/// checked against the token — nothing sent or received on it is trusted otherwise.
fn unverified_tls() -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth()
}

#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_the_hash_of_its_ca() {
        let token = node_token("-----BEGIN CERTIFICATE-----\n", "s3cret");
        let hash = expected_ca_hash(&token).unwrap();
        assert_eq!(hash, ca_hash("-----BEGIN CERTIFICATE-----\n"));
        assert!(token.ends_with("::node:s3cret"));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for token in [
            "",
            "secret",
            "K10abc::node:s",
            "K10::node:s",
            &format!("K10{}::node:", "a".repeat(64)),
        ] {
            assert!(
                matches!(expected_ca_hash(token), Err(JoinError::MalformedToken)),
                "{token}"
            );
        }
        assert!(expected_ca_hash(&format!("K10{}::node:s", "a".repeat(64))).is_ok());
    }
}
