//! `client`: a `wasi:cli/run` command that calls a URL or `host:port` and prints the answer.
//!
//! ```text
//! client [--count N] [--every MS] [--quiet] TARGET [MESSAGE]
//! ```
//! - `http://host:port/path`: a GET through `wasi:http` (the node routes it in the pod network);
//!   prints the status and the body;
//! - `host:port`: a TCP connection; sends MESSAGE (if given) and a newline, closes its side,
//!   prints what comes back until the other side closes.
//!
//! `--count N` calls N times (0: forever), `--every MS` waits between calls, `--quiet` prints
//! only a summary: `N calls in T ms: R calls/s, F failed`. Exits 1 when the last call failed.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use wasip2::http::outgoing_handler;
use wasip2::http::types::{Fields, OutgoingRequest, Scheme};

struct Options {
    count: u64,
    every: Duration,
    quiet: bool,
    target: String,
    message: Option<String>,
}

fn main() {
    let options = parse(std::env::args().skip(1)).unwrap_or_else(|usage| {
        eprintln!("client: {usage}\nusage: client [--count N] [--every MS] [--quiet] TARGET [MESSAGE]");
        std::process::exit(2)
    });
    let started = Instant::now();
    let (mut calls, mut failed, mut last_ok) = (0u64, 0u64, true);
    while options.count == 0 || calls < options.count {
        let answer = call(&options.target, options.message.as_deref());
        calls += 1;
        last_ok = answer.is_ok();
        match answer {
            Ok(text) if !options.quiet => print!("{text}"),
            Ok(_) => {}
            Err(error) => {
                failed += 1;
                if !options.quiet {
                    println!("error: {error}");
                }
            }
        }
        let _ = std::io::stdout().flush();
        if !options.every.is_zero() {
            std::thread::sleep(options.every);
        }
    }
    if options.quiet {
        let elapsed = started.elapsed();
        let rate = calls as f64 / elapsed.as_secs_f64().max(1e-9);
        println!(
            "{calls} calls in {} ms: {rate:.0} calls/s, {failed} failed",
            elapsed.as_millis()
        );
    }
    if !last_ok {
        std::process::exit(1);
    }
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        count: 1,
        every: Duration::ZERO,
        quiet: false,
        target: String::new(),
        message: None,
    };
    let number = |text: Option<String>, flag: &str| {
        text.and_then(|t| t.parse::<u64>().ok())
            .ok_or(format!("{flag} needs a number"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--count" => options.count = number(args.next(), "--count")?,
            "--every" => options.every = Duration::from_millis(number(args.next(), "--every")?),
            "--quiet" => options.quiet = true,
            _ if options.target.is_empty() => options.target = arg,
            _ if options.message.is_none() => options.message = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if options.target.is_empty() {
        return Err("missing TARGET".into());
    }
    Ok(options)
}

fn call(target: &str, message: Option<&str>) -> Result<String, String> {
    match target.strip_prefix("http://") {
        Some(rest) => http_get(rest),
        None => tcp_call(target, message),
    }
}

/// A GET of `http://{rest}` through `wasi:http/outgoing-handler`.
fn http_get(rest: &str) -> Result<String, String> {
    let (authority, path) = match rest.find('/') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, "/"),
    };
    let request = OutgoingRequest::new(Fields::new());
    request
        .set_scheme(Some(&Scheme::Http))
        .and_then(|()| request.set_authority(Some(authority)))
        .and_then(|()| request.set_path_with_query(Some(path)))
        .map_err(|()| format!("invalid URL http://{rest}"))?;
    let pending = outgoing_handler::handle(request, None).map_err(|e| format!("{e:?}"))?;
    pending.subscribe().block();
    let response = pending
        .get()
        .ok_or("no response")?
        .map_err(|()| "response taken twice".to_string())?
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status();
    let body = response.consume().map_err(|()| "no body")?;
    let mut bytes = Vec::new();
    let mut stream = body.stream().map_err(|()| "no body stream")?;
    stream.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    drop(stream);
    let text = String::from_utf8_lossy(&bytes);
    if (200..400).contains(&status) {
        Ok(format!("{status} {text}"))
    } else {
        Err(format!("{status} {text}"))
    }
}

/// Connects to `address`, sends `message` (and a newline), closes its side and reads the answer.
fn tcp_call(address: &str, message: Option<&str>) -> Result<String, String> {
    let mut stream = TcpStream::connect(address).map_err(|e| format!("connect {address}: {e}"))?;
    if let Some(message) = message {
        writeln!(stream, "{message}").map_err(|e| e.to_string())?;
    }
    stream
        .shutdown(Shutdown::Write)
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read {address}: {e}"))?;
    Ok(answer)
}
