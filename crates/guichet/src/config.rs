//! Configuration: built-in defaults, then a TOML file (`--config`), then environment variables,
//! then command-line flags. Every key is documented in the README; secrets are wrapped in
//! `Secret`, whose `Debug` and `Display` never show the value.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// A value that must never be printed or logged.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[secret]\"")
    }
}

/// All settings.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Where the SQLite database and local files live.
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub http: HttpSettings,
    pub log: LogSettings,
    pub jobs: JobSettings,
    pub email: EmailSettings,
    pub channels: ChannelSettings,
}

/// `[channels]`: e-mail in, SMS through Kannel.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelSettings {
    /// Token of the machine endpoints (`/api/v1/inbound/email`, Kannel's get-url and
    /// delivery reports); without it those endpoints answer 404.
    pub inbound_token: Option<Secret>,
    /// Seconds between two fetches of the IMAP mailboxes.
    pub imap_poll_seconds: u64,
    /// Kannel's sendsms URL (`http://127.0.0.1:13013/cgi-bin/sendsms`); without it, SMS are
    /// recorded as failed with the reason.
    pub kannel_sendsms_url: Option<String>,
    /// Kannel `sendsms-user`.
    pub kannel_username: String,
    /// Its password.
    pub kannel_password: Option<Secret>,
    /// Sender number or name shown to citizens, if the operator allows it.
    pub sms_sender: Option<String>,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            inbound_token: None,
            imap_poll_seconds: 60,
            kannel_sendsms_url: None,
            kannel_username: "guichet".to_owned(),
            kannel_password: None,
            sms_sender: None,
        }
    }
}

/// `[email]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailSettings {
    /// `file` (writes .eml files in `<data_dir>/mails`, the default) or `smtp`.
    pub transport: EmailTransport,
    /// The `From` of every message.
    pub from: String,
    /// `smtp://host:25`, `smtp://user:pass@host:587?tls=required` or `smtps://user:pass@host:465`.
    pub smtp_url: Option<Secret>,
}

/// How e-mail leaves.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransport {
    File,
    Smtp,
}

impl Default for EmailSettings {
    fn default() -> Self {
        Self {
            transport: EmailTransport::File,
            from: "Guichet <ne-pas-repondre@guichet.localhost>".to_owned(),
            smtp_url: None,
        }
    }
}

/// `[database]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite:…` or `postgres://…`; defaults to a SQLite file in the data directory.
    /// A secret because PostgreSQL URLs may carry a password.
    pub url: Option<Secret>,
    /// PostgreSQL pool size (SQLite: readers beside its single writer).
    pub max_connections: u32,
    /// SQLite `synchronous=FULL` (durable across power loss) rather than `NORMAL`.
    pub sqlite_synchronous_full: bool,
    /// Seconds to wait for a database connection at start-up and under load.
    pub connect_timeout_secs: u64,
}

/// `[http]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// Public base URL, e.g. `https://demarches.cc-exemple.fr`.
    pub public_url: Option<String>,
    /// Name shown on the platform home page.
    pub platform_name: String,
    /// Extra host names that are the platform itself (besides localhost and the public URL's).
    pub platform_hosts: Vec<String>,
    /// Bearer token required by `/metrics`, if set.
    pub metrics_token: Option<Secret>,
    /// How long public pages (and the tenants and services citizens' pages read) are kept
    /// rendered, in seconds; 0 turns the cache off.
    pub page_cache_seconds: u64,
    /// How long a citizen's session is kept in memory between two of their requests, in
    /// seconds: a logout or password change made on *another* instance shows here within this
    /// delay (this instance's own changes show at once); 0 turns the cache off.
    pub session_cache_seconds: u64,
}

/// `[log]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `pretty` (default) or `json`.
    pub format: LogFormat,
    /// A tracing filter (`info`, `guichet=debug,sqlx=warn`...).
    pub level: String,
}

/// Log output format.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// `[jobs]`
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobSettings {
    /// Whether `serve` also runs the job runner (turn off when dedicated workers run).
    pub in_process: bool,
    /// Milliseconds between polls of an empty queue.
    pub poll_interval_ms: u64,
    /// Jobs run at once by this process (e-mails and SMS are sent while other jobs wait for
    /// the database, so a busy portal's acknowledgements keep pace with its submissions).
    pub concurrency: usize,
    /// Days finished jobs are kept.
    pub retention_days: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("guichet-data"),
            database: DatabaseSettings::default(),
            http: HttpSettings::default(),
            log: LogSettings::default(),
            jobs: JobSettings::default(),
            email: EmailSettings::default(),
            channels: ChannelSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 16,
            sqlite_synchronous_full: true,
            connect_timeout_secs: 10,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_url: None,
            platform_name: "Guichet".to_owned(),
            platform_hosts: Vec::new(),
            metrics_token: None,
            page_cache_seconds: 10,
            session_cache_seconds: 2,
        }
    }
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { format: LogFormat::Pretty, level: "info".to_owned() }
    }
}

impl Default for JobSettings {
    fn default() -> Self {
        Self { in_process: true, poll_interval_ms: 1000, concurrency: 4, retention_days: 7 }
    }
}

/// Which backend a database URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Command-line overrides, applied last.
#[derive(Default)]
pub struct Overrides {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads settings from defaults, `file`, the environment and `overrides`.
    pub fn load(
        file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
        overrides: Overrides,
    ) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                parse_toml(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            None => Settings::default(),
        };
        settings.apply_env(env)?;
        if let Some(listen) = overrides.listen {
            settings.http.listen = listen;
        }
        if let Some(dir) = overrides.data_dir {
            settings.data_dir = dir;
        }
        settings.validate()?;
        Ok(settings)
    }

    fn apply_env(&mut self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        let get = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        if let Some(v) = get("GUICHET_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        // DATABASE_URL is the usual name; GUICHET_DATABASE_URL wins when both are set.
        if let Some(v) = get("GUICHET_DATABASE_URL").or_else(|| get("DATABASE_URL")) {
            self.database.url = Some(Secret(v));
        }
        if let Some(v) = get("GUICHET_DATABASE_MAX_CONNECTIONS") {
            self.database.max_connections =
                v.parse().context("GUICHET_DATABASE_MAX_CONNECTIONS must be a number")?;
        }
        if let Some(v) = get("GUICHET_LISTEN") {
            self.http.listen = v
                .parse()
                .with_context(|| format!("GUICHET_LISTEN {v:?} is not an ADDRESS:PORT"))?;
        }
        if let Some(v) = get("GUICHET_PUBLIC_URL") {
            self.http.public_url = Some(v);
        }
        if let Some(v) = get("GUICHET_PLATFORM_NAME") {
            self.http.platform_name = v;
        }
        if let Some(v) = get("GUICHET_METRICS_TOKEN") {
            self.http.metrics_token = Some(Secret(v));
        }
        if let Some(v) = get("GUICHET_PAGE_CACHE_SECONDS") {
            self.http.page_cache_seconds =
                v.parse().context("GUICHET_PAGE_CACHE_SECONDS must be a number of seconds")?;
        }
        if let Some(v) = get("GUICHET_SESSION_CACHE_SECONDS") {
            self.http.session_cache_seconds =
                v.parse().context("GUICHET_SESSION_CACHE_SECONDS must be a number of seconds")?;
        }
        if let Some(v) = get("GUICHET_LOG_FORMAT") {
            self.log.format = match v.as_str() {
                "json" => LogFormat::Json,
                "pretty" => LogFormat::Pretty,
                other => bail!("GUICHET_LOG_FORMAT {other:?} is neither \"pretty\" nor \"json\""),
            };
        }
        if let Some(v) = get("GUICHET_LOG_LEVEL") {
            self.log.level = v;
        }
        if let Some(v) = get("GUICHET_EMAIL_TRANSPORT") {
            self.email.transport = match v.as_str() {
                "file" => EmailTransport::File,
                "smtp" => EmailTransport::Smtp,
                other => {
                    bail!("GUICHET_EMAIL_TRANSPORT {other:?} is neither \"file\" nor \"smtp\"")
                }
            };
        }
        if let Some(v) = get("GUICHET_EMAIL_FROM") {
            self.email.from = v;
        }
        if let Some(v) = get("GUICHET_SMTP_URL") {
            self.email.smtp_url = Some(Secret(v));
        }
        if let Some(v) = get("GUICHET_INBOUND_TOKEN") {
            self.channels.inbound_token = Some(Secret(v));
        }
        if let Some(v) = get("GUICHET_IMAP_POLL_SECONDS") {
            self.channels.imap_poll_seconds =
                v.parse().context("GUICHET_IMAP_POLL_SECONDS must be a number of seconds")?;
        }
        if let Some(v) = get("GUICHET_KANNEL_SENDSMS_URL") {
            self.channels.kannel_sendsms_url = Some(v);
        }
        if let Some(v) = get("GUICHET_KANNEL_USERNAME") {
            self.channels.kannel_username = v;
        }
        if let Some(v) = get("GUICHET_KANNEL_PASSWORD") {
            self.channels.kannel_password = Some(Secret(v));
        }
        if let Some(v) = get("GUICHET_SMS_SENDER") {
            self.channels.sms_sender = Some(v);
        }
        if let Some(v) = get("GUICHET_JOBS_IN_PROCESS") {
            self.jobs.in_process = parse_bool(&v).context("GUICHET_JOBS_IN_PROCESS")?;
        }
        if let Some(v) = get("GUICHET_JOBS_CONCURRENCY") {
            self.jobs.concurrency =
                v.parse().context("GUICHET_JOBS_CONCURRENCY must be a number of jobs")?;
        }
        Ok(())
    }

    fn validate(&self) -> anyhow::Result<()> {
        self.backend()?;
        if let Some(url) = &self.http.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("http.public_url {url:?} must start with http:// or https://");
        }
        if self.email.transport == EmailTransport::Smtp && self.email.smtp_url.is_none() {
            bail!("email.transport is \"smtp\" but email.smtp_url (GUICHET_SMTP_URL) is not set");
        }
        if !self.email.from.contains('@') {
            bail!("email.from {:?} is not an address", self.email.from);
        }
        if let Some(url) = &self.channels.kannel_sendsms_url
            && !url.starts_with("http://")
            && !url.starts_with("https://")
        {
            bail!("channels.kannel_sendsms_url {url:?} must start with http:// or https://");
        }
        if self.channels.imap_poll_seconds < 5 {
            bail!("channels.imap_poll_seconds must be at least 5");
        }
        if let Some(t) = &self.channels.inbound_token
            && t.expose().len() < 16
        {
            bail!("channels.inbound_token must be at least 16 characters long");
        }
        if !(1..=64).contains(&self.jobs.concurrency) {
            bail!("jobs.concurrency must be between 1 and 64");
        }
        if self.jobs.retention_days < 1 {
            bail!("jobs.retention_days must be at least 1");
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("guichet.sqlite3").display()),
        }
    }

    /// The backend named by the URL's scheme.
    pub fn backend(&self) -> anyhow::Result<Backend> {
        let url = self.database_url();
        let scheme = url.split_once(':').map_or("", |(s, _)| s).to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "" => bail!("DATABASE_URL has no scheme: use sqlite:PATH or postgres://HOST/DB"),
            other => bail!(
                "unsupported DATABASE_URL scheme {other:?}: use sqlite:PATH or postgres://HOST/DB"
            ),
        }
    }

    /// The database URL with any password replaced, for messages and logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url())
    }

    /// The public URL's host name, for Message-IDs.
    pub fn public_host(&self) -> Option<String> {
        let url = self.http.public_url.as_ref()?;
        let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
        let host = rest.split(['/', ':']).next().unwrap_or("");
        (!host.is_empty()).then(|| host.to_ascii_lowercase())
    }

    /// Host names that are the platform itself.
    pub fn platform_hosts(&self) -> Vec<String> {
        let mut hosts: Vec<String> =
            ["localhost", "127.0.0.1", "[::1]"].iter().map(|h| (*h).to_owned()).collect();
        hosts.extend(self.public_host());
        hosts.extend(self.http.platform_hosts.iter().map(|h| h.to_ascii_lowercase()));
        hosts
    }
}

/// Replaces the password of `scheme://user:password@host` with `***`.
pub fn redact_url(url: &str) -> String {
    // Query strings may carry a password too (`?password=`); messages never need them.
    let url = url.split_once('?').map_or(url, |(u, _)| u);
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, tail) = rest.split_once('/').map_or((rest, ""), |(a, t)| (a, t));
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_owned() };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let redacted = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
    let slash = if rest.contains('/') { "/" } else { "" };
    format!("{scheme}://{redacted}@{host}{slash}{tail}")
}

fn parse_bool(v: &str) -> anyhow::Result<bool> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        other => bail!("{other:?} is not a boolean (true/false)"),
    }
}

/// Parses TOML into settings, with errors on one line ("line 3, column 7: …").
fn parse_toml(text: &str) -> anyhow::Result<Settings> {
    toml::from_str(text).map_err(|e| {
        let place = e.span().map(|span| {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
            format!("line {line}, column {column}: ")
        });
        anyhow::anyhow!("{}{}", place.unwrap_or_default(), e.message())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_use_sqlite_in_the_data_directory() {
        let s = Settings::load(None, &no_env, Overrides::default()).unwrap();
        assert_eq!(s.backend().unwrap(), Backend::Sqlite);
        assert!(s.database_url().ends_with("guichet-data/guichet.sqlite3"));
        assert_eq!(s.http.listen.to_string(), "127.0.0.1:8080");
    }

    #[test]
    fn environment_overrides_file_and_flags_override_environment() {
        let dir = std::env::temp_dir().join(format!("guichet-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("g.toml");
        std::fs::write(&file, "data_dir = \"/from/file\"\n[http]\nlisten = \"127.0.0.1:9000\"\nplatform_name = \"Fichier\"\n").unwrap();
        let env = |k: &str| match k {
            "GUICHET_LISTEN" => Some("127.0.0.1:9100".to_owned()),
            "DATABASE_URL" => Some("postgres://u:pw@db/guichet".to_owned()),
            _ => None,
        };
        let s = Settings::load(
            Some(&file),
            &env,
            Overrides { data_dir: Some("/from/flag".into()), listen: None },
        )
        .unwrap();
        assert_eq!(s.http.platform_name, "Fichier");
        assert_eq!(s.http.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(s.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(s.backend().unwrap(), Backend::Postgres);
        assert!(!format!("{s:?}").contains("pw"), "secrets must not appear in Debug output");
        assert_eq!(s.database_url_redacted(), "postgres://u:***@db/guichet");
    }

    #[test]
    fn malformed_toml_is_reported_on_one_line_with_its_position() {
        let err = parse_toml("[http]\nlisten = 12 12\n").unwrap_err().to_string();
        assert!(err.starts_with("line 2, column"), "{err}");
        assert!(!err.contains('\n'), "{err}");
        let err = parse_toml("[http]\nlistn = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("listn"), "{err}");
    }

    #[test]
    fn job_concurrency_defaults_to_four_and_is_bounded() {
        let s = Settings::load(None, &no_env, Overrides::default()).unwrap();
        assert_eq!(s.jobs.concurrency, 4);
        let env = |k: &str| (k == "GUICHET_JOBS_CONCURRENCY").then(|| "8".to_owned());
        assert_eq!(Settings::load(None, &env, Overrides::default()).unwrap().jobs.concurrency, 8);
        for bad in ["0", "65", "beaucoup"] {
            let env = |k: &str| (k == "GUICHET_JOBS_CONCURRENCY").then(|| bad.to_owned());
            let err = Settings::load(None, &env, Overrides::default()).unwrap_err();
            assert!(
                format!("{err:#}").contains("GUICHET_JOBS_CONCURRENCY")
                    || format!("{err:#}").contains("jobs.concurrency"),
                "{bad}: {err:#}"
            );
        }
    }

    #[test]
    fn the_session_cache_keeps_two_seconds_by_default_and_is_set_from_the_file_or_environment() {
        let s = Settings::load(None, &no_env, Overrides::default()).unwrap();
        assert_eq!(s.http.session_cache_seconds, 2);
        let file = parse_toml("[http]\nsession_cache_seconds = 0\n").unwrap();
        assert_eq!(file.http.session_cache_seconds, 0);
        let env = |k: &str| (k == "GUICHET_SESSION_CACHE_SECONDS").then(|| "5".to_owned());
        let s = Settings::load(None, &env, Overrides::default()).unwrap();
        assert_eq!(s.http.session_cache_seconds, 5);
        let env = |k: &str| (k == "GUICHET_SESSION_CACHE_SECONDS").then(|| "deux".to_owned());
        let err = Settings::load(None, &env, Overrides::default()).unwrap_err();
        assert!(format!("{err:#}").contains("GUICHET_SESSION_CACHE_SECONDS"), "{err:#}");
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let env = |k: &str| (k == "DATABASE_URL").then(|| "mysql://localhost/x".to_owned());
        let err = Settings::load(None, &env, Overrides::default()).unwrap_err().to_string();
        assert!(err.contains("\"mysql\""), "{err}");
    }

    #[test]
    fn urls_lose_their_passwords_when_redacted() {
        assert_eq!(redact_url("postgres://a:b@h:5432/d?password=x"), "postgres://a:***@h:5432/d");
        assert_eq!(redact_url("postgres://h/d?password=x"), "postgres://h/d");
        assert_eq!(redact_url("sqlite://x/y.db"), "sqlite://x/y.db");
    }
}
