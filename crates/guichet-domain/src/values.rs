//! Validated values. Each `parse` says in French what is wrong, because these messages reach
//! citizens, agents and administrators as they are.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a value was refused. The `Display` text is French and meant for end users.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("ce champ est obligatoire")]
    Empty,
    #[error("ne doit pas dépasser {max} caractères")]
    TooLong { max: usize },
    #[error("{0}")]
    Invalid(&'static str),
}

macro_rules! string_value {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// Gives the text back.
            pub fn into_inner(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // Deserialising goes through `parse`, so a config file or JSON payload cannot smuggle in
        // a value that the type promises is valid.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_value!(
    /// A tenant's URL slug: lowercase ASCII letters, digits and single hyphens, 2 to 63 long.
    Slug
);
string_value!(
    /// A SIREN: 9 digits with a valid Luhn key (INSEE's identifier of legal entities).
    Siren
);
string_value!(
    /// A commune's INSEE (COG) code, kept as text: 5 characters, digits except Corsica's
    /// "2A"/"2B" departments ("2A004" is Ajaccio). Never an integer: leading zeros and letters matter.
    InseeCode
);
string_value!(
    /// An e-mail address, trimmed and lowercased (addresses are compared case-insensitively).
    Email
);
string_value!(
    /// A phone number in E.164 form ("+33612345678"); French national forms are accepted on input.
    Phone
);
string_value!(
    /// A CSS colour as `#rrggbb`, for tenant branding.
    Colour
);

/// Paths that a slug may not take because the platform routes them itself.
const RESERVED_SLUGS: &[&str] = &[
    "static",
    "healthz",
    "metrics",
    "api",
    "admin",
    "agents",
    "compte",
    "demo",
    "csp-report",
    "robots.txt",
    "favicon.ico",
    "accessibilite",
    "conditions-utilisation",
];

impl Slug {
    /// Parses a slug.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > 63 {
            return Err(ParseError::TooLong { max: 63 });
        }
        let ok_chars = s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !ok_chars || s.len() < 2 || s.starts_with('-') || s.ends_with('-') || s.contains("--") {
            return Err(ParseError::Invalid(
                "l'identifiant ne peut contenir que des minuscules sans accent, des chiffres et des tirets simples",
            ));
        }
        if RESERVED_SLUGS.contains(&s) {
            return Err(ParseError::Invalid("cet identifiant est réservé par la plateforme"));
        }
        Ok(Self(s.to_owned()))
    }
}

/// Luhn checksum over decimal digits, as used by SIREN and SIRET.
fn luhn_ok(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let dd = d * 2;
                if dd > 9 { dd - 9 } else { dd }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl Siren {
    /// Parses a SIREN, accepting spaces between digit groups ("200 068 500").
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let compact: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        if compact.is_empty() {
            return Err(ParseError::Empty);
        }
        if compact.len() != 9 || !compact.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Invalid("le SIREN doit comporter 9 chiffres"));
        }
        if !luhn_ok(&compact) {
            return Err(ParseError::Invalid("ce SIREN n'est pas valide (clé de contrôle)"));
        }
        Ok(Self(compact))
    }

    /// Builds a valid SIREN from an 8-digit body by appending its Luhn key (demo and test data).
    pub fn with_key(body: u32) -> Self {
        let body = format!("{:08}", body % 100_000_000);
        let key = (0..10u8).find(|k| luhn_ok(&format!("{body}{k}"))).unwrap_or(0);
        Self(format!("{body}{key}"))
    }
}

impl InseeCode {
    /// Parses an INSEE commune code.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_ascii_uppercase();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        let b = s.as_bytes();
        let dept_ok = (b.len() == 5)
            && ((b[0].is_ascii_digit() && b[1].is_ascii_digit())
                || (b[0] == b'2' && (b[1] == b'A' || b[1] == b'B')));
        if !dept_ok || !b[2..].iter().all(u8::is_ascii_digit) {
            return Err(ParseError::Invalid(
                "le code INSEE comporte 5 caractères : 2 pour le département (ou 2A, 2B) puis 3 chiffres",
            ));
        }
        Ok(Self(s))
    }

    /// The department part ("45", "2A", "971" for overseas codes starting with 97).
    pub fn department(&self) -> &str {
        if self.0.starts_with("97") || self.0.starts_with("98") {
            &self.0[..3]
        } else {
            &self.0[..2]
        }
    }

    /// Whether the commune follows the local law of Alsace-Moselle (Bas-Rhin, Haut-Rhin,
    /// Moselle), which adds Good Friday and St Stephen's Day to the public holidays.
    pub fn is_alsace_moselle(&self) -> bool {
        matches!(self.department(), "57" | "67" | "68")
    }
}

impl Email {
    /// Parses an e-mail address. Deliberately simple (one `@`, a dotted domain, no spaces):
    /// the real proof of an address is the verification message sent to it.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > 254 {
            return Err(ParseError::TooLong { max: 254 });
        }
        let invalid =
            ParseError::Invalid("l'adresse électronique doit être de la forme nom@domaine.fr");
        let (local, domain) = s.rsplit_once('@').ok_or(invalid.clone())?;
        let bad = local.is_empty()
            || local.len() > 64
            || domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
            || s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>')
            || local.contains('@');
        if bad {
            return Err(invalid);
        }
        Ok(Self(s.to_lowercase()))
    }
}

impl Phone {
    /// Parses a phone number: "06 12 34 56 78", "06.12.34.56.78", "+33 6 12 34 56 78" or
    /// "0033612345678" become "+33612345678"; other international numbers must start with `+`.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let compact: String =
            s.chars().filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')' | '\u{a0}')).collect();
        if compact.is_empty() {
            return Err(ParseError::Empty);
        }
        let invalid = ParseError::Invalid(
            "le numéro de téléphone doit comporter 10 chiffres (06 12 34 56 78) ou commencer par +",
        );
        let e164 = if let Some(rest) = compact.strip_prefix("00") {
            format!("+{rest}")
        } else if compact.starts_with('0') && compact.len() == 10 {
            format!("+33{}", &compact[1..])
        } else if compact.starts_with('+') {
            compact
        } else {
            return Err(invalid);
        };
        let digits = &e164[1..];
        if !(8..=15).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(invalid);
        }
        if let Some(national) = digits.strip_prefix("33")
            && (national.len() != 9 || national.starts_with('0'))
        {
            return Err(invalid);
        }
        Ok(Self(e164))
    }

    /// The French national form ("06 12 34 56 78") when the number is French, else E.164.
    pub fn display_national(&self) -> String {
        match self.0.strip_prefix("+33") {
            Some(n) => {
                let n = format!("0{n}");
                n.as_bytes()
                    .chunks(2)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
            None => self.0.clone(),
        }
    }
}

impl Colour {
    /// Parses `#rgb` or `#rrggbb` (normalised to lowercase `#rrggbb`).
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        let hex = s.strip_prefix('#').unwrap_or(s);
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || !(hex.len() == 3 || hex.len() == 6) {
            return Err(ParseError::Invalid("la couleur doit être de la forme #1a2b3c"));
        }
        let full = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_owned()
        };
        Ok(Self(format!("#{}", full.to_lowercase())))
    }

    /// WCAG relative luminance, used to refuse brand colours that white text cannot sit on.
    pub fn relative_luminance(&self) -> f64 {
        let channel = |i: usize| {
            let v = f64::from(u8::from_str_radix(&self.0[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    /// Contrast ratio against white (WCAG 2.1 §1.4.3 asks 4.5:1 for body text).
    pub fn contrast_with_white(&self) -> f64 {
        1.05 / (self.relative_luminance() + 0.05)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_lowercase_hyphenated_and_not_reserved() {
        assert!(Slug::parse("saint-andre-des-eaux").is_ok());
        assert!(Slug::parse("Saint-Andre").is_err());
        assert!(Slug::parse("a--b").is_err());
        assert!(Slug::parse("-ab").is_err());
        assert!(Slug::parse("static").is_err());
        assert_eq!(Slug::parse("").unwrap_err(), ParseError::Empty);
    }

    #[test]
    fn siren_checks_its_luhn_key() {
        assert!(Siren::parse("732829320").is_ok()); // a well-known valid SIREN
        assert!(Siren::parse("732829321").is_err());
        assert!(Siren::parse("12345").is_err());
        for body in [0, 1, 20006850, 99999999] {
            let s = Siren::with_key(body);
            assert_eq!(Siren::parse(s.as_str()).unwrap(), s);
        }
    }

    #[test]
    fn insee_codes_keep_corsican_letters_and_leading_zeros() {
        assert_eq!(InseeCode::parse("2a004").unwrap().as_str(), "2A004");
        assert_eq!(InseeCode::parse("01001").unwrap().department(), "01");
        assert_eq!(InseeCode::parse("97411").unwrap().department(), "974");
        assert!(InseeCode::parse("2C004").is_err());
        assert!(InseeCode::parse("1001").is_err());
        assert!(InseeCode::parse("57463").unwrap().is_alsace_moselle());
        assert!(!InseeCode::parse("45234").unwrap().is_alsace_moselle());
    }

    #[test]
    fn emails_are_lowercased_and_need_a_dotted_domain() {
        assert_eq!(
            Email::parse(" Camille.Martin@Exemple.FR ").unwrap().as_str(),
            "camille.martin@exemple.fr"
        );
        assert!(Email::parse("camille@localhost").is_err());
        assert!(Email::parse("camille martin@exemple.fr").is_err());
        assert!(Email::parse("@exemple.fr").is_err());
    }

    #[test]
    fn french_phone_numbers_become_e164() {
        assert_eq!(Phone::parse("06 12 34 56 78").unwrap().as_str(), "+33612345678");
        assert_eq!(Phone::parse("0033612345678").unwrap().as_str(), "+33612345678");
        assert_eq!(Phone::parse("+33 6 12 34 56 78").unwrap().display_national(), "06 12 34 56 78");
        assert!(Phone::parse("12345").is_err());
        assert!(Phone::parse("+330612345678").is_err());
    }

    #[test]
    fn colours_normalise_and_measure_contrast() {
        assert_eq!(Colour::parse("#ABC").unwrap().as_str(), "#aabbcc");
        assert!(Colour::parse("blue").is_err());
        assert!(Colour::parse("#000091").unwrap().contrast_with_white() > 4.5);
        assert!(Colour::parse("#ffff00").unwrap().contrast_with_white() < 4.5);
    }
}
