//! The web part of `up --demo`: three replicas of the HTTP echo component behind a
//! LoadBalancer Service, asked a few times through the address the built-in proxy took, so
//! each replica is seen answering.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context as _, bail};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::time::Instant;

use super::{Session, apply, demo, files, print};
use crate::api::kinds::{DEPLOYMENTS, SERVICES};
use crate::client::Client;

/// How many requests the demo sends to show the balancing.
const REQUESTS: usize = 6;

/// Applies the web manifest, waits for three ready replicas and the Service's address, and
/// prints the answers of a few requests to it.
///
/// # Errors
/// When the manifest cannot be applied, the replicas or the address do not come within
/// `timeout`, or a request fails.
pub async fn show(
    session: &Session,
    client: &Client,
    demo_dir: &Path,
    timeout: Duration,
) -> anyhow::Result<()> {
    let manifests = files::read_file(&demo_dir.join(demo::WEB_MANIFEST))?;
    apply::apply_manifests(session, manifests, &Default::default()).await?;
    let url = wait_for_address(client, timeout).await?;
    let http = HttpClient::builder(TokioExecutor::new()).build_http::<Empty<bytes::Bytes>>();
    print(&format!("\n$ curl {url}   # {REQUESTS} times\n"))?;
    for _ in 0..REQUESTS {
        let response = http
            .get(url.parse().context("the Service's URL")?)
            .await
            .with_context(|| format!("GET {url}"))?;
        let body = response.into_body().collect().await?.to_bytes();
        print(&String::from_utf8_lossy(&body))?;
    }
    print(&format!(
        "\nThe web Deployment is served at {url} (Service web, type LoadBalancer).\n"
    ))
}

/// The Service's URL once its address is published and all the Deployment's replicas are
/// ready.
async fn wait_for_address(client: &Client, timeout: Duration) -> anyhow::Result<String> {
    let started = Instant::now();
    loop {
        let deployment = client
            .get(&DEPLOYMENTS.path(Some("default"), Some("web")))
            .await?;
        let service = client
            .get(&SERVICES.path(Some("default"), Some("web")))
            .await?;
        let wanted = deployment["spec"]["replicas"].as_i64().unwrap_or(1);
        let ready = deployment["status"]["readyReplicas"].as_i64().unwrap_or(0);
        if let Some(url) = url_of(&service)
            && ready == wanted
        {
            eprintln!(
                "deployment/web is {ready}/{wanted} ready and service/web at {url} after {:.1}s",
                started.elapsed().as_secs_f64()
            );
            return Ok(url);
        }
        if started.elapsed() > timeout {
            bail!(
                "timed out after {}s waiting for deployment/web ({ready}/{wanted} ready) and the address of service/web",
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `http://<ingress ip>:<first port>/` of a LoadBalancer Service whose address is published.
fn url_of(service: &Value) -> Option<String> {
    let ip = service["status"]["loadBalancer"]["ingress"][0]["ip"].as_str()?;
    let port = service["spec"]["ports"][0]["port"].as_u64()?;
    Some(format!("http://{ip}:{port}/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_url_is_the_published_address_and_the_first_port() {
        let mut service = json!({"spec": {"ports": [{"port": 8080}, {"port": 9090}]}});
        assert_eq!(url_of(&service), None, "no address published yet");
        service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "127.0.100.1"}]}});
        assert_eq!(
            url_of(&service).as_deref(),
            Some("http://127.0.100.1:8080/")
        );
    }
}
