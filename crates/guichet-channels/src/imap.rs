//! Fetching a functional mailbox over IMAP (RFC 3501), TLS or plain. Guichet reads messages
//! with `BODY.PEEK[]` and never deletes nor flags them: its own position is the highest UID it
//! has stored (kept in the database with the mailbox's UIDVALIDITY), so a crash between two
//! messages resumes exactly where it stopped, and the mailbox stays a faithful archive.

use std::fmt;
use std::sync::Arc;

use futures_util::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Where a mailbox is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct ImapAccount {
    /// Server host name.
    pub host: String,
    /// Port (993 for TLS, 143 plain).
    pub port: u16,
    /// Whether to speak TLS from the first byte (`imaps://`).
    pub tls: bool,
    /// Login.
    pub user: String,
    /// Password (never logged: `Debug` hides it).
    pub password: String,
    /// Folder to read ("INBOX").
    pub folder: String,
}

impl fmt::Debug for ImapAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}:{}/{}",
            if self.tls { "imaps" } else { "imap" },
            self.user,
            self.host,
            self.port,
            self.folder
        )
    }
}

/// IMAP failures.
#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    /// The account description is wrong.
    #[error("adresse IMAP invalide : {0}")]
    Config(String),
    /// The server could not be reached or the connection broke.
    #[error("connexion IMAP impossible : {0}")]
    Io(String),
    /// The server refused the login.
    #[error("identifiants IMAP refusés")]
    Login,
    /// The server answered something else than expected.
    #[error("erreur du serveur IMAP : {0}")]
    Protocol(String),
}

impl ImapAccount {
    /// Reads `imap://user@host:143/INBOX` or `imaps://user@host:993/INBOX` (the user may be a
    /// full address with `%40` for its `@`); the password comes separately.
    pub fn from_url(url: &str, password: &str) -> Result<Self, ImapError> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("imaps://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("imap://") {
            (false, r)
        } else {
            return Err(ImapError::Config(
                "l'adresse doit commencer par imap:// ou imaps://".into(),
            ));
        };
        let (user, rest) = rest.rsplit_once('@').ok_or_else(|| {
            ImapError::Config("indiquez l'identifiant : imap://identifiant@serveur".into())
        })?;
        let (hostport, folder) = rest.split_once('/').unwrap_or((rest, "INBOX"));
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (
                h.to_owned(),
                p.parse().map_err(|_| ImapError::Config(format!("port invalide « {p} »")))?,
            ),
            None => (hostport.to_owned(), if tls { 993 } else { 143 }),
        };
        if host.is_empty() || user.is_empty() {
            return Err(ImapError::Config("serveur ou identifiant manquant".into()));
        }
        Ok(Self {
            host,
            port,
            tls,
            user: user.replace("%40", "@"),
            password: password.to_owned(),
            folder: if folder.is_empty() { "INBOX".to_owned() } else { folder.to_owned() },
        })
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + fmt::Debug> Io for T {}

/// A message as fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetched {
    /// Its UID in the folder.
    pub uid: u32,
    /// Its size as the server reports it.
    pub size: u32,
    /// The whole message, or only its header block when it exceeds the size limit.
    pub bytes: Vec<u8>,
    /// True when `bytes` holds only the headers (message too large).
    pub truncated: bool,
}

/// A logged-in session with the folder selected.
pub struct ImapSession {
    session: async_imap::Session<Box<dyn Io>>,
    /// The folder's UIDVALIDITY: when it changes, UIDs start over.
    pub uid_validity: u32,
}

/// Longest wait for one IMAP command: a server that stalls must not hold the fetch job.
const COMMAND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, ImapError>>,
) -> Result<T, ImapError> {
    tokio::time::timeout(COMMAND_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(ImapError::Io("délai dépassé".into())))
}

fn io(e: impl fmt::Display) -> ImapError {
    ImapError::Io(e.to_string())
}

fn protocol(e: async_imap::error::Error) -> ImapError {
    match e {
        async_imap::error::Error::Io(e) => ImapError::Io(e.to_string()),
        other => ImapError::Protocol(other.to_string()),
    }
}

/// Connects, logs in and selects the account's folder (30 s timeout on each step).
pub async fn connect(account: &ImapAccount) -> Result<ImapSession, ImapError> {
    let timeout = std::time::Duration::from_secs(30);
    let tcp =
        tokio::time::timeout(timeout, TcpStream::connect((account.host.as_str(), account.port)))
            .await
            .map_err(|_| ImapError::Io("délai dépassé".into()))?
            .map_err(io)?;
    let stream: Box<dyn Io> = if account.tls {
        let mut roots = tokio_rustls::rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io)?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = tokio_rustls::rustls::pki_types::ServerName::try_from(account.host.clone())
            .map_err(|e| ImapError::Config(e.to_string()))?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(io)?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let mut client = async_imap::Client::new(stream);
    // The server speaks first.
    match tokio::time::timeout(timeout, client.read_response()).await {
        Ok(Some(Ok(_))) => {}
        Ok(Some(Err(e))) => return Err(io(e)),
        Ok(None) => return Err(ImapError::Io("connexion fermée par le serveur".into())),
        Err(_) => return Err(ImapError::Io("délai dépassé".into())),
    }
    let mut session = tokio::time::timeout(timeout, client.login(&account.user, &account.password))
        .await
        .map_err(|_| ImapError::Io("délai dépassé".into()))?
        .map_err(|(e, _)| match e {
            async_imap::error::Error::No(_) | async_imap::error::Error::Bad(_) => ImapError::Login,
            other => protocol(other),
        })?;
    let mailbox = timed(async { session.select(&account.folder).await.map_err(protocol) }).await?;
    Ok(ImapSession { session, uid_validity: mailbox.uid_validity.unwrap_or(0) })
}

impl ImapSession {
    /// UIDs above `last`, in ascending order.
    pub async fn uids_after(&mut self, last: u32) -> Result<Vec<u32>, ImapError> {
        let query = format!("UID {}:*", last.saturating_add(1));
        let found = timed(async { self.session.uid_search(query).await.map_err(protocol) }).await?;
        // "n:*" always matches the last message even when its UID is below n.
        let mut uids: Vec<u32> = found.into_iter().filter(|u| *u > last).collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Fetches one message without marking it read; above `max_bytes`, only its headers.
    pub async fn fetch(&mut self, uid: u32, max_bytes: u32) -> Result<Option<Fetched>, ImapError> {
        // A 25 MB message over a slow link takes a while: the bound is generous but finite.
        tokio::time::timeout(5 * COMMAND_TIMEOUT, self.fetch_inner(uid, max_bytes))
            .await
            .unwrap_or_else(|_| Err(ImapError::Io("délai dépassé".into())))
    }

    async fn fetch_inner(
        &mut self,
        uid: u32,
        max_bytes: u32,
    ) -> Result<Option<Fetched>, ImapError> {
        let size = {
            let mut stream = self
                .session
                .uid_fetch(uid.to_string(), "(UID RFC822.SIZE)")
                .await
                .map_err(protocol)?;
            let mut size = None;
            while let Some(item) = stream.next().await {
                let f = item.map_err(protocol)?;
                if f.uid == Some(uid) {
                    size = f.size;
                }
            }
            size
        };
        let Some(size) = size else { return Ok(None) };
        let truncated = size > max_bytes;
        let query = if truncated { "(UID BODY.PEEK[HEADER])" } else { "(UID BODY.PEEK[])" };
        let mut stream = self.session.uid_fetch(uid.to_string(), query).await.map_err(protocol)?;
        let mut bytes = None;
        while let Some(item) = stream.next().await {
            let f = item.map_err(protocol)?;
            if f.uid == Some(uid) {
                bytes = if truncated { f.header() } else { f.body() }.map(<[u8]>::to_vec);
            }
        }
        Ok(bytes.map(|bytes| Fetched { uid, size, bytes, truncated }))
    }

    /// Logs out politely (errors ignored: the connection is dropped anyway).
    pub async fn logout(mut self) {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), self.session.logout()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_read_and_passwords_never_printed() {
        let a = ImapAccount::from_url("imaps://mairie%40lys.fr@mail.lys.fr/Demandes", "s3cret")
            .unwrap();
        assert_eq!((a.host.as_str(), a.port, a.tls), ("mail.lys.fr", 993, true));
        assert_eq!((a.user.as_str(), a.folder.as_str()), ("mairie@lys.fr", "Demandes"));
        assert!(!format!("{a:?}").contains("s3cret"));
        let a = ImapAccount::from_url("imap://u@127.0.0.1:1143", "p").unwrap();
        assert_eq!((a.port, a.tls, a.folder.as_str()), (1143, false, "INBOX"));
        assert!(ImapAccount::from_url("http://x", "p").is_err());
        assert!(ImapAccount::from_url("imap://host", "p").is_err());
        assert!(ImapAccount::from_url("imap://u@h:port", "p").is_err());
    }
}
