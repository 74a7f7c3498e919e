//! `exerciser`: a `wasi:cli/run` command whose arguments are a script of steps.
//!
//! wasmkube's tests and demos start it with argv[0] = the container name and
//! the steps after it, so one component can print, exit, sleep, share files,
//! use memory and CPU, flood its logs and probe the network on demand.

mod steps;

use std::iter::Peekable;
use std::str::FromStr;
use std::time::Duration;

const USAGE: &str = "\
usage: exerciser STEP...   (steps run in order)
  print TEXT | eprint TEXT          a line on stdout | stderr
  exit N                            exit with code N now
  sleep MS                          sleep MS milliseconds
  write PATH TEXT | append PATH TEXT   write | append TEXT and a newline
  read PATH                         print the file (exit 1 on error)
  alloc MIB                         allocate, touch and keep MIB MiB
  spin [MS]                         busy loop forever | for MS ms
  work N                            N million loop iterations, then report
  flood BYTES                       write BYTES bytes of lines to stdout
  flood-stdout MS LINE              lines of LINE bytes (1: bare newlines) for MS ms (0: forever)
  allocate-forever                  allocate and touch 1 MiB after 1 MiB until stopped
  open-files-forever PATH           open PATH again and again, keeping every handle
  write-file-forever PATH           append 64 KiB after 64 KiB to PATH until it fails
  env NAME | args                   print an environment variable | argv
  append-every MS PATH TEXT         forever append and print `TEXT <n>`
  follow PATH                       forever print lines appended to PATH
  listen PORT | connect HOST:PORT   try the network, print ok or denied
  serve-tcp PORT TEXT               forever: take a connection on 127.0.0.1:PORT, read it to
                                    its end, answer `TEXT (to LOCAL from PEER)`, close
";

fn main() {
    let mut args = std::env::args().peekable();
    args.next(); // argv[0]: the container name
    let mut script = Script { args };
    if script.args.peek().is_none() {
        print!("{USAGE}");
        return;
    }
    while let Some(step) = script.args.next() {
        run_step(&step, &mut script);
    }
}

/// Runs one step, taking its arguments from the script.
fn run_step(step: &str, script: &mut Script) {
    match step {
        "print" => println!("{}", script.text(step, "TEXT")),
        "eprint" => eprintln!("{}", script.text(step, "TEXT")),
        "exit" => steps::exit(script.number(step, "N")),
        "sleep" => std::thread::sleep(Duration::from_millis(script.number(step, "MS"))),
        "write" => steps::write(&script.text(step, "PATH"), &script.text(step, "TEXT")),
        "append" => steps::append(&script.text(step, "PATH"), &script.text(step, "TEXT")),
        "read" => steps::read(&script.text(step, "PATH")),
        "alloc" => steps::alloc(script.number(step, "MIB")),
        "spin" => match script.optional_number() {
            Some(ms) => steps::spin_for(Duration::from_millis(ms)),
            None => steps::spin_forever(),
        },
        "work" => steps::work(script.number(step, "N")),
        "flood" => steps::flood(script.number(step, "BYTES")),
        "flood-stdout" => {
            let duration = Duration::from_millis(script.number(step, "MS"));
            steps::flood_stdout(duration, script.number(step, "LINE"))
        }
        "allocate-forever" => steps::allocate_forever(),
        "open-files-forever" => steps::open_files_forever(&script.text(step, "PATH")),
        "write-file-forever" => steps::write_file_forever(&script.text(step, "PATH")),
        "env" => steps::env(&script.text(step, "NAME")),
        "args" => steps::args(),
        "append-every" => {
            let every = Duration::from_millis(script.number(step, "MS"));
            steps::append_every(
                every,
                &script.text(step, "PATH"),
                &script.text(step, "TEXT"),
            )
        }
        "follow" => steps::follow(&script.text(step, "PATH")),
        "listen" => steps::listen(script.number(step, "PORT")),
        "connect" => steps::connect(&script.text(step, "HOST:PORT")),
        "serve-tcp" => steps::serve_tcp(script.number(step, "PORT"), &script.text(step, "TEXT")),
        other => usage_error(&format!("unknown step {other}")),
    }
}

/// The steps not yet run; each step takes its arguments from the front.
struct Script {
    args: Peekable<std::env::Args>,
}

impl Script {
    fn text(&mut self, step: &str, what: &str) -> String {
        self.args
            .next()
            .unwrap_or_else(|| usage_error(&format!("{step}: missing {what}")))
    }

    fn number<T: FromStr>(&mut self, step: &str, what: &str) -> T {
        let text = self.text(step, what);
        text.parse()
            .unwrap_or_else(|_| usage_error(&format!("{step}: {what} is not a number: {text}")))
    }

    /// Takes the next argument only if it is a number (for `spin [MS]`).
    fn optional_number(&mut self) -> Option<u64> {
        let number = self.args.peek()?.parse().ok()?;
        self.args.next();
        Some(number)
    }
}

/// A malformed script: say why on stderr and exit 2.
fn usage_error(message: &str) -> ! {
    eprintln!("exerciser: {message}");
    steps::exit(2)
}
