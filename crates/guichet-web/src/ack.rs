//! Legal acknowledgements of electronic submissions (CRPA L112-11, R112-11-1): the accusé de
//! réception électronique (ARE) and the accusé d'enregistrement électronique (AEE). Each is
//! rendered once, kept on the request as a document and sent by e-mail, in plain text and HTML.

use askama::Template;
use guichet_domain::calendar::HolidayArea;
use guichet_domain::clock::{date_fr, datetime_fr, paris};
use guichet_domain::deadline::{
    DelayLength, LegalDelay, Regime, RequestHistory, acknowledgement_deadlines,
    deemed_decision_date,
};
use guichet_domain::{DocumentId, RequestId};
use guichet_store::{NewDocument, NewEmail, Service, Tenant};
use time::{Date, OffsetDateTime};

use crate::{AppError, AppState};

/// Which acknowledgement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckKind {
    /// Accusé de réception électronique.
    Are,
    /// Accusé d'enregistrement électronique (the ARE follows after a check).
    Aee,
    /// Accusé de réception of a request received on paper, at the counter or by phone
    /// (CRPA R112-5), printed or handed over.
    Paper,
    /// Accusé de réception électronique of an e-mail not yet tied to a service: the legal
    /// dates follow once an agent has qualified it.
    Contact,
}

impl AckKind {
    /// Stored document kind.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Are | Self::Contact => "are",
            Self::Aee => "aee",
            Self::Paper => "ar",
        }
    }

    /// French title.
    pub fn title(self) -> &'static str {
        match self {
            Self::Are | Self::Contact => "Accusé de réception électronique",
            Self::Aee => "Accusé d'enregistrement électronique",
            Self::Paper => "Accusé de réception",
        }
    }
}

/// The legal dates of a submission.
pub struct LegalDates {
    /// Regime of the service.
    pub regime: Regime,
    /// Deemed-decision date, for SVA and SVR.
    pub deemed: Option<Date>,
}

/// The holiday area of the commune concerned (handling tenant, or the citizen's commune).
pub fn area_of(tenants: &[&Tenant]) -> HolidayArea {
    tenants
        .iter()
        .find_map(|t| t.insee_code.as_ref())
        .map_or(HolidayArea::Metropole, HolidayArea::for_commune)
}

/// Computes the deemed-decision date of a complete request received at `received`.
pub fn legal_dates(service: &Service, received: OffsetDateTime, area: HolidayArea) -> LegalDates {
    let regime = Regime::parse(&service.regime).unwrap_or(Regime::None);
    let deemed = DelayLength::parse(&service.delay).ok().and_then(|length| {
        let history = RequestHistory::new(paris(received).date(), area);
        deemed_decision_date(&LegalDelay::new(regime, length), &history)
    });
    LegalDates { regime, deemed }
}

/// When the acknowledgement of receipt of a request received at `received` is legally due:
/// the end (midnight, Paris time) of the last day allowed (CRPA R112-11-1: ten working days).
pub fn ack_due_at(received: OffsetDateTime, area: HolidayArea) -> OffsetDateTime {
    let (_, last_day) = acknowledgement_deadlines(paris(received).date(), area);
    let next = last_day + time::Duration::days(1);
    paris(next.midnight().assume_utc()).replace_date(next).replace_time(time::Time::MIDNIGHT)
}

/// Everything an acknowledgement says.
#[allow(missing_docs)]
pub struct Ack<'a> {
    pub kind: AckKind,
    pub reference: &'a str,
    pub subject: &'a str,
    pub received_at: OffsetDateTime,
    pub handler: &'a Tenant,
    pub citizen_name: &'a str,
    pub dates: &'a LegalDates,
    pub area: HolidayArea,
    /// What was received: the service's form, or a message on an existing request.
    pub what: &'a str,
}

#[derive(Template)]
#[template(path = "documents/ack.txt")]
struct AckText<'a> {
    a: &'a AckView,
}

#[derive(Template)]
#[template(path = "documents/ack.html")]
struct AckHtml<'a> {
    a: &'a AckView,
}

/// The acknowledgement with every mention already written out.
pub(crate) struct AckView {
    pub title: String,
    pub reference: String,
    pub subject: String,
    pub citizen_name: String,
    pub what: String,
    pub received: String,
    pub service_name: String,
    pub address: String,
    pub email: String,
    pub phone: String,
    pub aee_are_deadline: Option<String>,
    pub decision: Vec<String>,
    /// Printed rather than e-mailed: no "do not reply" footer.
    pub paper: bool,
}

impl AckView {
    fn new(a: &Ack<'_>) -> Self {
        let c = &a.handler.contact;
        let address = format!("{}, {} {}", c.street, c.postcode, c.city);
        let deemed = a.dates.deemed.map(date_fr);
        let decision = match (a.dates.regime, deemed) {
            _ if a.kind == AckKind::Contact => vec![format!(
                "Votre message va être examiné par {}. S'il constitue une demande soumise à un délai \
                 de décision, un accusé de réception vous indiquera la démarche retenue et, le cas \
                 échéant, la date à laquelle une décision implicite pourrait naître.",
                c.service_name
            )],
            (Regime::Sva, Some(date)) => vec![
                format!(
                    "Votre demande peut donner lieu à une décision implicite d'acceptation. En l'absence de \
                     réponse de l'administration, elle sera réputée acceptée le {date}, sous réserve que votre \
                     dossier soit complet (article L231-1 du code des relations entre le public et l'administration)."
                ),
                format!(
                    "Vous pourrez alors obtenir, sur simple demande auprès de {}, l'attestation de décision \
                     implicite d'acceptation prévue à l'article L232-3 du même code.",
                    c.service_name
                ),
                "Si votre dossier est incomplet, le service vous indiquera les pièces et informations \
                 manquantes et le délai pour les fournir ; le délai d'acceptation implicite ne courra \
                 qu'à compter de leur réception (article L114-5)."
                    .to_owned(),
            ],
            (Regime::Svr, Some(date)) => vec![
                format!(
                    "Votre demande peut donner lieu à une décision implicite de rejet. En l'absence de réponse \
                     de l'administration, elle sera réputée rejetée le {date}, sous réserve que votre dossier \
                     soit complet."
                ),
                format!(
                    "Voies et délais de recours : vous pourrez contester cette décision implicite de rejet dans \
                     un délai de deux mois à compter de la date à laquelle elle sera née, par un recours gracieux \
                     adressé à {}, {address}, ou par un recours contentieux devant le tribunal administratif \
                     territorialement compétent, y compris par l'application Télérecours citoyens \
                     (www.telerecours.fr). Si vous demandez la communication des motifs de cette décision dans \
                     ce délai, le délai de recours contentieux court jusqu'à deux mois après le jour où ils vous \
                     auront été communiqués (article L232-4 du code des relations entre le public et l'administration).",
                    c.service_name
                ),
                "Si votre dossier est incomplet, le service vous indiquera les pièces et informations \
                 manquantes et le délai pour les fournir ; le délai de rejet implicite sera suspendu \
                 jusqu'à leur réception (article L114-5)."
                    .to_owned(),
            ],
            _ => vec![
                "Cette démarche ne donne pas lieu à une décision implicite d'acceptation ou de rejet : \
                 le service vous répondra directement."
                    .to_owned(),
            ],
        };
        let aee_are_deadline = (a.kind == AckKind::Aee).then(|| {
            let (_, are) = acknowledgement_deadlines(paris(a.received_at).date(), a.area);
            date_fr(are)
        });
        Self {
            title: a.kind.title().to_owned(),
            reference: a.reference.to_owned(),
            subject: a.subject.to_owned(),
            citizen_name: a.citizen_name.to_owned(),
            what: a.what.to_owned(),
            received: datetime_fr(a.received_at),
            service_name: c.service_name.clone(),
            address,
            email: c.email.to_string(),
            phone: c.phone.display_national(),
            aee_are_deadline,
            decision,
            paper: a.kind == AckKind::Paper,
        }
    }
}

/// Renders an acknowledgement as the document kept on the request (no e-mail).
pub fn document(ack: &Ack<'_>) -> Result<NewDocument, AppError> {
    let view = AckView::new(ack);
    Ok(NewDocument {
        id: DocumentId::new(),
        kind: ack.kind.as_str().to_owned(),
        title: format!("{} – {}", view.title, view.reference),
        text: AckText { a: &view }.render()?,
        html: AckHtml { a: &view }.render()?,
        created_at: ack.received_at,
        code: None,
    })
}

/// Renders an acknowledgement as a document and as the e-mail carrying it.
pub fn render(
    state: &AppState,
    ack: &Ack<'_>,
    to: &str,
    request: RequestId,
) -> Result<(NewDocument, NewEmail), AppError> {
    let view = AckView::new(ack);
    let text = AckText { a: &view };
    let html = AckHtml { a: &view };
    let document = NewDocument {
        id: DocumentId::new(),
        kind: ack.kind.as_str().to_owned(),
        title: format!("{} – {}", view.title, view.reference),
        text: text.render()?,
        html: html.render()?,
        created_at: ack.received_at,
        code: None,
    };
    let subject = format!("{} de votre demande {}", view.title, view.reference);
    let email = crate::mail::email(state, to, subject, &text, &html, Some(request))?;
    Ok((document, email))
}

/// Renders an acknowledgement as an e-mail only (a contact not yet tied to a request).
pub fn render_email(
    state: &AppState,
    ack: &Ack<'_>,
    to: &str,
    subject: String,
) -> Result<NewEmail, AppError> {
    let view = AckView::new(ack);
    crate::mail::email(state, to, subject, &AckText { a: &view }, &AckHtml { a: &view }, None)
}

/// The acknowledgement as printable HTML (counter, phone, paper).
pub fn render_html(ack: &Ack<'_>) -> Result<String, AppError> {
    Ok(AckHtml { a: &AckView::new(ack) }.render()?)
}
