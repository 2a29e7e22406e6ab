//! The binary as an operator meets it: `guichet demo` on each backend, errors at start-up,
//! graceful shutdown.

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use guichet_testkit::TestDb;
use scraper::{Html, Selector};

use crate::http::{command, get, read_response, sigterm, start, temp_dir, wait_exit};

/// Checks the Prometheus text exposition format line by line: `# HELP`/`# TYPE` comments, and
/// samples `name{label="value",…} number` whose names were declared by a `# TYPE`.
fn assert_valid_prometheus(text: &str) {
    let mut typed = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split(' ');
            let name = parts.next().unwrap();
            let kind = parts.next().unwrap();
            assert!(
                ["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind),
                "{line}"
            );
            typed.insert(name.to_owned());
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        assert!(!line.starts_with('#') && !line.trim().is_empty(), "unexpected line {line:?}");
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "bad value in {line}");
        let name = series.split('{').next().unwrap();
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "bad name {name}");
        let base =
            ["_bucket", "_sum", "_count"].iter().fold(name, |n, s| n.strip_suffix(s).unwrap_or(n));
        assert!(typed.contains(name) || typed.contains(base), "undeclared metric {name}");
        if let Some(labels) = series.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "labels in {line}");
            for pair in labels[1..labels.len() - 1].split("\",") {
                let (k, v) =
                    pair.split_once("=\"").unwrap_or_else(|| panic!("label {pair} in {line}"));
                assert!(k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'), "{line}");
                assert!(!v.trim_end_matches('"').contains('"') || v.contains("\\\""), "{line}");
            }
        }
    }
}

fn count_communes(html: &str) -> usize {
    let doc = Html::parse_document(html);
    let sel = Selector::parse("ul.communes li a").unwrap();
    doc.select(&sel).count()
}

fn demo_story(extra_env: &[(&str, &str)], backend: &str) {
    let dir = temp_dir("demo");
    let server = start("demo", &dir, extra_env);
    let banner = server.stdout.join("\n");
    assert!(banner.contains(&format!("http://{}/", server.addr)), "URL printed: {banner}");
    for login in [
        "camille.martin@exemple.test",
        "agent@saint-aubin-sur-lys.test",
        "agent@cc-val-de-lys.test",
        "admin@saint-aubin-sur-lys.test",
    ] {
        assert!(banner.contains(login), "{login} missing from banner: {banner}");
    }
    assert!(banner.contains("mot de passe"), "{banner}");

    let home = get(server.addr, "/");
    assert_eq!(home.status, 200);
    assert_eq!(count_communes(&home.body), 32, "{backend}");
    let health = get(server.addr, "/healthz");
    assert_eq!(health.status, 200);
    assert!(health.body.contains(&format!("\"database\":\"{backend}\"")), "{}", health.body);
    let metrics = get(server.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(
        metrics
            .body
            .contains("guichet_http_requests_total{method=\"GET\",route=\"/\",status=\"200\"} 1"),
        "{}",
        metrics.body
    );
    assert!(metrics.body.contains("guichet_jobs{state=\"pending\"}"));
    assert_valid_prometheus(&metrics.body);
    drop(server);

    // Running the demo again keeps the data: still 32 communes, no duplicate.
    let server = start("demo", &dir, extra_env);
    assert_eq!(count_communes(&get(server.addr, "/").body), 32, "{backend} after restart");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_demo_serves_32_communes_health_and_metrics_on_sqlite() {
    demo_story(&[], "sqlite");
}

#[tokio::test]
async fn the_same_binary_serves_the_demo_from_postgresql() {
    let Some(db) = TestDb::postgres().await else { return };
    let url = db.url.clone();
    tokio::task::spawn_blocking(move || demo_story(&[("DATABASE_URL", &url)], "postgres"))
        .await
        .unwrap();
    db.finish().await;
}

/// Runs the binary expecting a start-up failure; returns its stderr.
fn expect_failure(args: &[&str], env: &[(&str, &str)]) -> String {
    let dir = temp_dir("fail");
    let dir_s = dir.to_str().unwrap().to_owned();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--data-dir", &dir_s, "--listen", "127.0.0.1:0"]);
    let out = command(&all).envs(env.iter().copied()).output().expect("run guichet");
    let _ = std::fs::remove_dir_all(dir);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "exit code; stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "no panic trace: {stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("guichet: error:")).collect();
    assert_eq!(errors.len(), 1, "one error line: {stderr}");
    errors[0].to_owned()
}

#[test]
fn an_unsupported_database_url_is_named_in_one_line() {
    let line = expect_failure(&["serve"], &[("DATABASE_URL", "mysql://root@127.0.0.1/guichet")]);
    assert!(line.contains("unsupported DATABASE_URL scheme \"mysql\""), "{line}");
}

#[test]
fn an_unreachable_database_is_named_in_one_line_without_its_password() {
    let dir = temp_dir("cfg");
    let file = dir.join("guichet.toml");
    std::fs::write(&file, "[database]\nconnect_timeout_secs = 2\n").unwrap();
    let line = expect_failure(
        &["serve", "--config", file.to_str().unwrap()],
        // Port 1 on loopback: nothing listens there.
        &[("DATABASE_URL", "postgres://guichet:s3cr3t@127.0.0.1:1/guichet")],
    );
    assert!(
        line.contains("cannot connect to PostgreSQL at postgres://guichet:***@127.0.0.1:1/guichet"),
        "{line}"
    );
    assert!(!line.contains("s3cr3t"), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_malformed_config_file_is_named_with_its_position() {
    let dir = temp_dir("cfg");
    let file = dir.join("guichet.toml");
    std::fs::write(&file, "[http]\nlisten = \"127.0.0.1:8080\"\nplatform_name = \n").unwrap();
    let line = expect_failure(&["serve", "--config", file.to_str().unwrap()], &[]);
    assert!(line.contains("invalid config file") && line.contains("line 3"), "{line}");
    let line = expect_failure(&["serve", "--config", "/nonexistent/guichet.toml"], &[]);
    assert!(line.contains("cannot read config file /nonexistent/guichet.toml"), "{line}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn sigterm_lets_requests_in_flight_complete_and_exits_zero() {
    let dir = temp_dir("term");
    let mut server = start("demo", &dir, &[]);
    // A request whose body is still arriving when the signal comes.
    let mut slow = TcpStream::connect(server.addr).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let body = r#"{"csp-report":{"blocked-uri":"inline"}}"#;
    write!(
        slow,
        "POST /csp-report HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/csp-report\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    sigterm(&server.child);
    std::thread::sleep(Duration::from_millis(500));
    // Still running: it waits for the request in progress.
    assert!(server.child.try_wait().unwrap().is_none(), "exited before the request completed");
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let response = read_response(&mut slow);
    assert_eq!(response.status, 204);
    let status =
        wait_exit(&mut server.child, Duration::from_secs(30)).expect("exits after SIGTERM");
    assert_eq!(status.code(), Some(0));
    let _ = std::fs::remove_dir_all(dir);
}
