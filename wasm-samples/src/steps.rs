//! The steps themselves; each either finishes, loops forever or exits.

use std::fs::{self, File, OpenOptions};
use std::hint::black_box;
use std::io::{self, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::thread::sleep;
use std::time::{Duration, Instant};

/// How often `follow` looks for new lines.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

// std exits through `wasi:cli/exit.exit(result)`, which carries only success
// or failure; `exit-with-code` (stable since wasi:cli 0.2.12) carries the code.
wit_bindgen::generate!({
    inline: "
        package wasi:cli@0.2.12;

        interface exit {
            exit: func(status: result);
            exit-with-code: func(status-code: u8);
        }

        world exerciser {
            import exit;
        }
    ",
});

/// Exits with `code` clamped to 0..=255, the host seeing exactly that code.
pub fn exit(code: i32) -> ! {
    // Exiting runs no destructors; flush so no output is lost.
    let _ = io::stdout().flush();
    wasi::cli::exit::exit_with_code(code.clamp(0, 255) as u8);
    unreachable!("wasi:cli/exit.exit-with-code returned")
}

pub fn write(path: &str, text: &str) {
    fs::write(path, format!("{text}\n")).unwrap_or_else(|e| fail(&format!("write {path}"), e));
}

pub fn append(path: &str, text: &str) {
    append_line(path, text).unwrap_or_else(|e| fail(&format!("append {path}"), e));
}

pub fn read(path: &str) {
    let contents = fs::read(path).unwrap_or_else(|e| fail(&format!("read {path}"), e));
    print_bytes(&contents);
}

pub fn alloc(mib: usize) {
    let mut block = vec![0u8; mib << 20];
    // Touch every page so the memory is really used, not just reserved.
    for page in block.chunks_mut(4096) {
        page[0] = 1;
    }
    black_box(block.leak());
    println!("allocated {mib} MiB");
}

pub fn spin_forever() -> ! {
    let mut counter = 0u64;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

pub fn spin_for(duration: Duration) {
    let end = Instant::now() + duration;
    while Instant::now() < end {
        for _ in 0..1000 {
            std::hint::spin_loop();
        }
    }
}

/// A deterministic CPU-bound loop (xorshift), `millions` million rounds.
pub fn work(millions: u64) {
    let start = Instant::now();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in 0..millions * 1_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x = x.wrapping_add(i);
    }
    black_box(x);
    println!("work done in {} ms", start.elapsed().as_millis());
}

/// Writes exactly `bytes` bytes of newline-terminated lines to stdout.
pub fn flood(bytes: u64) {
    let line = [b"flood".as_slice(), &[b'.'; 58], b"\n"].concat();
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut remaining = bytes;
    while remaining > 0 {
        let n = remaining.min(line.len() as u64) as usize;
        out.write_all(&line[line.len() - n..])
            .unwrap_or_else(|e| fail("flood", e));
        remaining -= n as u64;
    }
    out.flush().unwrap_or_else(|e| fail("flood", e));
}

/// Writes lines of `line_bytes` bytes (the last one a newline) to stdout as fast as it can,
/// for `duration`, or forever when it is zero.
pub fn flood_stdout(duration: Duration, line_bytes: usize) {
    let mut line = vec![b'.'; line_bytes.max(1)];
    *line.last_mut().expect("at least one byte") = b'\n';
    let chunk = line.repeat((64 * 1024 / line.len()).max(1));
    let end = (!duration.is_zero()).then(|| Instant::now() + duration);
    let mut out = io::stdout().lock();
    while end.is_none_or(|end| Instant::now() < end) {
        out.write_all(&chunk).unwrap_or_else(|e| fail("flood-stdout", e));
    }
    out.flush().unwrap_or_else(|e| fail("flood-stdout", e));
}

/// Allocates and touches memory a MiB at a time, never freeing it, reporting every 16 MiB;
/// ends only when the allocation fails (the host's limit).
pub fn allocate_forever() -> ! {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        let mut block = vec![0u8; 1 << 20];
        for page in block.chunks_mut(4096) {
            page[0] = 1;
        }
        held.push(black_box(block));
        if held.len() % 16 == 0 {
            println!("holding {} MiB", held.len());
        }
    }
}

/// Opens `path` (creating it) again and again and keeps every handle, reporting every 100;
/// ends when an open fails.
pub fn open_files_forever(path: &str) -> ! {
    let mut held = Vec::new();
    loop {
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => held.push(file),
            Err(e) => fail(&format!("open-files-forever {path} after {}", held.len()), e),
        }
        if held.len() % 100 == 0 {
            println!("holding {} open files", held.len());
        }
    }
}

/// Appends 64 KiB after 64 KiB to `path` until a write fails, reporting every MiB.
pub fn write_file_forever(path: &str) -> ! {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| fail(&format!("write-file-forever {path}"), e));
    let chunk = vec![b'x'; 64 * 1024];
    for written in 1u64.. {
        file.write_all(&chunk)
            .and_then(|()| file.flush())
            .unwrap_or_else(|e| fail(&format!("write-file-forever {path} after {} KiB", (written - 1) * 64), e));
        if written % 16 == 0 {
            println!("wrote {} MiB", written / 16);
        }
    }
    unreachable!("the counter never runs out")
}

pub fn env(name: &str) {
    match std::env::var(name) {
        Ok(value) => println!("{name}={value}"),
        Err(_) => println!("{name} unset"),
    }
}

pub fn args() {
    for (i, arg) in std::env::args().enumerate() {
        println!("argv[{i}]={arg}");
    }
}

pub fn append_every(every: Duration, path: &str, text: &str) -> ! {
    for counter in 1u64.. {
        let line = format!("{text} {counter}");
        append_line(path, &line).unwrap_or_else(|e| fail(&format!("append-every {path}"), e));
        println!("{line}");
        sleep(every);
    }
    unreachable!("the counter never runs out")
}

/// Prints whole lines appended to `path`, waiting for it to exist and
/// starting over if it is truncated.
pub fn follow(path: &str) -> ! {
    let mut offset = 0u64;
    let mut pending = Vec::new();
    loop {
        match File::open(path) {
            Ok(mut file) => {
                read_new(&mut file, &mut offset, &mut pending)
                    .unwrap_or_else(|e| fail(&format!("follow {path}"), e));
                if let Some(end) = pending.iter().rposition(|&b| b == b'\n') {
                    print_bytes(&pending[..=end]);
                    pending.drain(..=end);
                }
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => fail(&format!("follow {path}"), e),
        }
        sleep(FOLLOW_POLL);
    }
}

pub fn listen(port: u16) {
    match TcpListener::bind(("127.0.0.1", port)) {
        Ok(_) => println!("listen ok"),
        Err(e) => println!("listen denied: {e}"),
    }
}

pub fn connect(address: &str) {
    match TcpStream::connect(address) {
        Ok(_) => println!("connect ok"),
        Err(e) => println!("connect denied: {e}"),
    }
}

/// Serves TCP on `127.0.0.1:port` (the pod's port) one connection after another: reads what
/// the peer sends until it closes its side, then answers who answered whom.
pub fn serve_tcp(port: u16, text: &str) -> ! {
    let listener = TcpListener::bind(("127.0.0.1", port))
        .unwrap_or_else(|e| fail(&format!("serve-tcp {port}"), e));
    println!("serving on {}", listener.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()));
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("exerciser: accept: {e}");
                continue;
            }
        };
        let mut request = Vec::new();
        let _ = stream.read_to_end(&mut request);
        let local = stream.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string());
        let _ = writeln!(stream, "{text} (to {local} from {peer})");
    }
}

fn read_new(file: &mut File, offset: &mut u64, pending: &mut Vec<u8>) -> io::Result<()> {
    if file.metadata()?.len() < *offset {
        *offset = 0;
        pending.clear();
    }
    file.seek(SeekFrom::Start(*offset))?;
    *offset += file.read_to_end(pending)? as u64;
    Ok(())
}

fn append_line(path: &str, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().create(true).append(true).open(path)?;
    file.write_all(format!("{text}\n").as_bytes())
}

fn print_bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .unwrap_or_else(|e| fail("stdout", e));
}

/// An I/O step failed: say which on stderr and exit 1.
fn fail(what: &str, error: io::Error) -> ! {
    eprintln!("exerciser: {what}: {error}");
    exit(1)
}
