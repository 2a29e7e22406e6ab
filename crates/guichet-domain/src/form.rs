//! The form engine: a service's form is data (pages of typed fields with conditions), and this
//! module validates what a citizen sends, page by page, with French messages naming the field.
//! The server is the authority: the browser's own checks are a convenience, never trusted.
//!
//! Answers are kept as JSON values keyed by field key, so that a form can change after requests
//! were made without breaking them: text → string, multiple choice → array of strings, yes/no →
//! "oui"/"non", address → {street, postcode, city, insee_code?}, files → array of
//! {id, name, size, content_type}.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::values::{Email, Phone};

/// A whole form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormDefinition {
    /// Pages, shown one after the other (those whose condition holds).
    pub pages: Vec<FormPage>,
    /// Whether the citizen goes through a summary page before sending (Publik's "page de
    /// validation"). Without one, the last page's button sends the request: a short form, such
    /// as a problem report, is then a page and a POST, two round trips on a poor connection.
    #[serde(default = "summary_page_by_default", skip_serializing_if = "is_true")]
    pub confirmation: bool,
}

fn summary_page_by_default() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_true(value: &bool) -> bool {
    *value
}

/// One step of a form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormPage {
    /// Stable identifier.
    pub id: String,
    /// Title shown as the step's heading.
    pub title: String,
    /// Shown only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// Fields, in order.
    pub fields: Vec<Field>,
}

/// One field.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Field {
    /// Stable key under which the answer is stored (`[a-z0-9_]`).
    pub key: String,
    /// Label shown to the citizen (and named in error messages).
    pub label: String,
    /// The field's type and its type-specific settings.
    #[serde(flatten)]
    pub kind: FieldKind,
    /// Whether an answer is required.
    #[serde(default)]
    pub required: bool,
    /// Help text under the label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    /// Shown (and validated) only when this holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
}

/// A choice in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Choice {
    /// Stored value.
    pub value: String,
    /// Label shown.
    pub label: String,
}

/// Kinds of files a file field accepts, recognised by their content, never by their name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// PDF documents.
    Pdf,
    /// JPEG and PNG images (phone photos).
    Image,
}

impl FileKind {
    /// Recognises a file's type from its first bytes; returns the MIME type if accepted.
    pub fn sniff(bytes: &[u8]) -> Option<(FileKind, &'static str)> {
        if bytes.starts_with(b"%PDF-") {
            Some((FileKind::Pdf, "application/pdf"))
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some((FileKind::Image, "image/jpeg"))
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some((FileKind::Image, "image/png"))
        } else {
            None
        }
    }

    /// French description for messages ("PDF", "image JPEG ou PNG").
    pub fn label(self) -> &'static str {
        match self {
            FileKind::Pdf => "PDF",
            FileKind::Image => "image JPEG ou PNG",
        }
    }
}

/// Field types.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldKind {
    /// One line of text.
    Text {
        #[serde(default = "default_text_max")]
        max_length: usize,
    },
    /// Several lines of text.
    LongText {
        #[serde(default = "default_long_text_max")]
        max_length: usize,
    },
    /// An e-mail address.
    Email,
    /// A phone number.
    Phone,
    /// A number.
    Number {
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
        #[serde(default)]
        integer: bool,
    },
    /// A calendar date.
    Date,
    /// One choice among options (radio buttons).
    Choice { options: Vec<Choice> },
    /// Any number of options (checkboxes).
    MultipleChoice { options: Vec<Choice> },
    /// Oui / non.
    YesNo,
    /// A postal address (street, postcode, town).
    Address,
    /// Uploaded files.
    File {
        accept: Vec<FileKind>,
        #[serde(default = "default_max_size_mb")]
        max_size_mb: u32,
        #[serde(default)]
        multiple: bool,
    },
    /// A heading inside a page (no answer).
    Title,
    /// An explanatory paragraph (no answer).
    Comment { text: String },
}

fn default_text_max() -> usize {
    200
}
fn default_long_text_max() -> usize {
    5000
}
fn default_max_size_mb() -> u32 {
    10
}

/// Shows a page or field only when another field's answer matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    /// The key of the field it depends on.
    pub field: String,
    /// Holds when the answer is one of these values (for a multiple choice: contains one).
    pub one_of: Vec<String>,
}

impl Condition {
    /// Whether it holds for `answers`.
    pub fn holds(&self, answers: &Answers) -> bool {
        match answers.get(&self.field) {
            Some(Value::String(s)) => self.one_of.iter().any(|v| v == s),
            Some(Value::Array(items)) => {
                items.iter().any(|i| i.as_str().is_some_and(|s| self.one_of.iter().any(|v| v == s)))
            }
            _ => false,
        }
    }
}

/// Answers by field key.
pub type Answers = BTreeMap<String, Value>;

/// What the browser sent for one page: every value under each form name (repeated names for
/// checkboxes; `key.street`, `key.postcode`, `key.city` for addresses).
pub type RawInput = BTreeMap<String, Vec<String>>;

/// A stored file, as referenced from answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// File id.
    pub id: String,
    /// Original name (for display only).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Sniffed MIME type.
    pub content_type: String,
}

/// A refused answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Field key (for the `id` of the input and the error summary link).
    pub key: String,
    /// French message naming the field: "« Nom » : ce champ est obligatoire."
    pub message: String,
}

fn error(field: &Field, what: &str) -> FieldError {
    FieldError { key: field.key.clone(), message: format!("« {} » : {what}", field.label) }
}

/// Why a definition is unusable (checked when a service is saved).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("le formulaire doit comporter au moins une page")]
    NoPage,
    #[error("la clé de champ « {0} » est invalide (minuscules, chiffres et _ seulement)")]
    BadKey(String),
    #[error("la clé de champ « {0} » est utilisée deux fois")]
    DuplicateKey(String),
    #[error("le champ « {0} » n'a aucune option")]
    NoOptions(String),
    #[error("la condition porte sur « {0} », qui n'est pas un champ à choix placé avant")]
    BadCondition(String),
}

impl FormDefinition {
    /// Checks keys, options and conditions.
    pub fn check(&self) -> Result<(), DefinitionError> {
        if self.pages.is_empty() {
            return Err(DefinitionError::NoPage);
        }
        let mut seen: Vec<(&str, bool)> = Vec::new(); // (key, is a choice field)
        for page in &self.pages {
            if let Some(c) = &page.condition
                && !seen.iter().any(|(k, choice)| *k == c.field && *choice)
            {
                return Err(DefinitionError::BadCondition(c.field.clone()));
            }
            for f in &page.fields {
                let ok = !f.key.is_empty()
                    && f.key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !ok {
                    return Err(DefinitionError::BadKey(f.key.clone()));
                }
                if seen.iter().any(|(k, _)| *k == f.key) {
                    return Err(DefinitionError::DuplicateKey(f.key.clone()));
                }
                if let FieldKind::Choice { options } | FieldKind::MultipleChoice { options } =
                    &f.kind
                    && options.is_empty()
                {
                    return Err(DefinitionError::NoOptions(f.key.clone()));
                }
                if let Some(c) = &f.condition
                    && !seen.iter().any(|(k, choice)| *k == c.field && *choice)
                {
                    return Err(DefinitionError::BadCondition(c.field.clone()));
                }
                let choice = matches!(
                    f.kind,
                    FieldKind::Choice { .. } | FieldKind::MultipleChoice { .. } | FieldKind::YesNo
                );
                seen.push((&f.key, choice));
            }
        }
        Ok(())
    }

    /// Indexes of the pages shown for `answers`.
    pub fn visible_pages(&self, answers: &Answers) -> Vec<usize> {
        (0..self.pages.len())
            .filter(|i| self.pages[*i].condition.as_ref().is_none_or(|c| c.holds(answers)))
            .collect()
    }

    /// The visible page after `current`, if any.
    pub fn next_page(&self, current: usize, answers: &Answers) -> Option<usize> {
        self.visible_pages(answers).into_iter().find(|i| *i > current)
    }

    /// The visible page before `current`, if any.
    pub fn previous_page(&self, current: usize, answers: &Answers) -> Option<usize> {
        self.visible_pages(answers).into_iter().rev().find(|i| *i < current)
    }

    /// Validates page `index` from `raw` (and `files`, the references of files uploaded with
    /// this page, already checked and stored), writing accepted values into `answers`. Every
    /// field is validated so the citizen sees all errors at once; refused values are not
    /// stored, but other answers are, so nothing valid is lost.
    pub fn apply_page(
        &self,
        index: usize,
        raw: &RawInput,
        files: &BTreeMap<String, Vec<FileRef>>,
        answers: &mut Answers,
    ) -> Vec<FieldError> {
        let Some(page) = self.pages.get(index) else { return Vec::new() };
        let mut errors = Vec::new();
        for field in &page.fields {
            if field.condition.as_ref().is_some_and(|c| !c.holds(answers)) {
                answers.remove(&field.key);
                continue;
            }
            match parse_field(field, raw, files.get(&field.key), answers.get(&field.key)) {
                Ok(Some(v)) => {
                    answers.insert(field.key.clone(), v);
                }
                Ok(None) => {
                    answers.remove(&field.key);
                    if field.required && field.kind.takes_answer() {
                        errors.push(error(field, "ce champ est obligatoire."));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        errors
    }

    /// Checks that every visible page's required answers are present (before submission), and
    /// drops answers of fields that are hidden now. Returns the first page with a problem.
    pub fn check_complete(&self, answers: &mut Answers) -> Result<(), usize> {
        let visible = self.visible_pages(answers);
        let mut keep: Vec<&str> = Vec::new();
        for i in &visible {
            for f in &self.pages[*i].fields {
                if f.condition.as_ref().is_some_and(|c| !c.holds(answers)) {
                    continue;
                }
                keep.push(&f.key);
                if f.required && f.kind.takes_answer() && !answers.contains_key(&f.key) {
                    return Err(*i);
                }
            }
        }
        answers.retain(|k, _| keep.contains(&k.as_str()));
        Ok(())
    }

    /// The answers as (page title, [(label, display text)]) for summaries and acknowledgements.
    pub fn summary(&self, answers: &Answers) -> Vec<(String, Vec<(String, String)>)> {
        self.visible_pages(answers)
            .into_iter()
            .map(|i| {
                let page = &self.pages[i];
                let rows = page
                    .fields
                    .iter()
                    .filter(|f| f.kind.takes_answer())
                    .filter(|f| f.condition.as_ref().is_none_or(|c| c.holds(answers)))
                    .map(|f| (f.label.clone(), display(f, answers.get(&f.key))))
                    .collect();
                (page.title.clone(), rows)
            })
            .collect()
    }

    /// Finds a field by key.
    pub fn field(&self, key: &str) -> Option<&Field> {
        self.pages.iter().flat_map(|p| &p.fields).find(|f| f.key == key)
    }
}

impl FieldKind {
    /// Whether the field stores an answer (titles and comments do not).
    pub fn takes_answer(&self) -> bool {
        !matches!(self, FieldKind::Title | FieldKind::Comment { .. })
    }
}

fn first<'a>(raw: &'a RawInput, key: &str) -> &'a str {
    raw.get(key).and_then(|v| v.first()).map_or("", |s| s.trim())
}

fn parse_field(
    field: &Field,
    raw: &RawInput,
    uploaded: Option<&Vec<FileRef>>,
    previous: Option<&Value>,
) -> Result<Option<Value>, FieldError> {
    let text = first(raw, &field.key);
    match &field.kind {
        FieldKind::Title | FieldKind::Comment { .. } => Ok(None),
        FieldKind::Text { max_length } | FieldKind::LongText { max_length } => {
            if text.is_empty() {
                return Ok(None);
            }
            if text.chars().count() > *max_length {
                return Err(error(
                    field,
                    &format!("ne doit pas dépasser {max_length} caractères."),
                ));
            }
            if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                return Err(error(field, "contient des caractères non autorisés."));
            }
            Ok(Some(Value::String(text.replace("\r\n", "\n"))))
        }
        FieldKind::Email => {
            if text.is_empty() {
                return Ok(None);
            }
            Email::parse(text)
                .map(|e| Some(Value::String(e.into_inner())))
                .map_err(|e| error(field, &format!("{e}.")))
        }
        FieldKind::Phone => {
            if text.is_empty() {
                return Ok(None);
            }
            Phone::parse(text)
                .map(|p| Some(Value::String(p.into_inner())))
                .map_err(|e| error(field, &format!("{e}.")))
        }
        FieldKind::Number { min, max, integer } => {
            if text.is_empty() {
                return Ok(None);
            }
            let n: f64 = text
                .replace(',', ".")
                .replace([' ', '\u{a0}'], "")
                .parse()
                .map_err(|_| error(field, "doit être un nombre (par exemple 12 ou 12,5)."))?;
            if !n.is_finite() {
                return Err(error(field, "doit être un nombre."));
            }
            if *integer && n.fract() != 0.0 {
                return Err(error(field, "doit être un nombre entier."));
            }
            if let Some(min) = min.filter(|m| n < *m) {
                return Err(error(field, &format!("doit être au moins {min}.")));
            }
            if let Some(max) = max.filter(|m| n > *m) {
                return Err(error(field, &format!("doit être au plus {max}.")));
            }
            Ok(Some(json!(n)))
        }
        FieldKind::Date => {
            if text.is_empty() {
                return Ok(None);
            }
            parse_date(text)
                .map(|d| Some(Value::String(d)))
                .ok_or_else(|| error(field, "doit être une date valide, au format jj/mm/aaaa."))
        }
        FieldKind::Choice { options } => {
            if text.is_empty() {
                return Ok(None);
            }
            if options.iter().any(|o| o.value == text) {
                Ok(Some(Value::String(text.to_owned())))
            } else {
                Err(error(field, "choisissez une des options proposées."))
            }
        }
        FieldKind::MultipleChoice { options } => {
            let chosen: Vec<&str> =
                raw.get(&field.key).map_or(Vec::new(), |v| v.iter().map(|s| s.trim()).collect());
            if chosen.iter().all(|s| s.is_empty()) {
                return Ok(None);
            }
            let mut values = Vec::new();
            for c in chosen.iter().filter(|s| !s.is_empty()) {
                if !options.iter().any(|o| o.value == *c) {
                    return Err(error(field, "choisissez parmi les options proposées."));
                }
                if !values.contains(c) {
                    values.push(*c);
                }
            }
            Ok(Some(json!(values)))
        }
        FieldKind::YesNo => match text {
            "" => Ok(None),
            "oui" | "non" => Ok(Some(Value::String(text.to_owned()))),
            _ => Err(error(field, "répondez par oui ou par non.")),
        },
        FieldKind::Address => {
            let street = first(raw, &format!("{}.street", field.key));
            let postcode = first(raw, &format!("{}.postcode", field.key));
            let city = first(raw, &format!("{}.city", field.key));
            if street.is_empty() && postcode.is_empty() && city.is_empty() {
                return Ok(None);
            }
            if street.is_empty() || city.is_empty() {
                return Err(error(field, "indiquez le numéro et la voie, et la commune."));
            }
            if postcode.len() != 5 || !postcode.bytes().all(|b| b.is_ascii_digit()) {
                return Err(error(field, "le code postal doit comporter 5 chiffres."));
            }
            if street.chars().count() > 200 || city.chars().count() > 100 {
                return Err(error(field, "l'adresse est trop longue."));
            }
            Ok(Some(json!({"street": street, "postcode": postcode, "city": city})))
        }
        FieldKind::File { multiple, .. } => {
            // Files already attached stay unless the citizen ticked "remove" (`key.remove`).
            let removed: Vec<&str> = raw
                .get(&format!("{}.remove", field.key))
                .map_or(Vec::new(), |v| v.iter().map(String::as_str).collect());
            let mut files: Vec<Value> = previous
                .and_then(Value::as_array)
                .map_or(Vec::new(), |a| a.to_vec())
                .into_iter()
                .filter(|f| {
                    !f.get("id").and_then(Value::as_str).is_some_and(|id| removed.contains(&id))
                })
                .collect();
            for f in uploaded.into_iter().flatten() {
                if !*multiple {
                    files.clear();
                }
                files.push(json!(f));
            }
            if files.is_empty() { Ok(None) } else { Ok(Some(Value::Array(files))) }
        }
    }
}

/// Accepts "2026-11-29" (what `<input type=date>` sends) and "29/11/2026" (typed by hand
/// where the browser has no date picker); returns ISO.
fn parse_date(text: &str) -> Option<String> {
    let (y, m, d) = if let Some((y, rest)) = text.split_once('-') {
        let (m, d) = rest.split_once('-')?;
        (y, m, d)
    } else {
        let mut parts = text.split('/');
        let (d, m, y) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        (y, m, d)
    };
    let (y, m, d): (i32, u8, u8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1900..=2200).contains(&y) {
        return None;
    }
    let month = time::Month::try_from(m).ok()?;
    let date = time::Date::from_calendar_date(y, month, d).ok()?;
    Some(format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day()))
}

/// An answer as text for summaries.
pub fn display(field: &Field, value: Option<&Value>) -> String {
    let Some(value) = value else { return "Non renseigné".to_owned() };
    let label_of = |options: &[Choice], v: &str| {
        options.iter().find(|o| o.value == v).map_or(v.to_owned(), |o| o.label.clone())
    };
    match (&field.kind, value) {
        (FieldKind::Choice { options }, Value::String(s)) => label_of(options, s),
        (FieldKind::MultipleChoice { options }, Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(|s| label_of(options, s))
            .collect::<Vec<_>>()
            .join(", "),
        (FieldKind::YesNo, Value::String(s)) => if s == "oui" { "Oui" } else { "Non" }.to_owned(),
        (FieldKind::Date, Value::String(s)) => {
            let parts: Vec<&str> = s.split('-').collect();
            if parts.len() == 3 {
                format!("{}/{}/{}", parts[2], parts[1], parts[0])
            } else {
                s.clone()
            }
        }
        (FieldKind::Phone, Value::String(s)) => {
            Phone::parse(s).map_or(s.clone(), |p| p.display_national())
        }
        (FieldKind::Address, Value::Object(o)) => format!(
            "{}, {} {}",
            o.get("street").and_then(Value::as_str).unwrap_or(""),
            o.get("postcode").and_then(Value::as_str).unwrap_or(""),
            o.get("city").and_then(Value::as_str).unwrap_or("")
        ),
        (FieldKind::File { .. }, Value::Array(items)) => items
            .iter()
            .filter_map(|f| f.get("name").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(", "),
        (FieldKind::Number { .. }, Value::Number(n)) => {
            let f = n.as_f64().unwrap_or(0.0);
            if f.fract() == 0.0 { format!("{f:.0}") } else { f.to_string().replace('.', ",") }
        }
        (_, Value::String(s)) => s.clone(),
        (_, other) => other.to_string(),
    }
}

/// Every text of the answers (strings, address parts, file names, choice values), for the
/// full-text index.
pub fn searchable_text(answers: &Answers) -> String {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Number(n) => out.push(n.to_string()),
            Value::Array(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Object(map) => {
                for (k, v) in map {
                    // File references: the name is searchable, ids and types are not.
                    if !matches!(k.as_str(), "id" | "content_type" | "size") {
                        walk(v, out);
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    answers.values().for_each(|v| walk(v, &mut out));
    out.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> FormDefinition {
        let all = crate::catalogue::templates().expect("templates");
        all.into_iter().find(|t| t.key == "reservation-salle").expect("template").form
    }

    fn raw(pairs: &[(&str, &str)]) -> RawInput {
        let mut r = RawInput::new();
        for (k, v) in pairs {
            r.entry((*k).to_owned()).or_default().push((*v).to_owned());
        }
        r
    }

    #[test]
    fn valid_answers_are_normalised_and_stored() {
        let mut answers = Answers::new();
        let errors = form().apply_page(
            0,
            &raw(&[
                ("salle", "fetes"),
                ("date", "14/07/2027"),
                ("creneau", "soiree"),
                ("objet", "  Bal  "),
                ("participants", "120"),
                ("equipements", "tables"),
                ("equipements", "sono"),
                ("association", "non"),
            ]),
            &BTreeMap::new(),
            &mut answers,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(answers["date"], json!("2027-07-14"));
        assert_eq!(answers["objet"], json!("Bal"));
        assert_eq!(answers["equipements"], json!(["tables", "sono"]));
        assert!(!answers.contains_key("nom_association"));
    }

    #[test]
    fn each_bad_answer_is_named_in_french_and_good_ones_are_kept() {
        let mut answers = Answers::new();
        let errors = form().apply_page(
            0,
            &raw(&[
                ("salle", "piscine"),
                ("date", "31/02/2027"),
                ("creneau", "soiree"),
                ("objet", ""),
                ("participants", "douze"),
                ("equipements", "jacuzzi"),
                ("association", "peut-être"),
            ]),
            &BTreeMap::new(),
            &mut answers,
        );
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "« Salle » : choisissez une des options proposées.",
                "« Date souhaitée » : doit être une date valide, au format jj/mm/aaaa.",
                "« Objet de la manifestation » : ce champ est obligatoire.",
                "« Nombre de personnes attendues » : doit être un nombre (par exemple 12 ou 12,5).",
                "« Équipements souhaités » : choisissez parmi les options proposées.",
                "« Demandez-vous au nom d'une association ? » : répondez par oui ou par non.",
            ]
        );
        assert_eq!(answers.get("creneau"), Some(&json!("soiree")), "valid answers are kept");
    }

    #[test]
    fn a_conditional_field_is_required_only_when_shown() {
        let f = form();
        let mut answers = Answers::new();
        let base = [
            ("salle", "reunion"),
            ("date", "2027-01-10"),
            ("creneau", "matin"),
            ("objet", "AG"),
            ("participants", "20"),
        ];
        let mut with_yes = base.to_vec();
        with_yes.push(("association", "oui"));
        let errors = f.apply_page(0, &raw(&with_yes), &BTreeMap::new(), &mut answers);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].key, "nom_association");
        let mut with_no = base.to_vec();
        with_no.extend([("association", "non"), ("nom_association", "ignored")]);
        let errors = f.apply_page(0, &raw(&with_no), &BTreeMap::new(), &mut answers);
        assert!(errors.is_empty());
        assert!(!answers.contains_key("nom_association"));
    }

    #[test]
    fn conditional_pages_are_skipped_and_summaries_use_labels() {
        let all = crate::catalogue::templates().expect("templates");
        let f = all.into_iter().find(|t| t.key == "acte-etat-civil").expect("template").form;
        let mut answers = Answers::new();
        answers.insert("type_acte".into(), json!("naissance"));
        answers.insert("type_document".into(), json!("extrait_sans_filiation"));
        assert_eq!(f.visible_pages(&answers), [0, 1, 3]);
        assert_eq!(f.next_page(1, &answers), Some(3));
        answers.insert("type_document".into(), json!("copie_integrale"));
        assert_eq!(f.next_page(1, &answers), Some(2));
        let summary = f.summary(&answers);
        assert_eq!(summary[0].1[0], ("Type d'acte".to_owned(), "Acte de naissance".to_owned()));
    }

    #[test]
    fn check_complete_finds_missing_required_answers_and_drops_hidden_ones() {
        let f = form();
        let mut answers = Answers::new();
        answers.insert("salle".into(), json!("fetes"));
        assert_eq!(f.check_complete(&mut answers), Err(0));
        for (k, v) in [
            ("date", json!("2027-01-10")),
            ("creneau", json!("matin")),
            ("objet", json!("AG")),
            ("participants", json!(20)),
            ("association", json!("non")),
            ("nom_association", json!("stale")),
        ] {
            answers.insert(k.into(), v);
        }
        assert_eq!(f.check_complete(&mut answers), Ok(()));
        assert!(!answers.contains_key("nom_association"));
    }

    #[test]
    fn files_accumulate_and_can_be_removed() {
        let all = crate::catalogue::templates().expect("templates");
        let f = all.into_iter().find(|t| t.key == "signalement").expect("template").form;
        let file = |id: &str| FileRef {
            id: id.into(),
            name: format!("{id}.jpg"),
            size: 10,
            content_type: "image/jpeg".into(),
        };
        let mut answers = Answers::new();
        let base = [
            ("categorie", "voirie"),
            ("description", "Trou"),
            ("adresse.street", "1 rue X"),
            ("adresse.postcode", "45130"),
            ("adresse.city", "Bellecombe"),
        ];
        let mut files = BTreeMap::new();
        files.insert("photo".to_owned(), vec![file("a")]);
        assert!(f.apply_page(0, &raw(&base), &files, &mut answers).is_empty());
        files.insert("photo".to_owned(), vec![file("b")]);
        assert!(f.apply_page(0, &raw(&base), &files, &mut answers).is_empty());
        assert_eq!(answers["photo"].as_array().map(Vec::len), Some(2));
        let mut removing = base.to_vec();
        removing.push(("photo.remove", "a"));
        assert!(f.apply_page(0, &raw(&removing), &BTreeMap::new(), &mut answers).is_empty());
        assert_eq!(answers["photo"][0]["id"], json!("b"));
    }

    #[test]
    fn file_types_are_recognised_by_content() {
        assert_eq!(FileKind::sniff(b"%PDF-1.7\n...").map(|k| k.1), Some("application/pdf"));
        assert_eq!(FileKind::sniff(&[0xFF, 0xD8, 0xFF, 0xE0]).map(|k| k.0), Some(FileKind::Image));
        assert_eq!(FileKind::sniff(b"MZ\x90\x00 windows exe"), None);
        assert_eq!(FileKind::sniff(b"<html>%PDF-"), None);
    }

    #[test]
    fn bad_definitions_are_refused() {
        let bad: FormDefinition = serde_json::from_value(json!({"pages": [{"id": "p", "title": "P", "fields": [
            {"key": "a", "label": "A", "type": "text"},
            {"key": "b", "label": "B", "type": "text", "condition": {"field": "a", "one_of": ["x"]}}
        ]}]})).expect("parses");
        assert_eq!(bad.check(), Err(DefinitionError::BadCondition("a".into())));
        let dup: FormDefinition = serde_json::from_value(json!({"pages": [{"id": "p", "title": "P", "fields": [
            {"key": "a", "label": "A", "type": "text"}, {"key": "a", "label": "A2", "type": "email"}
        ]}]})).expect("parses");
        assert_eq!(dup.check(), Err(DefinitionError::DuplicateKey("a".into())));
    }

    #[test]
    fn a_summary_page_is_the_default_and_stored_forms_keep_theirs() {
        // Forms stored before the setting existed have a summary page.
        let old: FormDefinition =
            serde_json::from_value(json!({"pages": [{"id": "p", "title": "P", "fields": []}]}))
                .expect("parses");
        assert!(old.confirmation);
        // The default is not written out: stored forms stay as they were.
        assert!(serde_json::to_value(&old).expect("serialises").get("confirmation").is_none());
        let report = crate::catalogue::templates()
            .expect("templates")
            .into_iter()
            .find(|t| t.key == "signalement")
            .expect("template")
            .form;
        assert!(!report.confirmation, "a problem report is sent from its one page");
        let stored = serde_json::to_value(&report).expect("serialises");
        assert_eq!(stored["confirmation"], json!(false));
        let back: FormDefinition = serde_json::from_value(stored).expect("parses");
        assert_eq!(back, report);
    }
}
