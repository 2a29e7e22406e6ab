//! E-mail out against a real SMTP server on the loopback: Python's aiosmtpd, storing what it
//! receives in a maildir. Skipped (with a message) where aiosmtpd is not installed, except
//! under CI=true, where a skipped real-server test is a failure.

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use guichet_channels::{Mailer, OutgoingEmail, SmtpMailer};

struct Server {
    child: Child,
    port: u16,
    maildir: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

fn aiosmtpd() -> Option<Server> {
    let available =
        Command::new("python3").args(["-c", "import aiosmtpd"]).status().is_ok_and(|s| s.success());
    if !available {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but Python's aiosmtpd is not installed (pip install aiosmtpd)");
        }
        eprintln!("SKIPPED smtp: Python's aiosmtpd is not installed (pip install aiosmtpd)");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let maildir = std::env::temp_dir().join(format!("guichet-smtp-{}-{port}", std::process::id()));
    let child = Command::new("python3")
        .args([
            "-m",
            "aiosmtpd",
            "-n",
            "-l",
            &format!("127.0.0.1:{port}"),
            "-c",
            "aiosmtpd.handlers.Mailbox",
        ])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(Server { child, port, maildir })
}

fn received(maildir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else { return Vec::new() };
    entries.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
}

#[tokio::test]
async fn an_email_reaches_a_real_smtp_server_with_our_headers() {
    let Some(server) = aiosmtpd() else { return };
    let mailer = SmtpMailer::from_url(&format!("smtp://127.0.0.1:{}", server.port)).unwrap();
    let email = OutgoingEmail {
        reply_to: None,
        references: Vec::new(),
        automatic: true,
        from: "Mairie de Bellecombe <ne-pas-repondre@bellecombe.test>".into(),
        to: "camille@exemple.test".into(),
        subject: "Accusé de réception électronique de votre demande EC-2026-000001".into(),
        text: "Bonjour,\nnous avons bien reçu votre demande.".into(),
        html: "<p>Bonjour,</p>".into(),
        message_id: "01abc@guichet.test".into(),
    };
    mailer.send(&email).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let messages = loop {
        let m = received(&server.maildir);
        if !m.is_empty() || Instant::now() > deadline {
            break m;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert!(m.contains("Message-ID: <01abc@guichet.test>"), "{m}");
    assert!(m.contains("Auto-Submitted: auto-generated"));
    assert!(m.contains("To: camille@exemple.test"));
    // The French subject is MIME-encoded, not mangled.
    assert!(m.contains("Subject: =?utf-8?"), "{m}");
}
