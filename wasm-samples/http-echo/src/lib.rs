//! `http-echo`: a `wasi:http/incoming-handler` component; the node serves it on its container
//! ports and makes an instance per request.
//!
//! - any path: `pod=<POD_NAME> version=<VERSION> path=<path>`, one line;
//! - `/healthz`: `ok` (200) while the pod is ready, `not ready` (503) once `/unready` was asked;
//!   `/ready` turns it back. The flag is a file under `STATE_DIR` (default `/state`, an
//!   `emptyDir` the pod mounts), so every instance — one per request — sees it;
//! - `/status/CODE`: an empty answer with that status (a probe that always fails);
//! - `/bytes/N`: N bytes of `x` (a body to measure throughput with);
//! - `/delay/MS`: `delayed` after MS milliseconds (at most a minute): a request in flight.

use std::io::Write as _;

use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

wasip2::http::proxy::export!(Echo);

struct Echo;

/// Largest `/bytes/N` body.
const MAX_BYTES: usize = 64 << 20;
/// Longest `/delay/MS`.
const MAX_DELAY_MS: u64 = 60_000;
/// What the node's output stream takes per write.
const CHUNK: usize = 4096;

impl wasip2::exports::http::incoming_handler::Guest for Echo {
    fn handle(request: IncomingRequest, response: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_else(|| "/".into());
        let (status, body) = answer(&path);
        respond(response, status, &body);
    }
}

/// The status and body for `path`.
fn answer(path: &str) -> (u16, Vec<u8>) {
    let flag = || format!("{}/unready", env("STATE_DIR", "/state"));
    match path {
        "/healthz" if std::fs::metadata(flag()).is_ok() => (503, b"not ready\n".to_vec()),
        "/healthz" => (200, b"ok\n".to_vec()),
        "/unready" => match std::fs::write(flag(), b"") {
            Ok(()) => (200, b"readiness off\n".to_vec()),
            Err(e) => (500, format!("cannot write {}: {e}\n", flag()).into_bytes()),
        },
        "/ready" => {
            let _ = std::fs::remove_file(flag());
            (200, b"readiness on\n".to_vec())
        }
        _ => {
            if let Some(code) = path.strip_prefix("/status/").and_then(|c| c.parse().ok()) {
                return (code, Vec::new());
            }
            if let Some(ms) = path.strip_prefix("/delay/").and_then(|ms| ms.parse::<u64>().ok()) {
                let nanos = ms.min(MAX_DELAY_MS) * 1_000_000;
                wasip2::clocks::monotonic_clock::subscribe_duration(nanos).block();
                return (200, b"delayed\n".to_vec());
            }
            if let Some(n) = path.strip_prefix("/bytes/").and_then(|n| n.parse::<usize>().ok()) {
                return (200, vec![b'x'; n.min(MAX_BYTES)]);
            }
            let line = format!(
                "pod={} version={} path={path}\n",
                env("POD_NAME", "unknown"),
                env("VERSION", "unset")
            );
            (200, line.into_bytes())
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn respond(outparam: ResponseOutparam, status: u16, body: &[u8]) {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[b"text/plain".to_vec()]);
    let _ = headers.set("content-length", &[body.len().to_string().into_bytes()]);
    let response = OutgoingResponse::new(headers);
    let _ = response.set_status_code(status);
    let Ok(outgoing) = response.body() else { return };
    ResponseOutparam::set(outparam, Ok(response));
    let Ok(mut stream) = outgoing.write() else { return };
    for chunk in body.chunks(CHUNK) {
        if stream.write_all(chunk).is_err() {
            return;
        }
    }
    let _ = stream.flush();
    drop(stream);
    let _ = OutgoingBody::finish(outgoing, None);
}
