//! A minimal HTTP/1.1 client over raw TCP, and a handle on a running `guichet` process.
//! Raw TCP on purpose: the shutdown test needs to send half a request and pause.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Reads a whole `Connection: close` response.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Response { status, headers, body: body.to_owned() }
}

/// `GET path` with an optional Host header.
pub fn get_with_host(addr: SocketAddr, path: &str, host: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
        .expect("write");
    read_response(&mut stream)
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    get_with_host(addr, path, "127.0.0.1")
}

/// A running `guichet` process, killed on drop.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub stdout: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `guichet` command with a clean environment (no GUICHET_* or DATABASE_URL from outside).
pub fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_guichet"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("GUICHET_") || k == "DATABASE_URL" {
            cmd.env_remove(k);
        }
    }
    cmd.env("GUICHET_LOG_LEVEL", "info,sqlx=warn");
    cmd
}

/// Starts `guichet <sub> --listen 127.0.0.1:0 --data-dir <dir>` and waits for it to serve.
pub fn start(sub: &str, data_dir: &Path, env: &[(&str, &str)]) -> Server {
    let dir = data_dir.to_str().expect("utf-8 path");
    let mut cmd = command(&[sub, "--listen", "127.0.0.1:0", "--data-dir", dir]);
    cmd.envs(env.iter().copied()).env("GUICHET_LOG_FORMAT", "json");
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn guichet");
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    // The listening address is in the JSON log line "serving" (stderr); the demo banner on
    // stdout is kept for the tests that read it.
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("\"serving\"") {
                let _ = tx2.send(("addr".to_owned(), line));
            }
        }
    });
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(("out".to_owned(), line));
        }
    });
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let addr = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok((kind, line)) if kind == "addr" => {
                let start = line.find("http://").expect("url in serving line") + 7;
                let rest = &line[start..];
                let end = rest.find('/').expect("url end");
                break rest[..end].parse::<SocketAddr>().expect("socket address");
            }
            Ok((_, line)) => lines.push(line),
            Err(_) => {
                let _ = child.kill();
                let status = child.wait();
                panic!("guichet {sub} did not start ({status:?}); stdout: {lines:?}");
            }
        }
    };
    // The banner is printed right after the serving line; collect what has arrived.
    std::thread::sleep(Duration::from_millis(200));
    while let Ok((kind, line)) = rx.try_recv() {
        if kind == "out" {
            lines.push(line);
        }
    }
    Server { child, addr, stdout: lines }
}

/// Sends SIGTERM to a child.
pub fn sigterm(child: &Child) {
    let status =
        Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
}

/// Waits for a child to exit, up to `limit`.
pub fn wait_exit(child: &mut Child, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir =
        std::env::temp_dir().join(format!("guichet-it-{name}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}
