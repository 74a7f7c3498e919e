//! The logs of the agent's pods, for the API server in this process (`PodLogs`) and for the
//! node's endpoint (`NodeLogs`, what the API server in another process reads).

use bytes::Bytes;
use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use tokio::sync::mpsc;

use super::Agent;
use crate::api::kinds::PODS;
use crate::api::logs::{LogOptions, PodLogs};
use crate::api::{ApiError, ApiResult};
use crate::node::logs::LogLine;
use crate::node::network::listener::NodeLogs;

impl PodLogs for Agent {
    fn open<'a>(
        &'a self,
        pod: &'a Value,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, ApiResult<mpsc::Receiver<Bytes>>> {
        let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
        let name = pod["metadata"]["name"].as_str().unwrap_or_default();
        Box::pin(std::future::ready(
            self.open_logs(uid, name, container, options),
        ))
    }
}

impl NodeLogs for Agent {
    fn open<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
        container: &'a str,
        options: &'a LogOptions,
    ) -> BoxFuture<'a, ApiResult<mpsc::Receiver<Bytes>>> {
        let uid = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, handle)| handle.is(namespace, name))
            .map(|(uid, _)| uid.clone());
        let opened = match uid {
            Some(uid) => self.open_logs(&uid, name, container, options),
            None => Err(ApiError::NotFound {
                resource: PODS.plural.into(),
                name: name.into(),
            }),
        };
        Box::pin(std::future::ready(opened))
    }
}

impl Agent {
    /// The log of `container` of the pod with `uid` (named `name`), as `options` ask.
    fn open_logs(
        &self,
        uid: &str,
        name: &str,
        container: &str,
        options: &LogOptions,
    ) -> ApiResult<mpsc::Receiver<Bytes>> {
        let pair = self
            .pods
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(uid)
            .and_then(|h| h.logs(container));
        let waiting = || {
            ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
            ))
        };
        let pair = pair.ok_or_else(waiting)?;
        let log = if options.previous {
            pair.previous.ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ))
            })?
        } else {
            pair.current
        };
        let since = options.since_seconds.and_then(|s| since(Utc::now(), s));
        let (lines, mut cursor) = log.snapshot(options.tail_lines, since);
        let (tx, rx) = mpsc::channel(64);
        let (follow, timestamps) = (options.follow, options.timestamps);
        tokio::spawn(async move {
            if tx.send(render(&lines, timestamps)).await.is_err() || !follow {
                return;
            }
            loop {
                let next = tokio::select! {
                    next = log.next_lines(cursor) => next,
                    _ = tx.closed() => return,
                };
                let Some((lines, next_cursor)) = next else {
                    return;
                };
                cursor = next_cursor;
                if !lines.is_empty() && tx.send(render(&lines, timestamps)).await.is_err() {
                    return;
                }
            }
        });
        Ok(rx)
    }
}

/// The oldest time `sinceSeconds` lets through, `now` minus `seconds`; `None` (no bound) when
/// that lies before any time a clock can show, so a huge value means "everything", never a
/// panic. A negative value counts as zero.
fn since(now: DateTime<Utc>, seconds: i64) -> Option<DateTime<Utc>> {
    let back = chrono::TimeDelta::try_seconds(seconds.max(0))?;
    now.checked_sub_signed(back)
}

fn render(lines: &[LogLine], timestamps: bool) -> Bytes {
    let mut out = String::new();
    for line in lines {
        if timestamps {
            out.push_str(&line.time.to_rfc3339_opts(SecondsFormat::Nanos, true));
            out.push(' ');
        }
        out.push_str(&line.text);
        out.push('\n');
    }
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_seconds_beyond_any_clock_means_every_line_instead_of_a_panic() {
        let now = Utc::now();
        assert_eq!(since(now, i64::MAX), None);
        assert_eq!(since(now, i64::MAX / 1000), None);
        assert_eq!(since(now, 10), Some(now - chrono::TimeDelta::seconds(10)));
        assert_eq!(since(now, -5), Some(now));
    }
}
