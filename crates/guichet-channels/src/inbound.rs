//! Reading e-mail that citizens send to a tenant's functional address: MIME parsing (through
//! `mail-parser`, which copes with broken structure, transfer encodings and legacy charsets),
//! recognition of automatic messages that must never be answered, threading identifiers, and
//! the split between the new text and the quoted history.
//!
//! Nothing here trusts the message: HTML is turned into text and never rendered, attachment
//! names are display strings only, and sizes are bounded by the caller before parsing.

use mail_parser::{HeaderValue, MessageParser, MimeHeaders};

/// Why a message is automatic (and therefore never acknowledged nor answered).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Automatic {
    /// A vacation or other auto-reply (`Auto-Submitted`, `X-Autoreply`, `Precedence`).
    AutoReply,
    /// A delivery status notification (bounce).
    Bounce,
    /// A mailing-list or bulk message.
    Bulk,
    /// One of our own messages coming back (a forwarding loop).
    Loop,
}

impl Automatic {
    /// The reason recorded on the message, in French for agents.
    pub fn reason(self) -> &'static str {
        match self {
            Self::AutoReply => "réponse automatique (absence, accusé) : pas de réponse envoyée",
            Self::Bounce => "avis de non-remise : pas de réponse envoyée",
            Self::Bulk => "envoi en nombre ou liste de diffusion : pas de réponse envoyée",
            Self::Loop => "boucle : message émis par Guichet lui-même",
        }
    }
}

/// An attachment as found in the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// File name given by the sender (display only), or a generated one.
    pub name: String,
    /// Declared MIME type.
    pub declared_type: String,
    /// Decoded content.
    pub bytes: Vec<u8>,
}

/// A parsed inbound e-mail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundEmail {
    /// `Message-ID` without angle brackets.
    pub message_id: Option<String>,
    /// `In-Reply-To` and `References` ids, most recent first, without angle brackets.
    pub thread_ids: Vec<String>,
    /// Sender address (lowercase).
    pub from_address: Option<String>,
    /// Sender display name.
    pub from_name: Option<String>,
    /// Every `To` and `Cc` address (lowercase).
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// The new text (quoted history removed).
    pub body: String,
    /// The quoted history, kept for display folded.
    pub quoted: String,
    /// Whether the text came from an HTML-only body.
    pub from_html: bool,
    /// Attachments.
    pub attachments: Vec<Attachment>,
    /// Set when the message is automatic.
    pub automatic: Option<Automatic>,
    /// For a bounce: the Message-IDs of ours it mentions (the undelivered message).
    pub bounced_ids: Vec<String>,
}

/// Why a message could not be read at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseFailure {
    /// Not even a header block.
    #[error("message illisible : aucun en-tête reconnu")]
    Unreadable,
}

/// Drops NUL and the other control characters (PostgreSQL refuses NUL in text and JSON, and
/// none belongs in a message shown to agents), keeping line breaks and tabs.
pub fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control() || *c == '\n' || *c == '\t').collect()
}

fn strip_angles(s: &str) -> String {
    s.trim().trim_start_matches('<').trim_end_matches('>').trim().to_owned()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => t.split_whitespace().map(strip_angles).collect(),
        HeaderValue::TextList(list) => {
            list.iter().flat_map(|t| t.split_whitespace().map(strip_angles)).collect()
        }
        _ => Vec::new(),
    }
}

fn header_text<'a>(message: &'a mail_parser::Message<'a>, name: &str) -> Option<String> {
    message.header_raw(name).map(|v| v.trim().to_ascii_lowercase())
}

/// Parses raw RFC 5322 bytes. `our_domain` is the domain of our own Message-IDs (loop and
/// bounce detection).
pub fn parse(raw: &[u8], our_domain: &str) -> Result<InboundEmail, ParseFailure> {
    let message = MessageParser::default().parse(raw).ok_or(ParseFailure::Unreadable)?;
    if message.headers().is_empty() {
        return Err(ParseFailure::Unreadable);
    }
    let from = message.from().and_then(|a| a.first());
    let from_address = from.and_then(|a| a.address()).map(|a| clean(a).trim().to_ascii_lowercase());
    let from_name =
        from.and_then(|a| a.name()).map(|n| clean(n).trim().to_owned()).filter(|n| !n.is_empty());
    let mut recipients = Vec::new();
    for list in [message.to(), message.cc()].into_iter().flatten() {
        for a in list.iter() {
            if let Some(addr) = a.address() {
                recipients.push(clean(addr).trim().to_ascii_lowercase());
            }
        }
    }
    let mut thread_ids = id_list(message.in_reply_to());
    let mut references = id_list(message.references());
    references.reverse();
    for r in references {
        if !thread_ids.contains(&r) {
            thread_ids.push(r);
        }
    }
    let mut thread_ids: Vec<String> = thread_ids.iter().map(|i| clean(i)).collect();
    thread_ids.retain(|i| !i.is_empty());
    thread_ids.truncate(50);

    let (text, from_html) = match message.text_bodies().next() {
        Some(part) if !part.is_text_html() => {
            (message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(), false)
        }
        // HTML only: mail-parser converts it to text (scripts and styles dropped).
        _ => (message.body_text(0).map(|t| t.into_owned()).unwrap_or_default(), true),
    };
    let text = clean(&text.replace("\r\n", "\n"));
    let (body, quoted) = split_quoted(&text);

    let mut attachments = Vec::new();
    for (i, part) in message.attachments().enumerate() {
        let declared_type = part
            .content_type()
            .map(|c| match c.subtype() {
                Some(sub) => format!("{}/{}", c.ctype(), sub),
                None => c.ctype().to_owned(),
            })
            .unwrap_or_else(|| "application/octet-stream".to_owned())
            .to_ascii_lowercase();
        // A forwarded message is an attachment too; its bytes are the raw message.
        let bytes = match part.message() {
            Some(inner) => inner.raw_message().to_vec(),
            None => part.contents().to_vec(),
        };
        let name = part
            .attachment_name()
            .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect::<String>())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| format!("piece-jointe-{}", i + 1));
        attachments.push(Attachment { name, declared_type, bytes });
    }

    let subject = message
        .subject()
        .map(|s| s.chars().filter(|c| !c.is_control()).take(500).collect())
        .unwrap_or_default();
    let message_id =
        message.message_id().map(|m| clean(&strip_angles(m))).filter(|m| !m.is_empty());

    let mut bounced_ids = Vec::new();
    let automatic = classify(&message, from_address.as_deref(), our_domain, &mut bounced_ids);
    Ok(InboundEmail {
        message_id,
        thread_ids,
        from_address,
        from_name,
        recipients,
        subject,
        body,
        quoted,
        from_html,
        attachments,
        automatic,
        bounced_ids,
    })
}

fn classify(
    message: &mail_parser::Message<'_>,
    from: Option<&str>,
    our_domain: &str,
    bounced_ids: &mut Vec<String>,
) -> Option<Automatic> {
    let ours = format!("@{}", our_domain.to_ascii_lowercase());
    // Our own message back in our mailbox: every Guichet message carries our Message-ID domain.
    if message.message_id().is_some_and(|m| strip_angles(m).to_ascii_lowercase().ends_with(&ours))
        || message.header_raw("X-Guichet-Loop").is_some()
    {
        return Some(Automatic::Loop);
    }
    let is_report = message.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype().is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    let local = from.and_then(|f| f.split('@').next()).unwrap_or("");
    let null_sender =
        message.header_raw("Return-Path").is_some_and(|r| r.trim() == "<>" || r.trim().is_empty());
    if is_report
        || local.eq_ignore_ascii_case("mailer-daemon")
        || local.eq_ignore_ascii_case("postmaster")
        || (null_sender && header_text(message, "Auto-Submitted").is_some())
    {
        // The undelivered message's id is in the report's attached headers.
        let raw = String::from_utf8_lossy(message.raw_message());
        for line in raw.lines() {
            let l = line.trim_start();
            // Byte comparison: slicing the text at 11 could cut a multi-byte character.
            if l.as_bytes().get(..11).is_some_and(|p| p.eq_ignore_ascii_case(b"message-id:")) {
                let id = strip_angles(&l[11..]);
                if id.to_ascii_lowercase().ends_with(&ours) && !bounced_ids.contains(&id) {
                    bounced_ids.push(id);
                }
            }
        }
        return Some(Automatic::Bounce);
    }
    if header_text(message, "Auto-Submitted").is_some_and(|v| v != "no")
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || header_text(message, "X-Auto-Response-Suppress").is_some_and(|v| {
            v.contains("all")
                && message
                    .subject()
                    .is_some_and(|s| s.to_ascii_lowercase().starts_with("automatic reply"))
        })
        || header_text(message, "Precedence").is_some_and(|p| p == "auto_reply")
    {
        return Some(Automatic::AutoReply);
    }
    if header_text(message, "Precedence").is_some_and(|p| p == "bulk" || p == "junk" || p == "list")
        || message.header_raw("List-Id").is_some()
        || message.header_raw("List-Unsubscribe").is_some()
    {
        return Some(Automatic::Bulk);
    }
    None
}

/// Splits a reply's text into what is new and the quoted history below it: the history starts
/// at an attribution line ("Le 3 mars 2026 à 10:00, X a écrit :", "On … wrote:"), an Outlook
/// header block ("-----Message d'origine-----", "De : …" followed by "Envoyé : …"), or the
/// first run of lines starting with `>` that runs to the end.
pub fn split_quoted(text: &str) -> (String, String) {
    let lines: Vec<&str> = text.lines().collect();
    let mut cut = None;
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim();
        let lower = l.to_lowercase();
        let attribution = (lower.starts_with("le ")
            && (lower.ends_with("a écrit :") || lower.ends_with("a écrit:")))
            || (lower.starts_with("on ") && lower.ends_with("wrote:"));
        let outlook = lower.starts_with("-----message d'origine-----")
            || lower.starts_with("-----original message-----")
            || ((lower.starts_with("de :") || lower.starts_with("from:"))
                && lines.get(i + 1).is_some_and(|n| {
                    let n = n.trim().to_lowercase();
                    n.starts_with("envoyé :") || n.starts_with("sent:") || n.starts_with("date :")
                }));
        let quote_to_end = l.starts_with('>')
            && lines[i..].iter().all(|r| r.trim().is_empty() || r.trim_start().starts_with('>'));
        // A two-line attribution ("Le lun. 3 mars 2026 à 10:00, Mairie <x@y>\na écrit :").
        let split_attribution = lower.starts_with("le ")
            && lines.get(i + 1).is_some_and(|n| n.trim().to_lowercase().starts_with("a écrit"));
        if attribution || outlook || quote_to_end || split_attribution {
            cut = Some(i);
            break;
        }
    }
    match cut {
        Some(0) | None => (text.trim().to_owned(), String::new()),
        Some(i) => {
            (lines[..i].join("\n").trim().to_owned(), lines[i..].join("\n").trim().to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_french_reply_keeps_its_new_text_and_folds_the_history() {
        let (body, quoted) = split_quoted(
            "Voici la pièce demandée.\n\nCordialement\n\nLe lun. 3 mars 2026 à 10:00, Mairie <m@x.fr> a écrit :\n> Bonjour,\n> il manque un justificatif.",
        );
        assert_eq!(body, "Voici la pièce demandée.\n\nCordialement");
        assert!(quoted.starts_with("Le lun. 3 mars"));
        assert!(quoted.contains("> il manque"));
    }

    #[test]
    fn outlook_blocks_and_trailing_quotes_are_history_too() {
        let (body, quoted) =
            split_quoted("Merci.\n\nDe : Mairie\nEnvoyé : lundi\nObjet : demande\n\ntexte");
        assert_eq!(body, "Merci.");
        assert!(quoted.starts_with("De : Mairie"));
        let (body, quoted) = split_quoted("OK\n> a\n> b\n");
        assert_eq!((body.as_str(), quoted.as_str()), ("OK", "> a\n> b"));
        // Inline answers between quotes are not cut.
        let (body, _) = split_quoted("> question ?\nréponse\n> autre ?\nréponse 2");
        assert!(body.contains("réponse 2"));
    }

    #[test]
    fn automatic_messages_are_recognised() {
        let auto = b"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: Absent\r\nAuto-Submitted: auto-replied\r\n\r\nJe suis absent.\r\n";
        assert_eq!(parse(auto, "guichet.test").unwrap().automatic, Some(Automatic::AutoReply));
        let human = b"From: a@b.fr\r\nTo: c@d.fr\r\nSubject: Bonjour\r\nAuto-Submitted: no\r\n\r\nTexte\r\n";
        assert_eq!(parse(human, "guichet.test").unwrap().automatic, None);
        let list = b"From: a@b.fr\r\nTo: c@d.fr\r\nList-Id: <x.y>\r\nSubject: Lettre\r\n\r\nT\r\n";
        assert_eq!(parse(list, "guichet.test").unwrap().automatic, Some(Automatic::Bulk));
        let ours = b"From: a@b.fr\r\nMessage-ID: <123@guichet.test>\r\nSubject: x\r\n\r\nT\r\n";
        assert_eq!(parse(ours, "guichet.test").unwrap().automatic, Some(Automatic::Loop));
        let bounce = b"From: MAILER-DAEMON@mx.fr\r\nTo: c@d.fr\r\nSubject: Undelivered\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nfailed\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <abc@guichet.test>\r\nSubject: x\r\n--b--\r\n";
        let b = parse(bounce, "guichet.test").unwrap();
        assert_eq!(b.automatic, Some(Automatic::Bounce));
        assert_eq!(b.bounced_ids, vec!["abc@guichet.test".to_owned()]);
    }

    #[test]
    fn html_only_bodies_become_text_without_scripts() {
        let raw = b"From: Jean <Jean@Exemple.FR>\r\nTo: mairie@lys.fr\r\nSubject: =?utf-8?q?D=C3=A9p=C3=B4t?=\r\nMessage-ID: <m1@exemple.fr>\r\nIn-Reply-To: <r1@guichet.test>\r\nReferences: <r0@guichet.test> <r1@guichet.test>\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><head><script>alert(1)</script></head><body><p>Bonjour <b>madame</b></p></body></html>\r\n";
        let m = parse(raw, "guichet.test").unwrap();
        assert_eq!(m.subject, "Dépôt");
        assert_eq!(m.from_address.as_deref(), Some("jean@exemple.fr"));
        assert_eq!(m.from_name.as_deref(), Some("Jean"));
        assert!(m.from_html);
        assert!(m.body.contains("Bonjour") && m.body.contains("madame"));
        assert!(!m.body.contains("alert"), "{}", m.body);
        assert_eq!(m.thread_ids, vec!["r1@guichet.test", "r0@guichet.test"]);
        assert_eq!(m.message_id.as_deref(), Some("m1@exemple.fr"));
    }

    #[test]
    fn legacy_charsets_and_base64_attachments_are_decoded() {
        let raw = b"From: a@b.fr\r\nTo: mairie@lys.fr\r\nSubject: test\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nJ'ai d=E9pos=E9 le dossier.\r\n--XX\r\nContent-Type: application/pdf; name=\"piece.pdf\"\r\nContent-Disposition: attachment; filename=\"piece.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--XX--\r\n";
        let m = parse(raw, "guichet.test").unwrap();
        assert_eq!(m.body, "J'ai déposé le dossier.");
        assert_eq!(m.attachments.len(), 1);
        assert_eq!(m.attachments[0].name, "piece.pdf");
        assert_eq!(m.attachments[0].declared_type, "application/pdf");
        assert_eq!(m.attachments[0].bytes, b"%PDF-1.4\n");
    }

    #[test]
    fn a_bounce_with_multibyte_text_where_headers_are_looked_for_does_not_panic() {
        let raw = "From: MAILER-DAEMON@mx.fr\r\nSubject: x\r\nContent-Type: multipart/report; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\néééééééééé\r\nMessage-ID: <a@guichet.test>\r\n--b--\r\n";
        let m = parse(raw.as_bytes(), "guichet.test").unwrap();
        assert_eq!(m.automatic, Some(Automatic::Bounce));
    }

    #[test]
    fn nul_and_control_characters_are_dropped() {
        let raw = b"From: a\x00b <x@y.fr>\r\nSubject: s\r\nContent-Type: text/plain\r\n\r\nun\x00deux\x07\ttrois\r\n";
        let m = parse(raw, "guichet.test").unwrap();
        assert_eq!(m.body, "undeux\ttrois");
        assert!(!m.from_name.unwrap_or_default().contains('\0'));
    }

    #[test]
    fn garbage_does_not_panic() {
        for raw in [
            &b""[..],
            b"\x00\x01\x02",
            b"no header at all",
            b"Content-Type: multipart/mixed; boundary=\"\r\n\r\n--\r\n--",
        ] {
            let _ = parse(raw, "guichet.test");
        }
    }
}
