//! Guichet's channels to citizens, the protocol side only (what to do with a message is the
//! web crate's business):
//! - e-mail out: a `Mailer` trait with an SMTP implementation (production) and a file
//!   implementation that writes each message as an `.eml` file (the demo, and machines
//!   without a mail relay);
//! - e-mail in: IMAP fetching (`imap`) and robust MIME reading (`inbound`);
//! - SMS through Kannel (`sms`);
//! - paper letters as PDF (`letter`).

#![forbid(unsafe_code)]

pub mod imap;
pub mod inbound;
pub mod letter;
pub mod sms;

use std::path::PathBuf;

use async_trait::async_trait;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

/// An e-mail ready to leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Sender ("Mairie de X <ne-pas-repondre@…>").
    pub from: String,
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
    /// Message-ID without angle brackets.
    pub message_id: String,
    /// `Reply-To`: the tenant's functional address, so that the citizen's answer comes back
    /// into a mailbox Guichet reads.
    pub reply_to: Option<String>,
    /// Ids this message answers (without angle brackets), oldest first: the last one becomes
    /// `In-Reply-To`, all of them `References`, so that mail clients thread the exchange.
    pub references: Vec<String>,
    /// Sent by a machine (RFC 3834 `Auto-Submitted: auto-generated`), not by a person.
    pub automatic: bool,
}

/// Why an e-mail could not leave.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The message itself is invalid (bad address…): retrying will not help.
    #[error("invalid message: {0}")]
    Invalid(String),
    /// The transport failed (relay down, disk full): retry later.
    #[error("delivery failed: {0}")]
    Transport(String),
}

/// Something that delivers e-mail.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Delivers one message.
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError>;

    /// "smtp" or "file", for logs.
    fn kind(&self) -> &'static str;
}

/// Builds the MIME message: multipart/alternative with text and HTML, our Message-ID.
pub fn build_message(email: &OutgoingEmail) -> Result<Message, MailError> {
    let from: Mailbox = email.from.parse().map_err(|e| MailError::Invalid(format!("from: {e}")))?;
    let to: Mailbox = email.to.parse().map_err(|e| MailError::Invalid(format!("to: {e}")))?;
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(email.subject.clone())
        .message_id(Some(format!("<{}>", email.message_id)));
    // Notifications are automatic (RFC 3834: no vacation reply to them); an agent's answer
    // is written by a person and must not be marked so.
    if email.automatic {
        builder = builder.header(AutoSubmitted);
    }
    if let Some(reply_to) = &email.reply_to {
        let reply_to: Mailbox =
            reply_to.parse().map_err(|e| MailError::Invalid(format!("reply-to: {e}")))?;
        builder = builder.reply_to(reply_to);
    }
    if let Some(last) = email.references.last() {
        builder = builder.in_reply_to(format!("<{last}>")).references(
            email.references.iter().map(|r| format!("<{r}>")).collect::<Vec<_>>().join(" "),
        );
    }
    builder
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder().header(ContentType::TEXT_PLAIN).body(email.text.clone()),
                )
                .singlepart(
                    SinglePart::builder().header(ContentType::TEXT_HTML).body(email.html.clone()),
                ),
        )
        .map_err(|e| MailError::Invalid(e.to_string()))
}

/// `Auto-Submitted: auto-generated` (RFC 3834): tells mail servers and clients not to send
/// vacation replies to our notifications, which would otherwise loop back into the inbox.
#[derive(Clone)]
struct AutoSubmitted;

impl lettre::message::header::Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// Writes each message as `<dir>/<unix-time>-<message-id>.eml`.
pub struct FileMailer {
    dir: PathBuf,
}

impl FileMailer {
    /// A mailer writing into `dir` (created if needed).
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    /// Where a message with this id is written.
    pub fn path_of(&self, message_id: &str) -> PathBuf {
        let safe: String = message_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
            .collect();
        self.dir.join(format!("{safe}.eml"))
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let bytes = build_message(email)?.formatted();
        let path = self.path_of(&email.message_id);
        // Write then rename, so a reader never sees half a message.
        let tmp = path.with_extension("eml.tmp");
        tokio::fs::write(&tmp, bytes).await.map_err(|e| MailError::Transport(e.to_string()))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| MailError::Transport(e.to_string()))?;
        Ok(())
    }

    fn kind(&self) -> &'static str {
        "file"
    }
}

/// Sends through an SMTP relay.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpMailer {
    /// From a URL: `smtp://host:25` (plain, for a local relay), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtps://user:pass@host:465` (TLS), as lettre understands them.
    pub fn from_url(url: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::Invalid(format!("SMTP URL: {e}")))?
            .timeout(Some(std::time::Duration::from_secs(30)))
            .build();
        Ok(Self { transport })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let message = build_message(email)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::Invalid(e.to_string())),
            Err(e) => Err(MailError::Transport(e.to_string())),
        }
    }

    fn kind(&self) -> &'static str {
        "smtp"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email() -> OutgoingEmail {
        OutgoingEmail {
            reply_to: None,
            references: Vec::new(),
            automatic: true,
            from: "Mairie de Bellecombe <ne-pas-repondre@bellecombe.test>".into(),
            to: "camille@exemple.test".into(),
            subject: "Accusé de réception de votre demande EC-2026-000001".into(),
            text: "Bonjour,\nvotre demande a bien été reçue.".into(),
            html: "<p>Bonjour,</p>".into(),
            message_id: "01abc@guichet.test".into(),
        }
    }

    #[tokio::test]
    async fn the_file_mailer_writes_a_multipart_message_with_our_message_id() {
        let dir = std::env::temp_dir().join(format!("guichet-mail-{}", std::process::id()));
        let mailer = FileMailer::new(&dir).unwrap();
        mailer.send(&email()).await.unwrap();
        let eml = std::fs::read_to_string(mailer.path_of("01abc@guichet.test")).unwrap();
        assert!(eml.contains("Message-ID: <01abc@guichet.test>"), "{eml}");
        assert!(eml.contains("Auto-Submitted: auto-generated"));
        assert!(eml.contains("multipart/alternative"));
        assert!(eml.contains("To: camille@exemple.test"));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_bad_address_is_an_invalid_message_not_a_transport_failure() {
        let mut e = email();
        e.to = "not an address".into();
        assert!(matches!(build_message(&e), Err(MailError::Invalid(_))));
    }
}
