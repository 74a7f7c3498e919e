//! Protocol upgrades through the HTTP path (WebSocket, RFC 9110 §7.8): a request asking for one
//! keeps its `Upgrade` header on the way to the endpoint, and when the endpoint answers 101 the
//! client's connection and the endpoint's are spliced, as nginx does with `proxy_set_header
//! Upgrade`.

use http::header::{self, HeaderMap, HeaderValue};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// The `Upgrade` header of a request that asks for an upgrade (`Connection: upgrade` too).
pub fn requested(headers: &HeaderMap) -> Option<HeaderValue> {
    let connection = headers.get_all(header::CONNECTION).iter();
    let mut tokens = connection.flat_map(|v| v.to_str().unwrap_or_default().split(','));
    tokens
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
        .then(|| headers.get(header::UPGRADE).cloned())
        .flatten()
}

/// Puts the upgrade back on a request whose hop-by-hop headers were taken off.
pub fn ask_again(headers: &mut HeaderMap, upgrade: HeaderValue) {
    headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(header::UPGRADE, upgrade);
}

/// Splices the client's connection and the endpoint's once both are upgraded, until either
/// side closes.
pub fn splice(client: OnUpgrade, endpoint: OnUpgrade) {
    tokio::spawn(async move {
        let (client, endpoint) = match tokio::try_join!(client, endpoint) {
            Ok(both) => both,
            Err(error) => {
                tracing::debug!(%error, "an upgrade did not complete");
                return;
            }
        };
        let (mut client, mut endpoint) = (TokioIo::new(client), TokioIo::new(endpoint));
        if let Err(error) = tokio::io::copy_bidirectional(&mut client, &mut endpoint).await {
            tracing::debug!(%error, "an upgraded connection failed");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upgrade_is_asked_by_connection_and_upgrade_together() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        };
        let asked = headers(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(requested(&asked).unwrap(), "websocket");
        assert!(requested(&headers(&[("upgrade", "websocket")])).is_none());
        assert!(requested(&headers(&[("connection", "upgrade")])).is_none());
        assert!(requested(&headers(&[("connection", "close"), ("upgrade", "h2c")])).is_none());
    }
}
