//! Text messages through Kannel's HTTP interface: `sendsms` out (with a delivery-report URL
//! that Kannel calls back), and the shape of what Kannel's `get-url` brings in. Kannel is the
//! open-source SMS gateway most French operators' SMPP links are plugged into; Guichet speaks
//! only HTTP to it.

use std::fmt;

use bytes::Bytes;
use guichet_domain::channel::sms_length;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// How to reach Kannel's `sendsms` service.
#[derive(Clone)]
pub struct KannelConfig {
    /// `http://host:13013/cgi-bin/sendsms`.
    pub sendsms_url: String,
    /// `sendsms-user` name.
    pub username: String,
    /// Its password (hidden from `Debug`).
    pub password: String,
    /// Sender shown to citizens (a short code or an alphanumeric sender), if the SMSC allows it.
    pub from: Option<String>,
    /// Guichet's delivery-report endpoint, with its token (`…/api/v1/sms/dlr?token=…`): Kannel
    /// calls it back with the message id and the report's status.
    pub dlr_url: Option<String>,
}

impl fmt::Debug for KannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KannelConfig")
            .field("sendsms_url", &self.sendsms_url)
            .field("username", &self.username)
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

/// A text message to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutgoingSms {
    /// Our id (echoed in delivery reports).
    pub id: String,
    /// Recipient, E.164 ("+33612345678").
    pub to: String,
    /// Text.
    pub text: String,
}

/// Why a message could not leave.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    /// Kannel refused the message itself (bad number, bad credentials): do not retry.
    #[error("message refusé par la passerelle : {0}")]
    Rejected(String),
    /// Kannel could not be reached or is overloaded: retry later.
    #[error("passerelle SMS injoignable : {0}")]
    Transport(String),
}

/// Percent-encodes a query component (RFC 3986 unreserved characters kept).
pub fn query_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A Kannel client.
#[derive(Clone)]
pub struct Kannel {
    config: KannelConfig,
    client: Client<HttpConnector, Empty<Bytes>>,
}

impl fmt::Debug for Kannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl Kannel {
    /// A client for this gateway.
    pub fn new(config: KannelConfig) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(std::time::Duration::from_secs(10)));
        Self { config, client: Client::builder(TokioExecutor::new()).build(connector) }
    }

    /// The `sendsms` URL for a message (public for tests; it contains the password).
    pub fn url_for(&self, sms: &OutgoingSms) -> String {
        let length = sms_length(&sms.text);
        let mut url = format!(
            "{}?username={}&password={}&to={}&text={}&charset=UTF-8&coding={}",
            self.config.sendsms_url,
            query_encode(&self.config.username),
            query_encode(&self.config.password),
            query_encode(&sms.to),
            query_encode(&sms.text),
            length.encoding.kannel_coding(),
        );
        if let Some(from) = &self.config.from {
            url.push_str(&format!("&from={}", query_encode(from)));
        }
        if let Some(dlr) = &self.config.dlr_url {
            // 1 delivered, 2 failed, 16 rejected by the SMSC; Kannel substitutes %d.
            let callback = format!(
                "{dlr}{}id={}&status=%d",
                if dlr.contains('?') { "&" } else { "?" },
                query_encode(&sms.id)
            );
            url.push_str(&format!("&dlr-mask=19&dlr-url={}", query_encode(&callback)));
        }
        url
    }

    /// Hands one message to Kannel (accepted means queued towards the SMSC).
    pub async fn send(&self, sms: &OutgoingSms) -> Result<(), SmsError> {
        let uri: hyper::Uri = self
            .url_for(sms)
            .parse()
            .map_err(|e| SmsError::Rejected(format!("URL sendsms invalide : {e}")))?;
        let response =
            tokio::time::timeout(std::time::Duration::from_secs(30), self.client.get(uri))
                .await
                .map_err(|_| SmsError::Transport("délai dépassé".into()))?
                .map_err(|e| SmsError::Transport(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map(|b| String::from_utf8_lossy(&b.to_bytes()).trim().to_owned())
            .unwrap_or_default();
        match status.as_u16() {
            200..=299 => Ok(()),
            // Kannel answers 503 when its queue is full: worth retrying.
            500..=599 => Err(SmsError::Transport(format!("{status} {body}"))),
            _ => Err(SmsError::Rejected(format!("{status} {body}"))),
        }
    }
}

/// Kannel's delivery-report status (`%d`) as a stored state.
pub fn dlr_state(status: &str) -> Option<&'static str> {
    match status.trim().parse::<u32>().ok()? {
        1 => Some("delivered"),
        2 | 16 => Some("failed"),
        // 4: buffered by the SMSC, 8: accepted by the operator's network.
        4 | 8 => Some("sent"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sendsms_url_carries_coding_and_an_encoded_callback() {
        let k = Kannel::new(KannelConfig {
            sendsms_url: "http://127.0.0.1:13013/cgi-bin/sendsms".into(),
            username: "guichet".into(),
            password: "p&w".into(),
            from: Some("38100".into()),
            dlr_url: Some("http://127.0.0.1:8080/api/v1/sms/dlr?token=t".into()),
        });
        let url = k.url_for(&OutgoingSms {
            id: "abc".into(),
            to: "+33612345678".into(),
            text: "Réponse œ".into(),
        });
        assert!(url.contains("password=p%26w"));
        assert!(url.contains("to=%2B33612345678"));
        assert!(url.contains("coding=2"));
        assert!(url.contains("text=R%C3%A9ponse%20%C5%93"));
        assert!(url.contains("dlr-url=http%3A%2F%2F127.0.0.1%3A8080%2Fapi%2Fv1%2Fsms%2Fdlr%3Ftoken%3Dt%26id%3Dabc%26status%3D%25d"));
        assert!(!format!("{k:?}").contains("p&w"));
        let url = k.url_for(&OutgoingSms {
            id: "x".into(),
            to: "+33612345678".into(),
            text: "Réponse".into(),
        });
        assert!(url.contains("coding=0"));
    }

    #[test]
    fn delivery_reports_map_to_states() {
        assert_eq!(dlr_state("1"), Some("delivered"));
        assert_eq!(dlr_state("16"), Some("failed"));
        assert_eq!(dlr_state("x"), None);
    }
}
