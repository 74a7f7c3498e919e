//! Debian's nginx as a reverse proxy for comparison: a child process with a generated
//! configuration in a temporary directory, keep-alive upstream connections, no access log,
//! stopped (by its pid) when dropped.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NGINX: &str = "/usr/sbin/nginx";

/// An nginx proxying `127.0.0.1:port` to one backend.
pub struct Nginx {
    child: Child,
    pub address: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx with `workers` worker processes in front of `backend`, and waits until it
    /// listens.
    ///
    /// # Panics
    /// When nginx is not installed (saying how to install it) or does not start.
    pub async fn start(workers: usize, backend: SocketAddr) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: apt-get install nginx-light"
        );
        let dir = tempfile::tempdir().unwrap();
        let address = free_address();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(dir.path(), workers, address, backend)).unwrap();
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let nginx = Nginx {
            child,
            address,
            _dir: dir,
        };
        let start = Instant::now();
        while tokio::net::TcpStream::connect(address).await.is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "nginx never listened on {address}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        nginx
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM to the master (its pid, no other) stops its workers too.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

/// A loopback port free now (nginx binds it itself).
fn free_address() -> SocketAddr {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    probe.local_addr().unwrap()
}

fn config(dir: &Path, workers: usize, address: SocketAddr, backend: SocketAddr) -> String {
    let dir = dir.display();
    format!(
        "worker_processes {workers};
daemon off;
pid {dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    # nginx closes a client's keep-alive connection after 1,000 requests by default; the
    # proxy keeps it, and the load keeps one connection each.
    keepalive_requests 1000000;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream backend {{
        server {backend};
        keepalive 64;
        keepalive_requests 1000000;
    }}
    server {{
        listen {address};
        location / {{
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }}
    }}
}}
"
    )
}
