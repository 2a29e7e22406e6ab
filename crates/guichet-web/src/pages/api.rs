//! Machine endpoints of the channels, authenticated by the shared inbound token (never by a
//! cookie, so no CSRF token): an MTA pipes raw e-mail in, Kannel delivers received SMS and
//! delivery reports. Kannel cannot send headers, so it passes the token in the query string;
//! these URLs live only in the gateway's configuration.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guichet_channels::sms::dlr_state;
use serde_json::json;
use time::OffsetDateTime;

use crate::inbound::{self, Outcome};
use crate::{AppError, AppState};

/// Largest raw e-mail accepted on the pipe endpoint.
pub(crate) const MAX_PIPED_EMAIL: usize = 30 * 1024 * 1024;

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn authorised(state: &AppState, presented: Option<&str>) -> Result<(), AppError> {
    match (&state.config.inbound_token, presented) {
        (Some(expected), Some(given))
            if constant_time_eq(expected.as_bytes(), given.as_bytes()) =>
        {
            Ok(())
        }
        // Without a configured token the endpoints do not exist.
        (None, _) => Err(AppError::NotFound),
        _ => Err(AppError::Forbidden("Jeton d'accès absent ou invalide.".into())),
    }
}

fn outcome_json(outcome: &Outcome) -> serde_json::Value {
    match outcome {
        Outcome::Duplicate => json!({"resultat": "deja_recu"}),
        Outcome::Attached(r) => json!({"resultat": "rattache", "demande": r}),
        Outcome::Contact(c) => json!({"resultat": "contact", "contact": c}),
        Outcome::Ignored(reason) => json!({"resultat": "ignore", "motif": reason}),
        Outcome::SetAside(reason) => json!({"resultat": "mis_de_cote", "motif": reason}),
    }
}

/// `POST /api/v1/inbound/email?adresse=mairie@…`: a raw RFC 5322 message for a functional
/// address (`Authorization: Bearer <token>`). Without `adresse`, the first recipient that is a
/// functional address is used.
pub(crate) async fn email(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Result<Response, AppError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    authorised(&state, bearer)?;
    if body.is_empty() {
        return Err(AppError::BadRequest("Message vide.".into()));
    }
    let endpoint = match q.get("adresse").map(|a| a.trim()).filter(|a| !a.is_empty()) {
        Some(address) => state.store.find_endpoint(address).await?,
        None => {
            let recipients = guichet_channels::inbound::parse(&body, &state.config.mail_domain)
                .map(|m| m.recipients)
                .unwrap_or_default();
            let mut found = None;
            for r in recipients {
                if let Some(e) = state.store.find_endpoint(&r).await? {
                    found = Some(e);
                    break;
                }
            }
            found
        }
    };
    let Some(endpoint) = endpoint.filter(|e| e.kind == "email") else {
        return Err(AppError::BadRequest(
            "« adresse » : aucune adresse fonctionnelle ne correspond à ce destinataire.".into(),
        ));
    };
    let outcome = inbound::ingest_email(&state, &endpoint, &body, None, None).await?;
    Ok((StatusCode::ACCEPTED, axum::Json(outcome_json(&outcome))).into_response())
}

/// Percent-decodes a query component to bytes (`+` is a space).
fn decode_bytes(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
                {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// The query as raw bytes per key: Kannel's `%b` passes the message's bytes as they came
/// off the air, UTF-16BE for a UCS-2 message, which is not valid UTF-8.
fn raw_params(query: &str) -> BTreeMap<String, Vec<u8>> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .map(|(k, v)| (String::from_utf8_lossy(&decode_bytes(k)).into_owned(), decode_bytes(v)))
        .collect()
}

/// Decodes an SMS text according to Kannel's `%C` charset.
pub(crate) fn decode_sms_text(bytes: &[u8], charset: &str) -> String {
    if charset.eq_ignore_ascii_case("UTF-16BE") || charset.eq_ignore_ascii_case("UCS-2") {
        let units: Vec<u16> =
            bytes.chunks(2).map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])).collect();
        String::from_utf16_lossy(&units)
    } else if charset.eq_ignore_ascii_case("ISO-8859-1") || charset.eq_ignore_ascii_case("8-BIT") {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => bytes.iter().map(|b| char::from(*b)).collect(),
        }
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

/// `GET /api/v1/sms/inbound?token=…&from=%p&to=%P&text=%b&charset=%C&id=%I`: Kannel's
/// get-url for received SMS. The answer's body is empty: Kannel must not send it back.
pub(crate) async fn sms(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let params = raw_params(query.as_deref().unwrap_or(""));
    let text_of = |k: &str| {
        params.get(k).map(|v| String::from_utf8_lossy(v).trim().to_owned()).unwrap_or_default()
    };
    authorised(&state, Some(&text_of("token")))?;
    let to = text_of("to");
    let from = text_of("from");
    if from.is_empty() || to.is_empty() {
        return Err(AppError::BadRequest("« from » et « to » sont obligatoires.".into()));
    }
    let text =
        decode_sms_text(params.get("text").map_or(&[][..], Vec::as_slice), &text_of("charset"));
    let Some(endpoint) = state.store.find_endpoint(&to).await?.filter(|e| e.kind == "sms") else {
        tracing::warn!(to = %to, "SMS for a number that is no tenant's: dropped");
        return Ok((StatusCode::OK, "").into_response());
    };
    inbound::ingest_sms(&state, &endpoint, &from, &text, &text_of("id")).await?;
    Ok((StatusCode::OK, "").into_response())
}

/// `GET /api/v1/sms/dlr?token=…&id=…&status=%d`: a delivery report.
pub(crate) async fn dlr(
    State(state): State<AppState>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, AppError> {
    authorised(&state, q.get("token").map(String::as_str))?;
    let id: uuid::Uuid = q
        .get("id")
        .and_then(|i| i.parse().ok())
        .ok_or_else(|| AppError::BadRequest("« id » : identifiant de SMS invalide.".into()))?;
    let Some(status) = q.get("status").and_then(|s| dlr_state(s)) else {
        return Ok((StatusCode::OK, "").into_response());
    };
    let error = (status == "failed").then_some("échec de remise signalé par l'opérateur");
    state.store.mark_sms(id, status, error, OffsetDateTime::now_utc()).await?;
    Ok((StatusCode::OK, "").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kannel_texts_are_decoded_from_their_charset() {
        let utf16: Vec<u8> = "l’école – 10 €".encode_utf16().flat_map(u16::to_be_bytes).collect();
        assert_eq!(decode_sms_text(&utf16, "UTF-16BE"), "l’école – 10 €");
        assert_eq!(decode_sms_text("Bonjour é".as_bytes(), "UTF-8"), "Bonjour é");
        assert_eq!(decode_sms_text(&[0x42, 0xe9], "ISO-8859-1"), "Bé");
        let p = raw_params("text=%00l%20%19&charset=UTF-16BE&from=%2B33612345678");
        assert_eq!(p["text"], vec![0, b'l', b' ', 0x19]);
        assert_eq!(p["from"], b"+33612345678");
        assert_eq!(decode_bytes("a%2"), b"a%2");
    }
}
