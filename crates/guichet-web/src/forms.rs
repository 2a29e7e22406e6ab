//! Request body extractors whose failures are French pages, not axum's English plain text.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;

use crate::AppError;

/// A URL-encoded form body as name → values (repeated names kept in order).
pub struct FormFields(pub BTreeMap<String, Vec<String>>);

impl FormFields {
    /// The first value of a field, trimmed ("" when absent).
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).and_then(|v| v.first()).map_or("", |s| s.trim())
    }

    /// The first value of a field, untrimmed (passwords).
    pub fn raw(&self, name: &str) -> &str {
        self.0.get(name).and_then(|v| v.first()).map_or("", String::as_str)
    }
}

impl<S: Send + Sync> FromRequest<S> for FormFields {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let Form(pairs) =
            Form::<Vec<(String, String)>>::from_request(req, state).await.map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    return AppError::TooLarge(
                        "Le formulaire envoyé dépasse la taille maximale autorisée. Raccourcissez \
                         les textes les plus longs, puis envoyez-le à nouveau."
                            .to_owned(),
                    );
                }
                tracing::warn!(error = %e.body_text(), "form body unreadable");
                AppError::BadRequest(
                    "Le formulaire envoyé est illisible. Rechargez la page et réessayez."
                        .to_owned(),
                )
            })?;
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k).or_default().push(v);
        }
        Ok(Self(map))
    }
}
