//! A browser-like client for in-process journeys: keeps the session cookie, reads CSRF tokens
//! from forms, follows nothing automatically (tests assert each redirect).

use axum::body::Body;
use axum::http::{Request, StatusCode};

use crate::{Page, TestApp};

/// A visitor with a cookie jar of one cookie (the session).
pub struct Client<'a> {
    pub app: &'a TestApp,
    pub cookie: Option<String>,
    pub agent_cookie: Option<String>,
    pub host: String,
}

/// A part of a multipart body.
pub enum Part<'a> {
    Text(&'a str, &'a str),
    File(&'a str, &'a str, &'a [u8]),
}

impl<'a> Client<'a> {
    pub fn new(app: &'a TestApp) -> Self {
        Self { app, cookie: None, agent_cookie: None, host: "127.0.0.1:8080".to_owned() }
    }

    async fn send(&mut self, builder: axum::http::request::Builder, body: Body) -> Page {
        let mut builder = builder.header("host", &self.host);
        // Like a browser: the agent cookie (Path=/agents) goes only to /agents paths.
        let path = builder.uri_ref().map(|u| u.path().to_owned()).unwrap_or_default();
        let mut cookies = Vec::new();
        if let Some(c) = &self.cookie {
            cookies.push(format!("guichet_session={c}"));
        }
        if let Some(c) = self.agent_cookie.as_ref().filter(|_| path.starts_with("/agents")) {
            cookies.push(format!("guichet_agent={c}"));
        }
        if !cookies.is_empty() {
            builder = builder.header("cookie", cookies.join("; "));
        }
        let page = self.app.request(builder.body(body).expect("request")).await;
        for v in page.headers.get_all("set-cookie") {
            let v = v.to_str().unwrap_or("");
            if let Some(rest) = v.strip_prefix("guichet_session=") {
                let value = rest.split(';').next().unwrap_or("");
                self.cookie =
                    (!value.is_empty() && !v.contains("Max-Age=0")).then(|| value.to_owned());
            }
            if let Some(rest) = v.strip_prefix("guichet_agent=") {
                assert!(v.contains("Path=/agents"), "agent cookies are limited to /agents: {v}");
                let value = rest.split(';').next().unwrap_or("");
                self.agent_cookie =
                    (!value.is_empty() && !v.contains("Max-Age=0")).then(|| value.to_owned());
            }
        }
        page
    }

    pub async fn get(&mut self, path: &str) -> Page {
        self.send(Request::get(path), Body::empty()).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(path).header("content-type", "application/x-www-form-urlencoded"),
            Body::from(body),
        )
        .await
    }

    pub async fn post_multipart(&mut self, path: &str, parts: &[Part<'_>]) -> Page {
        let boundary = "----guichettestboundary";
        let mut body = Vec::new();
        for p in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match p {
                Part::Text(name, value) => {
                    body.extend_from_slice(
                        format!(
                            "Content-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                        )
                        .as_bytes(),
                    );
                }
                Part::File(name, filename, bytes) => {
                    body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
                    body.extend_from_slice(bytes);
                    body.extend_from_slice(b"\r\n");
                }
            }
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        self.send(
            Request::post(path)
                .header("content-type", format!("multipart/form-data; boundary={boundary}")),
            Body::from(body),
        )
        .await
    }

    /// Posts `body` as it is, under `content_type` (bodies no browser would send whole).
    pub async fn post_raw(&mut self, path: &str, content_type: &str, body: Vec<u8>) -> Page {
        self.send(Request::post(path).header("content-type", content_type), Body::from(body)).await
    }

    /// Same as `get`, for back-office pages (named for readability).
    pub async fn get_agent(&mut self, path: &str) -> Page {
        self.get(path).await
    }

    /// Same as `post`, for back-office pages.
    pub async fn post_agent(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        self.post(path, fields).await
    }

    /// The CSRF token of a back-office page.
    pub async fn agent_csrf(&mut self, path: &str) -> String {
        self.csrf(path).await
    }

    /// The CSRF token of the page's first form.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        page.attrs("input[name=_csrf]", "value")
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no CSRF token on {path}"))
    }
}

fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else if b == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The Location of a redirect.
pub fn location(page: &Page) -> String {
    assert!(
        page.status.is_redirection(),
        "expected a redirect, got {}: {}",
        page.status,
        page.body
    );
    page.header("location").to_owned()
}
